//! Owns how a session ends: whether `shutdown` came before the end (the exit code, as the LSP
//! specification asks: 0 after `shutdown`, 1 otherwise), the watch on the editor's process
//! (`processId` from `initialize`: a server whose editor died must not linger, as rust-analyzer
//! also does), and the stop signal that ends the input stream when that process is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the editor's process is checked. A dead editor is noticed within this.
const PARENT_POLL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Ending {
    shutdown: AtomicBool,
    /// Fired when the session must end although the client never said so (its process died):
    /// `transport::sanitized` then ends the input, which ends the server loop.
    stop: CancellationToken,
}

impl Ending {
    pub fn new() -> Arc<Ending> {
        Arc::new(Ending::default())
    }

    pub fn shutdown_requested(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// 0 when `shutdown` came first, 1 otherwise (`exit` alone, end of input, editor gone).
    pub fn exit_code(&self) -> i32 {
        if self.shutdown.load(Ordering::Relaxed) { 0 } else { 1 }
    }

    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Ends the session once process `pid` is gone (checked every second). `None`, 0 or our
    /// own pid (a client that knows no better) watch nothing.
    pub fn watch_parent(self: &Arc<Self>, pid: Option<u32>) {
        let Some(pid) = pid.filter(|&p| p != 0 && p != std::process::id()) else { return };
        let Ok(pid) = libc::pid_t::try_from(pid) else { return };
        let ending = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PARENT_POLL);
            loop {
                tokio::select! {
                    _ = ending.stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if !process_exists(pid) {
                    tracing::info!(pid, "the editor's process is gone; ending the session");
                    ending.stop.cancel();
                    return;
                }
            }
        });
    }
}

/// `kill(pid, 0)`: delivers nothing, only checks. EPERM means the process exists but is not
/// ours to signal, so it counts as alive; only ESRCH means gone. A zombie (exited, not yet
/// reaped by its parent) still counts as alive; an editor's zombie is reaped by init quickly.
fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 performs only the existence and permission check; no signal is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_follows_shutdown() {
        let ending = Ending::new();
        assert_eq!(ending.exit_code(), 1);
        ending.shutdown_requested();
        assert_eq!(ending.exit_code(), 0);
    }

    #[test]
    fn a_live_process_exists_and_a_reaped_one_does_not() {
        assert!(process_exists(std::process::id() as libc::pid_t));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        child.wait().unwrap();
        assert!(!process_exists(pid));
    }
}
