//! Owns the editor's model phases: each runs as its own task, outside the scheduler's worker
//! pool (a model call that hangs for 30 s must not hold a slot the next file's offline review
//! needs), under its own concurrency limit, and is cancelled when a newer review of the same
//! document starts.
//!
//! The limit is two semaphores: a shared one sized from `[limits] max_concurrency` (twice it,
//! so the next prompts are ready when the gate frees a slot), and a reserve of one that only
//! the active document may take, so the file being edited never queues behind model phases
//! of files that are merely open.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::ls_types::Uri;

use crate::review::Outcome;

/// Model phases that may run per slot the gate admits at once.
const TASKS_PER_CALL_SLOT: usize = 2;

struct Running {
    version: i32,
    id: u64,
    cancel: CancellationToken,
}

pub struct ModelTasks {
    running: Mutex<HashMap<Uri, Running>>,
    shared: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    /// The shared semaphore's size now, for resizing it.
    size: Mutex<usize>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Default for ModelTasks {
    fn default() -> ModelTasks {
        let size = crate::llm::limits::LimitSettings::default().max_concurrency as usize * TASKS_PER_CALL_SLOT;
        ModelTasks {
            running: Mutex::new(HashMap::new()),
            shared: Arc::new(Semaphore::new(size)),
            reserve: Arc::new(Semaphore::new(1)),
            size: Mutex::new(size),
            next_id: Default::default(),
        }
    }
}

impl ModelTasks {
    /// Sizes the shared limit from `[limits] max_concurrency`; running phases keep their
    /// permits, and a smaller size takes effect as they end.
    pub fn resize(&self, max_concurrency: u32) {
        let wanted = (max_concurrency as usize).max(1) * TASKS_PER_CALL_SLOT;
        let mut size = self.size.lock().unwrap_or_else(|p| p.into_inner());
        if wanted > *size {
            self.shared.add_permits(wanted - *size);
        } else {
            let mut left = *size - wanted;
            // Permits held now cannot be taken back; forget them as they come free.
            left -= self.shared.forget_permits(left);
            if left > 0 {
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    if let Ok(permits) = shared.acquire_many(left as u32).await {
                        permits.forget();
                    }
                });
            }
        }
        *size = wanted;
    }

    /// Cancels the model phase of an older version of `uri`: its result could only be dropped.
    pub fn cancel_older(&self, uri: &Uri, version: i32) {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get(uri).filter(|r| r.version < version) {
            r.cancel.cancel();
        }
    }

    /// Cancels whatever model phase `uri` has (the document was closed).
    pub fn cancel(&self, uri: &Uri) {
        if let Some(r) = self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(uri) {
            r.cancel.cancel();
        }
    }

    /// Runs `phase` as its own task once a slot is free, replacing (and cancelling) any model
    /// phase `uri` already has. The receiver gets the outcome, or `None` if it was cancelled
    /// or panicked.
    pub fn start<F>(
        self: &Arc<Self>,
        uri: Uri,
        version: i32,
        active: bool,
        phase: impl FnOnce(CancellationToken) -> F,
    ) -> oneshot::Receiver<Option<Outcome>>
    where
        F: Future<Output = Option<Outcome>> + Send + 'static,
    {
        let cancel = CancellationToken::new();
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let replaced = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uri.clone(), Running { version, id, cancel: cancel.clone() });
        if let Some(old) = replaced {
            old.cancel.cancel();
        }
        let future = phase(cancel.clone());
        let (tx, rx) = oneshot::channel();
        let tasks = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                // Checked first: a phase cancelled while it finishes has no result to give.
                biased;
                _ = cancel.cancelled() => None,
                permit = tasks.slot(active) => match permit {
                    Some(_permit) => AssertUnwindSafe(future).catch_unwind().await.unwrap_or_else(|panic| {
                        let what = crate::panics::panic_message(&*panic);
                        tracing::error!(uri = %uri.as_str(), "model phase panicked: {what}");
                        None
                    }),
                    None => None,
                },
            };
            let mut running = tasks.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.get(&uri).is_some_and(|r| r.id == id) {
                running.remove(&uri);
            }
            drop(running);
            let _ = tx.send(outcome);
        });
        rx
    }

    /// A shared slot; the active document may also take the reserve, whichever frees first.
    async fn slot(&self, active: bool) -> Option<OwnedSemaphorePermit> {
        if !active {
            return self.shared.clone().acquire_owned().await.ok();
        }
        tokio::select! {
            biased;
            p = self.shared.clone().acquire_owned() => p.ok(),
            p = self.reserve.clone().acquire_owned() => p.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn uri(name: &str) -> Uri {
        format!("file:///tmp/{name}.py").parse().unwrap()
    }

    #[tokio::test]
    async fn a_newer_phase_cancels_the_older_one_of_the_same_document() {
        let tasks = Arc::new(ModelTasks::default());
        let first = tasks.start(uri("a"), 1, true, |cancel| async move {
            cancel.cancelled().await;
            Some(Outcome::default())
        });
        let second = tasks.start(uri("a"), 2, true, |_| async { Some(Outcome::default()) });
        assert!(first.await.unwrap().is_none(), "the old phase was cancelled, not completed");
        assert!(second.await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_active_document_takes_the_reserve_when_the_shared_slots_are_full() {
        let tasks = Arc::new(ModelTasks::default());
        tasks.resize(1);
        let mut hanging = Vec::new();
        for i in 0..TASKS_PER_CALL_SLOT + 2 {
            hanging.push(tasks.start(uri(&format!("open{i}")), 1, false, |_| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                None
            }));
        }
        tokio::task::yield_now().await;
        let open = tasks.start(uri("open-late"), 1, false, |_| async { Some(Outcome::default()) });
        let active = tasks.start(uri("active"), 1, true, |_| async { Some(Outcome::default()) });
        let done = tokio::time::timeout(Duration::from_secs(2), active).await;
        assert!(matches!(done, Ok(Ok(Some(_)))), "the active document's phase ran at once");
        assert!(tokio::time::timeout(Duration::from_millis(100), open).await.is_err(), "an open one waits");
    }
}
