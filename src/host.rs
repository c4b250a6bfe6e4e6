//! `host:port`, read one way for the whole crate: Redis addresses, the
//! nodes a cluster names, and proxy hosts.

/// Splits `host:port` at its last colon. The host may be an IPv6 address,
/// bracketed (`[::1]:6379`) or not (`::1:6379`); brackets are dropped, and
/// refused around anything else (`[127.0.0.1]:1`). Says
/// why when the text is no `host:port`; port 0 is left to the caller.
pub(crate) fn split_host_port(text: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = text.rsplit_once(':').ok_or("expected \"host:port\"")?;
    let port = port
        .parse::<u16>()
        .map_err(|_| "the port is not a number from 0 to 65535")?;
    let host = match host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
    {
        Some(inner) if inner.contains(':') => inner,
        Some(_) => return Err("brackets hold an IPv6 address only"),
        None => host,
    };
    if host.is_empty() {
        return Err("the host is empty");
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn hosts_and_ports_split_at_the_last_colon() {
        assert_eq!(split_host_port("127.0.0.1:7000"), Ok(("127.0.0.1", 7000)));
        assert_eq!(split_host_port("::1:7000"), Ok(("::1", 7000)));
        assert_eq!(split_host_port("[::1]:7000"), Ok(("::1", 7000)));
        assert_eq!(split_host_port("cache-3:0"), Ok(("cache-3", 0)));
        for bad in [
            "7000",
            ":7000",
            "[]:1",
            "host:port",
            "host:",
            "host:65536",
            "",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad:?}");
        }
    }
}
