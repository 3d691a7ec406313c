//! Configuration fuzzing: a valid site configuration, mutated a few
//! hundred times with hostile keys and values (in the file, in fragments,
//! in `PICOMON_*` variables, in file modes). For each mutation
//! `check-config` must answer 0 or 78 in time, a 78 must name a file or a
//! variable for every problem, and a sample of the accepted ones must run
//! as a daemon and stop cleanly on SIGTERM: what `check-config` accepts,
//! the daemon runs. Seeded, so a failure can be replayed (`FUZZ_SEED`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::harness::{closed_port, Site};

/// Mutations per run, and how many accepted ones also start the daemon.
const MUTATIONS: usize = 300;
const DAEMONS: usize = 20;
/// Generous: two cores shared by many builds; a hang is far longer.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// xorshift64*: enough randomness for choosing mutations, no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// The valid starting point; `{site}` and `{closed}` are filled in. Mail
/// goes nowhere: no recipients, and the SMTP server is a closed port.
const BASE: &str = r#"base_tick = 0.5
max_parallel = 4
default_timeout = 5
default_retry = 1
default_every = 1
state_dir = "{site}/state"
log_level = "info"
plugin_dir = "/usr/lib/nagios/plugins"
[emails]
to = []
from = "Picomon <picomon@example.org>"
smtp_host = "127.0.0.1:{closed}"
smtp_retry_timeout = 1
smtp_keepalive_timeout = 1
subject_tpl = "[picomon] {state}: {check} on {dest}"
[emails.report]
every = 0
subject = "[picomon] report"
[hosts.local]
ipv4 = "127.0.0.1"
name = "loopback"
[checks.true]
type = "command"
command = ["true"]
every = 1
retry = 0
timeout = 2
[checks.web]
type = "http"
hosts = ["local"]
port = {closed}
status = 200
[checks.env]
type = "command"
command = ["env"]
env = { LC_ALL = "C" }
"#;

/// Keys picomon knows, anywhere: written under any table.
const KEYS: &[&str] = &[
    "base_tick",
    "max_parallel",
    "default_timeout",
    "default_error_every",
    "state_dir",
    "log_level",
    "plugin_dir",
    "to",
    "from",
    "smtp_host",
    "smtp_security",
    "smtp_user",
    "smtp_password",
    "smtp_password_file",
    "smtp_ca_file",
    "smtp_retry_timeout",
    "smtp_keepalive_timeout",
    "every",
    "subject",
    "ipv4",
    "ipv6",
    "name",
    "type",
    "hosts",
    "ip",
    "retry",
    "error_every",
    "timeout",
    "enabled",
    "pattern",
    "env",
    "command",
    "port",
    "status",
    "zones",
    "query",
    "ca_file",
    "tls_auth",
    "evry",
    "\"\"",
    "\"a.b\"",
];

/// Hostile TOML values; `{fifo}` is a FIFO in the site. No value names an
/// existing writable directory outside the site: an accepted `state_dir`
/// must stay in it.
const VALUES: &[&str] = &[
    // At the bounds, and harmless: these are mostly accepted.
    "0.01",
    "86400",
    "1024",
    "2",
    "false",
    "\"C\"",
    "[4]",
    "0",
    "-1",
    "1",
    "1e300",
    "-1e300",
    "1e-7",
    "0.001",
    "nan",
    "inf",
    "-inf",
    "100000",
    "4294967295",
    "9223372036854775807",
    "true",
    "\"\"",
    "\"\\u0000\"",
    "\"x\\ny\"",
    "\"relative\"",
    "\"/dev/zero\"",
    "\"/proc/self\"",
    "\"{fifo}\"",
    "\"{site}/site.toml\"",
    "\"{addr}\"",
    "\"%s%n{check}\"",
    "\"ping\"",
    "\"command\"",
    "\"tls\"",
    "\"a@b\"",
    "[]",
    "[\"\"]",
    "[\"local\"]",
    "[1, 2]",
    "[\"true\", \"\\u0000\"]",
    "{}",
    "{ PICOMON_X = \"1\" }",
    "{ \"A=B\" = \"1\" }",
    "{ ok = \"\\u0000\" }",
    "[[1]]",
    "LONG",
];

/// Table headers a line can be moved under.
const TABLES: &[&str] = &[
    "[emails]",
    "[emails.report]",
    "[hosts.local]",
    "[hosts.new]",
    "[checks.true]",
    "[checks.new]",
    "[checks.true.env]",
    "[[checks]]",
    "[hosts]",
    "[checks.\"a/b\"]",
];

/// Variables to set, with hostile raw values (no NUL: no variable holds one).
const ENV_KEYS: &[&str] = &[
    "BASE_TICK",
    "MAX_PARALLEL",
    "STATE_DIR",
    "LOG_LEVEL",
    "EMAILS",
    "EMAILS__TO",
    "EMAILS__SMTP_PASSWORD",
    "EMAILS__SMTP_PASSWORD_FILE",
    "EMAILS__SMTP_CA_FILE",
    "EMAILS__SMTP_RETRY_TIMEOUT",
    "EMAILS__REPORT__EVERY",
    "HOSTS__LOCAL__IPV4",
    "HOSTS__NEW__NAME",
    "CHECKS",
    "CHECKS__TRUE",
    "CHECKS__TRUE__TIMEOUT",
    "CHECKS__TRUE__EVERY",
    "DEFAULT_RETRY",
    "CHECKS__TRUE__COMMAND",
    "CHECKS__TRUE__ENV__X",
    "CHECKS__NEW__TYPE",
    "NO_SUCH_KEY",
];
const ENV_VALUES: &[&str] = &[
    "",
    "x",
    "-1",
    "0",
    "1e-9",
    "1e300",
    "nan",
    "[",
    "{}",
    "[1]",
    "true",
    "\u{1}",
    "/dev/zero",
    "{fifo}",
    "ping",
    "[\"a@b\"]",
    "LONG",
];

/// One mutated site: the main file's lines, a fragment, variables, modes.
struct Case {
    lines: Vec<String>,
    fragment: Vec<String>,
    env: Vec<(String, String)>,
    main_mode: Option<u32>,
    odd_fragment: Option<&'static str>,
    /// Whether a value was changed: those accepted are run as daemons.
    values: bool,
    what: Vec<String>,
}

fn mutate(rng: &mut Rng, case: &mut Case) {
    let n = case.lines.len().max(1);
    let at = rng.below(n).min(case.lines.len().saturating_sub(1));
    let value = rng.pick(VALUES).to_string();
    // Changed values reach validation (most other edits stop at parsing),
    // so they are the likeliest.
    match rng.below(12) {
        0 if !case.lines.is_empty() => {
            let gone = case.lines.remove(at);
            case.what.push(format!("delete {gone:?}"));
        }
        1 if !case.lines.is_empty() => {
            let line = case.lines[at].clone();
            case.what.push(format!("duplicate {line:?}"));
            case.lines.insert(at, line);
        }
        2..=5 if !case.lines.is_empty() => {
            let line = &mut case.lines[at];
            if let Some((key, _)) = line.split_once(" = ") {
                *line = format!("{key} = {value}");
            } else {
                *line = rng.pick(TABLES).to_string();
            }
            case.what.push(format!("set {line:?}"));
            case.values = true;
        }
        6 => {
            let line = format!("{} = {value}", rng.pick(KEYS));
            case.what.push(format!("insert {line:?} at {at}"));
            case.lines.insert(at, line);
        }
        7 if !case.lines.is_empty() => {
            let line = &mut case.lines[at];
            if let Some((_, v)) = line.split_once(" = ") {
                *line = format!("{} = {v}", rng.pick(KEYS));
                case.what.push(format!("rename to {line:?}"));
            }
        }
        8 | 9 => {
            let key = format!("PICOMON_{}", rng.pick(ENV_KEYS));
            let value = rng.pick(ENV_VALUES).to_string();
            case.what.push(format!("{key}={value:?}"));
            case.env.push((key, value));
            case.values = true;
        }
        10 => {
            let line = format!("{} = {value}", rng.pick(KEYS));
            let table = rng.pick(TABLES);
            case.what.push(format!("fragment {table} {line:?}"));
            case.fragment.push(table.to_string());
            case.fragment.push(line);
        }
        _ => match rng.below(4) {
            0 => {
                let mode = *rng.pick(&[&0o666u32, &0o664, &0o600, &0o646]);
                case.what.push(format!("chmod {mode:o} site.toml"));
                case.main_mode = Some(mode);
            }
            _ => {
                let odd = rng.pick(&["dangling", "directory", "hidden", "fifo"]);
                case.what.push(format!("{odd} fragment"));
                case.odd_fragment = Some(odd);
            }
        },
    }
}

/// Fills in the placeholders of a line or value for this site.
fn fill(text: &str, site: &Site, closed: u16) -> String {
    text.replace("{site}", &site.dir.path().display().to_string())
        .replace("{fifo}", &site.path("fifo").display().to_string())
        .replace("{closed}", &closed.to_string())
        .replace("LONG", &format!("\"{}\"", "x".repeat(100_000)))
}

/// Writes the mutated site to disk.
fn build(case: &Case, closed: u16) -> Site {
    let site = Site::new("");
    let fifo = CString::new(site.path("fifo").as_os_str().as_bytes()).expect("path");
    // SAFETY: mkfifo reads the NUL-terminated path only.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    let text: Vec<String> = case.lines.iter().map(|l| fill(l, &site, closed)).collect();
    site.write("site.toml", &(text.join("\n") + "\n"));
    if !case.fragment.is_empty() {
        let text: Vec<String> = case
            .fragment
            .iter()
            .map(|l| fill(l, &site, closed))
            .collect();
        site.write("site.d/50-fuzz.toml", &(text.join("\n") + "\n"));
    }
    if let Some(mode) = case.main_mode {
        std::fs::set_permissions(site.config(), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
    if let Some(odd) = case.odd_fragment {
        let d = site.path("site.d");
        std::fs::create_dir_all(&d).expect("mkdir");
        match odd {
            "dangling" => {
                std::os::unix::fs::symlink("/nonexistent", d.join("60-gone.toml")).expect("symlink")
            }
            "directory" => std::fs::create_dir(d.join("60-dir.toml")).expect("mkdir"),
            "hidden" => std::fs::write(d.join(".60-draft.toml"), "garbage =").expect("write"),
            _ => std::os::unix::fs::symlink(site.path("fifo"), d.join("60-fifo.toml"))
                .expect("symlink"),
        }
    }
    site
}

fn command(site: &Site, case: &Case, closed: u16) -> std::process::Command {
    let mut cmd = site.picomon();
    for (key, value) in &case.env {
        cmd.env(key, fill(value, site, closed).trim_matches('"'));
    }
    cmd
}

/// Every problem line of a refusal names where to fix it.
#[track_caller]
fn assert_every_problem_is_placed(err: &str, what: &str) {
    assert!(
        err.lines()
            .any(|l| l == "picomon: error: invalid configuration"),
        "{what}: {err}"
    );
    for line in err.lines().filter(|l| l.starts_with(" -> ")) {
        assert!(
            line.contains("site.toml") || line.contains("site.d") || line.contains("PICOMON_"),
            "{what}: a problem names no file or variable: {line}\n{err}"
        );
    }
}

#[test]
fn mutated_configurations_are_refused_clearly_or_run_and_stop() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0f1_u64);
    eprintln!("fuzz seed {seed} (replay with FUZZ_SEED={seed})");
    let mut rng = Rng(seed | 1);
    let closed = closed_port();
    let started = Instant::now();
    let (mut refused, mut accepted) = (0, Vec::new());
    for n in 0..MUTATIONS {
        let mut case = Case {
            lines: BASE.lines().map(str::to_string).collect(),
            fragment: Vec::new(),
            env: Vec::new(),
            main_mode: None,
            odd_fragment: None,
            values: false,
            what: Vec::new(),
        };
        for _ in 0..[1, 1, 1, 2, 2, 3][rng.below(6)] {
            mutate(&mut rng, &mut case);
        }
        let what = format!("mutation {n}: {}", case.what.join("; "));
        let site = build(&case, closed);
        let mut check = site.spawn_daemon(command(&site, &case, closed), &["check-config"]);
        let status = check.wait_exit(ANSWER_WITHIN);
        let err = check.stderr();
        assert!(!err.contains("panicked"), "{what}: {err}");
        match status.code() {
            Some(0) => accepted.push((case, site, what)),
            Some(78) => {
                refused += 1;
                assert_every_problem_is_placed(&err, &what);
            }
            other => panic!("{what}: check-config exited {other:?}:\n{err}"),
        }
    }
    // The daemon runs a sample of what was accepted, changed values first.
    let total = accepted.len();
    accepted.sort_by_key(|(case, _, _)| !case.values);
    let daemons = total.min(DAEMONS);
    for (case, site, what) in accepted.iter().take(DAEMONS) {
        // -D logs "picomon started" whatever log_level says.
        let mut daemon = site.spawn_daemon(command(site, case, closed), &["-D"]);
        let deadline = Instant::now() + ANSWER_WITHIN;
        while !daemon.stderr().contains("picomon started") {
            if let Some(status) = daemon.child.try_wait().expect("try_wait") {
                panic!(
                    "{what}: accepted by check-config, but the daemon exited {status}:\n{}",
                    daemon.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the daemon did not start:\n{}",
                daemon.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon.signal(libc::SIGTERM);
        let status = daemon.wait_exit(Duration::from_secs(30));
        assert_eq!(status.code(), Some(0), "{what}: {}", daemon.stderr());
    }
    let accepted = total;
    eprintln!(
        "{MUTATIONS} mutations: {accepted} accepted ({daemons} run as daemons), {refused} refused, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The mutations must exercise both answers, or they test nothing.
    assert!(
        accepted >= 10 && refused >= 100,
        "{accepted} accepted, {refused} refused"
    );
}
