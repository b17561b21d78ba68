//! Where keygate keeps its files: the XDG base directories, as SPEC.md lays them out.
//!
//! Each base can be moved with its XDG variable, which is how the tests give every daemon
//! its own tree.

use std::path::PathBuf;

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

/// The real user id of this process, read without `unsafe`: the owner of `/proc/self`
/// on Linux, else of a file we create.
pub fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    if let Ok(m) = std::fs::metadata("/proc/self") {
        return m.uid();
    }
    tempfile_uid().unwrap_or(0)
}

fn tempfile_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let p = std::env::temp_dir().join(format!("keygate-uid-probe-{}", std::process::id()));
    std::fs::write(&p, b"").ok()?;
    let uid = std::fs::metadata(&p).ok().map(|m| m.uid());
    let _ = std::fs::remove_file(&p);
    uid
}
