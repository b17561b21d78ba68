//! Where keygate keeps its files: the XDG base directories, as SPEC.md lays them out.
//!
//! Each base can be moved with its XDG variable, which is how the tests give every daemon
//! its own tree.

use std::path::{Path, PathBuf};

/// The directories and files the daemon uses.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `$XDG_CONFIG_HOME/keygate`: keygated.toml, policies.toml, operator.token.
    pub config_dir: PathBuf,
    /// `$XDG_DATA_HOME/keygate`: the encrypted secret file, the keyring index, agents, TLS.
    pub data_dir: PathBuf,
    /// `$XDG_STATE_HOME/keygate`: the audit log.
    pub state_dir: PathBuf,
    /// `$XDG_RUNTIME_DIR/keygate`, or `/tmp/keygate-$UID`: the socket.
    pub runtime_dir: PathBuf,
}

impl Paths {
    /// Resolves the directories from the environment.
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let base = |var: &str, fallback: &str| -> PathBuf {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(fallback))
                .join("keygate")
        };
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map_or_else(
                || std::env::temp_dir().join(format!("keygate-{}", current_uid())),
                |p| p.join("keygate"),
            );
        Self {
            config_dir: base("XDG_CONFIG_HOME", ".config"),
            data_dir: base("XDG_DATA_HOME", ".local/share"),
            state_dir: base("XDG_STATE_HOME", ".local/state"),
            runtime_dir,
        }
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("keygated.toml")
    }

    pub fn policies_file(&self) -> PathBuf {
        self.config_dir.join("policies.toml")
    }

    pub fn operator_token(&self) -> PathBuf {
        self.config_dir.join("operator.token")
    }

    pub fn agents_file(&self) -> PathBuf {
        self.data_dir.join("agents.json")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.state_dir.join("audit.jsonl")
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime_dir.join("keygated.sock")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }
}

/// The real user id of this process.
///
/// Asked of the kernel (`getuid`), not read from the owner of `/proc/self`: once a process
/// turns core dumps off (`PR_SET_DUMPABLE` 0, as keygate and keygated do), `/proc/self`
/// belongs to root.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The effective user id of this process: the owner of what it creates, and what a Unix
/// socket's peer sees (`SO_PEERCRED`).
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Why a directory cannot be trusted to hold the daemon's socket.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedDir {
    #[error("{} is not a directory (a symlink or a file is never trusted)", .dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("{} belongs to uid {owner}, not to {}", .dir.display(), uids(.expected))]
    Owner {
        dir: PathBuf,
        owner: u32,
        expected: Vec<u32>,
    },
    #[error("{} has mode {mode:04o}: others may reach into it (it must be 0700)", .dir.display())]
    Mode { dir: PathBuf, mode: u32 },
    #[error("cannot inspect {}: {error}", .dir.display())]
    Io { dir: PathBuf, error: std::io::Error },
}

fn uids(expected: &[u32]) -> String {
    let list: Vec<String> = expected.iter().map(u32::to_string).collect();
    format!("uid {}", list.join(" or "))
}

/// Checks that `dir` is a directory (not a symlink to one), owned by one of `owners`, with
/// no access at all for group or others (0700). This is what makes a socket inside it
/// trustworthy: nobody else can have put it there, replaced it, or reached it.
pub fn check_private_dir(dir: &Path, owners: &[u32]) -> Result<(), UntrustedDir> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = std::fs::symlink_metadata(dir).map_err(|error| UntrustedDir::Io {
        dir: dir.to_path_buf(),
        error,
    })?;
    if !meta.file_type().is_dir() {
        return Err(UntrustedDir::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    if !owners.contains(&meta.uid()) {
        return Err(UntrustedDir::Owner {
            dir: dir.to_path_buf(),
            owner: meta.uid(),
            expected: owners.to_vec(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(UntrustedDir::Mode {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn dir_with_mode(mode: u32) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(mode)).expect("chmod");
        d
    }

    #[test]
    fn a_private_dir_of_ours_is_trusted() {
        let d = dir_with_mode(0o700);
        check_private_dir(d.path(), &[effective_uid()]).expect("trusted");
    }

    #[test]
    fn a_dir_others_can_reach_is_refused() {
        for mode in [0o777, 0o755, 0o710, 0o701, 0o1777] {
            let d = dir_with_mode(mode);
            let e = check_private_dir(d.path(), &[effective_uid()]).expect_err("refused");
            assert!(matches!(e, UntrustedDir::Mode { .. }), "{mode:o}: {e}");
            assert!(e.to_string().contains("must be 0700"), "{e}");
        }
    }

    #[test]
    fn a_dir_of_another_uid_is_refused() {
        let d = dir_with_mode(0o700);
        let other = effective_uid().wrapping_add(1);
        let e = check_private_dir(d.path(), &[other]).expect_err("refused");
        assert!(
            e.to_string().contains(&format!(
                "belongs to uid {}, not to uid {other}",
                effective_uid()
            )),
            "{e}"
        );
        // Naming our uid among the accepted ones lets it through.
        check_private_dir(d.path(), &[other, effective_uid()]).expect("trusted");
    }

    #[test]
    fn a_symlink_to_a_private_dir_is_refused() {
        let d = dir_with_mode(0o700);
        let inner = d.path().join("real");
        std::fs::create_dir(&inner).expect("mkdir");
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&inner, &link).expect("symlink");
        let e = check_private_dir(&link, &[effective_uid()]).expect_err("refused");
        assert!(matches!(e, UntrustedDir::NotADirectory { .. }), "{e}");
    }
}
