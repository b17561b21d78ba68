//! Helpers for the `GET /metrics` tests (`tests/tests/metrics.rs`): two parsers that
//! share nothing with keygate's encoder — the Prometheus project's Python parser (PyPI
//! `prometheus_client`, in a venv under the target directory, driven by
//! `tests/metrics/parse.py`) and `promtool check metrics` (Debian's `prometheus`
//! package, unpacked under the target directory when it is not on `PATH`). Each skips
//! with a loud `skipped:` line where it cannot be had, and fails instead when
//! `KEYGATE_REQUIRE_METRICS_PARSER=1` (CI).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::pyvenv;

/// The Python parser, pinned.
pub const PARSER: &str = "prometheus_client==0.26.0";

/// The variable that makes a missing parser a failure.
const REQUIRE: &str = "KEYGATE_REQUIRE_METRICS_PARSER";

fn available(what: &str, found: Result<PathBuf, String>) -> Option<PathBuf> {
    match found {
        Ok(path) => Some(path),
        Err(why) => {
            assert!(
                std::env::var(REQUIRE).as_deref() != Ok("1"),
                "{REQUIRE}=1 but {what} cannot be set up: {why}"
            );
            println!("skipped: no {what} here ({why})");
            eprintln!("skipped: no {what} here ({why})");
            None
        }
    }
}

/// The venv's Python with [`PARSER`], or `None` (skipped).
pub fn python() -> Option<PathBuf> {
    available(
        "Python prometheus_client parser",
        pyvenv::venv("metrics-venv", PARSER),
    )
}

/// `promtool`, or `None` (skipped).
pub fn promtool() -> Option<PathBuf> {
    available("promtool", find_promtool())
}

fn find_promtool() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
    {
        return Ok(path);
    }
    // Installing the package would start a Prometheus server; the binary alone will do.
    let target = pyvenv::target_dir()?;
    let dir = target.join("promtool");
    let promtool = dir.join("usr/bin/promtool");
    let lock = std::fs::File::create(target.join("promtool.lock"))
        .map_err(|e| format!("cannot create promtool's lock file: {e}"))?;
    lock.lock()
        .map_err(|e| format!("cannot lock promtool's directory: {e}"))?;
    if promtool.is_file() {
        return Ok(promtool);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let debs = dir.join("deb");
    std::fs::create_dir_all(&debs).map_err(|e| format!("cannot make {}: {e}", debs.display()))?;
    pyvenv::run(
        Command::new("apt-get")
            .args(["download", "-qq", "prometheus"])
            .current_dir(&debs),
        "apt-get download prometheus",
    )?;
    let deb = std::fs::read_dir(&debs)
        .map_err(|e| format!("cannot read {}: {e}", debs.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    pyvenv::run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir),
        "dpkg-deb -x",
    )?;
    let _ = std::fs::remove_dir_all(&debs);
    if promtool.is_file() {
        Ok(promtool)
    } else {
        Err("the prometheus package holds no usr/bin/promtool".into())
    }
}

/// Runs `program args` with `input` on stdin; (success, stdout, stderr).
fn pipe(program: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the exposition");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The families the Python parser reads in `text` (it must accept all of it).
pub fn parse(python: &Path, text: &str) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("metrics/parse.py");
    let script = script.to_string_lossy();
    let (ok, out, err) = pipe(python, &[&script], text);
    assert!(
        ok,
        "prometheus_client refused the exposition: {err}\n{text}"
    );
    serde_json::from_str(&out).expect("parse.py's JSON")
}

/// Fails unless `promtool check metrics` accepts `text` with nothing to say.
pub fn promtool_check(promtool: &Path, text: &str) {
    let (ok, out, err) = pipe(promtool, &["check", "metrics"], text);
    assert!(
        ok && out.trim().is_empty() && err.trim().is_empty(),
        "promtool check metrics: {out}{err}\n{text}"
    );
}

/// The value of the sample `name` whose labels include every pair of `labels`, in
/// families from [`parse`]; `None` when there is none.
pub fn sample(families: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().into_iter().flatten())
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| s["labels"][*k].as_str() == Some(v))
        })
        .and_then(|s| s["value"].as_f64())
}

/// The family named `name` (a counter's without `_total`) and its type.
pub fn family_type(families: &[Value], name: &str) -> Option<String> {
    families
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["type"].as_str().map(str::to_owned))
}

/// Every label value in the families, for checking none holds a secret.
pub fn label_values(families: &[Value]) -> Vec<String> {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().into_iter().flatten())
        .filter_map(|s| s["labels"].as_object())
        .flat_map(|l| l.values().filter_map(|v| v.as_str().map(str::to_owned)))
        .collect()
}
