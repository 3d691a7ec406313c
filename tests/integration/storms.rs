//! Quiet when it should be: storm digests, dependencies and flapping,
//! with the real daemon and a real SMTP server. The tick is an hour long
//! and every tick is started by SIGUSR1, so that "in one tick" is exact,
//! not a race between the test and the clock.

use std::fmt::Write as _;
use std::time::Duration;

use crate::harness::{dedent, wait_for, Daemon, Site};
use crate::smtp::{Received, Security, SmtpServer};

const LONG: Duration = Duration::from_secs(60);

/// A plugin that fails while any of the files its arguments name exists
/// in the site's directory, printing which one, and passes otherwise.
fn flags_plugin(site: &Site) -> String {
    site.plugin(
        "flags",
        &format!(
            "cd {}\nfor f in \"$@\"; do if [ -e \"$f\" ]; then echo \"FLAG CRITICAL - $f is set|x=1\"; exit 2; fi; done\necho 'FLAG OK - fine'",
            site.dir.path().display()
        ),
    )
}

/// Configures `site` so that only SIGUSR1 starts a tick, mailing to
/// `port`, with `body` (hosts and checks) appended.
fn configure(site: &Site, port: u16, globals: &str, body: &str) {
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 3600
                default_retry = 0
                {globals}
                [emails]
                to = ["ops@example.org"]
                from = "Picomon <picomon@monitor.example.org>"
                smtp_host = "127.0.0.1:{port}"
                smtp_retry_timeout = 0.5
                {body}"#
        )),
    );
}

/// `n` hosts h0..h(n-1), all on loopback.
fn hosts(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&dedent(&format!(
            r#"
                [hosts.h{i}]
                ipv4 = "127.0.0.1"
            "#
        )));
    }
    out
}

fn host_list(n: usize) -> String {
    (0..n)
        .map(|i| format!("\"h{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plugin runs the daemon has finished (its debug log has one line each).
fn runs(daemon: &Daemon) -> usize {
    daemon
        .stderr()
        .lines()
        .filter(|l| [": OK in ", ": CRITICAL in "].iter().any(|s| l.contains(s)))
        .count()
}

/// Starts a tick with SIGUSR1 and waits until its `instances` runs are done.
#[track_caller]
fn tick(daemon: &Daemon, instances: usize) {
    let before = runs(daemon);
    daemon.signal(libc::SIGUSR1);
    wait_for(&format!("{instances} more runs"), LONG, || {
        runs(daemon) >= before + instances
    });
}

/// Stops the daemon (which flushes what it owes and delivers its queue)
/// and returns every mail the server got.
#[track_caller]
fn stop(mut daemon: Daemon, smtp: &SmtpServer) -> Vec<Received> {
    daemon.signal(libc::SIGTERM);
    assert_eq!(
        daemon.wait_exit(LONG).code(),
        Some(0),
        "{}",
        daemon.stderr()
    );
    assert!(
        !daemon.stderr().contains("unsent"),
        "every mail was delivered: {}",
        daemon.stderr()
    );
    smtp.messages()
}

#[test]
fn twenty_checks_failing_in_one_tick_make_one_digest_and_their_recoveries_one_reply() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let plugin = flags_plugin(&site);
    configure(
        &site,
        port,
        "",
        &dedent(&format!(
            r#"
                {}[checks.svc]
                type = "command"
                hosts = [{}]
                command = ["{plugin}", "down"]
            "#,
            hosts(20),
            host_list(20)
        )),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("x");
    // Tick 0 runs at start: all twenty fail in it.
    let daemon = site.daemon(&["-D"]);
    let digest = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(
        digest.header("subject"),
        "[picomon] Problem: 20 checks on 20 targets",
        "{:?}",
        digest.headers
    );
    for i in 0..20 {
        assert!(
            digest.body.contains(&format!(
                "CRITICAL svc on h{i}: FLAG CRITICAL - down is set (since "
            )),
            "h{i} listed with its severity and first output line:\n{}",
            digest.body
        );
    }
    assert!(!digest.body.contains("x=1"), "no performance data");
    // All of picomon's checks failed at once: it says so.
    assert!(
        digest.body.contains("monitoring may be blind"),
        "{}",
        digest.body
    );
    let id = digest.header("message-id").to_string();

    site.up();
    tick(&daemon, 20);
    let msgs = smtp.wait_messages(2, LONG);
    let ok = &msgs[1];
    assert_eq!(
        ok.header("subject"),
        "[picomon] OK: 20 checks on 20 targets"
    );
    assert_eq!(
        ok.header("in-reply-to"),
        id,
        "the OK digest threads under the Problem digest"
    );
    assert_eq!(ok.header("references"), id);
    assert!(ok.body.contains("20 checks recovered"), "{}", ok.body);
    assert!(!ok.body.contains("blind"), "{}", ok.body);

    let all = stop(daemon, &smtp);
    assert_eq!(all.len(), 2, "exactly two mails: {:#?}", all);
}

#[test]
fn forty_instances_behind_one_failing_uplink_make_one_problem_mail_listing_them_held() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let plugin = flags_plugin(&site);
    configure(
        &site,
        port,
        "",
        &dedent(&format!(
            r#"
                {}[checks.uplink]
                type = "command"
                command = ["{plugin}", "down-uplink"]
                [checks.svc]
                type = "command"
                hosts = [{}]
                command = ["{plugin}", "down-all", "down-{{host}}"]
                depends = ["uplink"]
            "#,
            hosts(40),
            host_list(40)
        )),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.write("down-uplink", "");
    site.write("down-all", "");
    // Tick 0: the uplink and all forty behind it fail together.
    let daemon = site.daemon(&["-D"]);
    let problem = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(problem.header("subject"), "[picomon] Problem: uplink");
    for i in 0..40 {
        assert!(
            problem.body.contains(&format!("    svc/h{i}/ipv4: held\n")),
            "h{i} listed as held:\n{}",
            problem.body
        );
    }
    assert!(
        problem.body.contains("40 checks depend on this one"),
        "{}",
        problem.body
    );

    // Half of them recover while the uplink is still down: held, and
    // never told, so never mailed.
    std::fs::remove_file(site.path("down-all")).expect("rm");
    for i in 20..40 {
        site.write(&format!("down-h{i}"), "");
    }
    tick(&daemon, 41);
    // SIGUSR1 printed the view before that tick: every child held.
    assert!(
        daemon.stdout().contains("svc on h39: failing since")
            && daemon.stdout().contains("[held: uplink failing]"),
        "{}",
        daemon.stdout()
    );

    // The uplink recovers: its OK mail, and the twenty still failing are
    // told now, in one digest; the twenty that recovered meanwhile are not.
    std::fs::remove_file(site.path("down-uplink")).expect("rm");
    tick(&daemon, 41);
    let msgs = smtp.wait_messages(3, LONG);
    let ok = msgs
        .iter()
        .find(|m| m.header("subject") == "[picomon] OK: uplink")
        .expect("the uplink's OK mail");
    assert_eq!(ok.header("in-reply-to"), problem.header("message-id"));
    let digest = msgs
        .iter()
        .find(|m| m.header("subject") == "[picomon] Problem: 20 checks on 20 targets")
        .unwrap_or_else(|| panic!("a digest of the twenty still failing: {msgs:#?}"));
    for i in 0..40 {
        let listed = digest.body.contains(&format!("svc on h{i}: "));
        assert_eq!(listed, i >= 20, "h{i}:\n{}", digest.body);
    }
    assert!(!digest.body.contains("blind"), "{}", digest.body);

    // They recover: one OK digest in the digest's thread.
    for i in 20..40 {
        std::fs::remove_file(site.path(&format!("down-h{i}"))).expect("rm");
    }
    tick(&daemon, 41);
    let msgs = smtp.wait_messages(4, LONG);
    assert_eq!(
        msgs[3].header("subject"),
        "[picomon] OK: 20 checks on 20 targets"
    );
    assert_eq!(msgs[3].header("in-reply-to"), digest.header("message-id"));
    let all = stop(daemon, &smtp);
    assert_eq!(all.len(), 4, "exactly four mails: {all:#?}");
}

#[test]
fn a_dependency_on_an_unknown_check_or_a_cycle_is_a_configuration_error() {
    for (depends, says) in [
        ("[\"pnig\"]", "checks.svc.depends: unknown check \"pnig\""),
        (
            "[\"svc\"]",
            "checks.svc.depends: dependency cycle: svc -> svc",
        ),
    ] {
        let site = Site::new(&dedent(&format!(
            r#"
                [checks.svc]
                type = "command"
                command = ["true"]
                depends = {depends}
            "#
        )));
        let out = site.run(&["check-config"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn a_check_toggling_every_tick_sends_at_most_two_mails_in_thirty_ticks_then_one_when_it_settles() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let plugin = flags_plugin(&site);
    // The global window, and this check's own limit: more than one switch
    // in ten runs is flapping.
    configure(
        &site,
        port,
        "flap_window = 10",
        &dedent(&format!(
            r#"
                [checks.vpn]
                type = "command"
                command = ["{plugin}", "down"]
                flap_switches = 1
            "#
        )),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("x");
    // Tick 0 fails (the Problem mail), tick 1 recovers: flapping.
    let daemon = site.daemon(&["-D"]);
    // SIGUSR1 before picomon handles it would kill it.
    daemon.wait_log("vpn: CRITICAL in", 1, LONG);
    for t in 1..30 {
        if t % 2 == 1 {
            site.up();
        } else {
            site.down("x");
        }
        tick(&daemon, 1);
        if t == 15 {
            // A reload keeps the flap history: no second flapping mail.
            daemon.signal(libc::SIGHUP);
            daemon.wait_log("configuration reloaded", 1, LONG);
        }
    }
    daemon.wait_log("vpn: FLAPPING", 1, LONG);
    let msgs = smtp.wait_messages(2, LONG);
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert_eq!(msgs[0].header("subject"), "[picomon] Problem: vpn");
    assert_eq!(msgs[1].header("subject"), "[picomon] Flapping: vpn");
    assert!(msgs[1].body.contains("is flapping"), "{}", msgs[1].body);
    assert_eq!(msgs[1].header("in-reply-to"), msgs[0].header("message-id"));

    // Tick 29 left it up: one more switch down, then ten quiet runs
    // settle it there.
    site.down("x");
    for _ in 0..11 {
        tick(&daemon, 1);
    }
    let msgs = smtp.wait_messages(3, LONG);
    assert_eq!(msgs[2].header("subject"), "[picomon] Problem: vpn");
    assert!(msgs[2].body.contains("settled failing"), "{}", msgs[2].body);
    assert_eq!(msgs[2].header("in-reply-to"), msgs[1].header("message-id"));
    // Its recovery now is an ordinary OK mail in that thread.
    site.up();
    tick(&daemon, 1);
    let msgs = smtp.wait_messages(4, LONG);
    assert_eq!(msgs[3].header("subject"), "[picomon] OK: vpn");
    assert_eq!(msgs[3].header("in-reply-to"), msgs[2].header("message-id"));
    let all = stop(daemon, &smtp);
    assert_eq!(all.len(), 4, "{all:#?}");
}

/// Starts a tick and, once `before_flag` of its `instances` runs are
/// done, makes `change` (while the others are still running); waits for
/// the rest of the tick.
#[track_caller]
fn tick_changing_midway(
    daemon: &Daemon,
    instances: usize,
    before_flag: usize,
    change: impl FnOnce(),
) {
    let before = runs(daemon);
    daemon.signal(libc::SIGUSR1);
    wait_for(&format!("{before_flag} runs of the tick"), LONG, || {
        runs(daemon) >= before + before_flag
    });
    change();
    wait_for(&format!("the tick's {instances} runs"), LONG, || {
        runs(daemon) >= before + instances
    });
}

#[test]
fn one_outage_beginning_while_a_tick_runs_is_one_problem_digest_and_one_ok_digest() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    // Runs take 0.1 to 0.5 s, and fail while `down` exists when they end.
    let plugin = site.plugin(
        "slow",
        &format!(
            "sleep \"$1\"\ncd {}\nif [ -e down ]; then echo 'SLOW CRITICAL - down'; exit 2; fi\necho 'SLOW OK - fine'",
            site.dir.path().display()
        ),
    );
    let mut checks = String::new();
    for (i, secs) in ["0.1", "0.2", "0.3", "0.4", "0.5"].iter().enumerate() {
        let _ = write!(
            checks,
            r#"
[checks.s{i}]
type = "command"
hosts = [{hosts}]
command = ["{plugin}", "{secs}"]
"#,
            hosts = host_list(20)
        );
    }
    site.write(
        "site.toml",
        &format!(
            r#"
base_tick = 3600
default_retry = 1

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

{hosts}
{checks}"#,
            hosts = hosts(20)
        ),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let daemon = site.daemon(&["-D"]);
    // Tick 0: all fine.
    wait_for("tick 0's 100 runs", LONG, || runs(&daemon) >= 100);
    // The outage begins after 40 runs of tick 1; with retry 1, some reach
    // their second failed run in tick 2, the others in tick 3.
    tick_changing_midway(&daemon, 100, 40, || site.down("x"));
    tick(&daemon, 100);
    tick(&daemon, 100);
    let problems = smtp.wait_messages(1, LONG);
    assert_eq!(
        problems[0].header("subject"),
        "[picomon] Problem: 100 checks on 20 targets"
    );
    assert!(
        problems[0]
            .body
            .contains("100 of the 100 monitored checks failed at the same time"),
        "{}",
        problems[0].body
    );
    // It ends while a tick runs: the OKs seen in it wait for the others.
    tick_changing_midway(&daemon, 100, 40, || site.up());
    tick(&daemon, 100);
    let msgs = smtp.wait_messages(2, LONG);
    assert_eq!(
        msgs[1].header("subject"),
        "[picomon] OK: 100 checks on 20 targets"
    );
    assert_eq!(
        msgs[1].header("in-reply-to"),
        problems[0].header("message-id")
    );
    let all = stop(daemon, &smtp);
    let subjects: Vec<&str> = all.iter().map(|m| m.header("subject")).collect();
    assert_eq!(
        all.len(),
        2,
        "one Problem digest and one OK digest: {subjects:#?}"
    );
}

#[test]
fn a_check_failing_every_other_run_is_reported_flapping() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let plugin = flags_plugin(&site);
    // The defaults: retry 1, flapping at more than 4 changes in 10 runs.
    site.write(
        "site.toml",
        &format!(
            r#"
base_tick = 3600

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

[checks.link]
type = "command"
command = ["{plugin}", "down"]
"#
        ),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.down("x");
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("link: CRITICAL in", 1, LONG);
    // 40 runs, failing every other one: never two failures in a row.
    for t in 1..40 {
        match t % 2 {
            1 => site.up(),
            _ => site.down("x"),
        }
        tick(&daemon, 1);
    }
    daemon.wait_log("link: FLAPPING", 1, LONG);
    let msgs = smtp.wait_messages(1, LONG);
    assert_eq!(msgs[0].header("subject"), "[picomon] Flapping: link");
    assert!(
        msgs[0].body.contains("link is flapping"),
        "{}",
        msgs[0].body
    );
    // The 40th run was OK; stable for a whole window, one mail says
    // where it settled.
    for _ in 0..10 {
        tick(&daemon, 1);
    }
    let msgs = smtp.wait_messages(2, LONG);
    assert_eq!(msgs[1].header("subject"), "[picomon] OK: link");
    assert!(msgs[1].body.contains("settled OK"), "{}", msgs[1].body);
    assert_eq!(msgs[1].header("in-reply-to"), msgs[0].header("message-id"));
    let all = stop(daemon, &smtp);
    assert_eq!(all.len(), 2, "{all:#?}");
}

#[test]
fn children_held_for_their_parent_are_told_after_its_ok_as_held_for_it_not_as_blind() {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let plugin = flags_plugin(&site);
    site.write(
        "site.toml",
        &format!(
            r#"
base_tick = 3600
default_retry = 0

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

{hosts}
[checks.uplink]
type = "command"
command = ["{plugin}", "down-uplink"]

[checks.svc]
type = "command"
hosts = [{list}]
command = ["{plugin}", "down-svc"]
depends = ["uplink"]
"#,
            hosts = hosts(20),
            list = host_list(20)
        ),
    );
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("svc/h19/ipv4: OK in", 1, LONG);
    // The uplink fails, then its twenty children a tick later.
    site.write("down-uplink", "");
    tick(&daemon, 21);
    site.write("down-svc", "");
    tick(&daemon, 21);
    let problem = smtp.wait_messages(1, LONG).remove(0);
    assert_eq!(problem.header("subject"), "[picomon] Problem: uplink");
    // The uplink recovers; the children still fail.
    std::fs::remove_file(site.path("down-uplink")).expect("rm");
    tick(&daemon, 21);
    let msgs = smtp.wait_messages(3, LONG);
    assert_eq!(
        msgs[1].header("subject"),
        "[picomon] OK: uplink",
        "its OK first"
    );
    let children = &msgs[2];
    assert_eq!(
        children.header("subject"),
        "[picomon] Problem: 20 checks on 20 targets"
    );
    assert!(
        children
            .body
            .contains("held back while uplink, which they depend on, was failing"),
        "{}",
        children.body
    );
    assert!(!children.body.contains("blind"), "{}", children.body);
    let all = stop(daemon, &smtp);
    assert_eq!(all.len(), 3, "{all:#?}");
}
