//! Channel messages and names.

use super::*;

#[derive(Debug, Deserialize, PartialEq)]
struct Typed {
    id: u64,
    tags: Vec<String>,
    extra: Option<Value>,
}

/// A list element written by another program: decoding it gives the value
/// serde_json gives, or a decode error holding exactly its bytes.
pub fn channel_decode(data: &[u8]) {
    let store = MemoryStore::new();
    let server = RedisChannel::new(store.clone(), "/fuzz", Peer::Server).unwrap();
    let client = RedisChannel::new(store.clone(), "/fuzz", Peer::Client).unwrap();
    store
        .push(client.send_key(), &[data, data, data], None)
        .unwrap();

    let expected = serde_json::from_slice::<Value>(data).ok();
    let peeked = server.peek_msg::<Value>();
    match server.recv_msg::<Value>() {
        Ok(Some(value)) => {
            assert_eq!(Some(&value), expected.as_ref());
            assert_eq!(peeked.unwrap().as_ref(), Some(&value));
            // What we send back is what serde_json writes, and decodes to
            // the same value.
            server.send_msg(&value).unwrap();
            assert_eq!(
                store.index(server.send_key(), 0).unwrap().unwrap(),
                serde_json::to_vec(&value).unwrap()
            );
            assert_eq!(client.recv_msg::<Value>().unwrap(), Some(value));
        }
        Ok(None) => panic!("a message was there"),
        Err(ChannelError::Decode(err)) => {
            // Refused: not JSON, or an integer literal beyond 64 bits (at
            // least 19 digits), which would have changed as a float.
            assert!(
                expected.is_none() || has_digit_run(data, 19),
                "serde_json decodes it exactly, the channel did not"
            );
            assert_eq!(err.raw(), data);
            let _ = err.to_string();
        }
        Err(other) => panic!("unexpected error {other}"),
    }
    match server.recv_msg::<Typed>() {
        Ok(Some(typed)) => assert_eq!(serde_json::from_slice::<Typed>(data).ok(), Some(typed)),
        Ok(None) => panic!("a message was there"),
        Err(ChannelError::Decode(err)) => assert_eq!(err.into_raw(), data),
        Err(other) => panic!("unexpected error {other}"),
    }
    match server.recv_last_msg::<String>() {
        Ok(Some(text)) => assert_eq!(serde_json::from_slice::<String>(data).ok(), Some(text)),
        Ok(None) => panic!("a message was there"),
        Err(ChannelError::Decode(err)) => assert_eq!(err.raw(), data),
        Err(other) => panic!("unexpected error {other}"),
    }
    assert_eq!(server.recv_msg::<Value>().unwrap(), None);
}

fn name_is_valid(name: &str) -> bool {
    name.starts_with('/') && name != "/" && !name.ends_with('/') && !name.contains("//")
}

fn prefix_is_valid(prefix: &str) -> bool {
    prefix.starts_with('/') && prefix.ends_with('/') && (prefix == "/" || !prefix.contains("//"))
}

/// Channel names, list prefixes, and Redis keys back to channel names: the
/// rules hold exactly, and listing finds a channel iff it is under the prefix.
pub fn channel_names(data: &[u8]) {
    let (name, prefix) = split(data);
    let name = String::from_utf8_lossy(name);
    let prefix = String::from_utf8_lossy(prefix);

    let parsed = ChannelName::new(&name);
    assert_eq!(parsed.is_ok(), name_is_valid(&name), "{name:?}");
    if let Ok(parsed) = &parsed {
        assert_eq!(parsed.as_str(), name);
        let segments: Vec<&str> = name[1..].split('/').collect();
        let rebuilt = ChannelName::from_segments(&segments).expect("the segments of a valid name");
        assert_eq!(&rebuilt, parsed);
        for peer in [Peer::Client, Peer::Server] {
            let key = parsed.list_key(peer);
            assert_eq!(ChannelName::from_list_key(&key).as_ref(), Some(parsed));
        }
    }
    // Any key maps back to at most one channel, whose list it is.
    if let Some(channel) = ChannelName::from_list_key(&name) {
        assert!(name_is_valid(channel.as_str()));
        assert!(
            name == channel.list_key(Peer::Client) || name == channel.list_key(Peer::Server),
            "{name:?} -> {channel:?}"
        );
    }

    let store = MemoryStore::new();
    let decoy = "/zz-decoy/x";
    RedisChannel::new(&store, decoy, Peer::Client)
        .unwrap()
        .send_msg(&0)
        .unwrap();
    if let Ok(parsed) = &parsed {
        RedisChannel::new(&store, parsed, Peer::Server)
            .unwrap()
            .send_msg(&1)
            .unwrap();
    }
    match list_channels(&store, &prefix) {
        Ok(listed) => {
            assert!(prefix_is_valid(&prefix), "{prefix:?} was accepted");
            if let Ok(parsed) = &parsed {
                let expected = parsed.as_str().starts_with(&*prefix);
                assert_eq!(
                    listed.iter().any(|c| c == parsed.as_str()),
                    expected,
                    "{name:?} under {prefix:?}"
                );
            }
            assert_eq!(
                listed.iter().any(|c| c == decoy),
                decoy.starts_with(&*prefix)
            );
            assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        }
        Err(ChannelError::InvalidPrefix { .. }) => assert!(!prefix_is_valid(&prefix), "{prefix:?}"),
        Err(other) => panic!("unexpected error {other}"),
    }
}
