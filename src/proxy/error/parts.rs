//! The parts of [`Error::SendRequest`] and [`Error::PartialWrite`]: what
//! each attempt on a host and each cluster that did not take a write did.

use std::fmt;

use http::StatusCode;

use super::Error;
use crate::proxy::host::ProxyHost;
use crate::proxy::transport::TransportError;

/// What went wrong with one attempt on one host, when the client moved on
/// to the next host.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptFailure {
    /// No response: refused, timed out, reset.
    Transport(TransportError),
    /// The host answered 502, 503 or 504.
    Unavailable(StatusCode),
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(error) => write!(f, "{error}"),
            Self::Unavailable(status) => write!(f, "answered {status}"),
        }
    }
}

/// One failed attempt: which host, in which round, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The host tried.
    pub host: ProxyHost,
    /// The round (0 for the first pass over the cluster).
    pub round: u32,
    /// Why it gave no usable answer.
    pub failure: AttemptFailure,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (round {}): {}", self.host, self.round, self.failure)
    }
}

/// A cluster that did not take a write, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterFailure {
    /// Index of the cluster in `proxy_hosts` (0 is the main cluster).
    pub cluster: usize,
    /// What that cluster answered.
    pub error: Box<Error>,
}

pub(super) struct Attempts<'a>(pub(super) &'a [Attempt]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, attempt) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}

pub(super) struct Failures<'a>(pub(super) &'a [ClusterFailure]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, failure) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "cluster {} ({})", failure.cluster, failure.error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::{Attempt, AttemptFailure, ClusterFailure};
    use crate::proxy::error::Error;
    use crate::proxy::host::ProxyHost;
    use crate::proxy::transport::{TransportError, TransportErrorKind};

    #[test]
    fn messages_name_every_attempt_and_cluster() {
        let attempts = vec![
            Attempt {
                host: ProxyHost::new("10.0.0.1", 80),
                round: 0,
                failure: AttemptFailure::Transport(TransportError::new(
                    TransportErrorKind::Unreachable,
                    "refused",
                )),
            },
            Attempt {
                host: ProxyHost::new("::1", 80),
                round: 1,
                failure: AttemptFailure::Unavailable(StatusCode::SERVICE_UNAVAILABLE),
            },
        ];
        let unanswered = Error::SendRequest { attempts };
        assert_eq!(
            unanswered.to_string(),
            "failed to send request to any proxy host: \
             10.0.0.1:80 (round 0): host unreachable, nothing sent: refused; \
             [::1]:80 (round 1): answered 503 Service Unavailable"
        );
        let partial = Error::PartialWrite {
            written: vec![0],
            failed: vec![ClusterFailure {
                cluster: 1,
                error: Box::new(unanswered),
            }],
        };
        assert!(
            partial.to_string().starts_with(
                "write taken by clusters [0], not by cluster 1 (failed to send request"
            )
        );
    }
}
