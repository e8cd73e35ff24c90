//! `user create`: a user whose password is piped in, or generated and printed once.
use super::Outcome;
use crate::config::Settings;
use crate::open_database;
use app::domain::users::Role;
use app::services::accounts::{create_user, generate_password};
use std::io::{BufRead, IsTerminal};

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from stdin if piped, otherwise generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        /// advertiser or admin
        #[arg(long)]
        role: String,
    },
}

pub async fn run(settings: &Settings, cmd: UserCommand) -> Outcome {
    let UserCommand::Create { email, role } = cmd;
    let role = Role::parse(&role)?;
    let db = open_database(settings).await?;
    let (password, generated) = password()?;
    let user = create_user(&db, &email, role, &password).await.map_err(|e| e.to_string())?;
    println!("Created {} {} (id {})", user.role, user.email, user.id);
    if generated {
        println!("Password (shown once): {password}");
    }
    Ok(())
}

/// The password piped to stdin, or a generated one (`true`) at a terminal or for an empty line.
fn password() -> Result<(String, bool), String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok((generate_password(), true));
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    Ok(if line.is_empty() { (generate_password(), true) } else { (line, false) })
}
