//! The buttons' `custom_id`s: `kg:a:<request>` approve, `kg:a:<request>:<seconds>`
//! approve with a shorter TTL, `kg:d:<request>` deny, and on a live grant's message
//! `kg:r:<grant>` revoke it, `kg:e:<grant>` extend it; `kg:am:<request>` (Approve…) and
//! `kg:dm:<request>` (Deny…) open a form, which carries the same id back when submitted.
//! Anything else is unknown and refused (fail closed).

use std::time::Duration;

use keygate_proto::approval::Verdict;
use keygate_proto::{GrantId, RequestId};

/// Shorter TTLs an approver may choose instead of the policy's.
pub const SHORTER_TTLS: [Duration; 3] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(3600),
];

/// What a press of one of the bot's buttons asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Pressed {
    /// A decision on a pending request.
    Decide(RequestId, Verdict),
    /// Open the Approve… form (a TTL and a note); its submit approves.
    ApproveForm(RequestId),
    /// Open the Deny… form (a reason); its submit denies.
    DenyForm(RequestId),
    /// End a live grant now.
    Revoke(GrantId),
    /// Extend a live grant by its TTL (within the rule's `max_ttl`).
    Extend(GrantId),
}

pub fn approve(id: &RequestId, ttl: Option<Duration>) -> String {
    match ttl {
        Some(t) => format!("kg:a:{id}:{}", t.as_secs()),
        None => format!("kg:a:{id}"),
    }
}

pub fn deny(id: &RequestId) -> String {
    format!("kg:d:{id}")
}

pub fn approve_form(id: &RequestId) -> String {
    format!("kg:am:{id}")
}

pub fn deny_form(id: &RequestId) -> String {
    format!("kg:dm:{id}")
}

pub fn revoke(id: &GrantId) -> String {
    format!("kg:r:{id}")
}

pub fn extend(id: &GrantId) -> String {
    format!("kg:e:{id}")
}

/// Reads a button's `custom_id`; `None` for anything this bot did not make.
pub fn parse(custom_id: &str) -> Option<Pressed> {
    let mut parts = custom_id.split(':');
    if parts.next()? != "kg" {
        return None;
    }
    let kind = parts.next()?;
    let id = parts.next()?;
    let extra = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let request = || RequestId::parse(id).ok();
    match (kind, extra) {
        ("a", None) => Some(Pressed::Decide(request()?, Verdict::Approve { ttl: None })),
        ("a", Some(secs)) => {
            let id = request()?;
            let secs: u64 = secs.parse().ok()?;
            (secs > 0 && secs <= 366 * 24 * 3600).then_some(())?;
            Some(Pressed::Decide(
                id,
                Verdict::Approve {
                    ttl: Some(Duration::from_secs(secs)),
                },
            ))
        }
        ("d", None) => Some(Pressed::Decide(request()?, Verdict::Deny { reason: None })),
        ("am", None) => Some(Pressed::ApproveForm(request()?)),
        ("dm", None) => Some(Pressed::DenyForm(request()?)),
        ("r", None) => Some(Pressed::Revoke(GrantId::parse(id).ok()?)),
        ("e", None) => Some(Pressed::Extend(GrantId::parse(id).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let id = RequestId::random();
        let grant = GrantId::random();
        assert_eq!(
            parse(&approve(&id, None)),
            Some(Pressed::Decide(id.clone(), Verdict::Approve { ttl: None }))
        );
        assert_eq!(
            parse(&approve(&id, Some(Duration::from_secs(300)))),
            Some(Pressed::Decide(
                id.clone(),
                Verdict::Approve {
                    ttl: Some(Duration::from_secs(300))
                }
            ))
        );
        assert!(matches!(
            parse(&deny(&id)),
            Some(Pressed::Decide(_, Verdict::Deny { .. }))
        ));
        assert_eq!(
            parse(&approve_form(&id)),
            Some(Pressed::ApproveForm(id.clone()))
        );
        assert_eq!(parse(&deny_form(&id)), Some(Pressed::DenyForm(id.clone())));
        assert_eq!(parse(&revoke(&grant)), Some(Pressed::Revoke(grant.clone())));
        assert_eq!(parse(&extend(&grant)), Some(Pressed::Extend(grant.clone())));
        for bad in [
            "",
            "kg",
            "kg:x:req_a",
            "kg:a:req_short",
            "xx:a:",
            &format!("kg:a:{id}:0"),
            &format!("kg:d:{id}:5"),
            // A request id where a grant id belongs, and the other way round.
            &format!("kg:r:{id}"),
            &format!("kg:e:{id}"),
            &format!("kg:a:{grant}"),
            &format!("kg:d:{grant}"),
            &format!("kg:r:{grant}:5"),
            &format!("kg:e:{grant}:"),
            &format!("kg:am:{grant}"),
            &format!("kg:dm:{id}:5"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(approve(&id, Some(Duration::from_secs(3600))).len() <= 100);
        assert!(revoke(&grant).len() <= 100 && extend(&grant).len() <= 100);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every button the bot makes reads back as what it said.
        #[test]
        fn what_the_bot_makes_reads_back(secs in 1u64..=366 * 24 * 3600, deny in any::<bool>()) {
            let id = RequestId::random();
            let (made, meant) = if deny {
                (super::deny(&id), Verdict::Deny { reason: None })
            } else {
                let ttl = Some(Duration::from_secs(secs));
                (approve(&id, ttl), Verdict::Approve { ttl })
            };
            prop_assert_eq!(parse(&made), Some(Pressed::Decide(id, meant)));
        }

        /// A forged id is read as at most what the bot could have said: `kg`, approve
        /// or deny, this request, and a TTL within bounds; anything else is unknown.
        #[test]
        fn a_forged_id_says_no_more_than_a_real_one(
            prefix in "(kg|KG|k|kgx|)",
            kind in "[adx]{0,2}",
            extra in proptest::option::of("[0-9+-]{0,12}"),
            more in proptest::option::of(".{0,4}"),
        ) {
            let id = RequestId::random();
            let mut raw = format!("{prefix}:{kind}:{id}");
            for part in [&extra, &more].into_iter().flatten() {
                raw.push(':');
                raw.push_str(part);
            }
            if let Some(Pressed::Decide(on, verdict)) = parse(&raw) {
                prop_assert_eq!(prefix.as_str(), "kg");
                prop_assert_eq!(on, id);
                prop_assert!(more.is_none());
                match verdict {
                    Verdict::Deny { .. } => prop_assert!(kind == "d" && extra.is_none()),
                    Verdict::Approve { ttl: None } => prop_assert!(kind == "a" && extra.is_none()),
                    Verdict::ApproveFor { .. } => prop_assert!(false, "no button approves for a typed TTL"),
                    Verdict::Approve { ttl: Some(t) } => {
                        prop_assert_eq!(kind.as_str(), "a");
                        prop_assert!(t > Duration::ZERO && t.as_secs() <= 366 * 24 * 3600);
                    }
                }
            } else {
                prop_assert!(prefix != "kg" || !matches!(kind.as_str(), "a" | "d") || more.is_some() || extra.is_some());
            }
        }
    }
}
