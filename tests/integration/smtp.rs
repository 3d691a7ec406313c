//! A real SMTP server for the tests: Debian's aiosmtpd on a loopback port
//! the test picks, writing a Maildir, with the small handler in
//! tests/smtp/ (refuses `reject*` recipients, counts connections, and
//! misbehaves on demand: see `fault`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::wait_for;

const PYTHON: &str = "/usr/bin/python3";

/// tests/smtp of the workspace, from either package's tests.
fn handlers() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.join("tests/smtp"), here.join("../tests/smtp")]
        .into_iter()
        .find(|p| p.is_dir())
        .expect("tests/smtp of the workspace")
}

/// A received message: its headers (names lower-cased; repeated ones
/// joined with ", ") and body.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }

    fn parse(text: &str) -> Received {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        let mut last: Option<String> = None;
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(name) = &last {
                    if let Some(v) = headers.get_mut(name) {
                        v.push(' ');
                        v.push_str(line.trim());
                    }
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim().to_lowercase();
                let value = value.trim().to_string();
                headers
                    .entry(name.clone())
                    .and_modify(|v| {
                        v.push_str(", ");
                        v.push_str(&value);
                    })
                    .or_insert(value);
                last = Some(name);
            }
        }
        Received {
            headers,
            body: decode_body(body, headers_cte(head)),
        }
    }
}

fn headers_cte(head: &str) -> bool {
    head.to_lowercase()
        .contains("content-transfer-encoding: quoted-printable")
}

/// Undoes quoted-printable, enough to read bodies in assertions.
fn decode_body(body: &str, quoted_printable: bool) -> String {
    if !quoted_printable {
        return body.to_string();
    }
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[track_caller]
fn openssl(args: &[&str], dir: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (scripts/deps)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A private CA and a server certificate it signed for 127.0.0.1 and
/// localhost: (CA certificate, server certificate, server key).
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=picomon test CA",
        ]
        .iter()
        .chain(&["-keyout", "ca.key", "-out", "ca.pem"])
        .copied()
        .collect::<Vec<_>>(),
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write extensions");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
        dir,
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// How the server talks: plain, STARTTLS or TLS from the start (SMTPS),
/// with a certificate and its key.
pub enum Security<'a> {
    Plain,
    Starttls(&'a Path, &'a Path),
    Tls(&'a Path, &'a Path),
}

/// aiosmtpd on 127.0.0.1:`port`, stopped when dropped.
pub struct SmtpServer {
    child: Child,
    pub dir: PathBuf,
}

impl SmtpServer {
    /// A free port for a server that is not started yet.
    pub fn free_port() -> u16 {
        crate::harness::closed_port()
    }

    /// A server that requires AUTH as `user` with `password`.
    pub fn start_with_auth(dir: &Path, port: u16, user: &str, password: &str) -> SmtpServer {
        let mut cmd = Command::new(PYTHON);
        cmd.env("PYTHONPATH", handlers())
            .arg(handlers().join("auth_server.py"))
            .args(["127.0.0.1", &port.to_string()])
            .arg(dir.join("Maildir"))
            .args([user, password]);
        SmtpServer::spawn(cmd, dir, port)
    }

    #[track_caller]
    pub fn start(dir: &Path, port: u16, tls: Security) -> SmtpServer {
        assert!(
            Path::new(PYTHON).exists()
                && Path::new("/usr/lib/python3/dist-packages/aiosmtpd").exists(),
            "python3-aiosmtpd is not installed: run scripts/test, which installs it"
        );
        let maildir = dir.join("Maildir");
        let mut cmd = Command::new(PYTHON);
        cmd.env("PYTHONPATH", handlers())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "picomon_smtp.Handler"]);
        match tls {
            Security::Plain => {}
            Security::Starttls(cert, key) => {
                cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
            }
            Security::Tls(cert, key) => {
                cmd.arg("--smtpscert").arg(cert).arg("--smtpskey").arg(key);
            }
        }
        cmd.arg(&maildir);
        SmtpServer::spawn(cmd, dir, port)
    }

    #[track_caller]
    fn spawn(mut cmd: Command, dir: &Path, port: u16) -> SmtpServer {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("smtpd.err")).expect("log"));
        let mut child = cmd.spawn().expect("start aiosmtpd");
        // Ready when this very process listens on the port: another test's
        // server that happened to pick the same free port must not count.
        wait_for("the SMTP server to listen", Duration::from_secs(20), || {
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(dir.join("smtpd.err")).unwrap_or_default();
                panic!("aiosmtpd on port {port} exited ({status}):\n{err}");
            }
            listens(child.id(), port)
        });
        SmtpServer {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        read_maildir(&self.dir.join("Maildir"))
    }

    /// Switches on a fault of the test handler (see tests/smtp/
    /// picomon_smtp.py): "defer", "refuse-data", or "slow" with seconds.
    pub fn fault(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).expect("write fault file");
    }

    /// Switches a fault off.
    pub fn fixed(&self, name: &str) {
        std::fs::remove_file(self.dir.join(name)).expect("remove fault file");
    }

    /// How many SMTP sessions said EHLO.
    pub fn ehlo_count(&self) -> usize {
        self.log_lines("ehlo.log")
    }

    /// How many SMTP sessions said QUIT.
    pub fn quit_count(&self) -> usize {
        self.log_lines("quit.log")
    }

    fn log_lines(&self, name: &str) -> usize {
        std::fs::read_to_string(self.dir.join(name))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Waits until `n` messages have arrived and returns them.
    #[track_caller]
    pub fn wait_messages(&self, n: usize, limit: Duration) -> Vec<Received> {
        wait_for(&format!("{n} messages at the SMTP server"), limit, || {
            self.messages().len() >= n
        });
        self.messages()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` holds a socket listening on 127.0.0.1:`port`
/// (from /proc/net/tcp and the process's descriptors).
fn listens(pid: u32, port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1] == wanted && f[3] == "0A")
        .map(|f| f[9].to_string())
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|target| {
                let target = target.to_string_lossy().into_owned();
                inodes
                    .iter()
                    .any(|inode| target == format!("socket:[{inode}]"))
            })
            .unwrap_or(false)
    })
}

pub fn read_maildir(maildir: &Path) -> Vec<Received> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(maildir.join(sub)) {
            for e in entries.flatten() {
                let mtime = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                files.push((mtime, e.path()));
            }
        }
    }
    files.sort();
    files
        .iter()
        .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
        .map(|t| Received::parse(&t))
        .collect()
}
