//! Events for the `tracing` crate (feature `tracing`); without the feature
//! they compile to nothing. Every event has the target `redisutil` and
//! carries addresses as shown in errors (passwords hidden), proxy hosts,
//! statuses, sizes and durations: never a message's contents, a password,
//! a secret key, a signature or a presigned URL.

/// `tracing::event!` with the crate's target, when the feature is on.
macro_rules! event {
    ($level:ident, $($rest:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::event!(target: "redisutil", ::tracing::Level::$level, $($rest)+);
        }
    }};
}

pub(crate) use event;

/// The event of a connect to the store at `addr` begun at `start`.
#[cfg(feature = "redis")]
pub(crate) fn connected<T>(
    store: &str,
    addr: &dyn std::fmt::Display,
    start: std::time::Instant,
    outcome: &Result<T, crate::StoreError>,
) {
    #[cfg(feature = "tracing")]
    {
        let elapsed_ms = start.elapsed().as_millis() as u64;
        match outcome {
            Ok(_) => event!(DEBUG, store, %addr, elapsed_ms, "connection opened"),
            Err(error) => event!(WARN, store, %addr, elapsed_ms, %error, "connection failed"),
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (store, addr, start, outcome);
}

/// The event of a message or value of `bytes` bytes from `place` that did
/// not decode: where in it and what kind of error, never its contents
/// (serde_json's message can quote them).
pub(crate) fn decode_failed(what: &str, place: &str, bytes: usize, error: &serde_json::Error) {
    #[cfg(feature = "tracing")]
    {
        let kind = format!("{:?}", error.classify());
        let (line, column) = (error.line(), error.column());
        event!(
            WARN,
            what,
            place,
            bytes,
            kind,
            line,
            column,
            "did not decode"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (what, place, bytes, error);
}
