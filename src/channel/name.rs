//! Channel names, peers and list prefixes.

use std::fmt;
use std::str::FromStr;

use super::ChannelError;

/// A validated channel name in URI form, such as `/asyncworker/image-process`.
///
/// Rules: it starts with `/`, is not just `/`, does not end with `/` and
/// has no empty segment. Any other character is allowed, glob characters
/// included. A name can also be built from its segments.
///
/// # Examples
///
/// ```
/// use redisutil::ChannelName;
///
/// let name = ChannelName::new("/asyncworker/image-process")?;
/// assert_eq!(name, ChannelName::from_segments(["asyncworker", "image-process"])?);
/// assert!(ChannelName::new("asyncworker").is_err());
/// assert!(ChannelName::new("/a//b").is_err());
/// # Ok::<(), redisutil::ChannelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

impl ChannelName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, ChannelError> {
        let invalid = |reason| ChannelError::InvalidName {
            name: name.to_owned(),
            reason,
        };
        if !name.starts_with('/') {
            return Err(invalid("a channel name starts with '/'"));
        }
        if name == "/" {
            return Err(invalid("a channel name is more than '/'"));
        }
        if name.ends_with('/') {
            return Err(invalid("a channel name does not end with '/'"));
        }
        if name.contains("//") {
            return Err(invalid("a channel name has no empty segment"));
        }
        Ok(Self(name.to_owned()))
    }

    /// `/` followed by the segments joined with `/`.
    pub fn from_segments<I>(segments: I) -> Result<Self, ChannelError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut name = String::new();
        for segment in segments {
            name.push('/');
            name.push_str(segment.as_ref());
        }
        Self::new(&name)
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Redis list that `peer` sends on: `<name>/client` or `<name>/server`.
    pub fn list_key(&self, peer: Peer) -> String {
        format!("{}/{}", self.0, peer.as_str())
    }

    /// The channel that the Redis list `key` belongs to, if `key` is a
    /// channel list (`<channel>/client` or `<channel>/server`).
    ///
    /// ```
    /// use redisutil::ChannelName;
    ///
    /// assert_eq!(ChannelName::from_list_key("/a/b/server").unwrap().as_str(), "/a/b");
    /// assert_eq!(ChannelName::from_list_key("/a/b"), None);
    /// assert_eq!(ChannelName::from_list_key("/client"), None);
    /// ```
    pub fn from_list_key(key: &str) -> Option<Self> {
        let name = key
            .strip_suffix("/client")
            .or_else(|| key.strip_suffix("/server"))?;
        Self::new(name).ok()
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Conversion into a [`ChannelName`]: from a name (`"/a/b"`) or from
/// segments (`["a", "b"]`, a slice or a `Vec`).
pub trait IntoChannelName {
    /// Converts, refusing invalid names with [`ChannelError::InvalidName`].
    fn into_channel_name(self) -> Result<ChannelName, ChannelError>;
}

impl IntoChannelName for ChannelName {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        Ok(self)
    }
}

impl IntoChannelName for &ChannelName {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        Ok(self.clone())
    }
}

impl IntoChannelName for &str {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        ChannelName::new(self)
    }
}

impl IntoChannelName for String {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        ChannelName::new(&self)
    }
}

impl IntoChannelName for &String {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        ChannelName::new(self)
    }
}

impl<S: AsRef<str>> IntoChannelName for &[S] {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        ChannelName::from_segments(self)
    }
}

impl<S: AsRef<str>, const N: usize> IntoChannelName for [S; N] {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        ChannelName::from_segments(self)
    }
}

impl<S: AsRef<str>> IntoChannelName for Vec<S> {
    fn into_channel_name(self) -> Result<ChannelName, ChannelError> {
        ChannelName::from_segments(self)
    }
}

/// Which end of a channel this is.
///
/// A `Client` sends on `<channel>/client` and receives from
/// `<channel>/server`; a `Server` the other way round.
///
/// ```
/// use redisutil::Peer;
///
/// let peer: Peer = "server".parse()?;
/// assert_eq!(peer, Peer::Server);
/// assert_eq!(peer.other(), Peer::Client);
/// assert!("both".parse::<Peer>().is_err());
/// # Ok::<(), redisutil::ChannelError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The client end.
    Client,
    /// The server end.
    Server,
}

impl Peer {
    /// `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }

    /// The other end.
    pub fn other(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Peer {
    type Err = ChannelError;

    fn from_str(peer: &str) -> Result<Self, ChannelError> {
        match peer {
            "client" => Ok(Self::Client),
            "server" => Ok(Self::Server),
            other => Err(ChannelError::InvalidPeer(other.to_owned())),
        }
    }
}

/// Checks a [`list_channel`](crate::RedisChannel::list_channel) prefix:
/// it starts and ends with `/` and, unless it is `/`, has no empty segment.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), ChannelError> {
    let invalid = |reason| ChannelError::InvalidPrefix {
        prefix: prefix.to_owned(),
        reason,
    };
    if !prefix.starts_with('/') {
        return Err(invalid("a prefix starts with '/'"));
    }
    if prefix.ends_with('*') {
        return Err(invalid("a prefix does not end with '*'"));
    }
    if !prefix.ends_with('/') {
        return Err(invalid("a prefix ends with '/'"));
    }
    if prefix != "/" && prefix.contains("//") {
        return Err(invalid("a prefix has no empty segment"));
    }
    Ok(())
}
