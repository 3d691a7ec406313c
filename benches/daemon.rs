//! Figures for the daemon, printed, never asserted (machines are noisy):
//! `cargo bench --bench daemon`. Runs the real release binary, with the
//! environment of a service, against the capture floor and the machine's
//! limit measured in the same run. `BENCH_QUICK=1` makes every window
//! short, to see that the bench works (its figures are then rough).

// Test and bench code: an expect() is an assertion with its message, and
// the helpers shared between test binaries are `pub` for each other.
#![allow(clippy::expect_used, unreachable_pub)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon under test: this build's, or another one named by
/// `BENCH_PICOMON` (an older build, for before/after figures in one run).
///
/// It gets the environment of a service (systemd gives one PATH and LANG,
/// the NixOS module and the Debian units nothing more that picomon reads),
/// not cargo's seventy-odd variables, which every plugin run would copy.
fn picomon() -> Command {
    let bin =
        std::env::var_os("BENCH_PICOMON").unwrap_or_else(|| env!("CARGO_BIN_EXE_picomon").into());
    let mut cmd = Command::new(bin);
    cmd.env_clear();
    cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin");
    cmd.env("LANG", "C.UTF-8");
    cmd
}

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn commands(n: usize, argv: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        let _ = writeln!(s, "[checks.c{i:05}]\ntype = \"command\"\ncommand = {argv}");
    }
    s
}

/// The C programs of the floor, built with the system's compiler: the
/// capture loop (`floor/capture_loop.c`) and the plugin every scenario
/// runs (`floor/append_byte.c`, one byte appended per run, so that runs
/// are counted in bytes).
struct Tools {
    capture_loop: PathBuf,
    plugin: PathBuf,
}

impl Tools {
    fn build(dir: &Path) -> Tools {
        let build = |name: &str| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("benches/floor")
                .join(format!("{name}.c"));
            let out = dir.join(name);
            let status = Command::new("cc")
                .arg("-O2")
                .arg("-o")
                .arg(&out)
                .arg(&source)
                .status()
                .expect("run cc");
            assert!(status.success(), "cc {}: {status}", source.display());
            out
        };
        Tools {
            capture_loop: build("capture_loop"),
            plugin: build("append_byte"),
        }
    }

    /// One capture loop of `runs` plugin runs, with an empty environment.
    fn capture_loop(&self, runs: u64, count: &Path) -> Command {
        let mut cmd = Command::new(&self.capture_loop);
        cmd.env_clear()
            .arg(runs.to_string())
            .arg(&self.plugin)
            .arg(count);
        cmd
    }

    /// The capture floor: CPU per run of one capture loop, in seconds.
    fn floor(&self, dir: &Path, runs: u64) -> f64 {
        let out = self
            .capture_loop(runs, &dir.join("floor.count"))
            .output()
            .expect("run the capture loop");
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse::<f64>().expect("capture loop figure") / 1e6
    }

    /// The limit: plugin runs per second of four capture loops at once,
    /// what this machine can do at most.
    fn limit(&self, dir: &Path, runs: u64) -> f64 {
        let started = Instant::now();
        let loops: Vec<Child> = (0..4)
            .map(|j| {
                self.capture_loop(runs, &dir.join(format!("limit{j}.count")))
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start a capture loop")
            })
            .collect();
        for mut l in loops {
            let _ = l.wait();
        }
        (4 * runs) as f64 / started.elapsed().as_secs_f64()
    }

    fn plugin_argv(&self, count: &Path) -> String {
        format!("[{:?}, {:?}]", self.plugin, count)
    }
}

/// Field `n` (1-based, after the command name) of /proc/PID/stat.
fn stat_field(pid: u32, n: usize) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    rest.split_whitespace()
        .nth(n - 3)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// CPU (user + system, every thread) of process `pid`, in seconds.
fn cpu_of(pid: u32) -> f64 {
    // SAFETY: sysconf with a valid name.
    let hz = (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64;
    (stat_field(pid, 14) + stat_field(pid, 15)) as f64 / hz
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Field `key` of /proc/PID/io: `wchar` counts every byte the process
/// asked to write (files, pipes, eventfds), whether or not it reached a
/// disk yet, and what its reaped children wrote.
fn io_field(pid: u32, key: &str) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": ")?.trim().parse().ok())
        .unwrap_or(0)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

struct Guard(Vec<Child>);
impl Drop for Guard {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two CPU hogs (`yes >/dev/null`), for as long as the guard lives.
fn hogs() -> Guard {
    Guard(
        (0..2)
            .map(|_| {
                Command::new("yes")
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start yes")
            })
            .collect(),
    )
}

fn wait_lines(path: &Path, needle: &str, count: usize, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(needle).count() >= count || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One scenario: `checks` instances of the byte-appending plugin at a 1 s
/// tick, measured over `window` after `warmup`.
struct Scenario {
    checks: usize,
    warmup: Duration,
    window: Duration,
    state_dir: bool,
}

/// What the daemon did in a scenario's window.
struct Measured {
    cpu_per_run: f64,
    runs_per_s: f64,
    due_per_s: f64,
    peak_kib: u64,
    written_per_10s: f64,
    /// The daemon's own lines about falling behind (overload or skipped
    /// runs): a run that fell behind must say so.
    behind: Vec<String>,
}

impl Measured {
    fn done(&self) -> f64 {
        self.runs_per_s / self.due_per_s
    }

    /// How the daemon said it fell behind, if it did: its first line.
    fn behind_note(&self) -> String {
        match self.behind.first() {
            None => String::new(),
            Some(first) => format!(
                "\n    FELL BEHIND ({} log lines), first: {}",
                self.behind.len(),
                first.trim()
            ),
        }
    }
}

fn measure(dir: &Path, tools: &Tools, s: &Scenario) -> Measured {
    let count = dir.join(format!("runs-{}.count", s.checks));
    let _ = std::fs::remove_file(&count);
    let state_dir = dir.join("state");
    let _ = std::fs::remove_dir_all(&state_dir);
    let state = match s.state_dir {
        true => format!("state_dir = \"{}\"\n", state_dir.display()),
        false => String::new(),
    };
    let config = write(
        dir,
        "bench.toml",
        &format!(
            "base_tick = 1\n{state}{}",
            commands(s.checks, &tools.plugin_argv(&count))
        ),
    );
    let err = dir.join("bench.err");
    let child = picomon()
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("log"))
        .spawn()
        .expect("start picomon");
    let pid = child.id();
    let guard = Guard(vec![child]);
    wait_lines(&err, "picomon started", 1, Duration::from_secs(60));
    std::thread::sleep(s.warmup);
    let (cpu0, runs0, written0) = (cpu_of(pid), file_len(&count), io_field(pid, "wchar"));
    let started = Instant::now();
    std::thread::sleep(s.window);
    let (cpu1, runs1, written1) = (cpu_of(pid), file_len(&count), io_field(pid, "wchar"));
    let elapsed = started.elapsed().as_secs_f64();
    let peak_kib = status_kib(pid, "VmHWM:");
    drop(guard);
    let behind = std::fs::read_to_string(&err)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("falling behind") || l.contains("previous run still going"))
        .map(str::to_string)
        .collect();
    let runs = (runs1 - runs0).max(1) as f64;
    Measured {
        cpu_per_run: (cpu1 - cpu0) / runs,
        runs_per_s: runs / elapsed,
        due_per_s: s.checks as f64,
        peak_kib,
        // The kernel adds what a reaped child wrote to its parent's
        // figure: each run's byte (the plugin's own) is taken out, to leave
        // what the daemon wrote.
        written_per_10s: (written1 - written0).saturating_sub(runs1 - runs0) as f64 / elapsed
            * 10.0,
        behind,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Wall time of `-1` for 100 checks that each sleep one second.
fn parallel_once(dir: &Path) {
    let config = write(
        dir,
        "sleep.toml",
        &format!(
            "max_parallel = 100\n{}",
            commands(100, "[\"/bin/sleep\", \"1\"]")
        ),
    );
    let started = Instant::now();
    let out = picomon()
        .arg("-1")
        .arg("-c")
        .arg(&config)
        .output()
        .expect("run -1");
    let took = started.elapsed();
    println!(
        "-1 with 100 × sleep 1:             {:.3} s, exit {:?} (target < 1.2 s)",
        took.as_secs_f64(),
        out.status.code()
    );
}

/// Deviation of tick starts from start + k × tick over 100 ticks.
fn tick_deviation(dir: &Path) {
    let config = write(
        dir,
        "ticks.toml",
        &format!("base_tick = 0.05\n{}", commands(20, "[\"/bin/true\"]")),
    );
    let err = dir.join("ticks.err");
    let child = picomon()
        .args(["-D", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("log"))
        .spawn()
        .expect("start picomon");
    let guard = Guard(vec![child]);
    let log = wait_lines(&err, " after its time", 101, Duration::from_secs(30));
    drop(guard);
    let late: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split(" started ").nth(1))
        .filter_map(|l| l.split(' ').next())
        .filter_map(|v| v.parse().ok())
        .take(100)
        .collect();
    let max = |s: &[f64]| s.iter().cloned().fold(0.0, f64::max);
    let half = late.len() / 2;
    println!(
        "tick lateness over {} ticks:       max {:.2} ms; first half max {:.2} ms, second half max {:.2} ms (target < 20 ms, not growing)",
        late.len(),
        max(&late),
        max(&late[..half]),
        max(&late[half..])
    );
}

/// CPU of every thread of `pid`, in seconds, to the nanosecond
/// (schedstat), where /proc/PID/stat counts clock ticks of 10 ms: a push
/// costs well below one.
fn cpu_ns_of(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

/// A loopback HTTP server answering 200 to every request, counting them:
/// the dead man's switch of the heartbeat figure.
fn counting_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&hits);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    (port, hits)
}

/// What a push (over the status socket, over HTTP) and a heartbeat cost
/// the daemon: its CPU (every thread) per push or ping, beyond what it
/// spends idle. Each push is saved to state.json at once (fsync), which
/// is most of it.
fn push_cost(dir: &Path, floor: f64) {
    use std::io::{Read, Write};
    let pushes = if quick() { 100 } else { 500 };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let state = dir.join("push-state");
    std::fs::create_dir_all(&state).expect("state dir");
    let token = write(dir, "push.token", "bench-token\n");
    let config = write(
        dir,
        "push.toml",
        &format!(
            "base_tick = 1\nstate_dir = {state:?}\n[push]\nlisten = \"127.0.0.1:{port}\"\n[checks.job]\ntype = \"push\"\nperiod = 86400\ntoken_file = {token:?}\n"
        ),
    );
    let child = picomon()
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start picomon");
    let pid = child.id();
    let _guard = Guard(vec![child]);
    let socket = state.join("status.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !socket.exists() {
        assert!(Instant::now() < deadline, "the push daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let per = |f: &mut dyn FnMut()| {
        let before = cpu_ns_of(pid);
        for _ in 0..pushes {
            f();
        }
        (cpu_ns_of(pid) - before) / pushes as f64
    };
    let over_socket = per(&mut || {
        let mut conn = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        let _ = conn.write_all(
            b"push {\"check\":\"job\",\"report\":{\"kind\":\"done\",\"exit\":0,\"output\":\"JOB OK\"}}\n",
        );
        let _ = conn.read_to_end(&mut Vec::new());
    });
    let over_http = per(&mut || {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _ = conn.write_all(
            b"POST /push/job HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench-token\r\nContent-Length: 6\r\n\r\nJOB OK",
        );
        let _ = conn.read_to_end(&mut Vec::new());
    });
    println!(
        "a push: {:.0} µs of daemon CPU over the status socket, {:.0} µs over HTTP ({} each; saved to state.json at once), {:.2}× and {:.2}× the capture floor",
        over_socket * 1e6,
        over_http * 1e6,
        pushes,
        over_socket / floor,
        over_http / floor
    );

    // The heartbeat: the same idle daemon with and without it.
    let window = if quick() {
        Duration::from_secs(4)
    } else {
        Duration::from_secs(15)
    };
    let (hb_port, hits) = counting_server();
    let idle = |heartbeat: &str| {
        let config = write(dir, "hb.toml", &format!("base_tick = 1\n{heartbeat}"));
        let child = picomon()
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start picomon");
        let pid = child.id();
        let _guard = Guard(vec![child]);
        std::thread::sleep(Duration::from_secs(1));
        let (before, hits_before) = (
            cpu_ns_of(pid),
            hits.load(std::sync::atomic::Ordering::Relaxed),
        );
        std::thread::sleep(window);
        (
            cpu_ns_of(pid) - before,
            hits.load(std::sync::atomic::Ordering::Relaxed) - hits_before,
        )
    };
    let (quiet, _) = idle("");
    let (beating, pings) = idle(&format!(
        "[heartbeat]\nurl = \"http://127.0.0.1:{hb_port}/ping/bench\"\nevery = 1\n"
    ));
    println!(
        "a heartbeat (GET over loopback, every 1 s): {:.0} µs of daemon CPU per ping ({pings} pings in {:.0} s, idle daemon {:.0} µs/s beside)",
        (beating - quiet) / pings.max(1) as f64 * 1e6,
        window.as_secs_f64(),
        quiet / window.as_secs_f64() * 1e6
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let tools = Tools::build(dir);
    let (floor_runs, warmup, window) = match quick() {
        true => (1000, Duration::from_secs(2), Duration::from_secs(3)),
        false => (3000, Duration::from_secs(3), Duration::from_secs(10)),
    };
    // BENCH_ONLY=push: the floor and the push and heartbeat figures only.
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "push") {
        let floor = tools.floor(dir, floor_runs);
        println!("capture floor: {:.0} µs per run", floor * 1e6);
        push_cost(dir, floor);
        return;
    }
    let scenario = |checks, state_dir| Scenario {
        checks,
        warmup,
        window,
        state_dir,
    };
    println!(
        "picomon daemon benchmark ({} cores){}; daemon {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if quick() {
            ", BENCH_QUICK: short windows"
        } else {
            ""
        },
        std::env::var("BENCH_PICOMON").unwrap_or_else(|_| "of this build".into())
    );
    parallel_once(dir);
    tick_deviation(dir);

    // The floor moves by 10% from one measurement to the next: the median
    // of three, taken around the daemon's own figures.
    let mut floors = vec![tools.floor(dir, floor_runs)];
    let without = measure(dir, &tools, &scenario(1000, false));
    floors.push(tools.floor(dir, floor_runs));
    let with = measure(dir, &tools, &scenario(1000, true));
    floors.push(tools.floor(dir, floor_runs));
    floors.sort_by(f64::total_cmp);
    let floor = floors[1];
    println!(
        "capture floor (C: posix_spawn, stdout+stderr on pipes read to EOF, waitpid): {:.0} µs per run (median of {:.0}, {:.0}, {:.0})",
        floor * 1e6,
        floors[0] * 1e6,
        floors[1] * 1e6,
        floors[2] * 1e6
    );
    push_cost(dir, floor);
    for (label, m) in [
        ("without state_dir", &without),
        ("with state_dir   ", &with),
    ] {
        println!(
            "1000 checks at 1 s, {label}: CPU per run {:.0} µs, {:.2}× the floor (target <= 1.25); {:.0} runs/s ({:.1}% of due); peak RSS {:.1} MiB (target < 8 MiB){}",
            m.cpu_per_run * 1e6,
            m.cpu_per_run / floor,
            m.runs_per_s,
            m.done() * 100.0,
            mib(m.peak_kib),
            m.behind_note()
        );
    }
    println!(
        "bytes written per 10 s by the daemon (wchar: files, pipes, eventfd wake-ups; the plugins' own bytes taken out), 1000 stable checks: {:.0} without state_dir, {:.0} with (target < 1 MB); CPU with state_dir {:+.0}% of without (target within 10%)",
        without.written_per_10s,
        with.written_per_10s,
        (with.cpu_per_run / without.cpu_per_run - 1.0) * 100.0
    );

    let limit = tools.limit(dir, floor_runs);
    let big = measure(dir, &tools, &scenario(10_000, false));
    let limit_after = tools.limit(dir, floor_runs);
    let limit = (limit + limit_after) / 2.0;
    println!(
        "limit (4 capture loops at once): {limit:.0} runs/s (mean of two, around the next figure)"
    );
    println!(
        "10000 checks at 1 s: {:.0} runs/s, {:.0}% of the limit (target >= 90%); CPU per run {:.0} µs; peak RSS {:.1} MiB (target <= 16 MiB), {:.2} KiB a check beyond the first thousand (target <= 1){}",
        big.runs_per_s,
        big.runs_per_s / limit * 100.0,
        big.cpu_per_run * 1e6,
        mib(big.peak_kib),
        big.peak_kib.saturating_sub(without.peak_kib) as f64 / 9000.0,
        big.behind_note()
    );

    let loaded = {
        let _hogs = hogs();
        let limit = tools.limit(dir, floor_runs);
        let m = measure(dir, &tools, &scenario(1000, false));
        (limit, m)
    };
    println!(
        "1000 checks at 1 s with two CPU hogs (yes >/dev/null ×2): {:.0} runs/s, {:.1}% of runs done (target >= 95%); the loaded limit {:.0} runs/s{}",
        loaded.1.runs_per_s,
        loaded.1.done() * 100.0,
        loaded.0,
        loaded.1.behind_note()
    );
}
