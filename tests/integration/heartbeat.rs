//! `[heartbeat]`: a real local HTTP server (python3's http.server) as the
//! dead man's switch records each ping; a frozen picomon (SIGSTOP) sends
//! none; a command heartbeat runs; failures are logged once a minute.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{closed_port, wait_for, Site};

const LONG: Duration = Duration::from_secs(30);

/// python3 -m http.server serving `www/` of `site` on a free port; its
/// request log (one line per hit) goes to `http.log`.
struct Switch {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Switch {
    fn start(site: &Site) -> Switch {
        site.write("www/ping/5b1c", "OK\n");
        let port = closed_port();
        let log = site.path("http.log");
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(site.path("www"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start python3 -m http.server");
        wait_for("the HTTP server to listen", LONG, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Switch { child, port, log }
    }

    /// Pings received so far.
    fn hits(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("\"GET /ping/5b1c HTTP/1.1\" 200")
            .count()
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_healthy_picomon_pings_the_switch_and_a_frozen_one_sends_none() {
    let site = Site::new("");
    let switch = Switch::start(&site);
    let flag = site.flag_plugin();
    site.write(
        "site.toml",
        &format!(
            "base_tick = 0.2\n[heartbeat]\nurl = \"http://127.0.0.1:{}/ping/5b1c\"\nevery = 1\n[checks.local]\ntype = \"command\"\ncommand = [\"{flag}\"]\n",
            switch.port
        ),
    );
    let daemon = site.daemon(&["-D"]);
    wait_for("two pings", LONG, || switch.hits() >= 2);
    assert!(
        !daemon.stderr().contains("heartbeat held back"),
        "a healthy start held a ping back: {}",
        daemon.stderr()
    );

    daemon.signal(libc::SIGSTOP);
    // A ping already on its way may still land.
    std::thread::sleep(Duration::from_millis(500));
    let frozen = switch.hits();
    // Three periods: a picomon that sent while frozen would have pinged.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(switch.hits(), frozen, "a frozen picomon pinged");

    daemon.signal(libc::SIGCONT);
    wait_for("pings again once thawed", LONG, || {
        switch.hits() >= frozen + 2
    });
    assert!(!daemon.stderr().contains("heartbeat not taken"));
}

#[test]
fn a_command_heartbeat_runs_and_failures_are_logged_once_a_minute() {
    let site = Site::new("");
    let beats = site.path("beats");
    site.write(
        "site.toml",
        &format!(
            "base_tick = 0.2\n[heartbeat]\ncommand = [\"sh\", \"-c\", \"echo beat >> {}\"]\nevery = 1\n",
            beats.display()
        ),
    );
    let daemon = site.daemon(&["-D"]);
    wait_for("two command pings", LONG, || {
        std::fs::read_to_string(&beats)
            .unwrap_or_default()
            .lines()
            .count()
            >= 2
    });
    drop(daemon);

    // Nothing listens there: every ping fails, one line a minute says so.
    site.write(
        "site.toml",
        &format!(
            "base_tick = 0.2\n[heartbeat]\nurl = \"http://127.0.0.1:{}/ping/secret-id\"\nevery = 1\n",
            closed_port()
        ),
    );
    let daemon = site.daemon(&["-D"]);
    daemon.wait_log("heartbeat: pinging", 4, LONG);
    let log = daemon.stderr();
    assert_eq!(log.matches("heartbeat not taken").count(), 1, "{log}");
    assert!(
        !log.contains("secret-id"),
        "the URL's secret path is logged: {log}"
    );
}
