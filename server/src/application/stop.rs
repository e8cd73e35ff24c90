//! Stopping: SIGTERM or Ctrl-C, listened for from start-up.
/// SIGTERM (what service managers and container runtimes send) or Ctrl-C (SIGINT), listened
/// for from the moment it is made. Made before the server takes its first connection: a
/// listener made later, when the serving task first waited on it, left a window after start-up
/// in which SIGTERM's default action killed the process mid-request instead of draining it.
pub struct StopSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignal {
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(term), Ok(int)) => Self { signals: Some((term, int)) },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                    Self { signals: None }
                }
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    pub(crate) async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
