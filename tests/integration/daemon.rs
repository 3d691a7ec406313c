//! The daemon: ticks, retry/failure/recovery, no overlapping runs, SIGUSR1,
//! SIGHUP and SIGTERM.

use std::time::Duration;

use crate::harness::{alive, dedent, read_pid, wait_for, Site};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn failure_after_retries_then_recovery() {
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.down("FLAG CRITICAL - down|t=1");
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                [checks.flag]
                type = "command"
                command = ["{plugin}"]
                retry = 2
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("flag: PROBLEM CRITICAL", 1, LONG);
    let log = daemon.stderr();
    // Three failed runs (retry = 2) before the problem is declared.
    let before: &str = log.split("PROBLEM").next().unwrap_or_default();
    assert_eq!(before.matches("flag: CRITICAL in").count(), 3, "{log}");
    assert!(
        !log.contains("t=1"),
        "perfdata leaked into the alert: {log}"
    );

    site.up();
    daemon.wait_log("flag: RECOVERED", 1, LONG);
    let log = daemon.stderr();
    let failed = log
        .split("RECOVERED")
        .next()
        .unwrap_or_default()
        .matches("flag: CRITICAL in")
        .count();
    assert!(log.contains(&format!("({failed} failed runs)")), "{log}");
    // Only one problem, only one recovery.
    assert_eq!(log.matches("PROBLEM").count(), 1, "{log}");
    assert_eq!(log.matches("RECOVERED").count(), 1, "{log}");
}

#[test]
fn a_running_check_is_never_started_twice() {
    let site = Site::new("");
    let lock = site.path("lock");
    let overlap = site.path("overlap");
    let plugin = site.plugin(
        "slow",
        &format!(
            "if ! mkdir {0} 2>/dev/null; then touch {1}; fi\nsleep 0.7\nrmdir {0}\necho SLOW OK",
            lock.display(),
            overlap.display()
        ),
    );
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                [checks.slow]
                type = "command"
                command = ["{plugin}"]
                timeout = 5
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("slow: OK in", 3, LONG);
    // A tick falls within a 0.7 s run unless the machine is very busy:
    // wait for it rather than count on it.
    daemon.wait_log("slow: previous run still going", 1, LONG);
    assert!(!overlap.exists(), "two runs of one check overlapped");
}

#[test]
fn sigusr1_prints_failing_checks_first_and_ticks_now() {
    let site = Site::new("");
    let plugin = site.flag_plugin();
    let ok = site.plugin("ok", "echo 'FINE OK'");
    site.down("FLAG CRITICAL - down|t=1");
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 3600
                default_retry = 0
                [checks.aaa_ok]
                type = "command"
                command = ["{ok}"]
                [checks.zzz_flag]
                type = "command"
                command = ["{plugin}"]
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("zzz_flag: PROBLEM", 1, LONG);
    daemon.wait_log("aaa_ok: OK in", 1, LONG);
    daemon.signal(libc::SIGUSR1);
    wait_for("the status on stdout", LONG, || {
        daemon.stdout().contains("Other checks")
    });
    let out = daemon.stdout();
    let failing = out.find("zzz_flag").expect("failing check listed");
    let other = out.find("aaa_ok").expect("ok check listed");
    assert!(failing < other, "failing checks come first:\n{out}");
    assert!(out.contains("Failing checks: 1"), "{out}");
    assert!(
        out.contains("FLAG CRITICAL - down"),
        "last output shown:\n{out}"
    );
    // The tick is an hour long: a second run can only come from SIGUSR1.
    daemon.wait_log("aaa_ok: OK in", 2, LONG);
}

#[test]
fn sigterm_kills_running_plugins_and_exits_0() {
    let site = Site::new("");
    let pid_file = site.path("plugin.pid");
    let plugin = site.plugin(
        "hang",
        &format!("echo $$ > {}\nexec sleep 100", pid_file.display()),
    );
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 60
                [checks.hang]
                type = "command"
                command = ["{plugin}"]
                timeout = 100
            "#
        )),
    );
    let mut daemon = site.daemon(&[]);
    let pid = read_pid(&pid_file);
    assert!(alive(pid));
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr());
    assert!(!alive(pid), "the plugin outlived picomon");
}

#[test]
fn sighup_keeps_the_old_config_when_the_new_one_is_broken_and_takes_a_good_one() {
    let site = Site::new("");
    let ok = site.plugin("ok", "echo 'FIRST OK'");
    let second = site.plugin("second", "echo 'SECOND OK'");
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                [checks.first]
                type = "command"
                command = ["{ok}"]
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("first: OK in", 1, LONG);

    site.write(
        "site.d/50-broken.toml",
        &dedent(
            r#"
                [checks.second]
                type = "command"
                comand = []
            "#,
        ),
    );
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("reload refused", 1, LONG);
    assert!(
        daemon
            .stderr()
            .contains("50-broken.toml: checks.second.comand"),
        "{}",
        daemon.stderr()
    );
    let runs = daemon.stderr().matches("first: OK in").count();
    daemon.wait_log("first: OK in", runs + 2, LONG);

    site.write(
        "site.d/50-broken.toml",
        &dedent(&format!(
            r#"
                [checks.second]
                type = "command"
                command = ["{second}"]
            "#
        )),
    );
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("configuration reloaded", 1, LONG);
    daemon.wait_log("second: OK in", 1, LONG);
}

#[test]
fn under_journald_log_lines_carry_a_priority_and_no_timestamp() {
    use std::os::unix::fs::MetadataExt;
    let site = Site::new(&dedent(
        r#"
            base_tick = 60
            [checks.c]
            type = "command"
            command = ["true"]
        "#,
    ));
    // journald names the stream it gives as stderr by device and inode;
    // the harness sends stderr to this file (truncated, same inode).
    let err = site.path("daemon.err");
    std::fs::write(&err, "").expect("create stderr file");
    let meta = std::fs::metadata(&err).expect("stat stderr file");
    let mut cmd = site.picomon();
    cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    let daemon = site.spawn_daemon(cmd, &[]);
    daemon.wait_log("<6>INFO  picomon started", 1, LONG);
    let first = daemon
        .stderr()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(first.starts_with('<'), "{first}");
}

#[test]
fn a_journal_stream_inherited_through_a_pipe_does_not_put_priorities_in_the_log() {
    // Under the watchdog, picomon inherits JOURNAL_STREAM but its stderr is
    // the watchdog's pipe: the tail mailed on a crash must read plainly.
    let site = Site::new(&dedent(
        r#"
            base_tick = 60
            [checks.c]
            type = "command"
            command = ["true"]
        "#,
    ));
    let mut cmd = site.picomon();
    cmd.env("JOURNAL_STREAM", "8:12345");
    let daemon = site.spawn_daemon(cmd, &[]);
    daemon.wait_log("INFO  picomon started", 1, LONG);
    let log = daemon.stderr();
    assert!(!log.contains("<6>"), "{log}");
    assert!(log.contains("picomon: INFO  picomon started"), "{log}");
}

#[test]
fn reload_keeps_the_state_of_a_changed_check_and_drops_a_removed_one() {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let gone = site.plugin("gone", "echo 'GONE CRITICAL'; exit 2");
    site.down("FLAG CRITICAL - still down");
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                default_retry = 0
                [checks.flag]
                type = "command"
                command = ["{flag}"]
                [checks.gone]
                type = "command"
                command = ["{gone}"]
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("flag: PROBLEM", 1, LONG);
    daemon.wait_log("gone: PROBLEM", 1, LONG);

    site.write(
        "site.d/10-change.toml",
        &dedent(
            r#"
                [checks.flag]
                timeout = 7
                [checks.gone]
                enabled = false
            "#,
        ),
    );
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("configuration reloaded", 1, LONG);
    assert!(daemon
        .stderr()
        .contains("gone: check switched off (enabled = false), its state kept"));
    let runs = daemon.stderr().matches("flag: CRITICAL in").count();
    daemon.wait_log("flag: CRITICAL in", runs + 2, LONG);
    site.up();
    daemon.wait_log("flag: RECOVERED", 1, LONG);
    let log = daemon.stderr();
    assert_eq!(
        log.matches("flag: PROBLEM").count(),
        1,
        "the changed check kept its state:\n{log}"
    );
    assert!(!log.contains("gone: RECOVERED"), "{log}");
}

#[test]
fn a_check_switched_off_while_failing_and_on_again_continues_its_outage_and_one_removed_closes_it()
{
    let site = Site::new("");
    let gone = site.plugin("gone", "echo 'GONE CRITICAL'; exit 2");
    let main = dedent(&format!(
        r#"
            base_tick = 0.2
            default_retry = 0
            [checks.keep]
            type = "command"
            command = ["true"]
            [checks.gone]
            type = "command"
            command = ["{gone}"]
        "#
    ));
    site.write("site.toml", &main);
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("gone: PROBLEM", 1, LONG);

    site.write(
        "site.d/10-off.toml",
        &dedent(
            r#"
                [checks.gone]
                enabled = false
            "#,
        ),
    );
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("configuration reloaded", 1, LONG);
    daemon.wait_log(
        "gone: check switched off (enabled = false), its state kept",
        1,
        LONG,
    );

    std::fs::remove_file(site.path("site.d/10-off.toml")).expect("switch it on again");
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("configuration reloaded", 2, LONG);
    let runs = daemon.stderr().matches("gone: CRITICAL in").count();
    daemon.wait_log("gone: CRITICAL in", runs + 2, LONG);
    let log = daemon.stderr();
    assert_eq!(
        log.matches("gone: PROBLEM").count(),
        1,
        "one outage, one Problem:\n{log}"
    );

    site.write(
        "site.toml",
        &dedent(
            r#"
                base_tick = 0.2
                default_retry = 0
                [checks.keep]
                type = "command"
                command = ["true"]
            "#,
        ),
    );
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("configuration reloaded", 3, LONG);
    daemon.wait_log("gone: NO LONGER MONITORED", 1, LONG);
}

#[test]
fn a_reload_naming_a_fifo_as_the_password_file_is_refused_and_the_daemon_goes_on() {
    let site = Site::new(&dedent(
        r#"
            base_tick = 0.1
            [checks.c]
            type = "command"
            command = ["true"]
        "#,
    ));
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("c: OK in", 1, LONG);
    let fifo = site.path("password.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    site.write(
        "site.d/50-secret.toml",
        &dedent(&format!(
            r#"
                [emails]
                smtp_user = "picomon"
                smtp_password_file = "{}"
            "#,
            fifo.display()
        )),
    );
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("reload refused", 1, LONG);
    assert!(
        daemon.stderr().contains("smtp_password_file"),
        "{}",
        daemon.stderr()
    );
    // Still ticking, and still stoppable.
    let runs = daemon.stderr().matches("c: OK in").count();
    daemon.wait_log("c: OK in", runs + 3, LONG);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(LONG).code(), Some(0));
}

/// The group warning was said twice at every start, once by the
/// configuration and once more when the state store opened the directory.
#[test]
fn a_group_writable_state_dir_is_warned_about_once() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new("");
    let state = site.path("state");
    std::fs::create_dir(&state).expect("mkdir state");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o770)).expect("chmod");
    site.write(
        "site.toml",
        &format!(
            r#"base_tick = 0.2
state_dir = {state:?}

[checks.up]
type = "command"
command = ["true"]
"#
        ),
    );
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("up: OK in", 2, LONG);
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit(LONG);
    let warned = daemon.stderr().matches("writable by its group").count();
    assert_eq!(warned, 1, "{}", daemon.stderr());
}
