//! `[maintenance.NAME]`: a window that recurs on a cron line silences the
//! instances it covers while it is in force, through a kill -9 and a
//! restart, and its end mails the one mail due (the Problem of an outage
//! that began inside it, nothing for one that began and ended inside
//! it); `picomon status` and `picomon silence list` show it. The edges
//! at the second, and DST, are unit tests of `maintenance.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::{Daemon, Site};
use crate::smtp::{Security, SmtpServer};

const LONG: Duration = Duration::from_secs(60);
const ID: &str = "homepage/web/ipv4";
const BLIP: &str = "blip/web/ipv4";

/// Seconds since the epoch now.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A site with two checks (`homepage` fails while `down` exists, `blip`
/// while `blip-down` does), mail to a real SMTP server, and a daily
/// window over both that started at the top of this minute (UTC) and
/// lasts `left` seconds more from now.
fn site_in_window(left: u64) -> (Site, SmtpServer) {
    // Never a window that started a minute ago: its cron line would be
    // for the last minute, and the test would race its start.
    if now() % 60 > 50 {
        let next_minute = (now() / 60 + 1) * 60;
        while now() < next_minute {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let at = now();
    let (minute, hour) = ((at / 60) % 60, (at / 3600) % 24);
    let duration = at % 60 + left;
    let site = Site::new("");
    let flag = site.flag_plugin();
    let blip = site.plugin(
        "blip",
        &format!(
            "if [ -e {0} ]; then echo 'BLIP CRITICAL - blip'; exit 2; fi\necho 'BLIP OK'",
            site.path("blip-down").display()
        ),
    );
    let port = SmtpServer::free_port();
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    site.write(
        "site.toml",
        &format!(
            r#"base_tick = 0.2
default_retry = 0
state_dir = "{state}"
time_zone = "UTC"

[emails]
to = ["ops@example.org"]
from = "Picomon <picomon@monitor.example.org>"
smtp_host = "127.0.0.1:{port}"
smtp_retry_timeout = 0.5

[hosts.web]
name = "front web"
ipv4 = "127.0.0.1"

[checks.homepage]
type = "command"
hosts = ["web"]
command = ["{flag}", "{{addr}}"]

[checks.blip]
type = "command"
hosts = ["web"]
command = ["{blip}", "{{addr}}"]

[maintenance.nightly]
pattern = "*/web/*"
cron = "{minute} {hour} * * *"
duration = {duration}
reason = "backup"
"#,
            state = site.path("state").display()
        ),
    );
    (site, smtp)
}

#[track_caller]
fn stdout_of(site: &Site, args: &[&str]) -> String {
    let out = site.run(args);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for `runs` more runs of `id`, so that a mail that should not
/// come has had its chance.
fn more_runs(daemon: &Daemon, id: &str, runs: usize) {
    let done = daemon.stderr().matches(&format!("{id}: ")).count();
    daemon.wait_log(&format!("{id}: "), done + runs, LONG);
}

#[test]
fn a_maintenance_window_silences_through_a_kill_and_its_end_mails_only_the_outage_that_outlived_it()
{
    let (site, smtp) = site_in_window(40);
    let mut daemon = site.daemon(&["-D"]);
    daemon.wait_log("maintenance window nightly in force until", 1, LONG);
    daemon.wait_log(&format!("{ID}: OK in"), 1, LONG);

    // Down inside the window: silenced, as by a silence.
    site.down("FLAG CRITICAL - restoring backup");
    daemon.wait_log(&format!("{ID}: silenced until 20"), 1, LONG);
    assert!(
        daemon
            .stderr()
            .contains("by maintenance window nightly (backup): no mail"),
        "{}",
        daemon.stderr()
    );
    // A blip that begins and ends inside the window.
    site.write("blip-down", "");
    daemon.wait_log(&format!("{BLIP}: PROBLEM"), 1, LONG);
    let oks = daemon.stderr().matches(&format!("{BLIP}: OK in")).count();
    std::fs::remove_file(site.path("blip-down")).expect("blip up");
    // Its recovery owes no mail (none was sent), so none is logged: its
    // next OK run says it.
    daemon.wait_log(&format!("{BLIP}: OK in"), oks + 1, LONG);

    let status = stdout_of(&site, &["status"]);
    assert!(
        status.contains("[silenced until 20")
            && status.contains("by maintenance window nightly: backup]"),
        "{status}"
    );
    assert!(status.contains("Maintenance windows: 1"), "{status}");
    assert!(
        status.contains("nightly */web/*: IN FORCE until 20"),
        "{status}"
    );
    let listed = stdout_of(&site, &["silence", "list"]);
    assert!(listed.starts_with("no silences\n"), "{listed}");
    assert!(
        listed.contains("nightly */web/*: IN FORCE until"),
        "{listed}"
    );

    // kill -9 and a restart inside the window: still silenced.
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit(LONG);
    let daemon = site.daemon(&["-D"]);
    more_runs(&daemon, ID, 3);
    let status = stdout_of(&site, &["status"]);
    assert!(
        status.contains("by maintenance window nightly: backup]"),
        "the window was over before the test got here (a slow machine?): {status}"
    );
    assert_eq!(
        smtp.messages().len(),
        0,
        "a mail went out inside the window"
    );

    // The window ends while homepage still fails: its one Problem mail,
    // late, and none about the blip.
    let mails = smtp.wait_messages(1, LONG);
    assert_eq!(
        mails[0].header("subject"),
        "[picomon] Problem: homepage on front web"
    );
    assert!(
        mails[0].body.starts_with("This mail is late: a silence"),
        "{}",
        mails[0].body
    );
    more_runs(&daemon, ID, 10);
    more_runs(&daemon, BLIP, 3);
    assert_eq!(smtp.messages().len(), 1, "{:?}", smtp.messages());

    let status = stdout_of(&site, &["status"]);
    assert!(
        status.contains("nightly */web/*: not in force, next 20"),
        "{status}"
    );
    assert!(!status.contains("by maintenance window"), "{status}");
}
