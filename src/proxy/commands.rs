//! What both proxy clients have, written once: [`proxy_client!`] their
//! `Clone` and `Debug`, and [`proxy_commands!`] their constructor,
//! accessors and commands. A client, blocking or async, gets four forms of
//! every command from one table:
//! `get(key)`, `get_with(key, &options)`, and the same two returning
//! [`Answered`](crate::proxy::Answered) (`get_answered`,
//! `get_answered_with`). The client supplies `walk(&op, &options)`, which
//! sends the call; the table says what the call is (its
//! [`Command`](crate::proxy::wire::Command), arguments and value) and what
//! comes back. A new command is a line of the wire table and an entry here.

/// Expands, inside `impl` of a client, to its command methods:
/// `proxy_commands!(blocking)` or `proxy_commands!(async)`.
macro_rules! proxy_commands {
    (blocking) => {
        $crate::proxy::commands::proxy_commands!(@new);
        $crate::proxy::commands::proxy_commands!(@table [] []);
    };
    (async) => {
        $crate::proxy::commands::proxy_commands!(@new);
        $crate::proxy::commands::proxy_commands!(@table [async] [.await]);
    };
    (@new) => {
        /// A client sending through `transport`, on the system clock.
        ///
        /// # Errors
        ///
        /// [`Error::InvalidArgument`](crate::proxy::Error::InvalidArgument)
        /// when the config has no cluster, an empty cluster or an invalid
        /// host ([`ProxyHost::validate`](crate::proxy::ProxyHost::validate)).
        pub fn new(transport: T, config: $crate::proxy::ProxyConfig) -> Result<Self, $crate::proxy::Error> {
            Ok(Self {
                shared: std::sync::Arc::new($crate::proxy::walk::Shared::new(transport, config)?),
                clock: std::sync::Arc::new($crate::SystemClock),
            })
        }

        /// Uses `clock` for signing dates and the pauses between rounds
        /// (this handle and the clones made from it afterwards; earlier
        /// clones keep theirs).
        #[must_use]
        pub fn with_clock(mut self, clock: impl $crate::Clock + 'static) -> Self {
            self.clock = std::sync::Arc::new(clock);
            self
        }

        /// The configuration.
        pub fn config(&self) -> &$crate::proxy::ProxyConfig {
            &self.shared.config
        }

        /// The transport.
        pub fn transport(&self) -> &T {
            &self.shared.transport
        }
    };
    (@table [$($asyncness:tt)*] [$($aw:tt)*]) => {
        $crate::proxy::commands::proxy_commands!(@read [$($asyncness)*] [$($aw)*]
            /// The value at `key`; [`Error::KeyNotFound`](crate::proxy::Error::KeyNotFound)
            /// when there is none.
            ///
            /// # Errors
            ///
            /// Any [`Error`](crate::proxy::Error);
            /// [`Error::Decode`](crate::proxy::Error::Decode) when the value is not a `V`.
            get, get_with, get_answered, get_answered_with <V> (key) -> V = Get
        );
        $crate::proxy::commands::proxy_commands!(@read [$($asyncness)*] [$($aw)*]
            /// The value of field `hashkey` in hash `hashname`.
            ///
            /// # Errors
            ///
            /// As [`get`](Self::get).
            hget, hget_with, hget_answered, hget_answered_with <V> (hashname, hashkey) -> V = HGet
        );
        $crate::proxy::commands::proxy_commands!(@read [$($asyncness)*] [$($aw)*]
            /// The field names of hash `hashname` (a JSON array on the wire).
            ///
            /// # Errors
            ///
            /// As [`get`](Self::get).
            hkeys, hkeys_with, hkeys_answered, hkeys_answered_with <> (hashname) -> Vec<String> = HKeys
        );
        $crate::proxy::commands::proxy_commands!(@read [$($asyncness)*] [$($aw)*]
            /// The values of hash `hashname` (a JSON array on the wire).
            ///
            /// # Errors
            ///
            /// As [`get`](Self::get).
            hvals, hvals_with, hvals_answered, hvals_answered_with <V> (hashname) -> Vec<V> = HVals
        );
        $crate::proxy::commands::proxy_commands!(@read [$($asyncness)*] [$($aw)*]
            /// Every field of hash `hashname` with its value (a JSON object
            /// on the wire).
            ///
            /// # Errors
            ///
            /// As [`get`](Self::get).
            hgetall, hgetall_with, hgetall_answered, hgetall_answered_with <V> (hashname)
                -> std::collections::HashMap<String, V> = HGetAll
        );
        $crate::proxy::commands::proxy_commands!(@write [$($asyncness)*] [$($aw)*]
            /// Sets `key` to the JSON of `value` (options: `expire`, `retry`).
            ///
            /// # Errors
            ///
            /// Any [`Error`](crate::proxy::Error);
            /// [`Error::PartialWrite`](crate::proxy::Error::PartialWrite) when some
            /// clusters took the write and others did not. When no cluster took
            /// it, the main cluster's error, as with a single cluster.
            set, set_with, set_answered, set_answered_with (key; value) = Set
        );
        $crate::proxy::commands::proxy_commands!(@write [$($asyncness)*] [$($aw)*]
            /// Sets field `hashkey` of hash `hashname` to the JSON of `value`
            /// (`expire` applies to the field).
            ///
            /// # Errors
            ///
            /// As [`set`](Self::set).
            hset, hset_with, hset_answered, hset_answered_with (hashname, hashkey; value) = HSet
        );
        $crate::proxy::commands::proxy_commands!(@write [$($asyncness)*] [$($aw)*]
            /// Deletes `key` (a string or a whole hash).
            ///
            /// # Errors
            ///
            /// As [`set`](Self::set).
            delete, delete_with, delete_answered, delete_answered_with (key) = Del
        );
        $crate::proxy::commands::proxy_commands!(@write [$($asyncness)*] [$($aw)*]
            /// Deletes field `hashkey` of hash `hashname`.
            ///
            /// # Errors
            ///
            /// As [`set`](Self::set).
            hdel, hdel_with, hdel_answered, hdel_answered_with (hashname, hashkey) = HDel
        );
    };

    // A read: its 200 body decoded.
    (@read [$($asyncness:tt)*] [$($aw:tt)*]
        $(#[$doc:meta])*
        $plain:ident, $with:ident, $answered:ident, $answered_with:ident
        <$($v:ident)?> ($($arg:ident),+) -> $ret:ty = $command:ident
    ) => {
        $crate::proxy::commands::proxy_commands!(@command [$($asyncness)*] [$($aw)*]
            $(#[$doc])*
            $plain, $with, $answered, $answered_with
            [$($v: serde::de::DeserializeOwned)?] ($($arg: &str,)+) ($($arg,)+) -> $ret
            = $command [$($arg),+], None, decoded
        );
    };

    // A write: every cluster takes the value's JSON.
    (@write [$($asyncness:tt)*] [$($aw:tt)*]
        $(#[$doc:meta])*
        $plain:ident, $with:ident, $answered:ident, $answered_with:ident
        ($($arg:ident),+; $value:ident) = $command:ident
    ) => {
        $crate::proxy::commands::proxy_commands!(@command [$($asyncness)*] [$($aw)*]
            $(#[$doc])*
            $plain, $with, $answered, $answered_with
            [V: serde::Serialize + ?Sized] ($($arg: &str,)+ $value: &V,) ($($arg,)+ $value,) -> ()
            = $command [$($arg),+], Some($crate::proxy::answered::encode($value)?), written
        );
    };

    // A delete: every cluster takes it.
    (@write [$($asyncness:tt)*] [$($aw:tt)*]
        $(#[$doc:meta])*
        $plain:ident, $with:ident, $answered:ident, $answered_with:ident
        ($($arg:ident),+) = $command:ident
    ) => {
        $crate::proxy::commands::proxy_commands!(@command [$($asyncness)*] [$($aw)*]
            $(#[$doc])*
            $plain, $with, $answered, $answered_with
            [] ($($arg: &str,)+) ($($arg,)+) -> () = $command [$($arg),+], None, written
        );
    };

    // The four forms of one command: `$answered_with` builds the call
    // (its arguments and body) and walks it; the others lead to it.
    (@command [$($asyncness:tt)*] [$($aw:tt)*]
        $(#[$doc:meta])*
        $plain:ident, $with:ident, $answered:ident, $answered_with:ident
        [$($generics:tt)*] ($($param:tt)*) ($($pass:tt)*) -> $ret:ty
        = $command:ident [$($key:ident),+], $body:expr, $finish:ident
    ) => {
        $(#[$doc])*
        pub $($asyncness)* fn $plain<$($generics)*>(
            &self,
            $($param)*
        ) -> Result<$ret, $crate::proxy::Error> {
            self.$answered_with($($pass)* &$crate::proxy::CallOptions::new())
                $($aw)*
                .map($crate::proxy::Answered::into_value)
        }

        #[doc = concat!("[`", stringify!($plain), "`](Self::", stringify!($plain), ") with per-call options.")]
        ///
        /// # Errors
        ///
        #[doc = concat!("As [`", stringify!($plain), "`](Self::", stringify!($plain), ").")]
        pub $($asyncness)* fn $with<$($generics)*>(
            &self,
            $($param)*
            options: &$crate::proxy::CallOptions,
        ) -> Result<$ret, $crate::proxy::Error> {
            self.$answered_with($($pass)* options)
                $($aw)*
                .map($crate::proxy::Answered::into_value)
        }

        #[doc = concat!("[`", stringify!($plain), "`](Self::", stringify!($plain), "), with who answered and after how many attempts.")]
        ///
        /// # Errors
        ///
        #[doc = concat!("As [`", stringify!($plain), "`](Self::", stringify!($plain), ").")]
        pub $($asyncness)* fn $answered<$($generics)*>(
            &self,
            $($param)*
        ) -> Result<$crate::proxy::Answered<$ret>, $crate::proxy::Error> {
            self.$answered_with($($pass)* &$crate::proxy::CallOptions::new())
                $($aw)*
        }

        #[doc = concat!("[`", stringify!($with), "`](Self::", stringify!($with), "), with who answered and after how many attempts.")]
        ///
        /// # Errors
        ///
        #[doc = concat!("As [`", stringify!($plain), "`](Self::", stringify!($plain), ").")]
        pub $($asyncness)* fn $answered_with<$($generics)*>(
            &self,
            $($param)*
            options: &$crate::proxy::CallOptions,
        ) -> Result<$crate::proxy::Answered<$ret>, $crate::proxy::Error> {
            let op = $crate::proxy::walk::Op::new(
                $crate::proxy::wire::Command::$command,
                &[$($key),+],
                $body,
                options,
            )?;
            self.walk(&op, options)$($aw)*?.$finish()
        }
    };
}

/// Expands to a client's `Clone` (another handle on the same transport,
/// config and signer: two reference counts) and `Debug` (the config and
/// the clock; the config hides the secret key).
macro_rules! proxy_client {
    ($client:ident) => {
        impl<T> Clone for $client<T> {
            fn clone(&self) -> Self {
                Self {
                    shared: std::sync::Arc::clone(&self.shared),
                    clock: std::sync::Arc::clone(&self.clock),
                }
            }
        }

        impl<T> std::fmt::Debug for $client<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($client))
                    .field("config", &self.shared.config)
                    .field("clock", &self.clock)
                    .finish_non_exhaustive()
            }
        }
    };
}

pub(crate) use {proxy_client, proxy_commands};
