//! Redis made easy: cross-process message channels over Redis lists, and a
//! client for a redis proxy server.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;

pub use clock::{Clock, ManualClock, SystemClock};
