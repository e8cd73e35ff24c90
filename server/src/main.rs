use clap::Parser;

fn main() -> std::process::ExitCode {
    // `.env` is optional; a malformed one is reported, not ignored.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("error: cannot read .env: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    // RUST_LOG filters (e.g. `info,revision_store::delivery=warn` drops the line per webhook
    // delivery); LOG_FORMAT=json writes one JSON object per line for log collectors; colour codes
    // only when writing to a terminal.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().with_current_span(true).init(),
        Ok("text") | Err(_) => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        Ok(other) => {
            eprintln!("error: LOG_FORMAT must be text or json, not `{other}`");
            return std::process::ExitCode::from(2);
        }
    }
    let cli = server::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(server::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
