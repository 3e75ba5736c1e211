//! The source of "now": every expiry decision reads it, so tests can move time by hand.

use std::fmt;
use std::time::SystemTime;

/// The source of "now" for expiry decisions. Replace it in tests to move time by hand
/// (see `testing::ManualClock` with the `testing` feature).
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
