//! What an operator installs beside the binaries (issue 16): shell completions and man
//! pages generated from the clap definitions, and the systemd units in `dist/systemd/`.
//! Each test checks its artifact with the tool that will consume it (bash, man,
//! systemd-analyze). A missing tool skips loudly, and fails under CI
//! (`KEYGATE_REQUIRE_OPERATOR_TOOLS=1`, set by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keygate_tests::bin;

/// The exposure `systemd-analyze security` may give a shipped unit, at most (SPEC).
const MAX_EXPOSURE: f64 = 2.0;

/// Whether `tool` is on PATH; when not, fails under CI and says it skipped otherwise.
fn have(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var("KEYGATE_REQUIRE_OPERATOR_TOOLS").as_deref() != Ok("1"),
            "KEYGATE_REQUIRE_OPERATOR_TOOLS=1 but `{tool}` is not installed ({test} needs it): \
             .ci/run installs it"
        );
        println!("skipped: {test}: `{tool}` is not installed");
    }
    found
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

#[allow(clippy::unwrap_used)]
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Renders a roff page as `man -l` shows it, off a terminal: plain text on stdout.
fn man_render(page: &Path) -> String {
    let out = run(Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LC_ALL", "C.UTF-8"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "man -l {} warned: {stderr}",
        page.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_sources_the_completion_script() {
    if !have("bash", "bash_sources_the_completion_script") {
        return;
    }
    let keygate = bin("keygate");
    let script = format!(
        "set -e; source <('{}' completions bash); complete -p keygate",
        keygate.display()
    );
    let out = run(Command::new("bash").arg("-c").arg(script));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("-F _keygate keygate"), "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_one_is_a_usage_error() {
    for (shell, mark) in [
        ("bash", "_keygate()"),
        ("zsh", "#compdef keygate"),
        ("fish", "complete -c keygate"),
        ("elvish", "edit:completion:arg-completer[keygate]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(Command::new(bin("keygate")).args(["completions", shell]));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(mark), "{shell}: no {mark:?} in\n{script}");
        // Generated from the same definitions: the subcommands are all there.
        assert!(
            script.contains("secrets") && script.contains("exec"),
            "{shell}"
        );
    }
    let out = Command::new(bin("keygate"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn completions_and_man_need_no_daemon() {
    // No daemon, no token, nowhere to connect: still printed.
    let dir = tempfile::tempdir().unwrap();
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let out = run(Command::new(bin("keygate"))
            .args(args)
            .env("KEYGATE_URL", "unix:///nonexistent/keygated.sock")
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("XDG_CONFIG_HOME", dir.path()));
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn man_renders_the_pages_of_both_binaries() {
    if !have("man", "man_renders_the_pages_of_both_binaries") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    let page = dir.path().join("keygate.1");
    std::fs::write(&page, run(Command::new(bin("keygate")).arg("man")).stdout).unwrap();
    let text = man_render(&page);
    assert!(text.starts_with("keygate(1)"), "{text}");
    for part in [
        "NAME",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "keygate-exec(1)",
        "EXIT CODES",
    ] {
        assert!(text.contains(part), "keygate(1) has no {part}:\n{text}");
    }

    let page = dir.path().join("keygated.8");
    std::fs::write(&page, run(Command::new(bin("keygated")).arg("man")).stdout).unwrap();
    let text = man_render(&page);
    assert!(text.starts_with("keygated(8)"), "{text}");
    for part in ["--config", "SIGHUP", "demo"] {
        assert!(text.contains(part), "keygated(8) has no {part}:\n{text}");
    }

    // --dir: a page per subcommand, nested ones included, each with its own options.
    let pages = dir.path().join("man1");
    std::fs::create_dir(&pages).unwrap();
    run(Command::new(bin("keygate"))
        .args(["man", "--dir"])
        .arg(&pages));
    for name in [
        "keygate.1",
        "keygate-get.1",
        "keygate-secrets-set.1",
        "keygate-completions.1",
    ] {
        assert!(pages.join(name).is_file(), "no {name} in --dir");
    }
    let pages8 = dir.path().join("man8");
    std::fs::create_dir(&pages8).unwrap();
    run(Command::new(bin("keygated"))
        .args(["man", "--dir"])
        .arg(&pages8));
    for name in [
        "keygated.8",
        "keygated-serve.8",
        "keygated-demo.8",
        "keygated-man.8",
    ] {
        assert!(
            pages8.join(name).is_file(),
            "no {name} in keygated man --dir"
        );
    }
    assert!(man_render(&pages8.join("keygated-demo.8")).contains("--once"));
    let text = man_render(&pages.join("keygate-exec.1"));
    for part in ["keygate exec", "--reason", "--grace"] {
        assert!(
            text.contains(part),
            "keygate-exec(1) has no {part}:\n{text}"
        );
    }
}

/// The shipped units, each with its `systemd-analyze` mode flag and the path its
/// ExecStart names (replaced by the built binary for `verify`).
fn units() -> [(PathBuf, &'static [&'static str], &'static str); 2] {
    let dist = repo_root().join("dist/systemd");
    [
        (
            dist.join("keygated.service"),
            &[],
            "/usr/local/bin/keygated",
        ),
        (
            dist.join("user/keygated.service"),
            &["--user"],
            "%h/.cargo/bin/keygated",
        ),
    ]
}

/// systemd-analyze, with a runtime directory of its own (a user manager wants one).
fn analyze(runtime: &Path) -> Command {
    let mut cmd = Command::new("systemd-analyze");
    cmd.env("XDG_RUNTIME_DIR", runtime).env("SYSTEMD_PAGER", "");
    cmd
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    if !have(
        "systemd-analyze",
        "systemd_analyze_verify_accepts_the_units",
    ) || !have("man", "systemd_analyze_verify_accepts_the_units")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    // `Documentation=man:keygated(8)` must resolve: the generated page, on MANPATH.
    let man8 = dir.path().join("man/man8");
    std::fs::create_dir_all(&man8).unwrap();
    std::fs::write(
        man8.join("keygated.8"),
        run(Command::new(bin("keygated")).arg("man")).stdout,
    )
    .unwrap();
    let keygated = bin("keygated");
    for (i, (unit, mode, exec_path)) in units().iter().enumerate() {
        let text = std::fs::read_to_string(unit).unwrap();
        assert!(
            text.contains(exec_path),
            "{} names {exec_path}",
            unit.display()
        );
        assert!(text.contains("Documentation=man:keygated(8)"));
        // The same unit, with ExecStart pointing at the binary just built.
        let copy_dir = dir.path().join(format!("unit{i}"));
        std::fs::create_dir(&copy_dir).unwrap();
        let copy = copy_dir.join("keygated.service");
        std::fs::write(
            &copy,
            text.replace(exec_path, &keygated.display().to_string()),
        )
        .unwrap();
        let out = run(analyze(&runtime)
            .arg("verify")
            .args(*mode)
            .arg(&copy)
            .env("MANPATH", dir.path().join("man")));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.trim().is_empty(), "{}: {stderr}", unit.display());
    }
}

/// The overall exposure from `systemd-analyze security` output.
fn exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    line.split_once(": ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn systemd_analyze_security_rates_the_units_two_or_lower() {
    if !have(
        "systemd-analyze",
        "systemd_analyze_security_rates_the_units_two_or_lower",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (unit, mode, _) in units() {
        let out = run(analyze(dir.path())
            .args(["security", "--offline=true", "--no-pager"])
            .args(mode)
            .arg(&unit));
        let report = String::from_utf8_lossy(&out.stdout);
        let score = exposure(&report)
            .unwrap_or_else(|| panic!("no exposure level for {}:\n{report}", unit.display()));
        println!("{}: exposure {score}", unit.display());
        assert!(
            score <= MAX_EXPOSURE,
            "{} rates {score}, above {MAX_EXPOSURE}:\n{report}",
            unit.display()
        );
    }
}

#[test]
fn exposure_is_read_from_the_report() {
    let report = "  NAME  DESCRIPTION  EXPOSURE\n\
                  ✗ PrivateNetwork=  Service has access to the host's network  0.5\n\
                  \n→ Overall exposure level for keygated.service: 1.2 OK 🙂\n";
    assert_eq!(exposure(report), Some(1.2));
    assert_eq!(exposure("nothing"), None);
}

/// Hardening that would break keygated scores better too: these lines keep a lower score
/// from being bought with a daemon that cannot reach Discord, its files or its socket.
#[test]
fn the_units_keep_what_keygated_needs() {
    for (unit, _, _) in units() {
        let text = std::fs::read_to_string(&unit).unwrap();
        let has = |line: &str| text.lines().any(|l| l.trim() == line);
        for line in [
            "LimitCORE=0",
            "NoNewPrivileges=yes",
            "MemoryDenyWriteExecute=yes",
            "StateDirectory=keygate",
            "RuntimeDirectory=keygate",
            "RuntimeDirectoryMode=0700",
            // Discord (outbound HTTPS), the optional TCP listener, the Unix socket.
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "ExecReload=/bin/kill -HUP $MAINPID",
        ] {
            assert!(has(line), "{} lacks {line}", unit.display());
        }
        for line in ["PrivateNetwork=yes", "IPAddressDeny=any"] {
            assert!(
                !has(line),
                "{}: {line} cuts keygated off Discord",
                unit.display()
            );
        }
    }
    let system = std::fs::read_to_string(units()[0].0.clone()).unwrap();
    // No user session under systemd: no Secret Service, so the encrypted file.
    assert!(system.contains("Environment=KEYGATE_SECRET_STORE=file"));
    assert!(system.contains("User=keygate"));
}
