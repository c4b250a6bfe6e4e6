//! The lease operations' script calls, built once for both drivers.

pub(crate) mod lease;
