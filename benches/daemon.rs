//! Figures for the daemon, printed, never asserted (machines are noisy):
//! `cargo bench --bench daemon`. Runs the real release binary.

// Test and bench code: an expect() is an assertion with its message, and
// the helpers shared between test binaries are `pub` for each other.
#![allow(clippy::expect_used, unreachable_pub)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon under test: this build's, or another one named by
/// `BENCH_PICOMON` (an older build, for before/after figures in one run).
///
/// It gets the environment of a service (systemd gives one PATH and LANG,
/// the NixOS module and the Debian units nothing more that picomon reads),
/// not cargo's seventy-odd variables: duct copies the daemon's whole
/// environment on every spawn, so cargo's would be counted against each
/// run, where the floor's spawn passes its environment untouched.
fn picomon() -> Command {
    let bin =
        std::env::var_os("BENCH_PICOMON").unwrap_or_else(|| env!("CARGO_BIN_EXE_picomon").into());
    let mut cmd = Command::new(bin);
    cmd.env_clear();
    cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin");
    cmd.env("LANG", "C.UTF-8");
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn commands(n: usize, argv: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        let _ = writeln!(s, "[checks.c{i:04}]\ntype = \"command\"\ncommand = {argv}");
    }
    s
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

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf with a valid name.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// Field `key` of /proc/PID/io: `wchar` counts every byte the process
/// asked to write (files, pipes), whether or not it reached a disk yet.
fn io_field(pid: u32, key: &str) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": ")?.trim().parse().ok())
        .unwrap_or(0)
}

/// What 1,000 stable instances cost the daemon at a 1 s tick (at the
/// default log level): CPU per plugin run, peak RSS, and bytes written
/// per 10 s, with or without `state_dir`.
struct Cost {
    cpu_per_run: f64,
    peak_kib: u64,
    written_per_10s: f64,
    /// Instances that had a run skipped because the previous one was
    /// still going: the daemon fell behind, and CPU per run (which counts
    /// every run as done) looks better than it is.
    behind: usize,
}

fn daemon_cost(dir: &Path, with_state: bool) -> Cost {
    let n = 1000;
    let ticks = 6;
    let state = match with_state {
        true => format!("state_dir = \"{}\"\n", dir.join("state").display()),
        false => String::new(),
    };
    let config = write(
        dir,
        "rss.toml",
        &format!(
            "base_tick = 1\nmax_parallel = 32\n{state}{}",
            commands(n, "[\"/bin/true\"]")
        ),
    );
    let err = dir.join("rss.err");
    let child = picomon()
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("log"))
        .spawn()
        .expect("start picomon");
    let pid = child.id();
    let guard = Guard(child);
    wait_lines(&err, "picomon started", 1, Duration::from_secs(10));
    // Loading 1,000 checks is not per-run work.
    let startup = (stat_field(pid, 14) + stat_field(pid, 15)) as f64 / ticks_per_sec();
    let written_before = io_field(pid, "wchar");
    let started = Instant::now();
    // Ticks 0 to 5 run every instance; stop just before tick 6.
    std::thread::sleep(Duration::from_millis(ticks as u64 * 1000 - 300));
    let runs = n * ticks;
    let cpu = (stat_field(pid, 14) + stat_field(pid, 15)) as f64 / ticks_per_sec() - startup;
    let written = io_field(pid, "wchar") - written_before;
    let elapsed = started.elapsed().as_secs_f64();
    let peak_kib = status_kib(pid, "VmHWM:");
    drop(guard);
    let behind = std::fs::read_to_string(&err)
        .unwrap_or_default()
        .matches("previous run still going")
        .count();
    let _ = std::fs::remove_dir_all(dir.join("state"));
    Cost {
        cpu_per_run: cpu / runs as f64,
        peak_kib,
        written_per_10s: written as f64 / elapsed * 10.0,
        behind,
    }
}

/// Peak RSS with 1,000 instances, the daemon's own CPU per plugin run
/// against a bare spawn-and-wait loop (the floor), with and without
/// `state_dir`, and what the state costs in bytes written.
fn rss_and_cpu(dir: &Path) {
    // The floor moves by 10% from one measurement to the next: the
    // median of three, taken around the daemon's own.
    let mut floors = vec![bare_spawn()];
    let without = daemon_cost(dir, false);
    floors.push(bare_spawn());
    let with = daemon_cost(dir, true);
    floors.push(bare_spawn());
    floors.sort_by(f64::total_cmp);
    let bare = floors[1];
    println!(
        "floor, a bare spawn+wait of /bin/true: {:.0} µs per run (median of {:.0}, {:.0}, {:.0})",
        bare * 1e6,
        floors[0] * 1e6,
        floors[1] * 1e6,
        floors[2] * 1e6
    );
    println!(
        "peak RSS, 1000 instances:        {:.1} MiB; with state_dir {:.1} MiB (target < 8 MiB)",
        without.peak_kib as f64 / 1024.0,
        with.peak_kib as f64 / 1024.0
    );
    for (label, cost) in [
        ("without state_dir", &without),
        ("with state_dir   ", &with),
    ] {
        let behind = match cost.behind {
            0 => String::new(),
            n => format!(
                "; FELL BEHIND: {n} of 1000 instances had runs skipped, so fewer runs than counted"
            ),
        };
        println!(
            "daemon CPU per run, {label}: {:.0} µs; floor (bare spawn+wait) {:.0} µs; ratio {:.2} (target <= 1.5){behind}",
            cost.cpu_per_run * 1e6,
            bare * 1e6,
            cost.cpu_per_run / bare
        );
    }
    println!(
        "bytes written per 10 s, 1000 stable instances: {:.0} without state_dir, {:.0} with (target < 1 MB); CPU with state_dir {:+.0}% of without (target within 10%)",
        without.written_per_10s,
        with.written_per_10s,
        (with.cpu_per_run / without.cpu_per_run - 1.0) * 100.0
    );
}

/// CPU of this process per `/bin/true` run by a plain spawn-and-wait loop.
fn bare_spawn() -> f64 {
    let runs = 2000;
    let started = cpu_self();
    for _ in 0..runs {
        let _ = Command::new("/bin/true")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output();
    }
    (cpu_self() - started) / runs as f64
}

/// The same loop through picomon's plugin loop (process group, pidfd and
/// pipes in one epoll, capped output), without the daemon around it.
fn runner_spawn() -> f64 {
    let runs = 2000;
    let runner = std::sync::Arc::new(picomon::runner::Runner::new());
    let mut watch = picomon::runner::Watch::new(runner).expect("epoll");
    let argv = [std::ffi::OsString::from("/bin/true")];
    let mut done = Vec::with_capacity(1);
    let started = cpu_self();
    for _ in 0..runs {
        watch.start(&argv, Duration::from_secs(5), &[], ());
        while done.is_empty() {
            watch.turn(&mut done).expect("epoll_wait");
        }
        done.clear();
    }
    (cpu_self() - started) / runs as f64
}

fn cpu_self() -> f64 {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
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
        "-1 with 100 × sleep 1:           {:.3} s, exit {:?} (target < 1.2 s)",
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
    let guard = Guard(child);
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
        "tick lateness over {} ticks:     max {:.2} ms; first half max {:.2} ms, second half max {:.2} ms (target < 20 ms, not growing)",
        late.len(),
        max(&late),
        max(&late[..half]),
        max(&late[half..])
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "picomon daemon benchmark ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    parallel_once(dir.path());
    tick_deviation(dir.path());
    rss_and_cpu(dir.path());
    let (bare, runner) = (bare_spawn(), runner_spawn());
    println!(
        "runner alone, CPU per run:       {:.0} µs; bare spawn+wait {:.0} µs; ratio {:.2}",
        runner * 1e6,
        bare * 1e6,
        runner / bare
    );
}
