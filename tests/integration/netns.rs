//! Network namespaces for tests of check types against real servers: in a
//! namespace of its own a test may bind port 53 on 127.0.0.x and ::1,
//! drop traffic with nft, and start servers without colliding with other
//! tests or the machine's own. Traffic never leaves the namespace.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::harness::{bin, wait_for, Site};

/// A namespace with its loopback up; deleted on drop (stop its servers
/// first: they are declared after it, so they drop before it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    #[track_caller]
    pub fn new() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "picomon-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip (iproute2)")
            .success();
        assert!(ok, "ip netns add {name} failed (tests need root)");
        let ns = Netns { name };
        ns.sh("ip link set lo up");
        ns
    }

    /// `program args…` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs a shell command line inside the namespace; it must succeed.
    #[track_caller]
    pub fn sh(&self, line: &str) {
        let out = self
            .command("sh")
            .args(["-c", line])
            .output()
            .expect("run sh in the namespace");
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Drops, inside the namespace, every packet sent to `addr`.
    pub fn drop_traffic_to(&self, addr: &str) {
        self.sh(&format!(
            "nft add table inet picomon_test && \
             nft 'add chain inet picomon_test out {{ type filter hook output priority 0; }}' && \
             nft add rule inet picomon_test out ip daddr {addr} drop"
        ));
    }

    /// Starts a server inside the namespace; it is killed on drop.
    pub fn serve(&self, program: &str, args: &[&str], log: &std::path::Path) -> Served {
        let log = std::fs::File::create(log).expect("server log");
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start a server");
        Served { child }
    }

    /// Waits until something listens on `port` (UDP or TCP) in the namespace.
    #[track_caller]
    pub fn wait_listening(&self, proto: &str, addr: &str, port: u16) {
        let flag = if proto == "udp" { "-lnu" } else { "-lnt" };
        let needle = if addr.contains(':') {
            format!("[{addr}]:{port} ")
        } else {
            format!("{addr}:{port} ")
        };
        wait_for(
            &format!("{proto} {addr}:{port} in {}", self.name),
            Duration::from_secs(30),
            || {
                let out = self
                    .command("ss")
                    .arg(flag)
                    .output()
                    .expect("run ss (iproute2)");
                String::from_utf8_lossy(&out.stdout).contains(&needle)
            },
        );
    }

    /// `picomon -1 --json -c site.toml`, run inside the namespace; one
    /// JSON object per check instance.
    pub fn run_once(&self, site: &Site) -> Vec<serde_json::Value> {
        self.run_once_with_env(site, &[])
    }

    /// `run_once` with these variables set for picomon.
    #[track_caller]
    pub fn run_once_with_env(&self, site: &Site, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
        let mut cmd = self.command(bin("picomon").to_str().expect("utf-8 path"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PICOMON_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied());
        let out = cmd
            .args(["-1", "--json", "-c"])
            .arg(site.config())
            .current_dir(site.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run picomon");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.trim().is_empty(),
            "picomon printed nothing; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A server process, killed and reaped on drop.
pub struct Served {
    pub child: Child,
}

impl Served {
    /// SIGTERM, so that a forking server (nsd) takes its children and its
    /// sockets with it; SIGKILL if it takes longer than 10 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        crate::harness::signal(self.child.id(), libc::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One check's result by instance id, as (state, output).
#[track_caller]
pub fn result(objs: &[serde_json::Value], instance: &str) -> (String, String) {
    let obj = objs
        .iter()
        .find(|o| o["instance"] == instance)
        .unwrap_or_else(|| panic!("no result for {instance} in {objs:?}"));
    (
        obj["state"].as_str().unwrap_or("?").to_string(),
        obj["output"].as_str().unwrap_or("?").to_string(),
    )
}
