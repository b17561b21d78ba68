//! Giving the file its meaning: durations parsed, ids read, groups resolved, patterns
//! compiled, and everything that could never work refused with its place in the file.
//!
//! Checks run to the end and collect every error, so one edit can fix them all; values
//! that failed are left out of later checks so one mistake is reported once, not again
//! as a consequence elsewhere.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use keygate_proto::{RoleId, UserId, duration};
use toml::Spanned;

use crate::approvers::Approvers;
use crate::error::{PolicyError, PolicyWarning, WarningKind, shown};
use crate::evaluate::Decision;
use crate::file::{ActionFile, DefaultsFile, GroupFile, PolicyFile, RuleFile};
use crate::glob::{Glob, NameKind};
use crate::policy::Policy;
use crate::rule::{Defaults, Rule};
use crate::span::Position;

pub(crate) fn compile(source: &str, origin: &str) -> Result<Policy, Vec<PolicyError>> {
    let file: PolicyFile =
        toml::from_str(source).map_err(|e| vec![crate::toml_error::convert(source, origin, &e)])?;
    let mut cx = Checker {
        source,
        origin,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let defaults = cx.defaults(file.defaults.as_ref());
    let mut groups = cx.groups(&file.approvers);
    let mut names = HashMap::new();
    let mut rules = Vec::new();
    for (index, rule) in file.rule.iter().enumerate() {
        if let Some(rule) = cx.rule(index, rule, &defaults, &mut groups, &mut names) {
            rules.push(rule);
        }
    }
    for (name, group) in &groups {
        if !group.used {
            cx.warn(
                WarningKind::UnusedGroup,
                group.key_span.clone(),
                "[approvers]",
                name,
                "no rule names this group",
            );
        }
    }
    for shadow in crate::shadow::shadowed(&rules) {
        let rule = &rules[shadow.rule];
        let by: Vec<String> = shadow
            .by
            .iter()
            .map(|&i| format!("{} (line {})", shown(&rules[i].name), rules[i].line))
            .collect();
        let (subject, verb) = if by.len() == 1 {
            ("rule", "matches")
        } else {
            ("rules", "match")
        };
        cx.warnings.push(PolicyWarning {
            kind: WarningKind::ShadowedRule,
            origin: origin.to_owned(),
            line: rule.line,
            column: rule.column,
            context: format!("rule {}", shown(&rule.name)),
            key: String::new(),
            message: format!(
                "never decides: earlier {subject} {} {verb} every agent and secret it names",
                by.join(" and ")
            ),
        });
    }

    if !cx.errors.is_empty() {
        cx.errors.sort_by_key(|e| (e.line, e.column));
        return Err(cx.errors);
    }
    cx.warnings.sort_by_key(|w| (w.line, w.column));
    Ok(Policy {
        defaults,
        rules,
        warnings: cx.warnings,
    })
}

/// An `[approvers.NAME]` group as read.
struct Group {
    users: Vec<UserId>,
    roles: Vec<RoleId>,
    key_span: Range<usize>,
    /// Some id was refused, so the group is not known in full.
    incomplete: bool,
    used: bool,
}

struct Checker<'s> {
    source: &'s str,
    origin: &'s str,
    errors: Vec<PolicyError>,
    warnings: Vec<PolicyWarning>,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, context: &str, key: &str, message: impl Into<String>) {
        let at = Position::of_span(self.source, &span);
        self.errors.push(PolicyError {
            origin: self.origin.to_owned(),
            line: at.line,
            column: at.column,
            context: context.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn warn(
        &mut self,
        kind: WarningKind,
        span: Range<usize>,
        context: &str,
        key: &str,
        message: impl Into<String>,
    ) {
        let at = Position::of_span(self.source, &span);
        self.warnings.push(PolicyWarning {
            kind,
            origin: self.origin.to_owned(),
            line: at.line,
            column: at.column,
            context: context.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// Parses an optional duration. `Ok(None)`: absent. `Err(())`: present but refused
    /// (already reported).
    fn duration(
        &mut self,
        value: Option<&Spanned<String>>,
        context: &str,
        key: &str,
    ) -> Result<Option<Duration>, ()> {
        let Some(value) = value else {
            return Ok(None);
        };
        match duration::parse(value.get_ref()) {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                self.error(value.span(), context, key, e.to_string());
                Err(())
            }
        }
    }

    fn defaults(&mut self, file: Option<&Spanned<DefaultsFile>>) -> Defaults {
        const CONTEXT: &str = "[defaults]";
        let built_in = Defaults::BUILT_IN;
        let Some(file) = file.map(Spanned::get_ref) else {
            return built_in;
        };
        let request_timeout = self
            .duration(file.request_timeout.as_ref(), CONTEXT, "request_timeout")
            .ok()
            .flatten()
            .unwrap_or(built_in.request_timeout);
        let max_ttl = self.duration(file.max_ttl.as_ref(), CONTEXT, "max_ttl");
        let max_from = if file.max_ttl.is_some() {
            ""
        } else {
            " (the built-in default; set max_ttl in [defaults] too)"
        };
        let max = max_ttl.ok().flatten().unwrap_or(built_in.max_ttl);
        let ttl = match (self.duration(file.ttl.as_ref(), CONTEXT, "ttl"), &file.ttl) {
            (Ok(Some(ttl)), Some(value)) if ttl > max => {
                if max_ttl.is_ok() {
                    self.error(value.span(), CONTEXT, "ttl", too_long(ttl, max, max_from));
                }
                max
            }
            (Ok(Some(ttl)), _) => ttl,
            _ => built_in.ttl.min(max),
        };
        Defaults {
            request_timeout,
            ttl,
            max_ttl: max,
        }
    }

    fn groups(
        &mut self,
        file: &BTreeMap<Spanned<String>, Spanned<GroupFile>>,
    ) -> BTreeMap<String, Group> {
        let mut groups = BTreeMap::new();
        for (name, group) in file {
            let context = format!("approver group {}", shown(name.get_ref()));
            if name.get_ref().trim().is_empty() || name.get_ref().chars().any(char::is_control) {
                self.error(
                    name.span(),
                    "[approvers]",
                    name.get_ref(),
                    "group names must be non-blank, on one line",
                );
            }
            let mut incomplete = false;
            let mut ids = |list: Option<&Spanned<Vec<Spanned<String>>>>, key: &str, what: &str| {
                let mut ids = Vec::new();
                for id in list.map(Spanned::get_ref).into_iter().flatten() {
                    match snowflake(id.get_ref(), what) {
                        Ok(n) => ids.push(n),
                        Err(message) => {
                            self.error(id.span(), &context, key, message);
                            incomplete = true;
                        }
                    }
                }
                ids
            };
            let g = group.get_ref();
            let users: Vec<UserId> = ids(g.users.as_ref(), "users", "user")
                .into_iter()
                .map(UserId)
                .collect();
            let roles: Vec<RoleId> = ids(g.roles.as_ref(), "roles", "role")
                .into_iter()
                .map(RoleId)
                .collect();
            let listed = |l: &Option<Spanned<Vec<Spanned<String>>>>| {
                l.as_ref().is_some_and(|l| !l.get_ref().is_empty())
            };
            if !listed(&g.users) && !listed(&g.roles) {
                self.error(
                    group.span(),
                    "[approvers]",
                    name.get_ref(),
                    "the group names neither `users` nor `roles`, so nobody in it could approve",
                );
                incomplete = true;
            }
            groups.insert(
                name.get_ref().clone(),
                Group {
                    users,
                    roles,
                    key_span: name.span(),
                    incomplete,
                    used: false,
                },
            );
        }
        groups
    }

    fn rule(
        &mut self,
        index: usize,
        file: &Spanned<RuleFile>,
        defaults: &Defaults,
        groups: &mut BTreeMap<String, Group>,
        names: &mut HashMap<String, usize>,
    ) -> Option<Rule> {
        let errors_before = self.errors.len();
        let header = Position::of_span(self.source, &file.span());
        let r = file.get_ref();
        let name = r.name.get_ref();
        let context = if name.trim().is_empty() {
            format!("rule #{}", index + 1)
        } else {
            format!("rule {}", shown(name))
        };
        let context = context.as_str();

        if name.trim().is_empty() {
            self.error(
                r.name.span(),
                context,
                "name",
                "rule names must not be blank: they name the rule in audit lines and on Discord",
            );
        } else if name.chars().any(char::is_control) {
            self.error(
                r.name.span(),
                context,
                "name",
                "rule names must be one line, without control characters",
            );
        } else if let Some(first) = names.get(name) {
            self.error(
                r.name.span(),
                context,
                "name",
                format!("duplicate rule name: the rule at line {first} has it already"),
            );
        } else {
            names.insert(name.clone(), header.line);
        }

        let agents = self.globs(&r.agents, NameKind::Agent, context, "agents");
        let secrets = self.globs(&r.secrets, NameKind::Secret, context, "secrets");
        let action = *r.action.get_ref();
        let decision = match action {
            ActionFile::Ask => self.ask(r, context, groups),
            ActionFile::Allow | ActionFile::Deny => {
                let word = if matches!(action, ActionFile::Allow) {
                    "allow"
                } else {
                    "deny"
                };
                if let Some(approvers) = &r.approvers {
                    self.error(
                        approvers.span(),
                        context,
                        "approvers",
                        format!("approvers mean nothing on an `{word}` rule: only `ask` rules wait for people; remove the key or make the action `ask`"),
                    );
                }
                if let Some(quorum) = &r.quorum {
                    self.error(
                        quorum.span(),
                        context,
                        "quorum",
                        format!("a quorum means nothing on an `{word}` rule: only `ask` rules wait for people; remove the key or make the action `ask`"),
                    );
                }
                if matches!(action, ActionFile::Allow) {
                    Some(Decision::Allow)
                } else {
                    Some(Decision::Deny)
                }
            }
        };
        let (ttl, max_ttl, request_timeout) = self.rule_durations(r, defaults, context);
        let reuse = r.reuse.as_ref().is_some_and(|r| *r.get_ref());
        self.ineffective_keys(r, action, context);

        if self.errors.len() > errors_before {
            return None;
        }
        Some(Rule {
            name: name.clone(),
            line: header.line,
            column: header.column,
            agents: agents?,
            secrets: secrets?,
            decision: decision?,
            ttl: ttl?,
            max_ttl: max_ttl?,
            request_timeout: request_timeout?,
            reuse,
        })
    }

    fn globs(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        kind: NameKind,
        context: &str,
        key: &str,
    ) -> Option<Vec<Glob>> {
        if list.get_ref().is_empty() {
            self.error(
                list.span(),
                context,
                key,
                "the list is empty, so the rule could never match (write [\"*\"] to match everything)",
            );
            return None;
        }
        let mut globs = Vec::new();
        let mut ok = true;
        for pattern in list.get_ref() {
            match Glob::new(pattern.get_ref(), kind) {
                Ok(g) => globs.push(g),
                Err(e) => {
                    self.error(pattern.span(), context, key, e.to_string());
                    ok = false;
                }
            }
        }
        ok.then_some(globs)
    }

    fn ask(
        &mut self,
        r: &RuleFile,
        context: &str,
        groups: &mut BTreeMap<String, Group>,
    ) -> Option<Decision> {
        let named = r.approvers.as_ref().map(Spanned::get_ref);
        if named.is_none_or(Vec::is_empty) {
            let span = r
                .approvers
                .as_ref()
                .map_or_else(|| r.action.span(), Spanned::span);
            self.error(
                span,
                context,
                "approvers",
                "an `ask` rule needs `approvers`: the [approvers.*] groups whose members may decide",
            );
            return None;
        }
        let mut complete = true;
        let (mut users, mut roles, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for group_name in named.into_iter().flatten() {
            let Some(group) = groups.get_mut(group_name.get_ref()) else {
                let known: Vec<&str> = groups.keys().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    "no [approvers.*] groups are defined".to_owned()
                } else {
                    format!("defined: {}", known.join(", "))
                };
                self.error(
                    group_name.span(),
                    context,
                    "approvers",
                    format!(
                        "unknown approver group {} ({hint})",
                        shown(group_name.get_ref())
                    ),
                );
                complete = false;
                continue;
            };
            group.used = true;
            complete &= !group.incomplete;
            users.extend_from_slice(&group.users);
            roles.extend_from_slice(&group.roles);
            names.push(group_name.get_ref().clone());
        }
        let quorum = match &r.quorum {
            None => 1,
            Some(q) if *q.get_ref() < 1 => {
                self.error(
                    q.span(),
                    context,
                    "quorum",
                    "quorum must be at least 1: it is the number of distinct approvals needed",
                );
                return None;
            }
            Some(q) => {
                let Ok(n) = u32::try_from(*q.get_ref()) else {
                    self.error(q.span(), context, "quorum", "quorum is far too large");
                    return None;
                };
                n
            }
        };
        if !complete {
            return None;
        }
        let approvers = Approvers::new(users, roles, names);
        if !approvers.can_reach(quorum) {
            let span = r
                .quorum
                .as_ref()
                .map_or_else(|| r.action.span(), Spanned::span);
            self.error(
                span,
                context,
                "quorum",
                format!(
                    "quorum {quorum} can never be reached: groups {} name only {} distinct user(s) and no roles",
                    approvers.groups().join(", "),
                    approvers.users().len()
                ),
            );
            return None;
        }
        Some(Decision::Ask { approvers, quorum })
    }

    /// `(ttl, max_ttl, request_timeout)`, each `None` when refused.
    fn rule_durations(
        &mut self,
        r: &RuleFile,
        defaults: &Defaults,
        context: &str,
    ) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
        let request_timeout = self
            .duration(r.request_timeout.as_ref(), context, "request_timeout")
            .ok()
            .map(|d| d.unwrap_or(defaults.request_timeout));
        let max_ttl = self
            .duration(r.max_ttl.as_ref(), context, "max_ttl")
            .ok()
            .map(|d| d.unwrap_or(defaults.max_ttl));
        let ttl = match (self.duration(r.ttl.as_ref(), context, "ttl"), max_ttl) {
            (Err(()), _) => None,
            (Ok(None), max) => max.map(|max| defaults.ttl.min(max)),
            (Ok(Some(ttl)), Some(max)) if ttl > max => {
                let from = if r.max_ttl.is_some() {
                    ""
                } else {
                    " (from [defaults]; set max_ttl on this rule to allow more)"
                };
                let span = r.ttl.as_ref().map_or(0..0, Spanned::span);
                self.error(span, context, "ttl", too_long(ttl, max, from));
                None
            }
            (Ok(Some(ttl)), _) => Some(ttl),
        };
        (ttl, max_ttl, request_timeout)
    }

    /// Keys that are valid but do nothing for this action: warned about, since their
    /// author expected them to matter.
    fn ineffective_keys(&mut self, r: &RuleFile, action: ActionFile, context: &str) {
        let mut warn = |span: Range<usize>, key: &str, message: String| {
            self.warn(WarningKind::IneffectiveKey, span, context, key, message);
        };
        match action {
            ActionFile::Ask => {}
            ActionFile::Allow => {
                if let Some(reuse) = r.reuse.as_ref().filter(|r| *r.get_ref()) {
                    warn(
                        reuse.span(),
                        "reuse",
                        "has no effect on an `allow` rule: every read is allowed anyway".to_owned(),
                    );
                }
                if let Some(timeout) = &r.request_timeout {
                    warn(
                        timeout.span(),
                        "request_timeout",
                        "has no effect on an `allow` rule: nothing waits for people".to_owned(),
                    );
                }
            }
            ActionFile::Deny => {
                let keys = [
                    ("ttl", r.ttl.as_ref().map(Spanned::span)),
                    ("max_ttl", r.max_ttl.as_ref().map(Spanned::span)),
                    (
                        "request_timeout",
                        r.request_timeout.as_ref().map(Spanned::span),
                    ),
                    ("reuse", r.reuse.as_ref().map(Spanned::span)),
                ];
                for (key, span) in keys {
                    if let Some(span) = span {
                        warn(
                            span,
                            key,
                            "has no effect on a `deny` rule: nothing is granted".to_owned(),
                        );
                    }
                }
            }
        }
    }
}

fn too_long(ttl: Duration, max: Duration, max_from: &str) -> String {
    format!(
        "ttl {} is longer than max_ttl {}{max_from}",
        duration::format(ttl),
        duration::format(max)
    )
}

/// A Discord id (a "snowflake"): a positive decimal number that fits in 64 bits.
fn snowflake(text: &str, what: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} id {} is not a number: Discord ids are the long numbers \"Copy ID\" gives with Developer Mode on",
            shown(text)
        ));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(format!("{what} id 0 is not a Discord id")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{what} id {} is too large to be a Discord id",
            shown(text)
        )),
    }
}
