//! [`RedisAuth`]: credentials given apart from the address.

use std::fmt;

/// A username (an ACL user; `None`: `default`) and password for Redis,
/// given in the options instead of the address. They take the place of
/// any the address holds. `Debug` never shows the password.
///
/// ```
/// use redisutil::RedisAuth;
///
/// let auth = RedisAuth::user("app", "s3cret");
/// assert!(!format!("{auth:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisAuth {
    /// The ACL user; `None` authenticates as `default` (`requirepass`).
    pub username: Option<String>,
    /// The password.
    pub password: String,
}

impl RedisAuth {
    /// The password of the `default` user (`requirepass`).
    pub fn password(password: impl Into<String>) -> Self {
        Self {
            username: None,
            password: password.into(),
        }
    }

    /// An ACL user and its password.
    pub fn user(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: Some(username.into()),
            password: password.into(),
        }
    }
}

impl fmt::Debug for RedisAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAuth")
            .field("username", &self.username)
            .field("password", &format_args!("***"))
            .finish()
    }
}
