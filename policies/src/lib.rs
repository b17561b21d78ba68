//! keygate's policy file, `policies.toml`: parse it, validate it, and decide requests with
//! it. Pure: no I/O, no async, no panics on any input, so the daemon can reload it at any
//! time and the CLI can check it anywhere.
//!
//! ```
//! use keygate_policies::{Decision, Policy};
//! use keygate_proto::{AgentName, SecretName};
//!
//! let policy = Policy::parse(r#"
//! [approvers.ops]
//! users = ["111111111111111111"]
//!
//! [[rule]]
//! name = "ci reads the github token"
//! agents = ["ci-*"]
//! secrets = ["github/*"]
//! action = "ask"
//! approvers = ["ops"]
//! "#, "policies.toml")?;
//!
//! let agent = AgentName::new("ci-runner")?;
//! let secret = SecretName::new("github/token")?;
//! let answer = policy.evaluate(&agent, &secret, None);
//! assert!(matches!(answer.decision, Decision::Ask { quorum: 1, .. }));
//! assert_eq!(answer.reason, r#"rule "ci reads the github token" asks ops"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The format is documented for users in `docs/policies.md`.

mod approvers;
mod compile;
mod error;
mod evaluate;
mod file;
mod glob;
mod policy;
mod rule;
mod shadow;
mod span;
mod toml_error;

pub use approvers::Approvers;
pub use error::{PolicyError, PolicyWarning, WarningKind};
pub use evaluate::{Decision, Evaluation};
pub use glob::{Glob, GlobError, NameKind};
pub use policy::Policy;
pub use rule::{Action, Defaults, Rule};
