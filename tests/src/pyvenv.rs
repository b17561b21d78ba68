//! Python virtual environments for tests that drive keygate through an outside Python
//! package (the MCP SDK, the Prometheus parser): one per package, made once under the
//! target directory and kept for later runs, behind a lock so parallel tests make it once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bin;

/// The Python of `target/<name>`, a venv with `spec` (an exact `package==version`)
/// installed; made on first use. `Err` says why it cannot be made here.
pub fn venv(name: &str, spec: &str) -> Result<PathBuf, String> {
    let target = target_dir()?;
    let dir = target.join(name);
    let python = dir.join("bin/python");
    let stamp = dir.join("keygate-ready");
    // One test process makes it; the others wait here for it.
    let lock = std::fs::File::create(target.join(format!("{name}.lock")))
        .map_err(|e| format!("cannot create the venv's lock file: {e}"))?;
    lock.lock()
        .map_err(|e| format!("cannot lock the venv: {e}"))?;
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == spec) && python.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&dir);
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&dir),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    )?;
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            spec,
        ]),
        &format!("pip install {spec}"),
    )?;
    std::fs::write(&stamp, spec).map_err(|e| format!("cannot mark the venv ready: {e}"))?;
    Ok(python)
}

/// The target directory the workspace's binaries were built into (`target/`).
pub fn target_dir() -> Result<PathBuf, String> {
    let keygate = bin("keygate");
    keygate
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| "no target directory".to_owned())
}

/// Runs `cmd` to its end; `Err` with its stderr when it fails.
pub fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
