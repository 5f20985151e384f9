//! The background task that periodically calls [`SessionStore::sweep`].

use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::store::SessionStore;

/// Log target of sweep events.
const TARGET: &str = "jwt_exchange::store";

/// Starts a task on the current Tokio runtime that calls [`SessionStore::sweep`] every
/// `interval` (first run one `interval` from now) and stops when the returned handle is dropped.
///
/// Each sweep is logged at `debug` (target `jwt_exchange::store`) with the number of sessions
/// removed; a failed sweep is logged at `warn` and retried at the next tick. The task holds a
/// clone of `store`, so the store lives at least as long as the handle. An `interval` below one
/// millisecond is raised to one millisecond. If a sweep takes longer than `interval`, the next
/// one starts a full `interval` after it finished.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use jwt_exchange::store::{spawn_sweeper, MemoryStore, SessionStore};
/// use jwt_exchange::SystemClock;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
/// let sweeper = spawn_sweeper(Arc::clone(&store), Duration::from_secs(60));
/// // ... serve requests ...
/// drop(sweeper); // stops the task
/// # });
/// ```
///
/// # Panics
///
/// When called outside a Tokio runtime.
pub fn spawn_sweeper(store: Arc<dyn SessionStore>, interval: Duration) -> SweeperHandle {
    let interval = interval.max(Duration::from_millis(1));
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.sweep().await {
                Ok(removed) => {
                    tracing::debug!(target: TARGET, removed, "swept expired sessions");
                }
                Err(e) => {
                    tracing::warn!(
                        target: TARGET,
                        error = %e,
                        source = ?std::error::Error::source(&e).map(ToString::to_string),
                        "session sweep failed"
                    );
                }
            }
        }
    });
    SweeperHandle {
        task: task.abort_handle(),
    }
}

/// Owns the task started by [`spawn_sweeper`]; dropping it stops the task.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use jwt_exchange::store::{spawn_sweeper, MemoryStore};
/// use jwt_exchange::SystemClock;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let handle = spawn_sweeper(Arc::new(MemoryStore::new(Arc::new(SystemClock))), Duration::from_secs(1));
/// assert!(!handle.is_finished());
/// # });
/// ```
#[derive(Debug)]
#[must_use = "the sweeper stops as soon as its handle is dropped"]
pub struct SweeperHandle {
    task: AbortHandle,
}

impl SweeperHandle {
    /// Whether the task has ended (it only ends when aborted or if a sweep panicked).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use jwt_exchange::store::{spawn_sweeper, MemoryStore};
    /// # use jwt_exchange::SystemClock;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let handle = spawn_sweeper(Arc::new(MemoryStore::new(Arc::new(SystemClock))), Duration::from_secs(1));
    /// assert!(!handle.is_finished());
    /// # });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for SweeperHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::MockClock;
    use crate::session::{Session, SessionId};
    use crate::store::{MemoryStore, StoreError};

    /// Counts sweeps; fails every other one.
    #[derive(Debug, Default)]
    struct Counting {
        sweeps: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SessionStore for Counting {
        async fn create(&self, _: &Session) -> Result<(), StoreError> {
            Ok(())
        }
        async fn get(&self, _: &SessionId) -> Result<Option<Session>, StoreError> {
            Ok(None)
        }
        async fn delete(&self, _: &SessionId) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn delete_subject(&self, _: &str) -> Result<usize, StoreError> {
            Ok(0)
        }
        async fn list_subject(&self, _: &str) -> Result<Vec<Session>, StoreError> {
            Ok(Vec::new())
        }
        async fn sweep(&self) -> Result<usize, StoreError> {
            let n = self.sweeps.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 1 {
                Err(StoreError::unavailable("down"))
            } else {
                Ok(0)
            }
        }
        async fn claim_jti(&self, _: &str, _: &str, _: i64) -> Result<bool, StoreError> {
            Ok(true)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sweeps_every_interval_and_stops_on_drop() {
        let store = Arc::new(Counting::default());
        let handle = spawn_sweeper(store.clone(), Duration::from_secs(10));
        let sweeps = || store.sweeps.load(Ordering::SeqCst);

        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(sweeps(), 0, "first sweep waits one interval");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(sweeps(), 1);
        // Failures do not stop the task.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(sweeps(), 4);
        assert!(!handle.is_finished());
        assert_eq!(Arc::strong_count(&store), 2, "the task holds the store");

        drop(handle);
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(sweeps(), 4, "no sweeps after the handle is dropped");
        assert_eq!(Arc::strong_count(&store), 1, "the task released the store");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_interval_is_clamped() {
        let store = Arc::new(Counting::default());
        let handle = spawn_sweeper(store.clone(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let n = store.sweeps.load(Ordering::SeqCst);
        assert!((5..=11).contains(&n), "{n} sweeps in 10 ms");
        drop(handle);
    }

    #[tokio::test(start_paused = true)]
    async fn sweeper_reaps_a_memory_store() {
        let clock = MockClock::at_unix(1_000);
        let store = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
        for _ in 0..10 {
            let s = Session::new(SessionId::generate(), "iss", "a", 1_000, 1_030);
            store.create(&s).await.expect("create");
        }
        let _handle = spawn_sweeper(store.clone(), Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(store.len(), 10, "nothing expired yet");
        clock.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(store.is_empty());
    }
}
