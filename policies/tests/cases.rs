//! Table-driven tests of the whole crate through its public API: every error with its
//! place and key, every decision, TTL and timeout rule, multi-secret strictness, warnings.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use keygate_policies::{Action, Decision, Policy, PolicyError, WarningKind};
use keygate_proto::{AgentName, RoleId, SecretName, UserId};

const MIN: u64 = 60;

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * MIN)
}

fn agent(s: &str) -> AgentName {
    AgentName::new(s).unwrap()
}

fn secret(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A rule that is valid on its own, for error cases to break one thing at a time.
const OPS: &str = "[approvers.ops]\nusers = [\"111111111111111111\"]\n";

struct ErrorCase {
    what: &'static str,
    source: String,
    line: usize,
    column: usize,
    context: &'static str,
    key: &'static str,
    message: &'static str,
}

fn case(
    what: &'static str,
    source: impl Into<String>,
    (line, column): (usize, usize),
    context: &'static str,
    key: &'static str,
    message: &'static str,
) -> ErrorCase {
    ErrorCase {
        what,
        source: source.into(),
        line,
        column,
        context,
        key,
        message,
    }
}

/// `[[rule]]` named "r" with the given body lines after name/agents/secrets; starts at
/// line `OPS`+1 = 3.
fn rule(body: &str) -> String {
    format!("{OPS}[[rule]]\nname = \"r\"\nagents = [\"ci-*\"]\nsecrets = [\"github/*\"]\n{body}")
}

#[rustfmt::skip]
fn error_cases() -> Vec<ErrorCase> {
    vec![
        // TOML itself.
        case("syntax", "[defaults]\nttl = 5m\n", (2, 7), "[defaults]", "ttl", "must be quoted"),
        case("duplicate key", "[defaults]\nttl = \"1m\"\nttl = \"2m\"\n", (3, 1), "[defaults]", "ttl", "duplicate key"),
        // Unknown keys, everywhere.
        case("unknown top-level table", "[[rules]]\nname = \"x\"\n", (1, 3), "", "rules", "unknown key (refused, not ignored); expected one of `defaults`, `approvers`, `rule`"),
        case("unknown key in defaults", "[defaults]\nmax_tll = \"1h\"\n", (2, 1), "[defaults]", "max_tll", "unknown key"),
        case("unknown key in group", "[approvers.ops]\nuser = [\"1\"]\n", (2, 1), "approver group \"ops\"", "user", "unknown key"),
        case("unknown key in rule", rule("action = \"ask\"\napprovers = [\"ops\"]\napprover = [\"ops\"]\n"), (9, 1), "rule \"r\"", "approver", "unknown key"),
        // Shape and type.
        case("missing action", rule(""), (3, 1), "rule \"r\"", "action", "required key is missing"),
        case("missing name", format!("{OPS}[[rule]]\nagents = [\"*\"]\nsecrets = [\"*\"]\naction = \"deny\"\n"), (3, 1), "rule #1", "name", "required key is missing"),
        case("bad action", rule("action = \"maybe\"\n"), (7, 10), "rule \"r\"", "action", "unknown variant `maybe`, expected one of `ask`, `allow`, `deny`"),
        case("quorum not a number", rule("action = \"ask\"\napprovers = [\"ops\"]\nquorum = \"2\"\n"), (9, 10), "rule \"r\"", "quorum", "expected a whole number"),
        case("agents not a list", format!("{OPS}[[rule]]\nname = \"r\"\nagents = \"ci\"\n"), (5, 10), "rule \"r\"", "agents", "expected a list"),
        case("group not a table", "[approvers]\nops = 5\n", (2, 7), "[approvers]", "ops", "expected a table of `users` and `roles`"),
        case("numeric id", "[approvers.ops]\nusers = [1]\n", (2, 10), "approver group \"ops\"", "users", "expected a string"),
        // Durations.
        case("bad duration in defaults", "[defaults]\nrequest_timeout = \"soon\"\n", (2, 19), "[defaults]", "request_timeout", "bad duration"),
        case("zero duration", "[defaults]\nmax_ttl = \"0s\"\n", (2, 11), "[defaults]", "max_ttl", "longer than zero"),
        case("bad duration in rule", rule("action = \"allow\"\nttl = \"10 parsecs\"\n"), (8, 7), "rule \"r\"", "ttl", "bad duration"),
        case("ttl over max in defaults", "[defaults]\nttl = \"2h\"\nmax_ttl = \"1h\"\n", (2, 7), "[defaults]", "ttl", "ttl 2h is longer than max_ttl 1h"),
        case("ttl over built-in max in defaults", "[defaults]\nttl = \"2h\"\n", (2, 7), "[defaults]", "ttl", "(the built-in default"),
        case("ttl over max in rule", rule("action = \"allow\"\nttl = \"40m\"\nmax_ttl = \"30m\"\n"), (8, 7), "rule \"r\"", "ttl", "ttl 40m is longer than max_ttl 30m"),
        case("ttl over default max in rule", rule("action = \"allow\"\nttl = \"2h\"\n"), (8, 7), "rule \"r\"", "ttl", "(from [defaults]"),
        // Approver groups and ids.
        case("non-numeric user id", "[approvers.ops]\nusers = [\"12x\"]\n", (2, 10), "approver group \"ops\"", "users", "user id \"12x\" is not a number"),
        case("non-numeric role id", "[approvers.ops]\nroles = [\"@admins\"]\n", (2, 10), "approver group \"ops\"", "roles", "role id \"@admins\" is not a number"),
        case("id too large", "[approvers.ops]\nusers = [\"99999999999999999999\"]\n", (2, 10), "approver group \"ops\"", "users", "too large"),
        case("id zero", "[approvers.ops]\nroles = [\"0\"]\n", (2, 10), "approver group \"ops\"", "roles", "role id 0 is not a Discord id"),
        case("empty group", "[approvers.ops]\n", (1, 1), "[approvers]", "ops", "neither `users` nor `roles`"),
        case("group of empty lists", "[approvers.ops]\nusers = []\nroles = []\n", (1, 1), "[approvers]", "ops", "neither `users` nor `roles`"),
        // Rules.
        case("unknown approver group", rule("action = \"ask\"\napprovers = [\"opz\"]\n"), (8, 14), "rule \"r\"", "approvers", "unknown approver group \"opz\" (defined: ops)"),
        case("ask without approvers", rule("action = \"ask\"\n"), (7, 10), "rule \"r\"", "approvers", "an `ask` rule needs `approvers`"),
        case("ask with empty approvers", rule("action = \"ask\"\napprovers = []\n"), (8, 13), "rule \"r\"", "approvers", "needs `approvers`"),
        case("quorum zero", rule("action = \"ask\"\napprovers = [\"ops\"]\nquorum = 0\n"), (9, 10), "rule \"r\"", "quorum", "at least 1"),
        case("quorum negative", rule("action = \"ask\"\napprovers = [\"ops\"]\nquorum = -3\n"), (9, 10), "rule \"r\"", "quorum", "at least 1"),
        case("quorum huge", rule("action = \"ask\"\napprovers = [\"ops\"]\nquorum = 9999999999\n"), (9, 10), "rule \"r\"", "quorum", "far too large"),
        case("quorum unreachable", rule("action = \"ask\"\napprovers = [\"ops\", \"ops\"]\nquorum = 2\n"), (9, 10), "rule \"r\"", "quorum", "quorum 2 can never be reached: groups ops name only 1 distinct user(s) and no roles"),
        case("allow with approvers", rule("action = \"allow\"\napprovers = [\"ops\"]\n"), (8, 13), "rule \"r\"", "approvers", "approvers mean nothing on an `allow` rule"),
        case("deny with quorum", rule("action = \"deny\"\nquorum = 1\n"), (8, 10), "rule \"r\"", "quorum", "a quorum means nothing on a"),
        case("empty agents", format!( "{OPS}[[rule]]\nname = \"r\"\nagents = []\nsecrets = [\"*\"]\naction = \"deny\"\n"),
            (5, 10),
            "rule \"r\"",
            "agents",
            "the list is empty",
        ),
        case("empty secrets", format!( "{OPS}[[rule]]\nname = \"r\"\nagents = [\"*\"]\nsecrets = []\naction = \"deny\"\n"),
            (6, 11),
            "rule \"r\"",
            "secrets",
            "the list is empty",
        ),
        case("empty glob", format!( "{OPS}[[rule]]\nname = \"r\"\nagents = [\"*\", \"\"]\nsecrets = [\"*\"]\naction = \"deny\"\n"),
            (5, 16),
            "rule \"r\"",
            "agents",
            "empty pattern",
        ),
        case("upper-case glob", format!( "{OPS}[[rule]]\nname = \"r\"\nagents = [\"*\"]\nsecrets = [\"GitHub/*\"]\naction = \"deny\"\n"),
            (6, 12),
            "rule \"r\"",
            "secrets",
            "holds `G`, which no secret name can contain",
        ),
        case("slash in agent glob", format!( "{OPS}[[rule]]\nname = \"r\"\nagents = [\"ci/*\"]\nsecrets = [\"*\"]\naction = \"deny\"\n"),
            (5, 11),
            "rule \"r\"",
            "agents",
            "holds `/`, which no agent name can contain",
        ),
        case("empty rule name", format!( "{OPS}[[rule]]\nname = \" \"\nagents = [\"*\"]\nsecrets = [\"*\"]\naction = \"deny\"\n"),
            (4, 8),
            "rule #1",
            "name",
            "must not be blank",
        ),
        case("multi-line rule name", format!( "{OPS}[[rule]]\nname = \"a\\nb\"\nagents = [\"*\"]\nsecrets = [\"*\"]\naction = \"deny\"\n"),
            (4, 8),
            "rule \"a\\nb\"",
            "name",
            "one line",
        ),
        case("duplicate rule name", format!( "{}\n[[rule]]\nname = \"r\"\nagents = [\"*\"]\nsecrets = [\"*\"]\naction = \"deny\"\n", rule("action = \"deny\"\n")),
            (10, 8),
            "rule \"r\"",
            "name",
            "duplicate rule name: the rule at line 3 has it already",
        ),
    ]
}

#[test]
fn every_error_names_its_place_and_key() {
    for c in error_cases() {
        let err: PolicyError = match Policy::parse(&c.source, "policies.toml") {
            Ok(_) => panic!("{}: accepted:\n{}", c.what, c.source),
            Err(e) => e,
        };
        let shown = err.to_string();
        assert_eq!(
            (err.line, err.column, err.context.as_str(), err.key.as_str()),
            (c.line, c.column, c.context, c.key),
            "{}: {shown}",
            c.what
        );
        assert!(err.message.contains(c.message), "{}: {shown}", c.what);
        assert_eq!(err.origin, "policies.toml");
        assert!(
            shown.starts_with(&format!("policies.toml:{}:{}: ", c.line, c.column)),
            "{shown}"
        );
        assert!(!shown.contains('\n'), "{}: not one line: {shown}", c.what);
        if !c.key.is_empty() {
            assert!(shown.contains(&format!("key `{}`: ", c.key)), "{shown}");
        }
    }
}

#[test]
fn display_matches_the_documented_shape() {
    let err = Policy::parse(
        &rule("action = \"ask\"\napprovers = [\"opz\"]\n"),
        "policies.toml",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "policies.toml:8:14: rule \"r\": key `approvers`: unknown approver group \"opz\" (defined: ops)"
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let source = "\
[defaults]
ttl = \"forever\"

[approvers.ops]
users = [\"x\"]

[[rule]]
name = \"a\"
agents = [\"\"]
secrets = [\"*\"]
action = \"ask\"
approvers = [\"nobody\"]
";
    let errors = Policy::parse_with_all_errors(source, "p.toml").unwrap_err();
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [(2, "ttl"), (5, "users"), (9, "agents"), (12, "approvers")]
    );
    // `parse` reports the first of them.
    assert_eq!(Policy::parse(source, "p.toml").unwrap_err(), errors[0]);
}

#[test]
fn empty_file_is_a_policy_that_denies_everything() {
    for source in ["", "\n# nothing here\n"] {
        let policy = Policy::parse(source, "p.toml").unwrap();
        assert!(policy.rules().is_empty());
        assert!(policy.warnings().is_empty());
        let e = policy.evaluate(&agent("ci"), &secret("a"), None);
        assert_eq!(e.decision, Decision::Deny);
        assert_eq!(e.rule, None);
        assert_eq!(e.reason, "no rule matched: denied");
    }
    let e = Policy::empty().evaluate(&agent("ci"), &secret("a"), None);
    assert!(e.is_denied());
    assert_eq!((e.ttl, e.request_timeout), (mins(15), mins(5)));
}

#[test]
fn roles_make_any_quorum_reachable() {
    let source = "\
[approvers.admins]
roles = [\"222222222222222222\"]

[[rule]]
name = \"big\"
agents = [\"*\"]
secrets = [\"*\"]
action = \"ask\"
approvers = [\"admins\"]
quorum = 5
";
    let policy = Policy::parse(source, "p.toml").unwrap();
    assert!(matches!(
        policy.rules()[0].decision(),
        Decision::Ask { quorum: 5, .. }
    ));
}

// ---------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------

const POLICY: &str = r#"
[defaults]
request_timeout = "4m"
ttl = "15m"
max_ttl = "1h"

[approvers.ops]
users = ["111111111111111111", "111111111111111112"]
roles = ["222222222222222222"]

[approvers.sec]
users = ["333333333333333333", "111111111111111111"]

[approvers.solo]
users = ["444444444444444444"]

[approvers.oncall]
users = ["111111111111111111"]
roles = ["222222222222222222", "555555555555555555"]

[[rule]]
name = "no prod for bots"
agents = ["bot-*"]
secrets = ["prod/*"]
action = "deny"

[[rule]]
name = "ci reads the github token"
agents = ["ci-*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]
ttl = "10m"
max_ttl = "30m"
request_timeout = "2m"
reuse = true

[[rule]]
name = "dev reads dev"
agents = ["dev-?"]
secrets = ["dev/*", "shared/readme"]
action = "allow"
max_ttl = "20m"

[[rule]]
name = "two from sec"
agents = ["*"]
secrets = ["db/*"]
action = "ask"
approvers = ["sec"]
quorum = 2
max_ttl = "2h"

[[rule]]
name = "solo"
agents = ["ci-*"]
secrets = ["solo/*"]
action = "ask"
approvers = ["solo"]

[[rule]]
name = "kv"
agents = ["ci-*"]
secrets = ["kv/*"]
action = "ask"
approvers = ["oncall", "sec"]
reuse = true
"#;

fn policy() -> Policy {
    Policy::parse(POLICY, "policies.toml").unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Allow,
    Ask(u32),
    Deny,
}

fn kind(d: &Decision) -> Kind {
    match d {
        Decision::Allow => Kind::Allow,
        Decision::Ask { quorum, .. } => Kind::Ask(*quorum),
        Decision::Deny => Kind::Deny,
    }
}

struct EvalCase {
    agent: &'static str,
    secret: &'static str,
    requested: Option<u64>,
    kind: Kind,
    rule: Option<&'static str>,
    reason: &'static str,
    ttl: u64,
    cut: bool,
    timeout: u64,
    reuse: bool,
}

#[test]
fn first_matching_rule_decides() {
    use Kind::{Allow, Ask, Deny};
    #[rustfmt::skip]
    let cases = [
        // Deny rule; its agent pattern limits it to bots.
        EvalCase { agent: "bot-1", secret: "prod/db", requested: None, kind: Deny, rule: Some("no prod for bots"), reason: r#"rule "no prod for bots" denies it"#, ttl: 15, cut: false, timeout: 4, reuse: false },
        EvalCase { agent: "ci-1", secret: "prod/db", requested: None, kind: Deny, rule: None, reason: "no rule matched: denied", ttl: 15, cut: false, timeout: 4, reuse: false },
        // Ask with the rule's own ttl, max_ttl, request_timeout and reuse.
        EvalCase { agent: "ci-1", secret: "github/token", requested: None, kind: Ask(1), rule: Some("ci reads the github token"), reason: r#"rule "ci reads the github token" asks ops"#, ttl: 10, cut: false, timeout: 2, reuse: true },
        EvalCase { agent: "ci-1", secret: "github/token", requested: Some(20), kind: Ask(1), rule: Some("ci reads the github token"), reason: r#"rule "ci reads the github token" asks ops"#, ttl: 20, cut: false, timeout: 2, reuse: true },
        EvalCase { agent: "ci-1", secret: "github/token", requested: Some(45), kind: Ask(1), rule: Some("ci reads the github token"), reason: r#"rule "ci reads the github token" asks ops"#, ttl: 30, cut: true, timeout: 2, reuse: true },
        // `?` is exactly one character.
        EvalCase { agent: "dev-1", secret: "dev/x", requested: None, kind: Allow, rule: Some("dev reads dev"), reason: r#"rule "dev reads dev" allows it"#, ttl: 15, cut: false, timeout: 4, reuse: false },
        EvalCase { agent: "dev-12", secret: "dev/x", requested: None, kind: Deny, rule: None, reason: "no rule matched: denied", ttl: 15, cut: false, timeout: 4, reuse: false },
        EvalCase { agent: "dev-1", secret: "shared/readme", requested: Some(90), kind: Allow, rule: Some("dev reads dev"), reason: r#"rule "dev reads dev" allows it"#, ttl: 20, cut: true, timeout: 4, reuse: false },
        // Quorum, defaults' ttl and a rule max_ttl above the defaults' one.
        EvalCase { agent: "bot-1", secret: "db/main", requested: None, kind: Ask(2), rule: Some("two from sec"), reason: r#"rule "two from sec" asks sec (2 approvals needed)"#, ttl: 15, cut: false, timeout: 4, reuse: false },
        EvalCase { agent: "bot-1", secret: "db/main", requested: Some(90), kind: Ask(2), rule: Some("two from sec"), reason: r#"rule "two from sec" asks sec (2 approvals needed)"#, ttl: 90, cut: false, timeout: 4, reuse: false },
        EvalCase { agent: "bot-1", secret: "db/main", requested: Some(200), kind: Ask(2), rule: Some("two from sec"), reason: r#"rule "two from sec" asks sec (2 approvals needed)"#, ttl: 120, cut: true, timeout: 4, reuse: false },
    ];
    let policy = policy();
    for c in cases {
        let e = policy.evaluate(&agent(c.agent), &secret(c.secret), c.requested.map(mins));
        let what = format!("{} {} {:?}", c.agent, c.secret, c.requested);
        assert_eq!(kind(&e.decision), c.kind, "{what}");
        assert_eq!(e.rule.as_deref(), c.rule, "{what}");
        assert_eq!(e.reason, c.reason, "{what}");
        assert_eq!((e.ttl, e.ttl_was_cut), (mins(c.ttl), c.cut), "{what}");
        assert_eq!(e.request_timeout, mins(c.timeout), "{what}");
        assert_eq!(e.reuse, c.reuse, "{what}");
        assert_eq!(
            policy
                .matching_rule(&agent(c.agent), &secret(c.secret))
                .map(keygate_policies::Rule::name),
            c.rule
        );
    }
}

#[test]
fn an_evaluation_names_the_max_ttl_that_bounds_extensions() {
    let policy = policy();
    let max = |a: &str, s: &str| policy.evaluate(&agent(a), &secret(s), None).max_ttl;
    assert_eq!(max("ci-1", "github/token"), mins(30), "the rule's own");
    assert_eq!(max("bot-1", "db/main"), mins(120), "above the defaults'");
    assert_eq!(max("ci-1", "prod/db"), mins(60), "no rule: the defaults'");
    let together = policy.evaluate_all(
        &agent("ci-1"),
        &[secret("github/token"), secret("db/main")],
        None,
    );
    assert_eq!(together.max_ttl, mins(30), "the shortest of those deciding");
}

#[test]
fn approvers_by_user_and_by_role() {
    let e = policy().evaluate(&agent("ci-1"), &secret("github/token"), None);
    let Decision::Ask {
        approvers,
        quorum: 1,
    } = e.decision
    else {
        panic!("{e:?}")
    };
    assert_eq!(approvers.groups(), ["ops"]);
    assert!(approvers.allows(UserId(111_111_111_111_111_111), &[]));
    assert!(approvers.allows(UserId(111_111_111_111_111_112), &[]));
    assert!(approvers.allows(UserId(999), &[RoleId(1), RoleId(222_222_222_222_222_222)]));
    assert!(!approvers.allows(UserId(999), &[RoleId(1), RoleId(2)]));
    assert!(!approvers.allows(UserId(333_333_333_333_333_333), &[]));
    assert!(!approvers.is_empty());
}

#[test]
fn defaults_apply_when_absent() {
    let source =
        "[[rule]]\nname = \"r\"\nagents = [\"*\"]\nsecrets = [\"*\"]\naction = \"allow\"\n";
    let policy = Policy::parse(source, "p.toml").unwrap();
    let rule = &policy.rules()[0];
    assert_eq!(rule.action(), Action::Allow);
    assert_eq!(
        (rule.ttl(), rule.max_ttl(), rule.request_timeout()),
        (mins(15), mins(60), mins(5))
    );
    assert!(!rule.reuse());
    assert_eq!((rule.line(), rule.column()), (1, 1));

    // An inherited ttl above the rule's own max_ttl is cut to it, not refused.
    let source = format!("{source}max_ttl = \"5m\"\n");
    let policy = Policy::parse(&source, "p.toml").unwrap();
    assert_eq!(policy.rules()[0].ttl(), mins(5));
    // Likewise for [defaults].
    let policy = Policy::parse("[defaults]\nmax_ttl = \"10m\"\n", "p.toml").unwrap();
    assert_eq!(
        (policy.defaults().ttl, policy.defaults().max_ttl),
        (mins(10), mins(10))
    );
}

#[test]
fn zero_requested_ttl_counts_as_none() {
    let e = policy().evaluate(
        &agent("ci-1"),
        &secret("github/token"),
        Some(Duration::ZERO),
    );
    assert_eq!((e.ttl, e.ttl_was_cut), (mins(10), false));
    let e = policy().evaluate(&agent("ci-1"), &secret("github/token"), Some(Duration::MAX));
    assert_eq!((e.ttl, e.ttl_was_cut), (mins(30), true));
}

// ---------------------------------------------------------------------------------------
// Several secrets at once
// ---------------------------------------------------------------------------------------

struct AllCase {
    what: &'static str,
    agent: &'static str,
    secrets: &'static [&'static str],
    requested: Option<u64>,
    kind: Kind,
    rule: Option<&'static str>,
    reason: &'static str,
}

#[test]
fn several_secrets_get_the_strictest_answer() {
    use Kind::{Allow, Ask, Deny};
    #[rustfmt::skip]
    let cases = [
        AllCase { what: "nothing requested", agent: "ci-1", secrets: &[], requested: None, kind: Deny, rule: None, reason: "no secrets requested: denied" },
        AllCase { what: "one unmatched secret denies all", agent: "ci-1", secrets: &["github/a", "prod/x"], requested: None, kind: Deny, rule: None, reason: r#"secret "prod/x": no rule matched: denied"# },
        AllCase { what: "a deny rule denies all", agent: "bot-1", secrets: &["db/x", "prod/x"], requested: None, kind: Deny, rule: Some("no prod for bots"), reason: r#"secret "prod/x": rule "no prod for bots" denies it"# },
        AllCase { what: "same rule twice", agent: "ci-1", secrets: &["github/a", "github/b"], requested: None, kind: Ask(1), rule: Some("ci reads the github token"), reason: r#"rule "ci reads the github token" asks ops"# },
        AllCase { what: "all allowed", agent: "dev-1", secrets: &["dev/a", "shared/readme"], requested: None, kind: Allow, rule: Some("dev reads dev"), reason: r#"rule "dev reads dev" allows it"# },
        AllCase { what: "allow and ask ask", agent: "dev-1", secrets: &["dev/a", "db/x"], requested: None, kind: Ask(2), rule: Some("two from sec"), reason: r#"rule "two from sec" asks sec (2 approvals needed)"# },
        AllCase { what: "disjoint approvers deny", agent: "ci-1", secrets: &["github/a", "solo/x"], requested: None, kind: Deny, rule: Some("solo"), reason: r#"rules "ci reads the github token", "solo" ask different approvers and nobody may approve for all of them: denied (request the secrets separately)"# },
        AllCase { what: "intersection too small for quorum", agent: "ci-1", secrets: &["github/a", "db/x"], requested: None, kind: Deny, rule: Some("two from sec"), reason: r#"rules "ci reads the github token", "two from sec" ask different approvers and only 1 user(s) and no role may approve for all of them, too few for a quorum of 2: denied (request the secrets separately)"# },
        AllCase { what: "intersection by user and role", agent: "ci-1", secrets: &["github/a", "kv/a"], requested: None, kind: Ask(1), rule: Some("ci reads the github token"), reason: r#"rules "ci reads the github token", "kv" ask oncall, ops, sec"# },
    ];
    let policy = policy();
    for c in cases {
        let secrets: Vec<SecretName> = c.secrets.iter().map(|s| secret(s)).collect();
        let e = policy.evaluate_all(&agent(c.agent), &secrets, c.requested.map(mins));
        assert_eq!(kind(&e.decision), c.kind, "{}: {}", c.what, e.reason);
        assert_eq!(e.rule.as_deref(), c.rule, "{}", c.what);
        assert_eq!(e.reason, c.reason, "{}", c.what);
    }
}

#[test]
fn several_secrets_share_the_tightest_terms() {
    let policy = policy();
    let both = [secret("github/a"), secret("kv/a")];
    let e = policy.evaluate_all(&agent("ci-1"), &both, None);
    let Decision::Ask { approvers, quorum } = &e.decision else {
        panic!("{e:?}")
    };
    assert_eq!(*quorum, 1);
    // Users in every asking rule's set, roles in every asking rule's set.
    assert_eq!(approvers.users(), [UserId(111_111_111_111_111_111)]);
    assert_eq!(approvers.roles(), [RoleId(222_222_222_222_222_222)]);
    assert!(!approvers.allows(
        UserId(111_111_111_111_111_112),
        &[RoleId(555_555_555_555_555_555)]
    ));
    // ttl: min(10m from github, 15m from kv); timeout min(2m, 4m); reuse: both true.
    assert_eq!(
        (e.ttl, e.ttl_was_cut, e.request_timeout, e.reuse),
        (mins(10), false, mins(2), true)
    );

    // A requested TTL is cut by the tightest max_ttl among all rules, allow rules included.
    let mixed = [secret("dev/a"), secret("db/x")];
    let e = policy.evaluate_all(&agent("dev-1"), &mixed, Some(mins(50)));
    assert_eq!((e.ttl, e.ttl_was_cut), (mins(20), true));
    // Reuse only if every asking rule reuses.
    assert!(!e.reuse);

    // One secret: the same answer as `evaluate`.
    let one = [secret("github/a")];
    assert_eq!(
        policy.evaluate_all(&agent("ci-1"), &one, Some(mins(45))),
        policy.evaluate(&agent("ci-1"), &one[0], Some(mins(45)))
    );
}

// ---------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------

#[test]
fn warnings() {
    let source = r#"[approvers.ops]
users = ["1"]

[approvers.unused]
roles = ["2"]

[[rule]]
name = "all github"
agents = ["*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]

[[rule]]
name = "ci github token"
agents = ["ci-*", "cd"]
secrets = ["github/token", "github/ap?"]
action = "allow"
reuse = true
request_timeout = "1m"

[[rule]]
name = "ci dbs"
agents = ["ci-*"]
secrets = ["db/*"]
action = "deny"
ttl = "1m"

[[rule]]
name = "pieces"
agents = ["ci-x*"]
secrets = ["db/main", "github/x"]
action = "allow"

[[rule]]
name = "not shadowed"
agents = ["ci-*"]
secrets = ["git*"]
action = "allow"
"#;
    let policy = Policy::parse(source, "policies.toml").unwrap();
    let got: Vec<(WarningKind, usize, &str)> = policy
        .warnings()
        .iter()
        .map(|w| (w.kind, w.line, w.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (WarningKind::UnusedGroup, 4, "unused"),
            (WarningKind::ShadowedRule, 14, ""),
            (WarningKind::IneffectiveKey, 19, "reuse"),
            (WarningKind::IneffectiveKey, 20, "request_timeout"),
            (WarningKind::IneffectiveKey, 27, "ttl"),
            (WarningKind::ShadowedRule, 29, ""),
        ]
    );
    let shown: Vec<String> = policy.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown[1],
        r#"warning: policies.toml:14:1: rule "ci github token": never decides: earlier rule "all github" (line 7) matches every agent and secret it names"#
    );
    assert_eq!(
        shown[5],
        r#"warning: policies.toml:29:1: rule "pieces": never decides: earlier rules "all github" (line 7) and "ci dbs" (line 22) match every agent and secret it names"#
    );
    assert_eq!(
        shown[0],
        r"warning: policies.toml:4:12: [approvers]: key `unused`: no rule names this group"
    );
    assert!(shown.iter().all(|w| !w.contains('\n')));
}
