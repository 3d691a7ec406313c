//! A step of the wall clock (issue 21): a check fails, its Problem is
//! mailed, the wall clock jumps an hour ahead, the check recovers a few
//! seconds later. The OK used to say "recovered after 1h 00m 10s" for a
//! 10 s outage, because the outage was measured on the wall clock. The
//! real picomon runs under libfaketime, which moves only its
//! CLOCK_REALTIME, by an offset read from a file the test rewrites;
//! CLOCK_MONOTONIC stays true, as a real step leaves it. (Plugins do not
//! inherit LD_PRELOAD: picomon gives them a clean environment.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use crate::campaign::LONG;
use crate::damaged_state::{runs, site, stop};
use crate::harness::wait_for;
use crate::smtp::{Received, Security, SmtpServer};

/// How far the wall clock is stepped.
const STEP: Duration = Duration::from_secs(3600);

/// libfaketime's preload library, where the Debian package put it.
fn libfaketime() -> PathBuf {
    let listed = Command::new("dpkg")
        .args(["-L", "libfaketime"])
        .output()
        .expect("run dpkg");
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find(|l| l.ends_with("/libfaketime.so.1"))
        .map(PathBuf::from)
        .expect("libfaketime.so.1 is not installed: run scripts/deps (faketime)")
}

/// Sets the offset libfaketime adds to the wall clock; renamed into
/// place, so that picomon, which reads the file at every clock call,
/// never reads half of it.
fn set_offset(file: &Path, offset: Duration) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("+{}\n", offset.as_secs())).expect("write offset");
    std::fs::rename(&tmp, file).expect("rename offset");
}

/// The Date header of `mail`, in seconds since the epoch: lettre writes
/// RFC 2822 dates in UTC, `Thu, 03 Dec 2026 20:15:39 +0000`.
#[track_caller]
fn date(mail: &Received) -> u64 {
    let header = mail.header("date");
    let parts: Vec<&str> = header.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let [_, day, month, year, time, "+0000"] = parts[..] else {
        panic!("not an RFC 2822 date in UTC: {header:?}");
    };
    let month = months
        .iter()
        .position(|m| *m == month)
        .unwrap_or_else(|| panic!("no month in {header:?}"))
        + 1;
    let day: u32 = day.parse().expect("day");
    let rfc3339 = format!("{year}-{month:02}-{day:02}T{time}Z");
    humantime::parse_rfc3339(&rfc3339)
        .unwrap_or_else(|e| panic!("{header:?}: {e}"))
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The time after `label` in a mail's body (`Recovered: 2026-…Z`).
#[track_caller]
fn body_time(mail: &Received, label: &str) -> SystemTime {
    let line = mail
        .body
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{}", mail.body));
    let stamp = line.split_whitespace().last().unwrap_or_default();
    humantime::parse_rfc3339(stamp).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn a_wall_clock_stepped_an_hour_does_not_make_a_ten_second_outage_last_an_hour() {
    let port = SmtpServer::free_port();
    let site = site(port);
    let smtp = SmtpServer::start(site.dir.path(), port, Security::Plain);
    let offset = site.path("faketime.rc");
    set_offset(&offset, Duration::ZERO);
    let mut cmd = site.picomon();
    cmd.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME_TIMESTAMP_FILE", &offset)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");

    site.down("FLAG CRITICAL - down");
    let started = Instant::now();
    let daemon = site.spawn_daemon(cmd, &[]);
    smtp.wait_messages(1, LONG);

    // The step. picomon reads the file at every clock call, so every run
    // started from now on is an hour later by the wall clock (as the
    // Date headers show below); it keeps ticking: three runs, still
    // failing, and no mail for them.
    set_offset(&offset, STEP);
    let before = runs(&site);
    wait_for("three runs after the step", LONG, || {
        runs(&site) >= before + 3
    });
    assert_eq!(
        smtp.messages().len(),
        1,
        "mail after the step, still failing"
    );

    site.up();
    let msgs = smtp.wait_messages(2, LONG);
    let outage = started.elapsed();
    // No storm after the recovery either: three more runs, no more mail.
    let before = runs(&site);
    wait_for("three runs after the OK", LONG, || {
        runs(&site) >= before + 3
    });
    let log = stop(daemon);
    let after = smtp.messages();
    assert_eq!(
        after.len(),
        2,
        "more mail than one Problem and its OK:\n{log}"
    );

    let (problem, ok) = (&msgs[0], &msgs[1]);
    assert!(
        problem.header("subject").starts_with("[picomon] Problem: ")
            && ok.header("subject").starts_with("[picomon] OK: "),
        "not a Problem then its OK: {:?}, {:?}",
        problem.header("subject"),
        ok.header("subject")
    );
    assert_eq!(
        ok.header("in-reply-to"),
        problem.header("message-id"),
        "the OK is not in the Problem's thread"
    );
    // The clock really moved for picomon: the OK's Date and the times its
    // body shows are an hour after the Problem's.
    assert!(
        date(ok) >= date(problem) + STEP.as_secs(),
        "picomon's wall clock did not move: Problem {:?}, OK {:?}",
        problem.header("date"),
        ok.header("date")
    );
    let shown = body_time(ok, "Recovered:")
        .duration_since(body_time(ok, "Failing:"))
        .unwrap_or_default();
    assert!(shown >= STEP, "the OK shows no step:\n{}", ok.body);
    // The outage itself lasted seconds (no longer than the test waited
    // from picomon's start to the OK), and the OK says so.
    let stated = ok
        .body
        .lines()
        .find_map(|l| l.split_once(" recovered after "))
        .map(|(_, rest)| {
            rest.split(' ')
                .next()
                .unwrap_or_default()
                .trim_end_matches('.')
        })
        .unwrap_or_else(|| panic!("no \"recovered after\" in:\n{}", ok.body));
    let seconds = stated.strip_suffix('s').and_then(|n| n.parse::<f64>().ok());
    assert!(
        seconds.is_some_and(|s| s <= outage.as_secs_f64() + 1.0),
        "an outage of {outage:?} said to last {stated:?}:\n{}",
        ok.body
    );
}
