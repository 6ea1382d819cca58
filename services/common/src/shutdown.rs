//! The one shutdown signal: Ctrl+C or SIGTERM.

use std::future::Future;

/// Resolves on Ctrl+C (SIGINT) or SIGTERM, whichever comes first. The
/// handlers are installed when this is called, not when the future is first
/// polled, so a signal that arrives while the server is still starting is
/// not lost to the default action (which would kill instead of draining).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &'static str| match signal(kind) {
            Ok(s) => Some(s),
            Err(err) => {
                tracing::error!(%err, "cannot listen for {name}");
                None
            }
        };
        let mut interrupt = install(SignalKind::interrupt(), "Ctrl+C");
        let mut terminate = install(SignalKind::terminate(), "SIGTERM");
        async move {
            tokio::select! {
                _ = wait(&mut interrupt) => tracing::info!("Ctrl+C received, draining"),
                _ = wait(&mut terminate) => tracing::info!("SIGTERM received, draining"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl+C received, draining");
    }
}

/// The next delivery of an installed signal; never, if it could not be installed.
#[cfg(unix)]
async fn wait(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
