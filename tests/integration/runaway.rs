//! Plugins that misbehave: ones that read picomon's environment, escape
//! their process group, or run so long that every tick warns about them.

use std::time::Duration;

use crate::harness::{alive, dedent, Site};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_plugin_never_sees_picomons_configuration_or_secrets() {
    let site = Site::new(&dedent(
        r#"
            [checks.env]
            type = "command"
            command = ["env"]
            env = { NTFY_TOPIC = "alerts" }
        "#,
    ));
    let mut cmd = site.picomon();
    cmd.args(["-1", "--json", "-c"])
        .arg(site.config())
        .env("PICOMON_EMAILS__SMTP_USER", "picomon")
        .env("PICOMON_EMAILS__SMTP_PASSWORD", "hunter2-secret")
        .env("PICOMON_LOG_LEVEL", "info")
        .env("LANG", "C.UTF-8")
        .env("SOME_OTHER_VARIABLE", "not for plugins");
    let out = cmd.output().expect("run picomon -1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("PATH="), "{stdout}");
    assert!(stdout.contains("LANG=C.UTF-8"), "{stdout}");
    // What the operator gave this check, and only that, is added.
    assert!(stdout.contains("NTFY_TOPIC=alerts"), "{stdout}");
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");
    assert!(!stdout.contains("PICOMON_"), "{stdout}");
    assert!(!stdout.contains("SOME_OTHER_VARIABLE"), "{stdout}");
}

/// Processes whose command line is exactly `words`.
fn processes(words: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = words
        .iter()
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .expect("list /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| alive(*pid))
        .collect()
}

#[test]
fn processes_that_escape_a_plugins_group_with_setsid_are_killed_not_left_behind() {
    // A sleep no other test uses, to count this test's leftovers only.
    let marker = format!("{}", 40_000 + std::process::id() % 10_000);
    let site = Site::new("");
    // The escapee leaves a mark once it has its own session; the plugin
    // ends only then, so that every run really leaves an escaped process
    // (the group kill would otherwise catch one still in the group).
    let marks = site.path("marks");
    std::fs::create_dir(&marks).expect("marks dir");
    let escaper = site.plugin(
        "escaper",
        &format!(
            "setsid sh -c 'touch {marks}/$$; exec sleep {marker}' >/dev/null 2>&1 &\n\
             while [ -z \"$(ls {marks})\" ]; do sleep 0.01; done\n\
             rm -f {marks}/*\n\
             echo 'ESCAPE OK - left a process'",
            marks = marks.display()
        ),
    );
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.1
                [checks.escaper]
                type = "command"
                command = ["{escaper}"]
            "#
        )),
    );
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("escaper: OK in", 20, LONG);
    // Each run's escapee is killed right after its run: never a pile.
    let left = processes(&["sleep", &marker]);
    assert!(
        left.len() <= 2,
        "{} escaped processes alive: {left:?}",
        left.len()
    );
    let log = daemon.stderr();
    assert!(
        log.contains("escaper: the plugin left processes outside its group, killed:"),
        "{log}"
    );
    assert_eq!(
        log.matches("left processes outside its group").count(),
        1,
        "one line a minute, not one a run:\n{log}"
    );
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit(LONG);
    crate::harness::wait_for("no escaped process left", LONG, || {
        processes(&["sleep", &marker]).is_empty()
    });
}

#[test]
fn a_plugin_slower_than_the_tick_is_warned_about_once_a_minute_not_every_tick() {
    let site = Site::new("");
    let slow = site.plugin("slow", "sleep 30");
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.05
                [checks.slow]
                type = "command"
                command = ["{slow}"]
                timeout = 60
            "#
        )),
    );
    let daemon = site.daemon(&["-D"]);
    // 40 ticks in which the check was due while still running.
    daemon.wait_log("started", 40, LONG);
    let log = daemon.stderr();
    assert_eq!(
        log.matches("slow: previous run still going").count(),
        1,
        "{log}"
    );
}
