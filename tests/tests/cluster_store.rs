//! The Redis secret store (`KEYGATE_SECRET_STORE=redis`) against a real `redis-server`:
//! what one node writes another reads; Redis holds only sealed bytes (no value, name or
//! passphrase); a wrong passphrase is refused; writers on two nodes at once lose
//! nothing; Redis down is a one-line error that names no password.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use keygate_gateway::store::{
    self, Backend, Choice, KdfParams, RedisStore, SecretStore, StoreConfig, StoreError,
};
use keygate_proto::{SecretName, SecretValue};
use keygate_tests::redis::RedisServer;
use secrecy::SecretString;

const PASS: &str = "correct horse battery staple";

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn node(redis: &RedisServer, passphrase: &str) -> Result<RedisStore, StoreError> {
    RedisStore::open(
        &redis.url(),
        Some(&SecretString::from(passphrase.to_owned())),
        KdfParams::INSECURE_FOR_TESTS,
    )
}

#[test]
fn what_one_node_writes_another_reads_and_redis_sees_only_sealed_bytes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, PASS).unwrap();
    let b = node(&redis, PASS).unwrap();
    assert_eq!(a.backend(), Backend::Redis);
    let meta = a
        .set(
            &name("github/token"),
            &SecretValue::new("ghp_s3cr3t_value".to_owned()),
        )
        .unwrap();
    assert_eq!(meta.backend, Backend::Redis);
    let got = b.get(&name("github/token")).unwrap().unwrap();
    assert_eq!(got.expose(), "ghp_s3cr3t_value");
    assert_eq!(b.list().unwrap().len(), 1);

    // Redis holds one sealed blob: not the value, not the name, not the passphrase.
    let keys = redis.command(&["KEYS", "*"]).unwrap();
    assert!(keys.contains("{keygate}:secrets"), "{keys:?}");
    assert!(!keys.contains("github"), "{keys:?}");
    let raw = redis.command(&["GET", "{keygate}:secrets"]).unwrap();
    for plain in ["ghp_s3cr3t_value", "github/token", PASS] {
        assert!(!raw.contains(plain), "Redis holds {plain:?} in the clear");
    }

    assert!(b.remove(&name("github/token")).unwrap());
    assert_eq!(a.get(&name("github/token")).unwrap(), None);
}

#[test]
fn a_wrong_passphrase_is_refused_and_changes_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, PASS).unwrap();
    a.set(
        &name("db/password"),
        &SecretValue::new("hunter2".to_owned()),
    )
    .unwrap();
    let before = redis.command(&["GET", "{keygate}:secrets"]).unwrap();
    let err = node(&redis, "not the passphrase").unwrap_err();
    assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{err}");
    assert!(err.to_string().contains("{keygate}:secrets"), "{err}");
    assert_eq!(
        redis.command(&["GET", "{keygate}:secrets"]).unwrap(),
        before
    );
}

#[test]
fn writers_on_two_nodes_at_once_lose_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let stores = [
        Arc::new(node(&redis, PASS).unwrap()),
        Arc::new(node(&redis, PASS).unwrap()),
    ];
    let writers: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let s = Arc::clone(s);
            std::thread::spawn(move || {
                for i in 0..10 {
                    s.set(
                        &name(&format!("n{n}/s{i}")),
                        &SecretValue::new(format!("v{n}{i}")),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for s in &stores {
        assert_eq!(s.list().unwrap().len(), 20);
    }
    assert_eq!(
        stores[0].get(&name("n1/s9")).unwrap().unwrap().expose(),
        "v19"
    );
}

#[test]
fn redis_down_is_a_one_line_error_naming_no_password() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = format!("redis://:pa55word@127.0.0.1:{}/0", redis.port());
    redis.stop();
    let err = RedisStore::open(
        &url,
        Some(&SecretString::from(PASS.to_owned())),
        KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Cluster(_)), "{text}");
    assert!(!text.contains("pa55word"), "{text}");
    assert!(!text.contains('\n'), "{text}");

    // Without a Redis to keep it in, the Redis store is refused with what to set.
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.choice = Choice::Forced(Backend::Redis);
    let err = store::open(&config).unwrap_err().to_string();
    assert!(err.contains("KEYGATE_CLUSTER_REDIS_URL"), "{err}");
    assert_eq!("redis".parse::<Backend>().unwrap(), Backend::Redis);
}

#[test]
fn two_daemons_on_one_redis_store_share_secrets_and_fail_closed_without_it() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let env = [
        ("KEYGATE_SECRET_STORE", "redis"),
        ("KEYGATE_CLUSTER_REDIS_URL", url.as_str()),
        ("KEYGATE_STORE_PASSPHRASE", PASS),
    ];
    let a = keygate_tests::Daemon::start_with(keygate_tests::POLICY, &env);
    let b = keygate_tests::Daemon::start_with(keygate_tests::POLICY, &env);
    let set = a
        .keygate(&["secrets", "set", "public/readme"])
        .stdin("first value")
        .run();
    assert_eq!(set.code, 0, "{}", set.stderr);

    // An agent of the other daemon reads what the first one stored (a rule allows it).
    let token = b.agent("ci-reader");
    let got = b.keygate_as(&token, &["get", "public/readme"]).run();
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(got.stdout.trim_end(), "first value");

    // A change on one is read on the other at once: nothing stale is kept.
    let set = a
        .keygate(&["secrets", "set", "public/readme"])
        .stdin("second value")
        .run();
    assert_eq!(set.code, 0, "{}", set.stderr);
    let got = b.keygate_as(&token, &["get", "public/readme"]).run();
    assert_eq!(got.stdout.trim_end(), "second value", "{}", got.stderr);

    // Redis gone: nothing is released, in one line that says why.
    redis.stop();
    let refused = b.keygate_as(&token, &["get", "public/readme"]).run();
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    let line = refused.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.to_lowercase().contains("redis"), "{line}");
    eprintln!("refused: {line}");
    assert!(!b.log().contains("second value"), "a value in the log");
}
