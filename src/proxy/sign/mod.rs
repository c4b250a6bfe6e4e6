//! Request signing: AWS Signature V4 presigned in the query string (the
//! default, as pykit's `k3awssign` does it) or AWS Signature V2.
//!
//! The same [`Signer`] signs on the client side ([`Signer::presign`]) and
//! verifies on the server side ([`Signer::verify`]); verification recomputes
//! the signature with the very code that made it.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use redisutil::proxy::{Credentials, SignatureVersion, Signer};
//!
//! let signer = Signer::new(Credentials::new("ak", "sk"), SignatureVersion::default());
//! let mut request = http::Request::get("http://127.0.0.1:2222/redisproxy/v1/GET/k?n=3&w=2&r=2")
//!     .header("host", "127.0.0.1:2222")
//!     .body(Vec::new())?;
//! let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
//! signer.presign(&mut request, now)?;
//! let query = request.uri().query().unwrap_or_default();
//! assert!(query.starts_with("n=3&w=2&r=2&X-Amz-Algorithm=AWS4-HMAC-SHA256&"));
//! assert!(signer.verify(&request, now).is_ok());
//! // A minute and a second later the presigned request has expired.
//! assert!(signer.verify(&request, now + Duration::from_secs(61)).is_err());
//! // A verifier whose clock is a day behind says the clocks disagree.
//! let err = signer.verify(&request, now - Duration::from_secs(86_400)).unwrap_err();
//! assert!(err.to_string().contains("clocks disagree"), "{err}");
//! assert!(err.to_string().contains("86400s"), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod path;
mod time;
mod v2;
mod v4;

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::percent::{decode, decode_query, encode_into, is_canonical_path};

/// An access key and its secret key.
///
/// `Debug` shows the access key and never the secret.
///
/// # Example
///
/// ```
/// use redisutil::proxy::Credentials;
///
/// let credentials = Credentials::new("my-access-key", "my-secret-key");
/// assert_eq!(credentials.access_key(), "my-access-key");
/// assert!(!format!("{credentials:?}").contains("my-secret-key"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
}

impl Credentials {
    /// Credentials from an access key and a secret key.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        }
    }

    /// The access key (public; it names the secret key).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub(crate) fn secret_key(&self) -> &str {
        &self.secret_key
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Which AWS signature to put in the query string, with its parameters.
///
/// The default is V4 with region `us-east-1`, service `s3` and a 60 second
/// expiry, as pykit's `k3awssign` signs.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redisutil::proxy::SignatureVersion;
///
/// assert_eq!(
///     SignatureVersion::default(),
///     SignatureVersion::V4 {
///         region: "us-east-1".into(),
///         service: "s3".into(),
///         expires: Duration::from_secs(60),
///     }
/// );
/// let v2 = SignatureVersion::v2();
/// assert_eq!(v2, SignatureVersion::V2 { expires: Duration::from_secs(60) });
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureVersion {
    /// AWS Signature V4 (HMAC-SHA256), `X-Amz-*` query parameters,
    /// payload `UNSIGNED-PAYLOAD`.
    V4 {
        /// Region in the credential scope, e.g. `us-east-1`.
        region: String,
        /// Service in the credential scope, e.g. `s3`.
        service: String,
        /// How long a presigned request stays valid (whole seconds).
        expires: Duration,
    },
    /// AWS Signature V2 (HMAC-SHA1, base64), query parameters
    /// `AWSAccessKeyId`, `Expires` and `Signature`.
    ///
    /// As S3 defines it, V2 signs the method, the expiry and the path, but
    /// not the ordinary query parameters (`n`, `w`, `r`, `expire`).
    V2 {
        /// How long a presigned request stays valid (whole seconds).
        expires: Duration,
    },
}

impl SignatureVersion {
    /// V4 with the defaults: `us-east-1`, `s3`, 60 seconds.
    pub fn v4() -> Self {
        Self::V4 {
            region: "us-east-1".to_owned(),
            service: "s3".to_owned(),
            expires: Duration::from_secs(60),
        }
    }

    /// V2 with a 60 second expiry.
    pub fn v2() -> Self {
        Self::V2 {
            expires: Duration::from_secs(60),
        }
    }
}

impl Default for SignatureVersion {
    fn default() -> Self {
        Self::v4()
    }
}

/// Why a request could not be signed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The request has no `Host` header.
    #[error("request has no host header")]
    MissingHost,
    /// A header value to sign is not visible ASCII.
    #[error("header {0} is not valid text")]
    InvalidHeader(String),
    /// The clock reads before 1970 or after 9999.
    #[error("time is out of range for signing")]
    TimeOutOfRange,
    /// A SigV4 expiry outside 1 second ..= 7 days, which no verifier
    /// accepts.
    #[error("sigv4 expiry must be between 1 second and 7 days")]
    InvalidExpiry,
    /// The signed URI could not be rebuilt.
    #[error("cannot rebuild the signed uri")]
    InvalidUri,
}

/// Why a presigned request was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A signature parameter is missing.
    #[error("missing signature parameter {0}")]
    Missing(&'static str),
    /// A signature parameter or the request is malformed.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The access key is not the one this verifier knows.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// Region, service or date of the credential scope do not match.
    #[error("credential scope does not match")]
    WrongScope,
    /// The presigned request has expired, `late` ago by the verifier's
    /// clock. A request just signed that is refused so was signed on a
    /// clock behind the verifier's by about that much.
    #[error(
        "presigned request has expired, {late:?} ago by the verifier's clock \
         (if it was just signed, the signer's clock is that far behind)"
    )]
    Expired {
        /// How long ago it expired.
        late: std::time::Duration,
    },
    /// The signing date lies too far in the future: the signer's clock is
    /// `ahead` of the verifier's.
    #[error(
        "presigned request is not valid yet: signed {ahead:?} ahead of the \
         verifier's clock; the client's and the server's clocks disagree"
    )]
    NotYetValid {
        /// How far ahead of the verifier's clock it was signed.
        ahead: std::time::Duration,
    },
    /// The recomputed signature differs.
    #[error("signature does not match")]
    SignatureMismatch,
}

/// Signs requests with one set of [`Credentials`] and one
/// [`SignatureVersion`], and verifies requests signed that way.
///
/// `Debug` never shows the secret key. See the [module docs](self) for an
/// example.
///
/// A signer keeps the keys it derives from the secret key: the V4 signing
/// key of the current day (derived again when the day changes) and the V2
/// HMAC key. Share one signer (or clones of it) rather than making one per
/// request.
#[derive(Clone)]
pub struct Signer {
    credentials: Credentials,
    version: SignatureVersion,
    v4_keys: v4::KeyCache,
    v2_key: OnceLock<v2::Key>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("credentials", &self.credentials)
            .field("version", &self.version)
            .finish()
    }
}

impl PartialEq for Signer {
    /// Credentials and version; the cached keys follow from them.
    fn eq(&self, other: &Self) -> bool {
        self.credentials == other.credentials && self.version == other.version
    }
}

impl Eq for Signer {}

/// Room for the appended signature parameters, so the query is built in
/// one allocation.
const SIGNATURE_QUERY_CAPACITY: usize = 384;

/// How far in the future a V4 signing date may lie (clock skew).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

impl Signer {
    /// A signer for `credentials` using `version`.
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::{Credentials, SignatureVersion, Signer};
    ///
    /// let signer = Signer::new(Credentials::new("ak", "sk"), SignatureVersion::v2());
    /// assert_eq!(signer.version(), &SignatureVersion::v2());
    /// ```
    pub fn new(credentials: Credentials, version: SignatureVersion) -> Self {
        Self {
            credentials,
            version,
            v4_keys: v4::KeyCache::default(),
            v2_key: OnceLock::new(),
        }
    }

    fn v2_key(&self) -> &v2::Key {
        self.v2_key
            .get_or_init(|| v2::Key::new(self.credentials.secret_key()))
    }

    /// The signature version in use.
    pub fn version(&self) -> &SignatureVersion {
        &self.version
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Appends the signature parameters to `request`'s query, as signed at
    /// `now`. V4 signs every header the request carries at this point
    /// (lower-cased names), which must include `Host`.
    ///
    /// # Errors
    ///
    /// [`SignError`] when the request has no `Host` header, a header is not
    /// text, or `now` cannot be formatted.
    pub fn presign(
        &self,
        request: &mut http::Request<Vec<u8>>,
        now: SystemTime,
    ) -> Result<(), SignError> {
        if !request.headers().contains_key(http::header::HOST) {
            return Err(SignError::MissingHost);
        }
        let uri = request.uri();
        let path = uri.path();
        let query = uri.query().filter(|query| !query.is_empty());
        let mut path_and_query = String::with_capacity(
            path.len() + query.map_or(0, str::len) + 2 + SIGNATURE_QUERY_CAPACITY,
        );
        path_and_query.push_str(path);
        path_and_query.push('?');
        if let Some(query) = query {
            path_and_query.push_str(query);
            path_and_query.push('&');
        }
        match &self.version {
            SignatureVersion::V4 {
                region,
                service,
                expires,
            } => v4::presign_query(
                &self.credentials,
                region,
                service,
                *expires,
                &self.v4_keys,
                request,
                now,
                &mut path_and_query,
            )?,
            SignatureVersion::V2 { expires } => v2::presign_query(
                &self.credentials,
                self.v2_key(),
                *expires,
                request,
                now,
                &mut path_and_query,
            )?,
        }
        let path_and_query =
            http::uri::PathAndQuery::try_from(path_and_query).map_err(|_| SignError::InvalidUri)?;
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        *request.uri_mut() = http::Uri::from_parts(parts).map_err(|_| SignError::InvalidUri)?;
        Ok(())
    }

    /// Checks that `request` carries a valid signature by these credentials
    /// that has not expired at `now`, by recomputing it.
    ///
    /// # Errors
    ///
    /// [`VerifyError`] saying what is wrong.
    pub fn verify(
        &self,
        request: &http::Request<Vec<u8>>,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let params = decode_query(request.uri().query().unwrap_or_default()).ok_or(
            VerifyError::Malformed("query is not valid percent-encoding"),
        )?;
        match &self.version {
            SignatureVersion::V4 {
                region, service, ..
            } => v4::verify(
                &self.credentials,
                region,
                service,
                &self.v4_keys,
                request,
                &params,
                now,
            ),
            SignatureVersion::V2 { .. } => {
                v2::verify(&self.credentials, self.v2_key(), request, &params, now)
            }
        }
    }
}

/// The canonical form of a raw path for V2: each segment decoded and
/// re-encoded (a segment that does not decode is kept as it is). Borrowed
/// when the path is already canonical. (V4 uses [`path`].)
pub(crate) fn canonical_path(raw: &str) -> Cow<'_, str> {
    if raw.is_empty() {
        return Cow::Borrowed("/");
    }
    if is_canonical_path(raw) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for (index, segment) in raw.split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        match decode(segment) {
            Some(text) => encode_into(text.as_bytes(), &mut out),
            None => out.push_str(segment),
        }
    }
    Cow::Owned(out)
}

/// Compares two signatures without stopping at the first difference.
pub(crate) fn same_signature(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |acc, (l, r)| acc | (l ^ r))
            == 0
}

/// The single value of query parameter `name`.
pub(crate) fn single_param<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, VerifyError> {
    let mut found = params.iter().filter(|(key, _)| key == name);
    let first = found.next().ok_or(VerifyError::Missing(name))?;
    if found.next().is_some() {
        return Err(VerifyError::Malformed("a signature parameter is repeated"));
    }
    Ok(&first.1)
}

pub(crate) fn header_text<'a>(
    request: &'a http::Request<Vec<u8>>,
    name: &str,
) -> Result<Option<&'a str>, SignError> {
    request
        .headers()
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| SignError::InvalidHeader(name.to_owned()))
        })
        .transpose()
}
