//! `picomon status`: the live view of a running daemon over its socket,
//! and exit 3 (Nagios UNKNOWN) for a stopped one, a killed one, a
//! directory no daemon ever ran in, and a configuration without
//! `state_dir`.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::harness::{dedent, shown as text, wait_for, Site};

const LONG: Duration = Duration::from_secs(30);

/// A site with a failing-on-demand check and an OK one, state in
/// `state/`.
fn site() -> Site {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let ok = site.plugin("ok", "echo 'FINE OK - all good'");
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                default_retry = 1
                state_dir = "{}"
                [hosts.web]
                name = "front web"
                ipv4 = "127.0.0.1"
                [checks.aaa_fine]
                type = "command"
                command = ["{ok}"]
                [checks.zzz_flag]
                type = "command"
                hosts = ["web"]
                command = ["{flag}", "{{addr}}"]
            "#,
            site.path("state").display()
        )),
    );
    site
}

#[test]
fn status_shows_a_running_daemon_failing_first_with_its_silence_then_ok_and_exits_1_then_0() {
    let site = site();
    site.down("FLAG CRITICAL - disk on fire|used=99%\nsecond line\n");
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("zzz_flag/web/ipv4: PROBLEM", 1, LONG);
    daemon.wait_log("aaa_fine: OK in", 1, LONG);
    let added = site.run(&[
        "silence",
        "add",
        "zzz_flag/*",
        "--for",
        "1h",
        "--reason",
        "disk swap",
    ]);
    assert!(added.status.success(), "{}", text(&added));

    let out = site.run(&["status"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "Failing checks: 1", "{shown}");
    assert!(
        lines[1].starts_with("  CRITICAL zzz_flag on front web: failing since 20"),
        "{shown}"
    );
    assert!(lines[1].contains(" failed runs)"), "{shown}");
    assert!(
        lines[1].ends_with("by silence 1: disk swap]") && lines[1].contains("[silenced until 20"),
        "{shown}"
    );
    assert_eq!(lines[2], "      FLAG CRITICAL - disk on fire", "{shown}");
    assert_eq!(lines[3], "      second line", "{shown}");
    assert_eq!(lines[4], "Other checks: 1", "{shown}");
    assert!(
        lines[5].starts_with("  OK       aaa_fine, last run 20"),
        "{shown}"
    );

    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let first = &view["instances"][0];
    assert_eq!(first["instance"], "zzz_flag/web/ipv4", "{view}");
    assert_eq!(first["standing"], "failing", "{view}");
    assert_eq!(first["severity"], "CRITICAL", "{view}");
    assert_eq!(first["silenced"]["reason"], "disk swap", "{view}");
    assert!(first["since"].as_u64().is_some(), "{view}");
    assert_eq!(view["pid"], daemon.pid(), "{view}");

    // Only picomon's user (and root) may ask.
    let mode = std::fs::metadata(site.path("state/status.sock"))
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "socket mode {mode:o}");

    site.up();
    daemon.wait_log("zzz_flag/web/ipv4: RECOVERED", 1, LONG);
    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Failing checks: 0\n"),
        "{}",
        text(&out)
    );
}

#[test]
fn status_of_a_stopped_or_killed_daemon_or_of_none_is_unknown_3() {
    let site = site();
    // Never started: no lock, no socket.
    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("UNKNOWN: no picomon is running"),
        "{}",
        text(&out)
    );

    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("aaa_fine: OK in", 1, LONG);
    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_exit(LONG).success());
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["running"], false, "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no picomon is running with state_dir")),
        "{answer}"
    );

    // SIGKILL leaves the socket file behind: still nobody there.
    let mut daemon = site.daemon(&["-D"]);
    wait_for("the status socket", LONG, || {
        site.run(&["status"]).status.code() == Some(0)
    });
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit(LONG);
    assert!(site.path("state/status.sock").exists());
    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no picomon is running"),
        "{}",
        text(&out)
    );
}

#[test]
fn status_without_state_dir_says_it_needs_one_and_is_unknown_3() {
    let site = Site::new(&dedent(
        r#"
            base_tick = 1
            [checks.x]
            type = "command"
            command = ["true"]
        "#,
    ));
    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("state_dir is not set"),
        "{}",
        text(&out)
    );
}
