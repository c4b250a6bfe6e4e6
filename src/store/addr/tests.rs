use super::*;

#[test]
fn accepted_forms() {
    let url = |a: RedisAddr| a.url().to_owned();
    assert_eq!(
        url(7000u16.into_redis_addr().unwrap()),
        "redis://127.0.0.1:7000/"
    );
    assert_eq!(
        url(("10.0.0.1", 1).into_redis_addr().unwrap()),
        "redis://10.0.0.1:1/"
    );
    assert_eq!(
        url("[::1]:6379".into_redis_addr().unwrap()),
        "redis://[::1]:6379/"
    );
    let sock: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert_eq!(url(sock.into_redis_addr().unwrap()), "redis://127.0.0.1:9/");
    assert_eq!(
        url("unix:///tmp/r.sock".into_redis_addr().unwrap()),
        "unix:///tmp/r.sock"
    );
}

#[test]
fn refused_forms_say_why() {
    for bad in [
        "",
        "host",
        "host:",
        "host:99999",
        ":6379",
        "http://x:1",
        "redis://",
        "a b:1",
    ] {
        let err = bad.into_redis_addr().unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidAddress { .. }),
            "{bad:?}: {err}"
        );
    }
    #[cfg(feature = "redis")]
    for refused_by_redis_rs in [
        "redis://:pa/ss@h:1/",
        "redis://h:1/x",
        "redis://0.0.0.0:1/",
        "unix:///s?protocol=pw",
    ] {
        let err = refused_by_redis_rs.into_redis_addr().unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidAddress { .. }),
            "{refused_by_redis_rs:?}: {err}"
        );
        assert!(!err.to_string().contains("pw"), "{err}");
    }
    assert!(0.into_redis_addr().is_err());
    assert!(70_000.into_redis_addr().is_err());
    assert!((-1).into_redis_addr().is_err());
}

#[test]
fn credentials_shown_as_stars() {
    for (given, shown) in [
        ("redis://h:1/", "redis://h:1/"),
        ("redis://user:pw@h:1/0", "redis://user:***@h:1/0"),
        ("redis://:pw@h:1", "redis://:***@h:1"),
        (
            "rediss://u:p%40w@h:1/#insecure",
            "rediss://u:***@h:1/#insecure",
        ),
        ("redis://pw@h:1", "redis://***@h:1"),
        ("redis://u:p@w:x@h:1/", "redis://u:***@h:1/"),
        ("redis://:p/w@h:1/", "redis://***@h:1/"),
        ("redis://:p?w@h:1/", "redis://***"),
        ("redis://:p#w@h:1/", "redis://***"),
        ("redis://h:1/?password=@w", "redis://***"),
        ("redis://w:@h:1/", "redis://***@h:1/"),
        ("redis://h:1/?protocol=resp3", "redis://h:1/?protocol=resp3"),
        ("redis://h:1/?password=pw", "redis://h:1/?password=***"),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
        ("unix:///tmp/r@1.sock?db=1", "unix:///tmp/r@1.sock?db=1"),
        (
            "unix:///tmp/r.sock?db=1&user=u&pass=pw",
            "unix:///tmp/r.sock?db=1&user=***&***",
        ),
        ("redis+unix:///s?p%61ss=pw", "redis+unix:///s?p%61ss=***"),
        ("unix:///s?pass=p&w", "unix:///s?pass=***&***"),
        ("unix:///s?pass=p&db=1", "unix:///s?pass=***&***"),
        (
            "unix:///s?protocol=3&x=1&db=1",
            "unix:///s?protocol=3&***&db=1",
        ),
        ("unix:///s?pass=p#w", "unix:///s?pass=***"),
        ("unix://u:pw@localhost/s", "unix://u:***@localhost/s"),
        ("unix://:p/w@localhost/s", "unix://***@localhost/s"),
        ("unix://:@#w@localhost/s", "unix://***"),
        ("unix://u:p@localhost#w@x", "unix://***"),
        (
            "unix://:p@localhost/p@localhost/s",
            "unix://***@localhost/s",
        ),
        ("unix:///s#w@x?db=1", "unix:///s#***"),
        ("unix:///s?db=1#w", "unix:///s?db=***"),
        ("u:pw@h:1", "***@h:1"),
        ("http://u:pw@h:1", "http://***@h:1"),
        ("VALKEY://u:pw@h:1", "VALKEY://u:***@h:1"),
        ("redis:/:pw@h:1", "***@h:1"),
        ("u:pw@h://x", "***@h://x"),
        ("%zz+%4", "%zz+%4"),
    ] {
        assert_eq!(redact(given), shown, "{given:?}");
    }
    assert_eq!(form_decode("p%61ss+w%2"), "pass w%2");
}

#[test]
fn passwords_never_shown() {
    let addr = "redis://user:s3cret@h:1/0".into_redis_addr().unwrap();
    assert_eq!(addr.to_string(), "redis://user:***@h:1/0");
    assert!(!format!("{addr:?}").contains("s3cret"));
    let err = "redis2://u:s3cret@h".into_redis_addr().unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[cfg(any(feature = "cluster", feature = "sentinel"))]
#[test]
fn address_lists_keep_their_order_and_sets_do_not() {
    let given = ["redis://:s3cret@h:2/", "h:1", "redis://h:1/"];
    let (addrs, shown) = addr_list(given).unwrap();
    assert_eq!(addrs.len(), 3);
    assert_eq!(shown, "redis://:***@h:2/,redis://h:1/,redis://h:1/");
    let set = addr_set(given).unwrap();
    let urls: Vec<&str> = set.iter().map(RedisAddr::url).collect();
    assert_eq!(urls, ["redis://:s3cret@h:2/", "redis://h:1/"]);
    assert!(addr_list(["h:1", "nohost"]).is_err());
}
