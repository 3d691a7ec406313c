//! A stop under a mail backlog, through the watchdog (issue 8): SIGTERM
//! to picomon-watchdog with 200 mails queued for a server that takes 1 s
//! per mail ends within picomon's grace plus one SMTP step (well before
//! the watchdog's own SIGKILL), leaves the rest spooled, and the next
//! start sends each of them once. picomon alone: tests/integration/mail.rs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::campaign::LONG;
use crate::harness::{alive, backlog_config, wait_for, Site};
use crate::smtp::{Security, SmtpServer};

#[test]
fn sigterm_to_the_watchdog_with_200_mails_for_a_slow_server_stops_in_time_and_a_restart_sends_none_twice(
) {
    let port = SmtpServer::free_port();
    let site = Site::new("");
    let config = backlog_config(200, port, &site.path("state"));
    site.write("site.toml", &config);
    let outbox = site.path("state/outbox");
    let spooled = || {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    smtp.fault("slow", "1");
    let mut watchdog = site.spawn_daemon(site.command("picomon-watchdog"), &[]);
    watchdog.wait_log(": PROBLEM ", 200, Duration::from_secs(120));
    let picomon = watchdog
        .last_pid()
        .expect("the watchdog logs picomon's pid");
    smtp.wait_messages(1, LONG);

    let asked = Instant::now();
    watchdog.signal(libc::SIGTERM);
    assert_eq!(watchdog.wait_exit(LONG).code(), Some(0));
    let took = asked.elapsed();
    // picomon's grace is 5 s and one step at most 1 s more; the watchdog
    // would SIGKILL it after 30 s. Slack for a busy machine.
    assert!(
        took < Duration::from_secs(12),
        "the stop took {took:?}:\n{}",
        watchdog.stderr()
    );
    assert!(!alive(picomon), "picomon outlived its watchdog");
    let log = watchdog.stderr();
    assert!(!log.contains("SIGKILL"), "{log}");
    let delivered = smtp.messages().len();
    let left = spooled();
    assert!(delivered < 200, "everything was sent before the stop");
    assert_eq!(
        delivered + left,
        200,
        "{delivered} delivered and {left} spooled"
    );
    assert!(
        log.contains(&format!("stopping with {left} mails unsent, kept in")),
        "{log}"
    );

    smtp.fixed("slow");
    let _watchdog = site.spawn_daemon(site.command("picomon-watchdog"), &[]);
    smtp.wait_messages(200, Duration::from_secs(120));
    wait_for("the spool to empty", LONG, || spooled() == 0);
    let msgs = smtp.messages();
    let ids: BTreeSet<&str> = msgs.iter().map(|m| m.header("message-id")).collect();
    assert_eq!(ids.len(), 200, "a check's alert is missing");
    assert_eq!(msgs.len(), 200, "some mail arrived twice");
}
