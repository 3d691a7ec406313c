//! Overload (issue 21, item 8): more runs due than the machine (here: the
//! plugin loop's `max_parallel`) can run is one fact about the daemon. It
//! is said once, with figures, not as a line per check, and `picomon
//! status` shows it.

use std::time::Duration;

use crate::harness::Site;

#[test]
fn thirty_checks_more_than_picomon_can_run_log_one_falling_behind_line_not_thirty_skipped_run_lines(
) {
    let site = Site::new("");
    let slow = site.plugin("slow", "sleep 0.2");
    let mut config = format!(
        r#"
base_tick = 1
max_parallel = 2
state_dir = "{}"
"#,
        site.path("state").display()
    );
    // 30 due a second; two at a time of 0.2 s each run 10 a second.
    for n in 0..30 {
        config.push_str(&format!(
            r#"
[checks.c{n:02}]
type = "command"
command = ["{slow}"]
"#
        ));
    }
    site.write("site.toml", &config);
    let daemon = site.daemon(&[]);
    daemon.wait_log("falling behind: ", 1, Duration::from_secs(60));
    let log = daemon.stderr();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("falling behind"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(
        said[0].contains("falling behind: 30 runs due per second, "),
        "{log}"
    );
    assert_eq!(
        log.matches("previous run still going").count(),
        0,
        "a line per check:\n{log}"
    );

    let out = site.run(&["status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Falling behind in the last minute: 30 runs due per second, "),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
