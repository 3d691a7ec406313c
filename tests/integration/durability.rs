//! What must survive faults around the daemon: a closed standard error,
//! a missing heartbeat descriptor, and a state directory that is written
//! when states change, not on every run.

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{closed_port, dedent, wait_for, Site};

const LONG: Duration = Duration::from_secs(30);

/// The state file's inode and modification time: a rewrite changes both.
fn stamp(path: &std::path::Path) -> Option<(u64, i64, i64)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()))
}

#[test]
fn checks_that_keep_their_state_never_rewrite_the_state_file() {
    let site = Site::new("");
    let flag = site.flag_plugin();
    let mut config = dedent(&format!(
        r#"
            base_tick = 0.05
            default_retry = 0
            state_dir = "{}"
        "#,
        site.path("state").display()
    ));
    for n in 0..20 {
        config.push_str(&dedent(&format!(
            r#"
                [checks.ok{n}]
                type = "command"
                command = ["true"]
            "#
        )));
    }
    config.push_str(&dedent(&format!(
        r#"
            [checks.flag]
            type = "command"
            command = ["{flag}"]
        "#
    )));
    site.write("site.toml", &config);
    let state = site.path("state/state.json");
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("ok19: OK in", 20, LONG);
    // Twenty rounds of twenty-one checks, all OK: nothing to remember.
    assert_eq!(
        stamp(&state),
        None,
        "a state file was written for OK checks"
    );

    site.down("FLAG CRITICAL - down");
    daemon.wait_log("flag: PROBLEM", 1, LONG);
    let after_switch = stamp(&state).expect("the switch is on disk");
    let saved = std::fs::read_to_string(&state).expect("read state");
    assert!(saved.contains("\"flag\""), "{saved}");
    assert!(
        !saved.contains("FLAG CRITICAL"),
        "no output in the state: {saved}"
    );
    // Failing on, and the others OK on: a bounded trickle, here nothing
    // within the minute.
    let runs = daemon.stderr().matches("flag: CRITICAL in").count();
    daemon.wait_log("flag: CRITICAL in", runs + 20, LONG);
    assert_eq!(
        stamp(&state),
        Some(after_switch),
        "rewritten while nothing switched"
    );

    site.up();
    daemon.wait_log("flag: RECOVERED", 1, LONG);
    assert_ne!(stamp(&state), Some(after_switch), "the recovery is on disk");
}

#[test]
fn a_picomon_whose_stderr_was_closed_keeps_alerting_and_saving() {
    let site = Site::new("");
    let flag = site.flag_plugin();
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.1
                default_retry = 0
                state_dir = "{}"
                [emails]
                to = ["ops@example.org"]
                smtp_host = "127.0.0.1:{}"
                [checks.flag]
                type = "command"
                command = ["{flag}"]
            "#,
            site.path("state").display(),
            closed_port()
        )),
    );
    let mut cmd = site.picomon();
    cmd.arg("-D").arg("-c").arg(site.config());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start picomon");
    // What a killed watchdog does to picomon: the read end of its stderr
    // goes away.
    drop(child.stderr.take());
    site.down("FLAG CRITICAL - down while nobody reads the log");
    let state = site.path("state/state.json");
    wait_for("the Problem saved in state.json", LONG, || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"failing\":true"))
    });
    wait_for("the Problem mail spooled", LONG, || {
        std::fs::read_dir(site.path("state/outbox")).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
    });
    // A few more ticks of logging into the void, and it is still there.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "picomon died when its stderr closed"
    );
    crate::harness::signal(child.id(), libc::SIGTERM);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_heartbeat_descriptor_that_is_not_open_is_refused_by_name() {
    let site = Site::new(&dedent(
        r#"
            [checks.c]
            type = "command"
            command = ["true"]
        "#,
    ));
    let out = site.run(&["--heartbeat-fd", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--heartbeat-fd 3"), "{stderr}");
}
