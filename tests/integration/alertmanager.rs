//! `[notify.NAME]` with `type = "alertmanager"` against Debian's real
//! Alertmanager: two of them clustered on loopback, routing to a webhook
//! receiver this test runs, fed by an HA pair of picomon daemons that
//! send to both. Alertmanager's cluster deduplicates; these tests hold
//! picomon to its side of that contract (every peer, same labels, the
//! resolved alert, firing ones sent again).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{closed_port, dedent, wait_for, Daemon, Site};

const LONG: Duration = Duration::from_secs(90);
/// How long a peer waits per position before notifying, so that the first
/// one's notification log has reached it: generous for a busy machine.
const PEER_TIMEOUT: &str = "5s";
/// `PEER_TIMEOUT`, as a duration to wait.
const PEER_WAIT: Duration = Duration::from_secs(5);
/// Alertmanager's `group_interval`, well above the peer timeout as in
/// production (5 minutes against 15 s): a peer's flush takes a peer
/// timeout before it checks the gossiped log, and one that began while
/// the alert fired and checks after the first peer notified its end
/// would tell a stale "firing" again.
const GROUP_INTERVAL: &str = "40s";

/// A webhook receiver on loopback keeping every POSTed body.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopped) = (Arc::clone(&bodies), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(conn);
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    if let Ok(json) = serde_json::from_slice(&body) {
                        kept.lock().expect("bodies").push(json);
                    }
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Receiver { port, bodies, stop }
    }

    /// The notifications received with `status` ("firing", "resolved").
    fn count(&self, status: &str) -> usize {
        self.bodies
            .lock()
            .expect("bodies")
            .iter()
            .filter(|b| b["status"] == status)
            .count()
    }

    fn all(&self) -> String {
        format!("{:?}", self.bodies.lock().expect("bodies"))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One Alertmanager of the cluster; killed when dropped.
struct Am {
    web: u16,
    args: Vec<String>,
    log: std::path::PathBuf,
    child: Option<Child>,
}

impl Am {
    fn new(dir: &Path, name: &str, config: &Path, cluster: u16, peer: u16) -> Am {
        let storage = dir.join(name);
        std::fs::create_dir_all(&storage).expect("storage dir");
        let web = closed_port();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", storage.display()),
            format!("--web.listen-address=127.0.0.1:{web}"),
            format!("--cluster.listen-address=127.0.0.1:{cluster}"),
            format!("--cluster.advertise-address=127.0.0.1:{cluster}"),
            format!("--cluster.peer=127.0.0.1:{peer}"),
            format!("--cluster.peer-timeout={PEER_TIMEOUT}"),
            "--cluster.gossip-interval=100ms".into(),
            "--cluster.pushpull-interval=2s".into(),
            "--log.level=debug".into(),
        ];
        let mut am = Am {
            web,
            args,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        am.start();
        am
    }

    /// One Alertmanager on its own (clustering off).
    fn alone(dir: &Path, name: &str, config: &Path) -> Am {
        let storage = dir.join(name);
        std::fs::create_dir_all(&storage).expect("storage dir");
        let web = closed_port();
        let mut am = Am {
            web,
            args: vec![
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", storage.display()),
                format!("--web.listen-address=127.0.0.1:{web}"),
                "--cluster.listen-address=".into(),
            ],
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        am.start();
        am
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new("prometheus-alertmanager")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus-alertmanager (scripts/deps installs it)");
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::harness::signal(child.id(), libc::SIGTERM);
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web)
    }

    fn get(&self, path: &str) -> Option<serde_json::Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut response = agent.get(format!("{}{path}", self.url())).call().ok()?;
        let text = response.body_mut().read_to_string().ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Up, and clustered with its peer (both members ready).
    fn clustered(&self) -> bool {
        self.get("/api/v2/status").is_some_and(|s| {
            s["cluster"]["status"] == "ready"
                && s["cluster"]["peers"]
                    .as_array()
                    .is_some_and(|p| p.len() == 2)
        })
    }

    /// The alerts it has active, as (alertname, instance, site) labels.
    fn active(&self) -> Option<Vec<(String, String, String)>> {
        let alerts = self.get("/api/v2/alerts?active=true&silenced=false&inhibited=false")?;
        Some(
            alerts
                .as_array()?
                .iter()
                .filter(|a| a["status"]["state"] == "active")
                .map(|a| {
                    let label = |k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
                    (label("alertname"), label("instance"), label("site"))
                })
                .collect(),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Am {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two clustered Alertmanagers routing to `receiver`, waited for until
/// each sees the other: only then is their deduplication in force.
#[track_caller]
fn cluster(dir: &Path, receiver: &Receiver) -> (Am, Am) {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, instance]\n  group_wait: 1s\n  group_interval: {GROUP_INTERVAL}\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/\n        send_resolved: true\n",
            receiver.port,
        ),
    )
    .expect("write alertmanager.yml");
    let (c1, c2) = (closed_port(), closed_port());
    let am1 = Am::new(dir, "am1", &config, c1, c2);
    let am2 = Am::new(dir, "am2", &config, c2, c1);
    wait_for("both Alertmanagers up and clustered", LONG, || {
        am1.clustered() && am2.clustered()
    });
    (am1, am2)
}

/// One picomon of the HA pair: the same check, sending to both.
fn picomon(site: &Site, ams: &(Am, Am), resend_every: &str) -> Daemon {
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                base_tick = 0.2
                state_dir = "{}"
                [checks.flag]
                type = "command"
                command = ["{plugin}"]
                retry = 0
                [notify.am]
                type = "alertmanager"
                urls = ["{}", "{}/"]
                resend_every = {resend_every}
                retry_every = 0.5
                labels = {{ site = "paris" }}
            "#,
            site.path("state").display(),
            ams.0.url(),
            ams.1.url(),
        )),
    );
    site.down("FLAG CRITICAL - disk on fire\nsecond line");
    site.daemon(&["-D"])
}

fn flag_firing() -> Vec<(String, String, String)> {
    vec![("flag".into(), "flag".into(), "paris".into())]
}

#[test]
fn an_ha_pair_sending_to_two_clustered_alertmanagers_notifies_once_firing_and_once_resolved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start();
    let ams = cluster(dir.path(), &receiver);
    let (a, b) = (Site::new(""), Site::new(""));
    let (da, db) = (picomon(&a, &ams, "60"), picomon(&b, &ams, "60"));
    for d in [&da, &db] {
        d.wait_log("notify.am: delivered \"[picomon] Problem: flag\"", 1, LONG);
    }
    // Both peers have the alert, from both picomons (no gossip of alerts).
    wait_for("the alert firing on both Alertmanagers", LONG, || {
        ams.0.active() == Some(flag_firing()) && ams.1.active() == Some(flag_firing())
    });
    wait_for("the firing notification", LONG, || {
        receiver.count("firing") >= 1
    });
    let body = receiver.all();
    for want in [
        "\"alertname\": String(\"flag\")",
        "\"site\": String(\"paris\")",
        "\"severity\": String(\"critical\")",
        "\"summary\": String(\"FLAG CRITICAL - disk on fire\")",
        "\"description\": String(\"FLAG CRITICAL - disk on fire\\nsecond line\")",
    ] {
        assert!(body.contains(want), "{want} not in {body}");
    }
    // The second peer sends the firing notification, unless the first's
    // is in the gossiped log, a peer timeout after the first: let it
    // decide while the alert still fires, then count. The recovery then
    // comes well before the next flush (GROUP_INTERVAL).
    std::thread::sleep(PEER_WAIT * 2);
    assert_eq!(receiver.count("firing"), 1, "{}", receiver.all());
    a.up();
    b.up();
    for d in [&da, &db] {
        d.wait_log("notify.am: delivered \"[picomon] OK: flag\"", 1, LONG);
    }
    wait_for("the resolved notification", LONG, || {
        receiver.count("resolved") >= 1
    });
    // The second peer notifies, if at all, a peer timeout after the first:
    // wait well past it before counting.
    std::thread::sleep(PEER_WAIT * 2);
    assert_eq!(
        (receiver.count("firing"), receiver.count("resolved")),
        (1, 1),
        "{}\n--- am1:\n{}\n--- am2:\n{}",
        receiver.all(),
        ams.0.log(),
        ams.1.log()
    );
    assert_eq!(ams.0.active(), Some(vec![]));
    assert_eq!(ams.1.active(), Some(vec![]));
}

#[test]
fn an_alertmanager_restarted_while_a_check_fails_gets_the_firing_alert_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start();
    let mut ams = cluster(dir.path(), &receiver);
    let site = Site::new("");
    let daemon = picomon(&site, &ams, "1");
    wait_for("the alert firing on both Alertmanagers", LONG, || {
        ams.0.active() == Some(flag_firing()) && ams.1.active() == Some(flag_firing())
    });
    // Alertmanager keeps alerts in memory only: a restart forgets them.
    ams.1.stop();
    ams.1.start();
    wait_for(
        "the restarted Alertmanager up and clustered again",
        LONG,
        || ams.0.clustered() && ams.1.clustered(),
    );
    wait_for(
        "the firing alert sent again to the restarted one",
        LONG,
        || ams.1.active() == Some(flag_firing()),
    );
    site.up();
    daemon.wait_log("notify.am: delivered \"[picomon] OK: flag\"", 1, LONG);
    wait_for("the alert resolved on both", LONG, || {
        ams.0.active() == Some(vec![]) && ams.1.active() == Some(vec![])
    });
    assert!(
        receiver.count("resolved") <= 1,
        "{}\n{}",
        receiver.all(),
        daemon.stderr()
    );
}

/// nginx on loopback: TLS with a certificate of the test's private CA,
/// and Alertmanager behind it; on its first port basic authentication,
/// on its second a bearer token.
struct Nginx(Child);

impl Nginx {
    fn in_front_of(dir: &Path, am: &Am) -> (Nginx, u16, u16) {
        crate::harness::make_certs(dir);
        let d = dir.display();
        std::fs::write(dir.join("htpasswd"), "picomon:{PLAIN}s3cret\n").expect("htpasswd");
        std::fs::create_dir_all(dir.join("tmp")).expect("nginx tmp");
        let (port, bearer) = (closed_port(), closed_port());
        let tls =
            format!("ssl_certificate {d}/loopback.pem; ssl_certificate_key {d}/loopback.key;");
        let am = am.web;
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/nginx.err;\n\
                 events {{}}\nhttp {{\naccess_log {d}/access.log;\nclient_body_temp_path {d}/tmp;\n\
                 proxy_temp_path {d}/tmp;\nfastcgi_temp_path {d}/tmp;\nuwsgi_temp_path {d}/tmp;\n\
                 scgi_temp_path {d}/tmp;\n\
                 server {{ listen 127.0.0.1:{port} ssl; {tls} location / {{ auth_basic am; \
                 auth_basic_user_file {d}/htpasswd; proxy_pass http://127.0.0.1:{am}; }} }}\n\
                 server {{ listen 127.0.0.1:{bearer} ssl; {tls} location / {{ \
                 if ($http_authorization != \"Bearer t0ken\") {{ return 401; }} \
                 proxy_pass http://127.0.0.1:{am}; }} }}\n}}\n"
            ),
        )
        .expect("nginx.conf");
        let child = Command::new("nginx")
            .args([
                "-c",
                &format!("{d}/nginx.conf"),
                "-p",
                &format!("{d}"),
                "-e",
            ])
            .arg(dir.join("nginx.err"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx (scripts/deps installs nginx-light)");
        wait_for("nginx listening", LONG, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", bearer)).is_ok()
        });
        (Nginx(child), port, bearer)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_alertmanager_behind_https_and_auth_gets_the_alert_with_the_system_trust_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("write alertmanager.yml");
    let am = Am::alone(dir.path(), "am", &config);
    wait_for("Alertmanager up", LONG, || am.active().is_some());
    let (_nginx, port, bearer) = Nginx::in_front_of(dir.path(), &am);
    let ca = dir.path().join("ca.pem");

    // `secret` goes in `password_file` on the basic auth port, or in
    // `bearer_token_file` on the bearer token one.
    let start = |secret: &str, bearer_port: Option<u16>, trust: Option<&Path>| {
        let site = Site::new("");
        let plugin = site.flag_plugin();
        site.write("am-password", &format!("{secret}\n"));
        std::fs::set_permissions(
            site.path("am-password"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod the password file");
        site.write(
            "site.toml",
            &dedent(&format!(
                r#"
                    base_tick = 0.2
                    state_dir = "{}"
                    [checks.flag]
                    type = "command"
                    command = ["{plugin}"]
                    retry = 0
                    [notify.am]
                    type = "alertmanager"
                    urls = ["https://127.0.0.1:{}"]
                    {}
                    retry_every = 0.5
                    resend_every = 3600
                    labels = {{ site = "paris" }}
                "#,
                site.path("state").display(),
                bearer_port.unwrap_or(port),
                match bearer_port {
                    Some(_) => format!(
                        "bearer_token_file = \"{}\"",
                        site.path("am-password").display()
                    ),
                    None => dedent(&format!(
                        r#"
                            username = "picomon"
                            password_file = "{}""#,
                        site.path("am-password").display()
                    )),
                },
            )),
        );
        site.down("FLAG CRITICAL - disk on fire");
        let mut cmd = site.picomon();
        // The system's trust store, as rustls-native-certs reads it: the
        // test's CA alone, or a file with no certificate in it.
        match trust {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env("SSL_CERT_FILE", site.path("am-password")),
        };
        let daemon = site.spawn_daemon(cmd, &["-D"]);
        (site, daemon)
    };

    // Not trusted: the system store holds no certificate, so ureq's
    // built-in roots are used, which do not know the private CA.
    let (_site, daemon) = start("s3cret", None, None);
    wait_for("the untrusted certificate logged", LONG, || {
        daemon
            .stderr()
            .contains("invalid peer certificate: UnknownIssuer")
    });
    assert_eq!(am.active(), Some(vec![]), "{}", daemon.stderr());
    drop(daemon);

    // Trusted, but the wrong password: nginx answers 401, nothing arrives.
    let (_site, daemon) = start("wrong", None, Some(&ca));
    wait_for("the 401 logged", LONG, || {
        daemon.stderr().contains("HTTP 401 Unauthorized")
    });
    assert_eq!(am.active(), Some(vec![]), "{}", daemon.stderr());
    drop(daemon);

    // Trusted through the system store, with the right password, then
    // with the right bearer token.
    for (secret, bearer_port) in [("s3cret", None), ("t0ken", Some(bearer))] {
        let (site, daemon) = start(secret, bearer_port, Some(&ca));
        wait_for("the alert firing on Alertmanager", LONG, || {
            am.active() == Some(flag_firing())
        });
        site.up();
        wait_for("the alert resolved", LONG, || am.active() == Some(vec![]));
        // Alertmanager has the alert before picomon has the answer, and
        // picomon logs the delivery only then.
        daemon.wait_log("notify.am: delivered \"[picomon] OK: flag\"", 1, LONG);
        drop(daemon);
    }
    // nginx logs a request once it has answered it: the log may lag
    // behind picomon's, by a little.
    let access = || std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default();
    let posted = || {
        access()
            .matches("\"POST /api/v2/alerts HTTP/1.1\" 200")
            .count()
    };
    wait_for("nginx's access log of the four alerts", LONG, || {
        posted() >= 4
    });
    assert_eq!(
        posted(),
        4,
        "a Problem and an OK with each kind of authentication:\n{}",
        access()
    );
}

#[test]
fn watchdog_true_keeps_an_always_firing_picomon_watchdog_alert_resent_every_resend_every() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("write alertmanager.yml");
    let am = Am::alone(dir.path(), "am", &config);
    wait_for("Alertmanager up", LONG, || am.active().is_some());
    let site = Site::new("");
    let plugin = site.flag_plugin();
    site.write(
        "site.toml",
        &format!(
            "base_tick = 0.2\n[checks.flag]\ntype = \"command\"\ncommand = [\"{plugin}\"]\n\
             [notify.am]\ntype = \"alertmanager\"\nurls = [\"{}\"]\nresend_every = 1\nwatchdog = true\nlabels = {{ site = \"paris\" }}\n",
            am.url(),
        ),
    );
    let _daemon = site.daemon(&["-D"]);
    let watchdog = vec![(
        "PicomonWatchdog".to_string(),
        String::new(),
        "paris".to_string(),
    )];
    wait_for("the watchdog alert firing", LONG, || {
        am.active() == Some(watchdog.clone())
    });
    let updated = |am: &Am| {
        am.get("/api/v2/alerts")
            .and_then(|a| a[0]["updatedAt"].as_str().map(String::from))
    };
    let first = updated(&am);
    wait_for("the watchdog alert sent again", LONG, || {
        updated(&am) != first
    });
    assert_eq!(am.active(), Some(watchdog), "nothing else fires");
}
