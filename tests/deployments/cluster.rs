//! What only a Redis Cluster shows: keys spread over masters, scans that
//! must visit every master, and slots that move while the store is in use.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use redisutil::{ListStore, Peer, RedisChannel, get_cluster_client, list_channels};
use support::{RedisCluster, unique};

#[test]
fn scan_finds_keys_on_every_master() {
    let cluster = RedisCluster::shared();
    let store = cluster.store();
    let base = unique("/spread");
    let keys: Vec<String> = (0..30).map(|i| format!("{base}/k{i}")).collect();
    for key in &keys {
        store.push(key, &[b"v"], None).unwrap();
    }
    let owners: BTreeSet<u16> = keys.iter().map(|key| cluster.master_of(key)).collect();
    assert_eq!(owners.len(), 3, "30 keys land on all 3 masters");
    let mut found = store.scan(&format!("{base}/*")).unwrap();
    found.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(found, expected);
}

#[test]
fn a_channels_lists_may_live_on_different_masters() {
    let cluster = RedisCluster::shared();
    let store = cluster.store();
    let root = unique("/apart");
    let name = (0..)
        .map(|i| format!("{root}/c{i}"))
        .find(|name| {
            cluster.master_of(&format!("{name}/client"))
                != cluster.master_of(&format!("{name}/server"))
        })
        .expect("some channel's two lists hash to different masters");
    let client = RedisChannel::new(store.clone(), name.as_str(), Peer::Client).unwrap();
    let server = RedisChannel::new(store.clone(), name.as_str(), Peer::Server).unwrap();
    client.send_msgs(0..3).unwrap();
    server.send_msg("back").unwrap();
    assert_eq!(
        list_channels(&store, &format!("{root}/")).unwrap(),
        [name.as_str()]
    );
    for i in 0..3 {
        assert_eq!(server.recv_msg::<i32>().unwrap(), Some(i));
    }
    assert_eq!(
        client.recv_msg::<String>().unwrap().as_deref(),
        Some("back")
    );
}

#[test]
fn get_cluster_client_is_one_working_store_per_seed_set() {
    let cluster = RedisCluster::shared();
    let mut seeds = cluster.seeds();
    let store = get_cluster_client(&seeds).unwrap();
    seeds.reverse();
    let again = get_cluster_client(&seeds).unwrap();
    assert!(store.ptr_eq(&again));
    let key = unique("/registry");
    again.push(&key, &[b"x"], None).unwrap();
    assert_eq!(store.pop(&key).unwrap().as_deref(), Some(&b"x"[..]));
    store.ping().unwrap();
}

/// Moves the slot of `{slot-tag}` from its master to another one, the way
/// `redis-cli --cluster reshard` does, checking the store at each step:
/// during the migration new keys are sent to the target (`ASK`), after it
/// every key is (`MOVED`, a leased batch's transaction too), and the store
/// follows both on its own.
#[test]
fn redirections_during_and_after_a_slot_migration_are_followed() {
    let cluster = RedisCluster::start(3, 0, Duration::from_secs(5));
    let store = cluster.store();
    let old = "/mig/{slot-tag}/old";
    let during = "/mig/{slot-tag}/during";
    let during_ttl = "/mig/{slot-tag}/during-ttl";
    store.push(old, &[b"1", b"2", b"3"], None).unwrap();
    // A consumer on a store of its own, which learns the slot's master now.
    let server = RedisChannel::new(cluster.store(), "/lm/{slot-tag}", Peer::Server).unwrap();
    assert_eq!(server.lease_stats().unwrap().depth, 0);

    let source = cluster.master_of(old);
    let target = *cluster
        .masters()
        .iter()
        .find(|&&port| port != source)
        .expect("another master");
    let (source_id, target_id) = (cluster.node_id(source), cluster.node_id(target));
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(old)
        .query(&mut cluster.raw(source))
        .unwrap();
    let setslot = |port: u16, state: &str, id: &str| {
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(id)
            .exec(&mut cluster.raw(port))
            .unwrap();
    };

    // Migrating: existing keys stay on the source, new ones go to the target.
    setslot(target, "IMPORTING", &source_id);
    setslot(source, "MIGRATING", &target_id);
    assert_eq!(store.pop(old).unwrap().as_deref(), Some(&b"1"[..]));
    store.push(during, &[b"a"], None).unwrap();
    store
        .push(during_ttl, &[b"b", b"c"], Some(Duration::from_secs(60)))
        .unwrap();
    let on_target = |key: &str| -> u64 {
        let mut connection = cluster.raw(target);
        redis::cmd("ASKING").exec(&mut connection).unwrap();
        redis::cmd("LLEN").arg(key).query(&mut connection).unwrap()
    };
    assert_eq!(on_target(during), 1, "ASK sent the new key to the target");
    assert_eq!(
        on_target(during_ttl),
        2,
        "ASK sent the script to the target"
    );
    // A lease names keys the target does not hold yet (its pending set,
    // the call's own keys): during the migration Redis answers TRYAGAIN,
    // which the store tries again, then reports; nothing is taken.
    let client = RedisChannel::new(store.clone(), "/lm/{slot-tag}", Peer::Client).unwrap();
    client.send_msgs([1u32, 2, 3]).unwrap();
    let err = server
        .lease_msgs::<u32>(3, Duration::from_secs(60))
        .unwrap_err();
    assert!(err.to_string().contains("TRYAGAIN"), "{err}");
    assert_eq!(on_target(server.recv_key()), 3, "nothing taken");

    // Migrated: the old key moves too, and the slot belongs to the target.
    redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(target)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(old)
        .exec(&mut cluster.raw(source))
        .unwrap();
    for port in cluster.masters() {
        setslot(port, "NODE", &target_id);
    }
    assert_eq!(cluster.master_of(old), target);

    // The store's pooled connection still has the old slot map: MOVED.
    assert_eq!(store.index(old, -1).unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(store.pop(old).unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(
        store.take_last(during_ttl).unwrap().as_deref(),
        Some(&b"c"[..])
    );
    assert_eq!(store.pop(during).unwrap().as_deref(), Some(&b"a"[..]));
    // A leased batch is a transaction (MULTI, the lease script, LRANGE,
    // EXEC): refused while queued with MOVED (the consumer's store still
    // has the old map), it goes whole to the new master.
    let batch: Vec<_> = server
        .lease_msgs::<u32>(3, Duration::from_secs(60))
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let got: Vec<u32> = batch.iter().map(|delivery| *delivery.msg()).collect();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(server.ack_all(&batch).unwrap(), 3);
    let mut listed = store.scan("/mig/*").unwrap();
    listed.sort();
    assert_eq!(listed, [old]);
}

/// A password given in the options reaches every node; without it the
/// nodes refuse with NOAUTH, and the password shows nowhere.
#[test]
fn a_password_in_the_options_reaches_every_node() {
    let cluster = RedisCluster::start(3, 0, Duration::from_secs(5));
    for port in cluster.masters() {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("cluster-pass-5")
            .exec(&mut cluster.raw(port))
            .unwrap();
    }
    let options = redisutil::RedisClusterStoreOptions {
        auth: Some(redisutil::RedisAuth::password("cluster-pass-5")),
        ..redisutil::RedisClusterStoreOptions::default()
    };
    let store = redisutil::RedisClusterStore::open_with(cluster.seeds(), options).unwrap();
    for key in ["{a}/x", "{b}/y", "{c}/z"] {
        store.push(key, &[b"1"], None).unwrap();
        assert_eq!(store.pop(key).unwrap(), Some(b"1".to_vec()));
    }
    let without = redisutil::RedisClusterStore::open(cluster.seeds()).unwrap();
    let err = without.push("{a}/x", &[b"1"], None).unwrap_err();
    assert!(
        err.to_string().contains("NOAUTH") || err.to_string().contains("Authentication"),
        "{err}"
    );
    assert!(!format!("{store:?} {err}").contains("cluster-pass-5"));
}
