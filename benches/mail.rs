//! Mail figures, printed (never asserted): `cargo bench --bench mail`.
//! Runs the real release binary against aiosmtpd on loopback (the test
//! handler in tests/smtp/, which logs one line per SMTP session).

// Test and bench code: an expect() is an assertion with its message, and
// the helpers shared between test binaries are `pub` for each other.
#![allow(clippy::expect_used, unreachable_pub)]

// The tests' own SMTP server and helpers, not a copy of them.
#[allow(dead_code)]
#[path = "../tests/integration/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../tests/integration/smtp.rs"]
mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use smtp::{Security, SmtpServer};

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_server(dir: &Path) -> (SmtpServer, u16) {
    let port = SmtpServer::free_port();
    (SmtpServer::start(dir, port, Security::Plain), port)
}

/// Acceptance times of the messages in the Maildir, oldest first.
fn accepted(dir: &Path) -> Vec<SystemTime> {
    let mut times: Vec<SystemTime> = std::fs::read_dir(dir.join("Maildir/new"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
                .collect()
        })
        .unwrap_or_default();
    times.sort();
    times
}

/// Times of the alert lines in picomon's log, oldest first.
fn alerted(log: &str) -> Vec<SystemTime> {
    log.lines()
        .filter(|l| l.contains(": PROBLEM ") || l.contains(": RECOVERED "))
        .filter_map(|l| l.split(' ').next())
        .filter_map(|t| humantime::parse_rfc3339(t).ok())
        .collect()
}

fn daemon(dir: &Path, config: &str) -> (Guard, PathBuf) {
    let path = dir.join("site.toml");
    std::fs::write(&path, config).expect("config");
    let err = dir.join("picomon.err");
    let child = Command::new(env!("CARGO_BIN_EXE_picomon"))
        .arg("-c")
        .arg(&path)
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("log"))
        .spawn()
        .expect("picomon");
    (Guard(child), err)
}

fn wait_count(dir: &Path, n: usize, limit: Duration) -> Vec<SystemTime> {
    let deadline = Instant::now() + limit;
    loop {
        let got = accepted(dir);
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// One alert per tick (a check that flips every run; flap damping off,
/// since what is measured is one mail per switch): latency from the
/// state switch to the server accepting the mail.
fn latency() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_smtp, port) = smtp_server(dir.path());
    let counter = dir.path().join("n");
    let plugin = dir.path().join("flip");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\nn=$(cat {0} 2>/dev/null || echo 0)\necho $((n+1)) > {0}\nif [ $((n % 2)) -eq 0 ]; then echo 'FLIP CRITICAL'; exit 2; fi\necho 'FLIP OK'\n",
            counter.display()
        ),
    )
    .expect("plugin");
    Command::new("chmod")
        .arg("755")
        .arg(&plugin)
        .status()
        .expect("chmod");
    let (_picomon, err) = daemon(
        dir.path(),
        &format!(
            "base_tick = 0.1\ndefault_retry = 0\nflap_switches = 0\n[emails]\nto = [\"ops@example.org\"]\ndigest_over = 0\nsmtp_host = \"127.0.0.1:{port}\"\n[checks.flip]\ntype = \"command\"\ncommand = [\"{}\"]\n",
            plugin.display()
        ),
    );
    let got = wait_count(dir.path(), 100, Duration::from_secs(60));
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    let sent = alerted(&log);
    let mut ms: Vec<f64> = sent
        .iter()
        .zip(&got)
        .take(100)
        .filter_map(|(a, b)| b.duration_since(*a).ok())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "alert → accepted, one at a time: p50 {:.1} ms, p99 {:.1} ms over {} alerts (log times have ms resolution)",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.len()
    );
}

/// 100 checks failing at once, digests off (one mail each): how long until all 100 are accepted, and
/// how many SMTP sessions that took.
fn burst() {
    let dir = tempfile::tempdir().expect("tmp");
    let (smtp, port) = smtp_server(dir.path());
    let mut config = format!(
        "base_tick = 3600\ndefault_retry = 0\nmax_parallel = 100\n[emails]\nto = [\"ops@example.org\"]\ndigest_over = 0\nsmtp_host = \"127.0.0.1:{port}\"\n"
    );
    for i in 0..100 {
        config.push_str(&format!(
            "[checks.c{i:03}]\ntype = \"command\"\ncommand = [\"false\"]\n"
        ));
    }
    let started = Instant::now();
    let (_picomon, err) = daemon(dir.path(), &config);
    let got = wait_count(dir.path(), 100, Duration::from_secs(60));
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    let sent = alerted(&log);
    let last = got.last().copied();
    let first_alert = sent.first().copied();
    let spread = match (first_alert, last) {
        (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default().as_secs_f64() * 1000.0,
        _ => f64::NAN,
    };
    let sessions = smtp.ehlo_count();
    println!(
        "burst of 100 alerts: {} accepted {:.0} ms after the first alert ({:.0} mails/s; {:.1} s after start), over {sessions} SMTP connection(s)",
        got.len(),
        spread,
        got.len() as f64 / (spread / 1000.0),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    latency();
    burst();
}
