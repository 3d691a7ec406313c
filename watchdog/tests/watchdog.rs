//! The real picomon-watchdog running the real picomon, with a real SMTP
//! server: crashes, restarts with saved state, reloads, stops, crash loops
//! and hangs. Shares the root package's harness.

// Test and bench code: an expect() is an assertion with its message, and
// the helpers shared between test binaries are `pub` for each other.
#![allow(clippy::expect_used, unreachable_pub)]

#[path = "../../tests/integration/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../../tests/integration/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use harness::{alive, wait_for, Daemon, Site};
use smtp::{Security, SmtpServer};

const LONG: Duration = Duration::from_secs(40);
const SUBJECT: &str = "[picomon] picomon stopped";

/// A site with a check that fails while `down` exists, mail to a local
/// SMTP server, and state in `state/`.
fn site(port: u16, extra: &str) -> Site {
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &format!(
            "base_tick = 0.2\ndefault_retry = 0\nstate_dir = \"{}\"\n{extra}\n[emails]\nto = [\"ops@example.org\"]\nsmtp_host = \"127.0.0.1:{port}\"\nsmtp_retry_timeout = 0.5\n[checks.flag]\ntype = \"command\"\ncommand = [\"{plugin}\"]\n",
            site.path("state").display()
        ),
    );
    site
}

fn watchdog(site: &Site, args: &[&str]) -> Daemon {
    site.spawn_daemon(site.command("picomon-watchdog"), args)
}

/// Waits for the watchdog to run a picomon other than `not` and returns
/// its pid.
#[track_caller]
fn picomon_pid(w: &Daemon, not: Option<u32>) -> u32 {
    let mut pid = None;
    wait_for("a picomon started by the watchdog", LONG, || {
        pid = w.last_pid().filter(|p| Some(*p) != not && alive(*p));
        pid.is_some()
    });
    pid.unwrap_or_default()
}

fn subjects(smtp: &SmtpServer) -> Vec<String> {
    smtp.messages()
        .iter()
        .map(|m| m.header("subject").to_string())
        .collect()
}

#[test]
fn kill_9_of_picomon_is_mailed_and_picomon_restarted() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let w = watchdog(&site, &[]);
    let first = picomon_pid(&w, None);
    w.wait_log("picomon started", 1, LONG);
    harness::signal(first, libc::SIGKILL);
    let second = picomon_pid(&w, Some(first));
    assert_ne!(first, second);
    let msgs = smtp.wait_messages(1, LONG);
    assert_eq!(msgs[0].header("subject"), SUBJECT);
    assert!(
        msgs[0].body.contains("was killed by SIGKILL (9)"),
        "{}",
        msgs[0].body
    );
    assert!(
        msgs[0].body.contains("picomon started"),
        "stderr tail quoted:\n{}",
        msgs[0].body
    );
    assert!(
        msgs[0].body.contains("started again in 1"),
        "{}",
        msgs[0].body
    );
    // picomon's stderr passes through the watchdog's.
    assert!(
        w.stderr().contains("picomon: INFO  picomon started"),
        "{}",
        w.stderr()
    );
}

#[test]
fn a_restart_repeats_no_problem_mail_and_the_recovery_is_threaded() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("FLAG CRITICAL - broken");
    let w = watchdog(&site, &["-D"]);
    let first = picomon_pid(&w, None);
    let problem = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(problem.header("subject"), "[picomon] Problem: flag");
    harness::signal(first, libc::SIGKILL);
    let _second = picomon_pid(&w, Some(first));
    // The new picomon runs the still failing check a few times.
    let runs = w.stderr().matches("flag: CRITICAL in").count();
    w.wait_log("flag: CRITICAL in", runs + 3, LONG);
    site.up();
    wait_for("the OK mail", LONG, || {
        subjects(&smtp).iter().any(|s| s.contains("OK: flag"))
    });
    let msgs = smtp.messages();
    let problems = msgs
        .iter()
        .filter(|m| m.header("subject").contains("Problem"))
        .count();
    assert_eq!(problems, 1, "{:?}", subjects(&smtp));
    let ok = msgs
        .iter()
        .find(|m| m.header("subject").contains("OK: flag"))
        .expect("ok");
    assert_eq!(ok.header("in-reply-to"), problem.header("message-id"));
}

#[test]
fn sighup_through_the_watchdog_keeps_a_broken_config_out_and_takes_a_good_one() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let second = site.plugin("second", "echo 'SECOND OK'");
    let w = watchdog(&site, &["-D"]);
    let pid = picomon_pid(&w, None);
    w.wait_log("flag: OK in", 1, LONG);
    site.write(
        "site.d/50-new.toml",
        "[checks.second]\ntype = \"command\"\ncommand = \"not a list\"\n",
    );
    w.signal(libc::SIGHUP);
    w.wait_log("reload refused", 1, LONG);
    assert!(
        w.stderr().contains("50-new.toml: checks.second.command"),
        "{}",
        w.stderr()
    );
    site.write(
        "site.d/50-new.toml",
        &format!("[checks.second]\ntype = \"command\"\ncommand = [\"{second}\"]\n"),
    );
    w.signal(libc::SIGHUP);
    w.wait_log("second: OK in", 1, LONG);
    assert_eq!(
        w.last_pid(),
        Some(pid),
        "picomon was restarted instead of reloaded"
    );
    assert!(alive(pid));
}

#[test]
fn sigterm_to_the_watchdog_stops_both_without_restart_or_mail() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let mut w = watchdog(&site, &[]);
    let pid = picomon_pid(&w, None);
    w.wait_log("picomon started", 1, LONG);
    w.signal(libc::SIGTERM);
    let status = w.wait_exit(LONG);
    assert_eq!(status.code(), Some(0), "{}", w.stderr());
    wait_for("picomon to be gone", LONG, || !alive(pid));
    assert_eq!(
        w.stderr().matches("started ").count(),
        1,
        "restarted:\n{}",
        w.stderr()
    );
    assert!(subjects(&smtp).is_empty(), "{:?}", subjects(&smtp));
}

/// Under systemd's `KillMode=mixed` only the watchdog gets SIGTERM; it
/// used to drop it while killing a hung picomon, mail "hung" and start a
/// new one.
#[test]
fn sigterm_to_the_watchdog_while_it_kills_a_hung_picomon_stops_both() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let mut w = watchdog(&site, &["--hang-timeout", "1"]);
    let pid = picomon_pid(&w, None);
    w.wait_log("picomon started", 1, LONG);
    harness::signal(pid, libc::SIGSTOP);
    w.wait_log("reported no tick for", 1, LONG);
    // picomon, stopped, ignores the watchdog's SIGTERM: the watchdog waits
    // 5 s before SIGKILL, and gets its own SIGTERM meanwhile.
    w.signal(libc::SIGTERM);
    let status = w.wait_exit(LONG);
    assert_eq!(status.code(), Some(0), "{}", w.stderr());
    assert!(!alive(pid), "the hung picomon is left behind");
    let log = w.stderr();
    assert_eq!(log.matches("started ").count(), 1, "restarted:\n{log}");
    assert!(!log.contains("restarting picomon in"), "{log}");
    assert!(subjects(&smtp).is_empty(), "{:?}", subjects(&smtp));
}

#[test]
fn a_crash_loop_backs_off_and_mails_once() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    // Another holder of state_dir's lock makes every picomon exit 1.
    std::fs::create_dir_all(site.path("state")).expect("mkdir");
    let lock = std::fs::File::create(site.path("state/picomon.lock")).expect("lock file");
    assert_eq!(
        // SAFETY: flock on a descriptor this test owns.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let started = Instant::now();
    let w = watchdog(&site, &[]);
    w.wait_log("restarting picomon in", 4, LONG);
    let log = w.stderr();
    let waits: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("restarting picomon in ").nth(1))
        .collect();
    assert_eq!(waits[..4], ["1s", "2s", "4s", "8s"], "{log}");
    assert!(started.elapsed() >= Duration::from_secs(7), "no back-off");
    assert!(log.contains("in use by another picomon"), "{log}");
    let msgs = smtp.wait_messages(1, LONG);
    assert_eq!(
        msgs.len(),
        1,
        "a crash loop is one mail: {:?}",
        subjects(&smtp)
    );
    assert!(
        msgs[0].body.contains("exited with status 1"),
        "{}",
        msgs[0].body
    );
    drop(lock);
}

#[test]
fn a_frozen_picomon_is_killed_mailed_and_restarted() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let w = watchdog(&site, &["--hang-timeout", "1"]);
    let first = picomon_pid(&w, None);
    w.wait_log("picomon started", 1, LONG);
    harness::signal(first, libc::SIGSTOP);
    let second = picomon_pid(&w, Some(first));
    assert_ne!(first, second);
    wait_for("the frozen picomon to be gone", LONG, || !alive(first));
    let msgs = smtp.wait_messages(1, LONG);
    assert!(
        msgs[0].body.contains("hung: no tick reported for"),
        "{}",
        msgs[0].body
    );
}

#[test]
fn a_configuration_broken_between_runs_is_mailed_once_and_retried_slowly() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let w = watchdog(&site, &[]);
    let first = picomon_pid(&w, None);
    w.wait_log("picomon started", 1, LONG);
    site.write("site.d/90-typo.toml", "base_tik = 3\n");
    harness::signal(first, libc::SIGKILL);
    w.wait_log("restarting picomon in 5m 00s", 1, LONG);
    let msgs = smtp.wait_messages(2, LONG);
    assert!(msgs[0].body.contains("SIGKILL"), "{}", msgs[0].body);
    assert!(
        msgs[1].body.contains("exited with status 78"),
        "{}",
        msgs[1].body
    );
    assert!(
        msgs[1].body.contains("90-typo.toml: base_tik"),
        "the reason is quoted:\n{}",
        msgs[1].body
    );
}

/// Kills a picomon that no harness `Daemon` owns (one whose watchdog was
/// killed) when the test ends, passed or not.
struct Orphan(u32);

impl Drop for Orphan {
    fn drop(&mut self) {
        if alive(self.0) {
            harness::signal(self.0, libc::SIGKILL);
        }
    }
}

/// A watchdog killed with SIGKILL leaves its picomon monitoring; a new
/// watchdog on the same configuration used to crash-loop on "state_dir is
/// in use by another picomon" until someone found and killed the orphan.
#[test]
fn a_new_watchdog_takes_over_from_the_picomon_of_a_killed_one() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let mut first = watchdog(&site, &[]);
    let old = picomon_pid(&first, None);
    let _orphan = Orphan(old);
    first.wait_log("picomon started", 1, LONG);
    first.signal(libc::SIGKILL);
    first.wait_exit(LONG);
    assert!(alive(old), "picomon goes on when its watchdog is killed");

    let second = second_watchdog(&site);
    wait_for("the old picomon to stop", LONG, || !alive(old));
    second.wait_log("stopping it to take over", 1, LONG);
    let new = picomon_pid(&second, Some(old));
    second.wait_log("picomon started", 1, LONG);
    assert!(alive(new));
    assert!(
        !second.stderr().contains("in use by another picomon"),
        "{}",
        second.stderr()
    );

    // Only the new picomon monitors: one outage, one Problem mail.
    site.down("FLAG CRITICAL - broken");
    wait_for("the Problem mail", LONG, || {
        subjects(&smtp).iter().any(|s| s.contains("Problem: flag"))
    });
    site.up();
    wait_for("the OK mail", LONG, || {
        subjects(&smtp).iter().any(|s| s.contains("OK: flag"))
    });
    let problems = subjects(&smtp)
        .iter()
        .filter(|s| s.contains("Problem: flag"))
        .count();
    assert_eq!(problems, 1, "{:?}", subjects(&smtp));
    assert_eq!(second.last_pid(), Some(new), "{}", second.stderr());
}

/// Takeover is only from a picomon no watchdog runs: two watchdogs given
/// one state_dir by mistake must not take turns killing each other's.
#[test]
fn a_second_watchdog_on_the_same_state_dir_leaves_the_first_ones_picomon_alone() {
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let first = watchdog(&site, &[]);
    let pid = picomon_pid(&first, None);
    first.wait_log("picomon started", 1, LONG);
    let second = second_watchdog(&site);
    second.wait_log("restarting picomon in", 1, LONG);
    let log = second.stderr();
    assert!(log.contains("of another watchdog"), "{log}");
    assert!(log.contains("in use by another picomon"), "{log}");
    assert!(alive(pid), "the first watchdog's picomon was stopped");
    assert_eq!(first.last_pid(), Some(pid), "{}", first.stderr());
}

/// A second `picomon-watchdog` for `site`, logging to files of its own.
fn second_watchdog(site: &Site) -> Daemon {
    let (out, err) = (site.path("second.out"), site.path("second.err"));
    let mut cmd = site.command("picomon-watchdog");
    cmd.arg("-c").arg(site.config());
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    Daemon {
        child: cmd.spawn().expect("start the second watchdog"),
        out,
        err,
    }
}

/// `journalctl -u picomon -p warning` showed none of picomon's PROBLEM
/// lines nor its errors: under the watchdog, picomon's standard error is
/// the watchdog's pipe, and picomon wrote plain timestamped lines that
/// the watchdog copied to the journal as they were. The journal stream is
/// stood in for by a file named in `JOURNAL_STREAM` (journald names its
/// stream by device and inode); what journald makes of `<N>` is its
/// SyslogLevelPrefix, read by the Debian package test in a booted system.
#[test]
fn under_journald_picomons_problem_lines_and_errors_reach_the_journal_with_their_priority() {
    use std::os::unix::fs::MetadataExt;
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    // The harness truncates this file for the watchdog's standard error:
    // same device and inode.
    let err = site.path("daemon.err");
    std::fs::write(&err, "").expect("create stderr file");
    let meta = std::fs::metadata(&err).expect("stat stderr file");
    let mut cmd = site.command("picomon-watchdog");
    cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    let w = site.spawn_daemon(cmd, &[]);
    let first = picomon_pid(&w, None);
    site.down("FLAG CRITICAL - disk on fire");
    w.wait_log("flag: PROBLEM CRITICAL", 1, LONG);
    smtp.wait_messages(1, LONG);
    site.up();
    w.wait_log("flag: RECOVERED", 1, LONG);
    // A broken configuration for the next run: picomon's error, and the
    // watchdog's own, at err.
    site.write("site.d/90-typo.toml", "base_tik = 3\n");
    harness::signal(first, libc::SIGKILL);
    w.wait_log("restarting picomon in 5m 00s", 1, LONG);
    let log = w.stderr();

    let line = |needle: &str| -> &str {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{log}"))
    };
    assert!(
        line("flag: PROBLEM CRITICAL").starts_with("<4>WARN  flag: PROBLEM CRITICAL: "),
        "{log}"
    );
    assert!(
        line("flag: RECOVERED").starts_with("<6>INFO  flag: RECOVERED"),
        "{log}"
    );
    assert!(
        line("picomon: error:").starts_with("<3>picomon: error:"),
        "{log}"
    );
    // Each line of a several-line error, too (journald files each line
    // apart).
    assert!(
        line("90-typo.toml: base_tik").starts_with("<3> -> "),
        "{log}"
    );
    // The watchdog's own lines: its start of picomon, its complaint
    // about the configuration, its mail of the crash.
    assert!(line("started ").starts_with("<6>INFO  started "), "{log}");
    assert!(
        log.lines().any(|l| l == "<3>ERROR invalid configuration"),
        "the watchdog's own error about the configuration:\n{log}"
    );
    // Every line is a journal line: a priority and no timestamp (journald
    // stamps each line itself).
    for l in log.lines() {
        let bytes = l.as_bytes();
        assert!(
            bytes.len() >= 3
                && bytes[0] == b'<'
                && (b'0'..=b'7').contains(&bytes[1])
                && bytes[2] == b'>',
            "a line without a priority: {l:?}\n{log}"
        );
        assert!(!l.contains("Z picomon"), "a timestamped line: {l:?}");
    }

    // The mail of the crash quotes picomon's last lines as a reader wants
    // them: the time each arrived, no priority.
    wait_for("the mail of the crash", LONG, || {
        smtp.messages().iter().any(|m| m.body.contains("SIGKILL"))
    });
    let crash = smtp
        .messages()
        .into_iter()
        .find(|m| m.body.contains("SIGKILL"))
        .expect("the crash mail");
    assert!(!crash.body.contains("<4>"), "{}", crash.body);
    assert!(!crash.body.contains("<6>"), "{}", crash.body);
    let quoted = crash
        .body
        .lines()
        .find(|l| l.contains("flag: PROBLEM CRITICAL"))
        .unwrap_or_else(|| panic!("the PROBLEM line is not quoted:\n{}", crash.body));
    // e.g. `2026-12-03T18:30:00.123Z WARN  flag: PROBLEM ...`
    let stamp = quoted.split_whitespace().next().unwrap_or_default();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "no time on {quoted:?}"
    );
}

/// What picomon does not log itself (a panic, the C library's abort
/// message) has no priority: under journald it must not pass as info. A
/// stand-in picomon (`--picomon`) that dies saying so shows it, and that
/// it was asked for journal lines.
#[test]
fn under_journald_what_a_dying_picomon_says_unasked_is_an_error() {
    use std::os::unix::fs::MetadataExt;
    let port = SmtpServer::free_port();
    let site = site(port, "");
    let dying = site.plugin(
        "dying-picomon",
        "echo \"<6>INFO  args: $*\" >&2\necho \"thread 'main' panicked at src/main.rs:1:1:\" >&2\nexit 101",
    );
    let err = site.path("daemon.err");
    std::fs::write(&err, "").expect("create stderr file");
    let meta = std::fs::metadata(&err).expect("stat stderr file");
    let mut cmd = site.command("picomon-watchdog");
    cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    let w = site.spawn_daemon(cmd, &["--picomon", &dying]);
    w.wait_log("exited with status 101", 1, LONG);
    let log = w.stderr();
    assert!(
        log.lines()
            .any(|l| l.starts_with("<6>INFO  args: ") && l.contains("--log-priorities")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l == "<3>thread 'main' panicked at src/main.rs:1:1:"),
        "{log}"
    );
}
