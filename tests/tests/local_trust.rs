//! The red-team findings about what a machine's own users and programs can get at
//! (docs/security.md, findings 2, 8 and 9, and the https token question): a socket planted
//! by another local user (uid 65534, "nobody") where the CLI looks for the daemon, a
//! runtime directory made by someone else, core dumps, a child that turns its pty's output
//! processing on, and the local operator token sent to an `https://` URL.
//!
//! The tests that play two users need root (`setpriv`, chown), as CI has; without it they
//! fail and say why, rather than pass having proved nothing.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keygate_tests::{bin, poll};

/// The other local user the attacker runs as.
const NOBODY: u32 = 65534;

/// This process's real uid, from `/proc/self/status`.
fn my_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("Uid line")
}

/// Checks that we can play two users: root, with `setpriv` and a python3 that uid 65534
/// can run. A machine that cannot is told so loudly: these tests never pass unrun.
fn can_switch_users() -> bool {
    assert_eq!(
        my_uid(),
        0,
        "this test needs root to run an attacker as another user (CI runs as root)"
    );
    let ok = Command::new("setpriv")
        .args(as_nobody())
        .args([PYTHON, "-c", "pass"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs `setpriv ... {PYTHON}` to run as uid {NOBODY} (util-linux, python3)"
    );
    true
}

const PYTHON: &str = "/usr/bin/python3";

fn as_nobody() -> [String; 3] {
    [
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_owned(),
    ]
}

/// A directory anyone may write into, as `/tmp` is (1777): the test's own `/tmp`.
fn shared_tmp() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    dir
}

/// The attacker: as uid 65534, makes the socket's directory (0777) and listens on the
/// socket, and records every connection as a line `LENGTH:HEX` once it closes (or has
/// been quiet for a moment after sending something).
const FAKE_DAEMON: &str = r"
import os, socket, sys
path, record = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(path), exist_ok=True)
os.chmod(os.path.dirname(path), 0o777)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(16)
open(record + '.ready', 'w').close()
while True:
    c, _ = s.accept()
    data = b''
    c.settimeout(10)
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
            c.settimeout(0.5)
    except OSError:
        pass
    c.close()
    with open(record, 'a') as f:
        f.write('%d:%s\n' % (len(data), data.hex()))
";

struct FakeDaemon {
    child: Child,
    socket: PathBuf,
    record: PathBuf,
}

impl FakeDaemon {
    fn start(socket: &Path, record: &Path) -> Self {
        let child = Command::new("setpriv")
            .args(as_nobody())
            .args([PYTHON, "-c", FAKE_DAEMON])
            .arg(socket)
            .arg(record)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the fake daemon");
        let mut fake = Self {
            child,
            socket: socket.to_path_buf(),
            record: record.to_path_buf(),
        };
        let ready = record.with_extension("ready");
        poll(Duration::from_secs(10), "the fake daemon", || {
            if let Ok(Some(status)) = fake.child.try_wait() {
                panic!("the fake daemon exited: {status}");
            }
            ready.exists().then_some(())
        });
        fake
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Connects, sends a marker and waits until it is recorded: every connection made
    /// before it has been recorded by then (the fake takes them in order). Returns the
    /// lengths of every connection recorded so far, markers left out.
    fn settle(&self) -> Vec<usize> {
        let marker = "6:534554544c45"; // "SETTLE", as the fake records it
        let markers = |lines: &[String]| lines.iter().filter(|l| *l == marker).count();
        let before = markers(&self.lines());
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).expect("connect");
        s.write_all(b"SETTLE").expect("write");
        drop(s);
        let lines = poll(Duration::from_secs(10), "the marker", || {
            let lines = self.lines();
            (markers(&lines) > before).then_some(lines)
        });
        lines
            .iter()
            .filter(|l| *l != marker)
            .map(|l| {
                l.split(':')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("length")
            })
            .collect()
    }

    /// Everything the fake received, decoded.
    fn received(&self) -> String {
        self.lines()
            .iter()
            .filter_map(|l| l.split(':').nth(1))
            .map(|hex| {
                let bytes: Vec<u8> = (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .collect()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The victim's `keygate`, with no `XDG_RUNTIME_DIR` (so it falls back to
/// `$TMPDIR/keygate-$UID`) and an operator token in its config dir.
fn victim(tmp: &Path, args: &[&str]) -> Command {
    let config = tmp.join("victim-config");
    std::fs::create_dir_all(config.join("keygate")).expect("config dir");
    std::fs::write(config.join("keygate/operator.token"), format!("{TOKEN}\n")).expect("token");
    let mut cmd = Command::new(bin("keygate"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", tmp)
        .env("XDG_CONFIG_HOME", &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

const TOKEN: &str = "kgo_victims-operator-token-0123456789";
const VALUE: &str = "value-the-victim-stores-4f7e";

/// Runs `keygate secrets set prod/db` with the value on stdin; returns (code, stderr).
fn secrets_set(mut cmd: Command) -> (i32, String) {
    let mut child = cmd.spawn().expect("keygate");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(VALUE.as_bytes());
    }
    let out = child.wait_with_output().expect("keygate output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_clean_line(stderr: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        !stderr.contains(TOKEN) && !stderr.contains(VALUE),
        "{stderr}"
    );
}

#[test]
fn the_cli_refuses_a_runtime_dir_planted_by_another_user() {
    if !can_switch_users() {
        return;
    }
    let tmp = shared_tmp();
    let socket = tmp
        .path()
        .join(format!("keygate-{}/keygated.sock", my_uid()));
    let fake = FakeDaemon::start(&socket, &tmp.path().join("record"));

    let (code, stderr) = secrets_set(victim(tmp.path(), &["secrets", "set", "prod/db"]));
    assert_eq!(code, 6, "{stderr}");
    assert_one_clean_line(&stderr);
    assert!(
        stderr.contains("refusing the daemon's socket directory")
            && stderr.contains(&format!("belongs to uid {NOBODY}")),
        "{stderr}"
    );
    assert!(
        fake.settle().is_empty(),
        "the CLI connected to the planted socket"
    );
    assert!(!fake.received().contains(TOKEN));
}

#[test]
fn the_cli_checks_who_listens_before_it_sends_a_byte() {
    if !can_switch_users() {
        return;
    }
    let tmp = shared_tmp();
    // A socket named explicitly: no directory rule applies, the peer check does.
    let socket = tmp.path().join("elsewhere/keygated.sock");
    let fake = FakeDaemon::start(&socket, &tmp.path().join("record"));
    let url = format!("unix://{}", socket.display());

    let mut cmd = victim(tmp.path(), &["secrets", "set", "prod/db"]);
    cmd.env("KEYGATE_URL", &url);
    let (code, stderr) = secrets_set(cmd);
    assert_eq!(code, 6, "{stderr}");
    assert_one_clean_line(&stderr);
    assert!(
        stderr.contains(&format!("runs as uid {NOBODY}")) && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    assert_eq!(
        fake.settle(),
        vec![0],
        "one connection, and not a byte sent on it"
    );

    // The check, not chance, is what kept the token: naming that uid as the daemon's
    // lets the CLI talk to it.
    let mut cmd = victim(tmp.path(), &["secrets", "set", "prod/db"]);
    cmd.env("KEYGATE_URL", &url)
        .env("KEYGATE_DAEMON_UID", NOBODY.to_string());
    let (code, _) = secrets_set(cmd);
    assert_ne!(code, 0, "the fake never answers");
    assert_eq!(fake.settle().len(), 2);
    assert!(fake.received().contains(TOKEN), "{:?}", fake.received());

    let mut cmd = victim(tmp.path(), &["status"]);
    cmd.env("KEYGATE_DAEMON_UID", "nobody");
    let out = cmd.output().expect("keygate");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `keygated serve` with no `XDG_RUNTIME_DIR` and `TMPDIR` in `tmp`.
fn daemon_in(tmp: &Path) -> Command {
    let mut cmd = Command::new(bin("keygated"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", tmp)
        .env("XDG_CONFIG_HOME", tmp.join("config"))
        .env("XDG_DATA_HOME", tmp.join("data"))
        .env("XDG_STATE_HOME", tmp.join("state"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .stdin(Stdio::null());
    cmd
}

/// Starts the daemon and expects it to refuse; returns its error line.
fn daemon_refuses(tmp: &Path) -> String {
    let out = daemon_in(tmp).output().expect("keygated");
    assert!(!out.status.success(), "it served: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("keygated: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_owned()
}

#[test]
fn the_daemon_refuses_a_runtime_dir_it_does_not_own_or_others_can_reach() {
    assert_eq!(
        my_uid(),
        0,
        "this test needs root to chown (CI runs as root)"
    );
    let tmp = shared_tmp();
    let dir = tmp.path().join(format!("keygate-{}", my_uid()));
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;

    // Made by another user, even a private one: refused, and left as it was.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let line = daemon_refuses(tmp.path());
    assert!(
        line.contains("refusing the socket directory")
            && line.contains(&format!("belongs to uid {NOBODY}")),
        "{line}"
    );
    assert!(
        !tmp.path().join("state/keygate/audit.jsonl").exists(),
        "it refused only after starting"
    );
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), NOBODY);
    assert_eq!(mode(&dir), 0o700);
    assert!(!dir.join("keygated.sock").exists());

    // Ours, but open to everyone: refused too, and not chmodded behind anyone's back.
    std::os::unix::fs::chown(&dir, Some(my_uid()), Some(0)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let line = daemon_refuses(tmp.path());
    assert!(
        line.contains("has mode 0777") && line.contains("must be 0700"),
        "{line}"
    );
    assert_eq!(mode(&dir), 0o777);
    assert!(!dir.join("keygated.sock").exists());

    // A symlink to a private directory is not one.
    std::fs::remove_dir(&dir).unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, &dir).unwrap();
    let line = daemon_refuses(tmp.path());
    assert!(line.contains("is not a directory"), "{line}");
}

#[test]
fn without_xdg_runtime_dir_daemon_and_cli_meet_in_a_private_fallback() {
    let tmp = shared_tmp();
    let mut daemon = daemon_in(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keygated");
    let dir = tmp.path().join(format!("keygate-{}", my_uid()));
    poll(Duration::from_secs(20), "the fallback socket", || {
        if let Ok(Some(status)) = daemon.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = daemon.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("keygated exited ({status}): {err}");
        }
        std::os::unix::net::UnixStream::connect(dir.join("keygated.sock"))
            .ok()
            .map(|_| ())
    });
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    assert_eq!(meta.uid(), my_uid());
    // The CLI, with the daemon's own operator token, finds it there.
    let out = Command::new(bin("keygate"))
        .arg("status")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join("config"))
        .output()
        .expect("keygate");
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(out.status.success(), "{out:?}");
}

/// `Max core file size` in `/proc/PID/limits`: (soft, hard), as written there.
fn core_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line");
    let mut fields = line["Max core file size".len()..].split_whitespace();
    let soft = fields.next().expect("soft").to_owned();
    let hard = fields.next().expect("hard").to_owned();
    (soft, hard)
}

/// Who owns `/proc/PID/status`: the process's own uid while it is dumpable, root once it
/// is not (`PR_SET_DUMPABLE` 0; the kernel keeps the `/proc/PID` directory itself with
/// the process's uid). Only telling for a process that does not run as root.
fn proc_owner(pid: u32) -> u32 {
    std::fs::metadata(format!("/proc/{pid}/status"))
        .expect("/proc/PID/status")
        .uid()
}

/// `setpriv` as uid 65534, after raising the soft core limit to the hard one: a limit of
/// 0 that the process then shows is its own doing.
fn nobody_with_cores() -> Command {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"ulimit -S -c "$(ulimit -H -c)" && exec setpriv "$@""#,
        "sh",
    ])
    .args(as_nobody());
    cmd
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            chown_tree(&entry.expect("entry").path(), uid);
        }
    }
}

#[test]
fn keygated_and_a_waiting_keygate_cannot_dump_core() {
    if !can_switch_users() {
        return;
    }
    // Everything runs as uid 65534, so that `/proc/PID`'s owner tells dumpable (65534)
    // from not (root). No XDG_RUNTIME_DIR: the fallback also proves the uid is still
    // known once `/proc/self` belongs to root.
    let tmp = shared_tmp();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("config/keygate")).unwrap();
    std::fs::write(
        home.join("config/keygate/policies.toml"),
        keygate_tests::POLICY,
    )
    .unwrap();
    chown_tree(&home, NOBODY);
    let env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMPDIR", tmp.path())
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("KEYGATE_SECRET_STORE", "memory")
            .stdin(Stdio::null());
    };
    let mut cmd = nobody_with_cores();
    cmd.arg(bin("keygated")).arg("serve");
    env(&mut cmd);
    let log = std::fs::File::create(tmp.path().join("keygated.log")).unwrap();
    // Its working directory is where a plain `core_pattern = core` would put a dump.
    let mut daemon = cmd
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let socket = tmp.path().join(format!("keygate-{NOBODY}/keygated.sock"));
    poll(
        Duration::from_secs(20),
        "keygated's fallback socket",
        || {
            if let Ok(Some(status)) = daemon.try_wait() {
                let log = std::fs::read_to_string(tmp.path().join("keygated.log"));
                panic!("keygated exited ({status}): {log:?}");
            }
            std::os::unix::net::UnixStream::connect(&socket)
                .ok()
                .map(|_| ())
        },
    );

    // The operator, as root, talking to a daemon of uid 65534: it has to say so.
    let operator = std::fs::read_to_string(home.join("config/keygate/operator.token"))
        .unwrap()
        .trim()
        .to_owned();
    let url = format!("unix://{}", socket.display());
    let keygate = |args: &[&str]| {
        let out = Command::new(bin("keygate"))
            .args(args)
            .env_clear()
            .env("KEYGATE_URL", &url)
            .env("KEYGATE_TOKEN", &operator)
            .env("KEYGATE_DAEMON_UID", NOBODY.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "keygate {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut set = Command::new(bin("keygate"));
    set.args(["secrets", "set", "github/token"])
        .env_clear()
        .env("KEYGATE_URL", &url)
        .env("KEYGATE_TOKEN", &operator)
        .env("KEYGATE_DAEMON_UID", NOBODY.to_string());
    let (code, stderr) = {
        set.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        secrets_set(set)
    };
    assert_eq!(code, 0, "{stderr}");
    let agent = keygate(&["agents", "add", "ci-one"]).trim().to_owned();

    // An agent's `keygate get`, as uid 65534, at the default (fallback) socket.
    let mut cmd = nobody_with_cores();
    cmd.arg(bin("keygate")).args(["get", "github/token"]);
    env(&mut cmd);
    let get = cmd
        .env("KEYGATE_TOKEN", &agent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = poll(Duration::from_secs(20), "the agent's request", || {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&keygate(&["requests", "--json"])).unwrap();
        list.iter()
            .find(|r| r["status"] == "pending")
            .and_then(|r| r["id"].as_str().map(str::to_owned))
    });

    // The control: a process of uid 65534 that did nothing owns its /proc/PID.
    let mut control = nobody_with_cores().args(["sleep", "60"]).spawn().unwrap();
    let control_owner = poll(Duration::from_secs(10), "the control's exec", || {
        let owner = proc_owner(control.id());
        (owner == NOBODY).then_some(owner)
    });
    let (soft, hard) = core_limits(control.id());
    let _ = control.kill();
    let _ = control.wait();
    assert_eq!(control_owner, NOBODY);
    assert_eq!(
        soft, hard,
        "the soft limit was raised for the processes under test"
    );

    assert_eq!(core_limits(daemon.id()), ("0".into(), "0".into()));
    assert_eq!(proc_owner(daemon.id()), 0, "keygated is dumpable");
    assert_eq!(core_limits(get.id()).0, "0");
    assert_eq!(proc_owner(get.id()), 0, "keygate get is dumpable");

    // And both still work as they did.
    keygate(&["approve", &id]);
    let out = get.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{VALUE}\n"));

    // The crash of the finding: SIGABRT. Where the kernel writes dumps to a plain file in
    // the working directory, none appears.
    let status = Command::new("kill")
        .args(["-ABRT", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = poll(Duration::from_secs(10), "keygated to abort", || {
        daemon.try_wait().ok().flatten()
    });
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&ended),
        Some(6)
    );
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.trim() == "core" {
        let dumps: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
            .collect();
        assert!(dumps.is_empty(), "keygated dumped core: {dumps:?}");
    } else {
        eprintln!("core_pattern is {pattern:?}: not checking for a dump file");
    }
}

#[test]
fn a_multi_line_value_is_masked_when_the_child_turns_onlcr_on() {
    let d = keygate_tests::Daemon::start();
    let agent = d.agent("ci-one");
    d.secret("public/pem", "first-line-4b1c\nsecond-line-9e2d");
    // The child turns output processing on for the pty it writes to (its stdout), so
    // the kernel writes each `\n` of the value as `\r\n`; it shows that it did.
    let child = r#"exec 3>&1; stty opost onlcr <&3; printf '[%s]\n' "$PUBLIC_PEM"; stty -a <&3 | tr ' ' '\n' | grep -Ex -- '-?(opost|onlcr)'"#;
    let line = format!(
        "{} exec -s public/pem -- sh -c \"$CHILD\"",
        bin("keygate").display()
    );
    // `script` (util-linux) gives keygate a terminal for stdout, so the child gets a pty.
    let out = match Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYGATE_URL", format!("unix://{}", d.socket().display()))
        .env("KEYGATE_TOKEN", &agent)
        .env("CHILD", child)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("this test needs `script` (util-linux's bsdutils): {e}"),
    };
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("opost\nonlcr\n"), "the child's pty: {text:?}");
    assert!(text.contains("[<keygate:public/pem>]\n"), "{text:?}");
    assert!(
        !text.contains("first-line-4b1c") && !text.contains("second-line-9e2d"),
        "{text:?}"
    );
}

#[test]
fn an_https_url_without_keygate_token_sends_no_local_token() {
    let (d, url, fp) = keygate_tests::Daemon::start_tls();
    let operator = d.operator_token();

    // The CLI's config dir holds the operator token (the daemon's own), and KEYGATE_URL
    // points at a daemon over the network: the token file is not used.
    let r = d
        .keygate_as("", &["grants"])
        .env_remove("KEYGATE_TOKEN")
        .env("KEYGATE_URL", &url)
        .env("KEYGATE_FINGERPRINT", &fp)
        .run();
    assert_eq!(r.code, 5, "{r:?}");
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("set KEYGATE_TOKEN"), "{}", r.stderr);
    assert!(!r.stderr.contains(&operator), "{}", r.stderr);

    // Nothing reaches the network at all: a listener standing in for the remote daemon
    // sees no connection.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    fake.set_nonblocking(true).unwrap();
    let r = d
        .keygate_as("", &["secrets", "list"])
        .env_remove("KEYGATE_TOKEN")
        .env(
            "KEYGATE_URL",
            &format!("https://{}", fake.local_addr().unwrap()),
        )
        .run();
    assert_eq!(r.code, 5, "{r:?}");
    match fake.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the CLI connected: {other:?}"),
    }

    // With the token named explicitly, the same call goes through.
    let agent = d.agent("ci-remote");
    let r = d
        .keygate_as(&agent, &["grants", "--json"])
        .env("KEYGATE_URL", &url)
        .env("KEYGATE_FINGERPRINT", &fp)
        .run();
    assert_eq!(r.code, 0, "{r:?}");
    // And the operator token still serves the local socket by default.
    let r = d
        .keygate_as("", &["grants", "--json"])
        .env_remove("KEYGATE_TOKEN")
        .run();
    assert_eq!(r.code, 0, "{r:?}");
}
