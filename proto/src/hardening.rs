//! Keeping secrets out of core dumps. Both binaries hold tokens and values in memory; a
//! crash must not write them to disk.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// How far [`no_core_dumps`] goes with `RLIMIT_CORE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreLimit {
    /// Soft and hard limit 0: nothing in this process can turn dumps back on (the daemon).
    Locked,
    /// Soft limit 0, the hard limit left as it was: children started later inherit 0 but
    /// may raise it for themselves (`keygate exec`'s child, a program being debugged).
    SoftOnly,
}

/// Turns core dumps off for this process: `RLIMIT_CORE` 0, and `PR_SET_DUMPABLE` 0, which
/// also stops the kernel from dumping to a pipe (`core_pattern = |…`, where the rlimit is
/// not always obeyed) and keeps other processes of the same user from attaching with
/// ptrace or reading `/proc/PID/mem`. Call it first thing in `main`.
///
/// `PR_SET_DUMPABLE` does not outlive an `exec`: a child keygate starts is dumpable again.
pub fn no_core_dumps(limit: CoreLimit) -> std::io::Result<()> {
    let maximum = match limit {
        CoreLimit::Locked => Some(0),
        CoreLimit::SoftOnly => getrlimit(Resource::Core).maximum,
    };
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum,
        },
    )?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}
