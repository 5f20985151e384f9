//! Injectable time source.
//!
//! Every expiry, leeway, TTL and cool-down decision in this crate reads the time through a
//! [`Clock`], so tests move time forward instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current wall-clock time.
///
/// The default is [`SystemClock`]; tests use [`MockClock`].
///
/// ```
/// use jwt_exchange::{Clock, SystemClock};
/// let now = SystemClock.now();
/// assert!(now > std::time::UNIX_EPOCH);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as whole seconds since the Unix epoch (negative before 1970).
    fn unix_seconds(&self) -> i64 {
        unix_seconds(self.now())
    }
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange::{Clock, MockClock};
/// let clock = MockClock::at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(61));
/// assert_eq!(clock.unix_seconds(), 1_700_000_061);
/// ```
#[derive(Debug, Clone)]
pub struct MockClock {
    millis: Arc<AtomicI64>,
}

impl MockClock {
    /// A clock stopped at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: i64) -> Self {
        Self {
            millis: Arc::new(AtomicI64::new(secs.saturating_mul(1000))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `secs` seconds after the Unix epoch.
    pub fn set_unix(&self, secs: i64) {
        self.millis
            .store(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now(&self) -> SystemTime {
        let ms = self.millis.load(Ordering::SeqCst);
        if ms >= 0 {
            UNIX_EPOCH + Duration::from_millis(ms as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
        }
    }
}

/// Whole seconds between the Unix epoch and `t` (rounded towards negative infinity).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -secs - 1
            } else {
                -secs
            }
        }
    }
}

/// Duration as whole seconds, saturating.
pub(crate) fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_clock_moves_only_when_told() {
        let c = MockClock::at_unix(100);
        assert_eq!(c.unix_seconds(), 100);
        let c2 = c.clone();
        c2.advance(Duration::from_millis(1500));
        assert_eq!(c.unix_seconds(), 101);
        c.set_unix(-5);
        assert_eq!(c.unix_seconds(), -5);
    }

    #[test]
    fn unix_seconds_floors_before_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(unix_seconds(t), -1);
    }
}
