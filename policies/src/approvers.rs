//! Who may approve or deny an `ask` request: Discord user ids and role ids, resolved from
//! the `[approvers.*]` groups a rule names.

use std::fmt;

use keygate_proto::{RoleId, UserId};

/// A resolved set of approvers. Ids are kept sorted and unique so that checking a button
/// press is a binary search and two sets compare equal when they admit the same people.
/// The empty set admits nobody: fail closed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Approvers {
    users: Vec<UserId>,
    roles: Vec<RoleId>,
    groups: Vec<String>,
}

impl Approvers {
    /// Builds a set from user ids, role ids and the names of the groups they came from
    /// (for display only). Order and repeats do not matter.
    pub fn new(
        users: impl IntoIterator<Item = UserId>,
        roles: impl IntoIterator<Item = RoleId>,
        groups: impl IntoIterator<Item = String>,
    ) -> Approvers {
        Approvers {
            users: sorted(users),
            roles: sorted(roles),
            groups: sorted(groups),
        }
    }

    /// May Discord user `user`, holding guild roles `roles`, decide? Empty approver set =
    /// nobody.
    pub fn allows(&self, user: UserId, roles: &[RoleId]) -> bool {
        self.users.binary_search(&user).is_ok()
            || roles.iter().any(|r| self.roles.binary_search(r).is_ok())
    }

    /// The group names, sorted, for showing people who is being asked.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// User ids, sorted and unique.
    pub fn users(&self) -> &[UserId] {
        &self.users
    }

    /// Role ids, sorted and unique.
    pub fn roles(&self) -> &[RoleId] {
        &self.roles
    }

    /// True when nobody at all may decide.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.roles.is_empty()
    }

    /// Can `quorum` distinct approvals ever be gathered? Any role makes it so (a role can
    /// hold any number of people); otherwise there must be enough distinct users.
    pub fn can_reach(&self, quorum: u32) -> bool {
        quorum >= 1
            && (!self.roles.is_empty()
                || usize::try_from(quorum).is_ok_and(|q| q <= self.users.len()))
    }

    /// Those allowed by both `self` and `other`: users listed in both, roles listed in
    /// both. A user listed in one set and holding a role of the other is *not* kept: being
    /// simple here is being safe. Group names are the union, for display.
    #[must_use]
    pub fn intersection(&self, other: &Approvers) -> Approvers {
        Approvers {
            users: common(&self.users, &other.users),
            roles: common(&self.roles, &other.roles),
            groups: sorted(self.groups.iter().chain(&other.groups).cloned()),
        }
    }
}

/// `ops, security`, or `nobody`.
impl fmt::Display for Approvers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.groups.is_empty() {
            return f.write_str(if self.is_empty() {
                "nobody"
            } else {
                "approvers"
            });
        }
        f.write_str(&self.groups.join(", "))
    }
}

fn sorted<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn common<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search(x).is_ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn users(ids: impl IntoIterator<Item = u64>) -> Vec<UserId> {
        ids.into_iter().map(UserId).collect()
    }
    fn roles(ids: impl IntoIterator<Item = u64>) -> Vec<RoleId> {
        ids.into_iter().map(RoleId).collect()
    }

    #[test]
    fn allows_by_user_or_role() {
        let a = Approvers::new(users([3, 1, 3]), roles([20]), ["ops".to_owned()]);
        assert_eq!(a.users(), &users([1, 3]));
        assert!(a.allows(UserId(1), &roles([])));
        assert!(a.allows(UserId(99), &roles([5, 20])));
        assert!(!a.allows(UserId(99), &roles([5])));
        assert!(!Approvers::default().allows(UserId(1), &roles([20])));
        assert!(Approvers::default().is_empty());
        assert_eq!(a.to_string(), "ops");
        assert_eq!(Approvers::default().to_string(), "nobody");
    }

    #[test]
    fn quorum_reachability() {
        let two = Approvers::new(users([1, 2]), roles([]), []);
        assert!(two.can_reach(2));
        assert!(!two.can_reach(3));
        assert!(!two.can_reach(0));
        assert!(Approvers::new(users([]), roles([7]), []).can_reach(50));
    }

    #[test]
    fn intersection_is_per_kind() {
        let a = Approvers::new(users([1, 2]), roles([10]), ["a".to_owned()]);
        let b = Approvers::new(users([2, 3]), roles([11]), ["b".to_owned()]);
        let both = a.intersection(&b);
        assert_eq!(both.users(), &users([2]));
        assert!(both.roles().is_empty());
        assert_eq!(both.groups(), &["a".to_owned(), "b".to_owned()]);
    }
}
