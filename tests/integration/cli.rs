//! `check-config`, `-1` and `--json` as a user runs them.

use std::path::Path;

use crate::harness::{closed_port, dedent, HttpServer, Site, PLUGINS};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn require_plugins() {
    assert!(
        Path::new(PLUGINS).join("check_http").exists(),
        "monitoring-plugins-basic is not installed: run scripts/test, which installs it"
    );
}

#[test]
fn one_pass_reports_real_plugins_and_exits_1_on_failure() {
    require_plugins();
    let http = HttpServer::start();
    let closed = closed_port();
    let site = Site::new(&format!(
        r#"
[hosts.local]
ipv4 = "127.0.0.1"
name = "loopback"

[checks.web]
type = "http"
hosts = ["local"]
port = {port}
string = "test page"
url = "/index.html"

[checks.closed]
type = "command"
hosts = ["local"]
command = ["{PLUGINS}/check_tcp", "-H", "{{addr}}", "-p", "{closed}"]

[checks.ping]
type = "command"
command = ["{PLUGINS}/check_ping", "-H", "127.0.0.1", "-w", "1000,50%", "-c", "2000,100%", "-p", "1"]
"#,
        port = http.port
    ));
    let out = site.run(&["-1"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no line for {id} in:\n{text}"))
            .to_string()
    };
    assert!(line("web/local/ipv4").contains("OK"), "{text}");
    assert!(line("ping ").contains("OK"), "{text}");
    let closed_line = line("closed/local/ipv4");
    assert!(closed_line.contains("CRITICAL"), "{text}");
    assert!(closed_line.contains("loopback"), "{text}");
    // The plugin's output is indented under the failure.
    let after: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("closed/"))
        .collect();
    assert!(
        after[1].starts_with("    ") && after[1].contains("refused"),
        "{text}"
    );

    // Only the web check: exit 0 while the server answers 200, 1 when it
    // answers 500.
    let site_web = Site::new(&dedent(&format!(
        r#"
            [checks.web]
            type = "command"
            command = ["{PLUGINS}/check_http", "-I", "127.0.0.1", "-p", "{}"]
        "#,
        http.port
    )));
    let out = site_web.run(&["-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    http.status.store(500, std::sync::atomic::Ordering::Relaxed);
    let out = site_web.run(&["-1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("CRITICAL"), "{}", stdout(&out));
}

#[test]
fn json_lines_carry_every_field() {
    require_plugins();
    let closed = closed_port();
    let site = Site::new(&dedent(&format!(
        r#"
            [checks.closed]
            type = "command"
            command = ["{PLUGINS}/check_tcp", "-H", "127.0.0.1", "-p", "{closed}"]
            [checks.fine]
            type = "command"
            command = ["{PLUGINS}/check_dummy", "0", "all good|x=1"]
        "#
    )));
    let out = site.run(&["-1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let objs: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0]["name"], "closed");
    assert_eq!(objs[0]["state"], "CRITICAL");
    assert_eq!(objs[0]["exit_code"], 2);
    assert_eq!(objs[1]["state"], "OK");
    assert_eq!(objs[1]["output"], "OK: all good");
    assert_eq!(objs[1]["perfdata"], "x=1");
    assert!(objs[1]["duration"].as_f64().is_some());
    assert_eq!(objs[1]["target"], "fine");
}

#[test]
fn check_config_summarises_and_dump_is_accepted_again() {
    let site = Site::new(&dedent(
        r#"
            [hosts.a]
            ipv4 = "127.0.0.1"
            ipv6 = "::1"
            [checks.p]
            type = "ping"
            hosts = ["a"]
        "#,
    ));
    site.write(
        "site.d/10-more.toml",
        &dedent(
            r#"
                [checks.c]
                type = "command"
                command = ["true"]
            "#,
        ),
    );
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(
        summary.starts_with("OK: 2 checks (3 instances) on 1 hosts from: "),
        "{summary}"
    );
    assert!(summary.contains("10-more.toml"), "{summary}");

    let out = site.run(&["check-config", "--dump"]);
    assert_eq!(out.status.code(), Some(0));
    let again = Site::new(&stdout(&out));
    let out = again.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("OK: 2 checks (3 instances) on 1 hosts"));
}

#[test]
fn bad_configuration_exits_78_naming_file_and_key() {
    let site = Site::new(&dedent(
        r#"
            [checks.c]
            type = "command"
            command = ["true"]
            evry = 3
        "#,
    ));
    for args in [&["check-config"][..], &["-1"], &[]] {
        let out = site.run(args);
        assert_eq!(out.status.code(), Some(78), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("picomon: error: invalid configuration"),
            "{err}"
        );
        assert!(
            err.contains("site.toml: checks.c.evry: unknown key"),
            "{err}"
        );
    }
    let missing = site
        .picomon()
        .args(["check-config", "-c", "nope.toml"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(78));
    assert!(stderr(&missing).contains("nope.toml"));
}

/// Run from `/` (as a unit's ExecStartPre is), an error named
/// `etc/picomon.toml`: the file must be named as picomon was given it.
#[test]
fn run_from_the_root_directory_an_error_names_the_file_with_its_leading_slash() {
    let site = Site::new("bsae_tick = 1\n");
    let out = site
        .picomon()
        .current_dir("/")
        .arg("check-config")
        .arg("-c")
        .arg(site.config())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    let named = format!("\n -> {}: bsae_tick: unknown key", site.config().display());
    assert!(err.contains(&named), "{named:?} not in:\n{err}");
}

#[test]
fn environment_overrides_a_key_and_its_errors_name_the_variable() {
    let site = Site::new(&dedent(
        r#"
            [checks.c]
            type = "command"
            command = ["true"]
        "#,
    ));
    let out = site
        .picomon()
        .env("PICOMON_CHECKS__C__ENABLED", "false")
        .args(["check-config", "-c", "site.toml"])
        .output()
        .expect("run");
    assert!(
        stdout(&out).starts_with("OK: 0 checks (0 instances) on 0 hosts, 1 disabled"),
        "{}",
        stdout(&out)
    );
    let out = site
        .picomon()
        .env("PICOMON_BASE_TICK", "-1")
        .args(["check-config", "-c", "site.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("PICOMON_BASE_TICK: base_tick"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    let site = Site::new("");
    let out = site.picomon().arg("--no-such-flag").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = site.picomon().args(["--json"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "--json needs -1");
}

#[test]
fn hostile_configuration_files_are_refused_without_a_panic() {
    let deep = format!("a = {}1{}\n", "[".repeat(5000), "]".repeat(5000));
    let dotted = format!("{} = 1\n", vec!["a"; 5000].join("."));
    let inline = format!("a = {}{}\n", "{b = ".repeat(5000), "}".repeat(5000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary garbage", (0u8..=255).cycle().take(4096).collect()),
        ("deep nesting", deep.into_bytes()),
        ("deep dotted keys", dotted.into_bytes()),
        ("deep inline tables", inline.into_bytes()),
        (
            "huge integer",
            b"max_parallel = 99999999999999999999999\n".to_vec(),
        ),
        ("huge tick", b"base_tick = 1e300\n".to_vec()),
        ("not a number", b"base_tick = nan\n".to_vec()),
        ("wrong table type", b"checks = 3\n".to_vec()),
        (
            "host as a list",
            b"[[hosts]]\nipv4 = \"1.2.3.4\"\n".to_vec(),
        ),
        (
            "command of numbers",
            b"[checks.c]\ntype = \"command\"\ncommand = [1, 2]\n".to_vec(),
        ),
        (
            "control characters in a name",
            b"[checks.\"a\\nb\"]\ntype = \"command\"\ncommand = [\"true\"]\n".to_vec(),
        ),
        (
            "unknown key under a name with control characters",
            b"[checks.\"a\\nb\"]\ntype = \"command\"\ncommand = [\"true\"]\ntypo = 1\n".to_vec(),
        ),
        (
            "slash in a host key",
            b"[hosts.\"a/b\"]\nipv4 = \"192.0.2.1\"\n".to_vec(),
        ),
        ("negative timeout", b"default_timeout = -2\n".to_vec()),
        ("zero max_parallel", b"max_parallel = 0\n".to_vec()),
    ];
    for (what, bytes) in cases {
        let site = Site::new("");
        std::fs::write(site.config(), &bytes).expect("write");
        let out = site.run(&["check-config"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{what}: {err}");
        assert!(
            err.starts_with("picomon: error: invalid configuration"),
            "{what}: {err}"
        );
        // Every problem names the file at fault, on a line of its own.
        let problems: Vec<&str> = err.lines().filter(|l| l.starts_with(" -> ")).collect();
        // and nothing the file holds breaks those lines: every other one is
        // a problem's own indented continuation.
        assert!(
            err.lines()
                .skip(1)
                .all(|l| l.starts_with(" -> ") || l.starts_with("    ")),
            "{what}: {err}"
        );
        assert!(
            !problems.is_empty() && problems.iter().all(|l| l.contains("site.toml")),
            "{what}: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

#[test]
fn a_password_in_a_world_readable_file_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new(&dedent(
        r#"
            [emails]
            smtp_user = "u"
            smtp_password = "s3cret"
        "#,
    ));
    let mode = |m| {
        std::fs::set_permissions(site.config(), std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    mode(0o644);
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("emails.smtp_password is set in a file anyone"),
        "{}",
        stderr(&out)
    );
    mode(0o600);
    let out = site.run(&["check-config"]);
    assert!(!stderr(&out).contains("anyone"), "{}", stderr(&out));
    // And the password never appears in a dump.
    let out = site.run(&["check-config", "--dump"]);
    assert!(!stdout(&out).contains("s3cret"));
}

#[test]
fn what_check_config_refuses_for_a_bound_the_daemon_refuses_too_instead_of_panicking() {
    // max_parallel = 100000 aborted the daemon; base_tick = 1e-7 made it
    // deaf to SIGTERM; state_dir = "" wrote into the current directory.
    for text in [
        "max_parallel = 100000\n",
        "base_tick = 1e-7\n",
        "state_dir = \"\"\n",
        "state_dir = \"/proc/self\"\n",
        &dedent(
            r#"
                [emails]
                smtp_retry_timeout = 1e-7
            "#,
        ),
    ] {
        let site = Site::new(text);
        let check = site.run(&["check-config"]);
        assert_eq!(check.status.code(), Some(78), "{text}: {}", stderr(&check));
        assert!(stderr(&check).contains("site.toml: "), "{}", stderr(&check));
        let mut daemon = site.daemon(&[]);
        let status = daemon.wait_exit(std::time::Duration::from_secs(30));
        assert_eq!(status.code(), Some(78), "{text}: {}", daemon.stderr());
        assert!(!daemon.stderr().contains("panicked"), "{}", daemon.stderr());
    }
}

#[test]
fn a_check_made_by_environment_variables_alone_is_blamed_on_them() {
    // A key missing from a table the environment made used to be blamed on
    // "configuration", which names nothing an operator can edit.
    let site = Site::new("");
    let out = site
        .picomon()
        .env("PICOMON_CHECKS__WEB__TYPE", "ping")
        .args(["check-config", "-c", "site.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains("PICOMON_CHECKS__WEB__*: checks.web.hosts"),
        "{err}"
    );
    assert!(!err.contains("configuration:"), "{err}");
}

#[test]
fn a_fifo_or_a_device_as_password_or_ca_file_is_refused_at_once() {
    // A FIFO blocked check-config forever; /dev/zero ate 1 GB/s.
    use std::time::{Duration, Instant};
    let site = Site::new("");
    let fifo = site.path("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let big = site.path("big");
    std::fs::write(&big, "x".repeat(2 * 1024 * 1024)).expect("write");
    let dir = site.dir.path().to_path_buf();
    for (key, path, why) in [
        ("smtp_password_file", &fifo, "FIFO"),
        ("smtp_ca_file", &fifo, "FIFO"),
        (
            "smtp_password_file",
            &Path::new("/dev/zero").to_path_buf(),
            "device",
        ),
        (
            "smtp_ca_file",
            &Path::new("/dev/zero").to_path_buf(),
            "device",
        ),
        ("smtp_password_file", &dir, "directory"),
        ("smtp_password_file", &big, "larger than 64 KiB"),
        ("smtp_ca_file", &big, "larger than 1024 KiB"),
    ] {
        let user = match key {
            "smtp_password_file" => "smtp_user = \"u\"\n",
            _ => "",
        };
        site.write(
            "site.toml",
            &dedent(&format!(
                r#"
                    [emails]
                    {user}{key} = {path:?}
                "#
            )),
        );
        let started = Instant::now();
        let mut run = site.daemon(&["check-config"]);
        let status = run.wait_exit(Duration::from_secs(20));
        let err = run.stderr();
        assert_eq!(status.code(), Some(78), "{key} = {path:?}: {err}");
        assert!(
            err.contains(&format!("site.toml: emails.{key}: ")) && err.contains(why),
            "{key} = {path:?}: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    }
}

#[test]
fn a_password_file_anyone_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new("");
    site.write("secret", "s3cret\n");
    let secret = site.path("secret");
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                [emails]
                smtp_user = "u"
                smtp_password_file = {secret:?}
            "#
        )),
    );
    let mode =
        |m| std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(m)).expect("chmod");
    mode(0o644);
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("emails.smtp_password_file")
            && stderr(&out).contains("can be read by anyone"),
        "{}",
        stderr(&out)
    );
    mode(0o640);
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("anyone"), "{}", stderr(&out));
}

#[test]
fn a_group_writable_configuration_is_warned_about_and_a_world_writable_one_refused() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new(&dedent(
        r#"
            [checks.c]
            type = "command"
            command = ["true"]
        "#,
    ));
    let chmod = |m| {
        std::fs::set_permissions(site.config(), std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    chmod(0o664);
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("site.toml: writable by its group (mode 0664)"),
        "{}",
        stderr(&out)
    );
    chmod(0o666);
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("site.toml: writable by anyone (mode 0666)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_fifo_as_a_checks_ca_or_key_file_is_refused_at_once() {
    use std::time::Duration;
    let site = Site::new("");
    let fifo = site.path("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    for (kind, key) in [
        ("https", "ca_file"),
        ("openvpn", "tls_auth"),
        ("openvpn", "tls_crypt"),
    ] {
        site.write(
            "site.toml",
            &dedent(&format!(
                r#"
                    [hosts.h]
                    ipv4 = "127.0.0.1"
                    [checks.c]
                    type = "{kind}"
                    hosts = ["h"]
                    {key} = {fifo:?}
                "#
            )),
        );
        let mut run = site.daemon(&["check-config"]);
        let status = run.wait_exit(Duration::from_secs(20));
        let err = run.stderr();
        assert_eq!(status.code(), Some(78), "{key}: {err}");
        assert!(
            err.contains(&format!("site.toml: checks.c.{key}: ")) && err.contains("FIFO"),
            "{key}: {err}"
        );
    }
}
