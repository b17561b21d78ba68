//! Tokens and who they belong to: the operator's made once and kept, agents' kept only
//! as hashes, a removed agent's token dead at once, a name added again another agent.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;

use super::*;

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn operator(&self) -> PathBuf {
        self.dir.path().join("keys/operator.token")
    }
    fn agents(&self) -> PathBuf {
        self.dir.path().join("keys/agents.json")
    }
    fn load(&self) -> Result<Identities, IdentityError> {
        Identities::load(&self.operator(), &self.agents())
    }
}

fn name(s: &str) -> AgentName {
    AgentName::new(s).unwrap()
}

fn agent_of(ids: &Identities, token: &str) -> Agent {
    match ids.authenticate(token) {
        Some(Caller::Agent(a)) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_operator_token_is_made_once_private_and_kept() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let token = std::fs::read_to_string(d.operator()).unwrap();
    assert!(token.starts_with("kgo_") && token.ends_with('\n'));
    let mode = std::fs::metadata(d.operator())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(ids.authenticate(token.trim()), Some(Caller::Operator));
    assert_eq!(ids.authenticate(&format!("{}x", token.trim())), None);
    assert_eq!(ids.authenticate(""), None);
    drop(ids);
    let again = d.load().unwrap();
    assert_eq!(std::fs::read_to_string(d.operator()).unwrap(), token);
    assert_eq!(again.authenticate(token.trim()), Some(Caller::Operator));
}

#[test]
fn an_agent_token_is_shown_once_and_kept_only_as_a_hash() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let token = ids.add(&name("ci-one")).unwrap();
    let token = token.expose_secret();
    assert!(token.starts_with("kga_") && token.len() > 40);
    let a = agent_of(&ids, token);
    assert_eq!(a.name, name("ci-one"));
    assert!(ids.is_current(&a));
    let file = std::fs::read_to_string(d.agents()).unwrap();
    assert!(!file.contains(token), "never the token itself");
    assert!(file.contains(&hex::encode(hash(token))));
    let mode = std::fs::metadata(d.agents()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Kept across restarts, same registration.
    let again = d.load().unwrap();
    assert_eq!(agent_of(&again, token), a);
    let listed = again.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, name("ci-one"));
    assert!(!listed[0].1.to_string().is_empty());
    assert!(matches!(
        ids.add(&name("ci-one")),
        Err(IdentityError::Exists(n)) if n == name("ci-one")
    ));
}

#[test]
fn a_removed_agent_is_gone_at_once_and_its_name_added_again_is_another_agent() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let first = ids.add(&name("ci-one")).unwrap();
    let other = ids.add(&name("ci-two")).unwrap();
    let old = agent_of(&ids, first.expose_secret());
    assert_eq!(ids.remove(&name("ci-one")).unwrap(), old);
    assert_eq!(ids.authenticate(first.expose_secret()), None);
    assert!(!ids.is_current(&old));
    assert!(matches!(
        ids.remove(&name("ci-one")),
        Err(IdentityError::Unknown(_))
    ));
    let second = ids.add(&name("ci-one")).unwrap();
    let new = agent_of(&ids, second.expose_secret());
    assert_ne!(new, old, "another registration");
    assert!(ids.is_current(&new) && !ids.is_current(&old));
    assert_eq!(agent_of(&ids, other.expose_secret()).name, name("ci-two"));
    let again = d.load().unwrap();
    assert_eq!(again.authenticate(first.expose_secret()), None);
    assert_eq!(agent_of(&again, second.expose_secret()), new);
}

#[test]
fn an_agents_file_from_before_serials_takes_them_from_the_hash() {
    let d = Dir::new();
    drop(d.load().unwrap());
    let token = "kga_legacy";
    let h = hash(token);
    let file = format!(
        r#"{{"agents":[{{"name":"old-ci","token_sha256":"{}","created_at":"2025-01-01T00:00:00Z"}}]}}"#,
        hex::encode(h)
    );
    std::fs::write(d.agents(), file).unwrap();
    let ids = d.load().unwrap();
    let a = agent_of(&ids, token);
    assert_eq!(a.serial, u64::from_le_bytes(h[..8].try_into().unwrap()));
    assert_eq!(ids.list()[0].1.to_string(), "2025-01-01T00:00:00Z");
}

#[test]
fn a_broken_agents_file_is_refused_with_its_path() {
    let d = Dir::new();
    drop(d.load().unwrap());
    std::fs::write(d.agents(), "not json").unwrap();
    let e = d.load().unwrap_err();
    assert!(matches!(e, IdentityError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("agents.json"), "{e}");
    std::fs::write(
        d.agents(),
        r#"{"agents":[{"name":"x","token_sha256":"zz","created_at":"2026-01-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    let e = d.load().unwrap_err();
    assert!(e.to_string().contains("agent `x`"), "{e}");
}

#[test]
fn who_sees_what() {
    let a = Agent {
        name: name("ci-one"),
        serial: 1,
    };
    let b = Agent {
        name: name("ci-one"),
        serial: 2,
    };
    assert!(Caller::Operator.sees(&a));
    assert!(Caller::Operator.agent().is_none());
    let caller = Caller::Agent(a.clone());
    assert_eq!(caller.agent(), Some(&a));
    assert!(caller.sees(&a));
    assert!(!caller.sees(&b), "the same name, another registration");
    assert_eq!(a.to_string(), "ci-one");
}

#[test]
fn hashes_differing_in_any_byte_are_not_the_same() {
    let a = hash("kga_one");
    assert!(same(&a, &hash("kga_one")));
    for i in 0..a.len() {
        let mut b = a;
        b[i] ^= 1;
        assert!(!same(&a, &b), "byte {i}");
    }
}

#[test]
fn a_remembered_token_answers_as_a_looked_up_one_until_the_agents_change() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let a = ids.add(&name("a")).unwrap();
    let b = ids.add(&name("b")).unwrap();
    let (a, b) = (a.expose_secret(), b.expose_secret());
    let mut memo = None;
    let first = ids.authenticate_remembered(a, &mut memo).unwrap();
    assert_eq!(first, Caller::Agent(agent_of(&ids, a)));
    assert_eq!(
        ids.authenticate_remembered(a, &mut memo),
        Some(first.clone())
    );
    // Another token on the same connection is looked up, not taken for the first.
    assert_eq!(
        ids.authenticate_remembered(b, &mut memo),
        Some(Caller::Agent(agent_of(&ids, b)))
    );
    assert_eq!(ids.authenticate_remembered("kga_nope", &mut memo), None);
    // A token one byte off the remembered one is unknown.
    ids.authenticate_remembered(a, &mut memo).unwrap();
    let mut off = a.to_owned();
    off.pop();
    off.push('!');
    assert_eq!(ids.authenticate_remembered(&off, &mut memo), None);
    // Removed: the remembered answer goes with it.
    ids.authenticate_remembered(a, &mut memo).unwrap();
    ids.remove(&name("a")).unwrap();
    assert_eq!(ids.authenticate_remembered(a, &mut memo), None);
}

#[test]
fn a_remembered_token_never_shows_in_debug() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let token = ids.add(&name("a")).unwrap();
    let mut memo = None;
    ids.authenticate_remembered(token.expose_secret(), &mut memo)
        .unwrap();
    let shown = format!("{memo:?}");
    assert!(!shown.contains(token.expose_secret()), "{shown}");
    let bytes = format!("{:?}", token.expose_secret().as_bytes());
    assert!(!shown.contains(&bytes[1..bytes.len() - 1]), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn a_session_token_works_in_this_process_only_and_only_for_a_registered_agent() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let ci = name("ci-one");
    assert!(matches!(
        ids.session(Some(&ci)),
        Err(IdentityError::Unknown(n)) if n == ci
    ));
    ids.add(&ci).unwrap();
    let agent = ids.session(Some(&ci)).unwrap();
    let operator = ids.session(None).unwrap();
    assert!(agent.expose_secret().starts_with("kgs_"));
    match ids.authenticate(agent.expose_secret()) {
        Some(Caller::Agent(a)) => assert_eq!(a.name, ci),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ids.authenticate(operator.expose_secret()),
        Some(Caller::Operator)
    );
    // Never written: another process (a fresh load) knows neither.
    let again = d.load().unwrap();
    assert!(again.authenticate(agent.expose_secret()).is_none());
    assert!(again.authenticate(operator.expose_secret()).is_none());
    // The agent removed (or added again: another registration): its session is dead.
    ids.remove(&ci).unwrap();
    assert!(ids.authenticate(agent.expose_secret()).is_none());
    ids.add(&ci).unwrap();
    assert!(ids.authenticate(agent.expose_secret()).is_none());
}

#[test]
fn a_cluster_copy_judges_agents_only_while_its_lease_holds() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let a = ids.add(&name("a")).unwrap();
    let a = a.expose_secret();
    let operator = std::fs::read_to_string(d.operator()).unwrap();
    let mut memo = None;
    ids.authenticate_remembered(a, &mut memo).unwrap();

    ids.follow_cluster();
    // Not confirmed yet: an agent's token (known, remembered or unknown) cannot be
    // judged, and the plain answer fails closed; the operator is known regardless.
    assert_eq!(ids.check(a), Err(Unconfirmed));
    assert_eq!(ids.check("kga_nope"), Err(Unconfirmed));
    assert_eq!(ids.check_remembered(a, &mut memo), Err(Unconfirmed));
    assert_eq!(ids.authenticate(a), None);
    assert_eq!(ids.check(operator.trim()), Ok(Some(Caller::Operator)));

    ids.lease().unwrap().confirm(std::time::Instant::now());
    assert_eq!(ids.check(a), Ok(Some(Caller::Agent(agent_of(&ids, a)))));
    assert_eq!(ids.check("kga_nope"), Ok(None));
    assert!(ids.check_remembered(a, &mut memo).unwrap().is_some());

    ids.lease().unwrap().expire();
    assert_eq!(ids.check_remembered(a, &mut memo), Err(Unconfirmed));
    let mut op_memo = None;
    ids.check_remembered(operator.trim(), &mut op_memo).unwrap();
    assert_eq!(
        ids.check_remembered(operator.trim(), &mut op_memo),
        Ok(Some(Caller::Operator))
    );
}

#[test]
fn installing_the_cluster_s_agents_replaces_the_copy_and_names_who_is_gone() {
    let d = Dir::new();
    let ids = d.load().unwrap();
    let a = ids.add(&name("a")).unwrap();
    let b = ids.add(&name("b")).unwrap();
    let (a, b) = (a.expose_secret(), b.expose_secret());
    let (old_a, old_b) = (agent_of(&ids, a), agent_of(&ids, b));
    let mut memo = None;
    ids.authenticate_remembered(a, &mut memo).unwrap();

    // Another node removed `a`, removed and added `b` again, and added `c`.
    let mut next = Table::parse(&ids.table().to_json(), "test").unwrap();
    assert_eq!(next, ids.table());
    next.remove(&name("a")).unwrap();
    next.remove(&name("b")).unwrap();
    let b2 = next.add(&name("b")).unwrap();
    let c = next.add(&name("c")).unwrap();
    assert!(matches!(
        next.add(&name("c")),
        Err(IdentityError::Exists(_))
    ));
    assert!(matches!(
        next.remove(&name("a")),
        Err(IdentityError::Unknown(_))
    ));
    let gone = ids.install(next.clone());
    assert_eq!(gone, vec![old_a, old_b]);
    assert_eq!(ids.authenticate_remembered(a, &mut memo), None);
    assert_eq!(ids.authenticate(b), None);
    assert!(ids.authenticate(b2.expose_secret()).is_some());
    assert!(ids.authenticate(c.expose_secret()).is_some());
    // The same set again changes nothing; the file is the node's copy of it.
    assert!(ids.install(next.clone()).is_empty());
    assert_eq!(d.load().unwrap().table(), next);
    let file = std::fs::read_to_string(d.agents()).unwrap();
    assert!(!file.contains(c.expose_secret()), "a token in the file");
}
