//! Command-line definitions of both binaries, kept apart from behaviour so
//! that man pages and shell completions are generated from exactly what
//! users type (`picomon generate`).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The default main configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/picomon.toml";

const PICOMON_AFTER_HELP: &str = "\
Exit status:
  0   all checks OK (-1), or stopped by SIGTERM/SIGINT
  1   a check is not OK (-1), or picomon could not start (the reason is printed)
  2   command-line usage error
  78  invalid configuration (EX_CONFIG); the file or variable and the key are named

Signals:
  SIGUSR1  print failing checks (since when, last output), then the others, and tick now
  SIGHUP   reload every configuration layer; an invalid one is logged and ignored
  SIGTERM, SIGINT  stop: kill running plugins, flush mail for a few seconds, exit 0

Files:
  /etc/picomon.toml    main configuration (see picomon.toml(5))
  /etc/picomon.d/      fragments, *.toml in lexical order
  STATE_DIR/state.json per-check state; STATE_DIR/outbox/ mail not yet sent;
  STATE_DIR/picomon.lock  held by the running picomon
  STATE_DIR/status.sock   answers picomon status (0600: picomon's user and root)
  STATE_DIR/silences.json the silences of picomon silence

Environment:
  PICOMON_KEY__SUBKEY=value overrides any key (e.g. PICOMON_BASE_TICK=30,
  PICOMON_EMAILS__SMTP_PASSWORD=...). When standard error is the stream
  JOURNAL_STREAM names (set by systemd), log lines carry a syslog priority
  (journalctl -p warning: PROBLEM lines and errors) and no timestamp.

Plugin output:
A plugin's output reaches the terminal (-1, SIGUSR1, picomon status), the
log and the mails with its control characters shown escaped, never
obeyed: ESC as \\x1b, BEL as \\x07, CR as \\r, other C0 controls and DEL as
\\xHH, C1 controls as \\u{9b}; newlines and tabs stay as they are (the log
keeps one line per event: it shows only the first line of an output).
UTF-8 text is left alone. --json outputs carry the output as it was,
JSON-escaped.";

const WATCHDOG_AFTER_HELP: &str = "\
Supervision:
picomon-watchdog runs picomon (the one next to it, else the one on PATH)
with its arguments, passes picomon's standard error through, and forwards
SIGHUP and SIGUSR1. When its own standard error is the stream
JOURNAL_STREAM names (under systemd), picomon's log lines and its own
carry a syslog priority and no timestamp, so that journalctl -p warning
shows PROBLEM lines and errors. When picomon exits with a non-zero status or is killed,
it mails watchdog_subject to the configured addresses, with the status or
signal and the last 20 lines of picomon's standard error, and starts it
again after 1 s, doubling up to 5 min (back to 1 s after 10 min of steady
running). The same kind of failure is mailed at most every 15 minutes.
Exit status 78 (invalid configuration) is mailed once and retried every
5 minutes; SIGHUP to the watchdog retries at once. Mailing needs only the
[emails] section: when the configuration is invalid from the start, the
watchdog mails with that section validated alone, and says in its log
when even that cannot be used (then nothing can be mailed until it is
fixed).

Hangs:
picomon reports each tick on a pipe (--heartbeat-fd); with no report for
--hang-timeout seconds, the watchdog kills it (SIGTERM, SIGKILL after 5 s),
mails \"hung\", and restarts it.

Signals:
SIGTERM or SIGINT stops picomon and then the watchdog, without mail, also
when it comes while a hung picomon is being killed or a restart awaited.
picomon gets 30 s to stop (to end its plugins and flush queued mail)
before SIGKILL; a service manager's stop timeout should be longer. A
picomon that exits 0 was told to stop: the watchdog stops with it.
SIGHUP and SIGUSR1 are forwarded to picomon.

Takeover:
A picomon whose watchdog was killed (SIGKILL, out of memory) goes on
monitoring. Before each start, a watchdog whose configuration has
state_dir looks at STATE_DIR/picomon.lock: when a picomon that no
picomon-watchdog runs holds it, that picomon gets SIGTERM (SIGKILL after
30 s), and the new one starts once the lock is free. The picomon of
another running watchdog is left alone (the new one then fails \"state_dir
is in use\", and that is mailed). Without state_dir there is no lock to
find the old picomon by: both run, and each alert is mailed twice, until
the old one is stopped by hand. Under systemd with KillMode=mixed, the
death of the watchdog makes systemd kill what is left of the service
(SIGKILL, at the latest after TimeoutStopSec=) before Restart= starts it
again, so there is nothing to take over.

Exit status:
  0   after a requested stop
  1   it could not start (the reason is printed)
  2   command-line usage error";

/// A very small alerting daemon: runs monitoring plugins on a schedule and
/// emails when a check fails and when it recovers.
#[derive(Debug, Parser)]
#[command(name = "picomon", version, about, long_about = None)]
#[command(after_long_help = PICOMON_AFTER_HELP, disable_help_subcommand = true)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of the daemon itself (no subcommand).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run every check once, now and in parallel, print the results and exit
    /// (0 when all are OK, 1 otherwise); sends no email.
    #[arg(short = '1', long = "one")]
    pub one: bool,

    /// With --one: print one JSON object per check instead of text.
    #[arg(long, requires = "one")]
    pub json: bool,

    /// A pipe to write a byte to after every tick (set by picomon-watchdog).
    #[arg(long, value_name = "FD", hide = true)]
    pub heartbeat_fd: Option<i32>,

    /// Log lines for the journal, with a syslog priority and no timestamp,
    /// on a standard error that is not the journal stream itself (set by a
    /// picomon-watchdog that passes the lines on to the journal).
    #[arg(long, hide = true)]
    pub log_priorities: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Main configuration file; fragments are read from the directory of
    /// the same name with `.d` instead of `.toml`.
    #[arg(short, long, value_name = "CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Log at DEBUG level, whatever `log_level` says.
    #[arg(short = 'D', long)]
    pub debug: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate every configuration layer, then print a summary.
    CheckConfig {
        /// Print the merged configuration as TOML instead of the summary.
        #[arg(long)]
        dump: bool,

        /// Do not read smtp_password_file and smtp_ca_file, nor require a
        /// password: for checking a configuration where it is built, before
        /// its secrets are there.
        #[arg(long)]
        no_secrets: bool,

        #[command(flatten)]
        common: CommonArgs,
    },
    /// Print a picomon.py configuration file (`config.py`) as picomon
    /// TOML, on standard output.
    #[command(after_long_help = MIGRATE_AFTER_HELP)]
    Migrate {
        /// The picomon.py configuration, a Python file.
        #[arg(value_name = "CONFIG.py")]
        config: PathBuf,

        /// Log at DEBUG level.
        #[arg(short = 'D', long)]
        debug: bool,
    },
    /// Print the running daemon's live view: failing checks first (since
    /// when, severity, last output, silence), then the others with their
    /// last run.
    #[command(after_long_help = STATUS_AFTER_HELP)]
    Status {
        /// Print the view as one JSON object (`instances`: `instance`,
        /// `name`, `target`, `standing`, `severity`, `since`, `failed_runs`,
        /// `last_run`, `output`, `silenced`, and when set `acked`, `told`,
        /// `reminders`; `maintenance`: each window with `until` and `next`;
        /// times in seconds since the epoch).
        #[arg(long)]
        json: bool,

        #[command(flatten)]
        common: CommonArgs,
    },
    /// Keep back the mail of matching checks for a while (maintenance):
    /// they go on running and keeping their state; when the silence ends,
    /// each one whose state differs from what was last mailed gets one
    /// mail.
    #[command(after_long_help = SILENCE_AFTER_HELP)]
    Silence {
        #[command(subcommand)]
        action: SilenceAction,
    },
    /// Acknowledge the outage of the failing checks matching PATTERN:
    /// no more reminders (renotify_every) until each recovers; the
    /// recovery is still mailed.
    #[command(after_long_help = ACK_AFTER_HELP)]
    Ack {
        /// An instance id (NAME/HOST/FAMILY, or NAME for a check without
        /// hosts), or a pattern of them where `*` matches any run of
        /// characters, e.g. `homepage/*`.
        #[arg(value_name = "ID-or-PATTERN", value_parser = parse_pattern)]
        pattern: String,

        /// Why, or who is on it (shown by status).
        #[arg(long, value_name = "TEXT", value_parser = parse_reason)]
        reason: String,

        #[command(flatten)]
        common: CommonArgs,
    },
    /// Tell the running daemon a push check's result (`type = "push"`),
    /// or run COMMAND and tell it when the run starts and how it ended.
    #[command(after_long_help = PUSH_AFTER_HELP)]
    Push {
        /// The push check's name (`[checks.NAME]`, type = "push").
        #[arg(value_name = "NAME")]
        name: String,

        /// The result as a Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL,
        /// 3 UNKNOWN, any other CRITICAL.
        #[arg(
            long = "exit",
            value_name = "CODE",
            default_value_t = 0,
            allow_negative_numbers = true,
            conflicts_with = "command"
        )]
        exit: i32,

        /// The output to record (its first line is the summary a mail
        /// shows).
        #[arg(
            long,
            value_name = "TEXT",
            default_value = "",
            conflicts_with = "command"
        )]
        output: String,

        /// Run this command (no shell), record its exit code and the tail
        /// of its output, and exit with its status.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<OsString>,

        #[command(flatten)]
        common: CommonArgs,
    },
    /// Write the man pages and shell completions into DIR/man and
    /// DIR/completions (for packaging).
    #[command(hide = true)]
    Generate {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run a built-in monitoring plugin (what dns-zone, openvpn and https
    /// checks run); Nagios plugin API: prints one status line, exits 0 to 3.
    #[command(hide = true)]
    Plugin {
        #[command(subcommand)]
        plugin: Plugin,
    },
}

/// What `picomon silence` does.
#[derive(Debug, Subcommand)]
pub enum SilenceAction {
    /// Silence the check instances matching PATTERN for a while; prints
    /// the new silence's ID and the instances it covers now.
    Add {
        /// Instance ids (NAME/HOST/FAMILY, or NAME for a check without
        /// hosts) to silence; `*` matches any run of characters, e.g.
        /// `*/web/*` (every check on host web) or `homepage/*`.
        #[arg(value_name = "PATTERN", value_parser = parse_pattern)]
        pattern: String,

        /// How long, e.g. 30m, 2h, 1day; at most 7 days.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_silence_duration)]
        duration: Duration,

        /// Why, for whoever wonders what silenced a check (shown by list
        /// and status).
        #[arg(long, value_name = "TEXT", value_parser = parse_reason)]
        reason: String,

        #[command(flatten)]
        common: CommonArgs,
    },
    /// List the silences in force: ID, pattern, end, reason.
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// End the silence ID now.
    Remove {
        /// The silence's ID, from `picomon silence list`.
        #[arg(value_name = "ID")]
        id: u64,

        #[command(flatten)]
        common: CommonArgs,
    },
}

const STATUS_AFTER_HELP: &str = "\
Exit status:
  0   no check is failing
  1   a check is failing (silenced or not)
  3   no picomon answers for CONFIG (Nagios UNKNOWN), the reason printed:
      none runs with its state_dir; the one that runs did not answer within
      5 s (\"timed out after 5 s: the picomon (pid N) at SOCKET is not
      answering\"); this user may not ask it (\"you may not ask the picomon
      at SOCKET\"); or CONFIG has no state_dir
  78  invalid configuration (also when no picomon runs and CONFIG, secrets
      included, would not start one)

How:
picomon status asks the daemon running with CONFIG's state_dir over the
socket STATE_DIR/status.sock (mode 0600: only picomon's user and root may
ask). The daemon builds the view when asked, so it costs nothing between
queries; it serves up to 64 clients at once and cuts off one that has not
asked within 1 s, so idle connections never keep a real query waiting.
Whether a daemon runs is told by the lock STATE_DIR/picomon.lock, which
picomon status only looks at (in /proc/locks), never takes.

Control characters in a plugin's output (ESC, BEL, CR, ...) are shown
escaped, as \\x1b, \\x07, \\r (C1 controls as \\u{9b}), never sent to the
terminal; --json gives the output as it was, JSON-escaped.";

const MIGRATE_AFTER_HELP: &str = "\
How:
A picomon.py configuration is a Python program, so picomon migrate runs
it: python3 (-I -S -B: isolated, without site-packages) evaluates
CONFIG.py against stand-ins for picomon.py's picomon.checks and
picomon.config, which build what picomon.py would have built (hosts,
check instances, settings) and run no check; picomon then writes that as
TOML. CONFIG.py is code: whatever it does, it does with your rights when
migrated, as it did under picomon.py. Run picomon migrate only on files
you trust. The evaluation is stopped after 10 s; what CONFIG.py prints is
ignored (shown only when it fails).

Translation:
Every check class becomes its type (CheckPing4 and CheckPing6 on the same
hosts: one ping check with ip = [4, 6]); a Check subclass whose check()
runs one command with exec_with_timeout becomes a command check, its
address as {addr}; every Host a [hosts.NAME] table named after its
variable. retry is picomon.py's minus one: picomon.py mailed at the
retry-th failed run in a row, picomon at the (retry + 1)-th, so the first
mail comes at the same run, as many ticks after an outage begins (one
difference: picomon runs every check once at its start, where picomon.py
first ran a check of every = N at its N-th tick). https checks get
verify = false, since
picomon.py's check_http in SSL mode took any certificate. Whatever cannot be
translated is kept as a comment naming its line in CONFIG.py, and warned
about on standard error. Check the result with picomon check-config -c
FILE, try it with picomon -1 -c FILE.

Exit status:
  0   the TOML is printed (warnings, if any, on standard error)
  1   python3 is missing (the message names it), or CONFIG.py could not be
      evaluated: it raised (its traceback's last lines are shown), took
      longer than 10 s, or is not a readable file";
const PUSH_AFTER_HELP: &str = "\
Push checks:
A check of type = \"push\" runs nothing: it is told its results, and fails
with \"no push for 1d 1h (last at ...)\" when none came for period + grace
(grace defaults to a tenth of period). A missed push is a failed run like
any other: retry (0 by default for push checks), digests, silences,
depends, notifiers and picomon status apply; the last push is kept in
STATE_DIR/state.json across restarts.

  picomon push backup --exit 2 --output \"BACKUP CRITICAL - disk full\"
  picomon push backup -- /usr/local/bin/backup       (a cron line)

With -- COMMAND, picomon push tells the daemon when the run starts (a run
still going is not missed, one going for longer than period is), passes
its output (standard error merged) to standard output, records its exit
code and the last 16 KiB of its output, and exits with its status (128+N
when killed by signal N). A daemon that cannot be told is a warning on
standard error; the command runs anyway.

picomon push talks to the daemon over STATE_DIR/status.sock, so only
picomon's user and root may push. Other machines push over HTTP when
[push] listen is set: POST /push/NAME[?exit=N] with the output as body and
Authorization: Bearer TOKEN, the token in the check's token_file (see
picomon.toml(5)).

Exit status (without COMMAND):
  0   recorded
  1   not recorded: no daemon answers, or it has no push check NAME
  78  invalid configuration, or no state_dir in it";

const SILENCE_AFTER_HELP: &str = "\
Silences:
A silenced check instance runs, switches and keeps its state as usual
(picomon status shows it, marked silenced), but no Problem or OK mail is
sent for it. When the silence ends (its time is up, or it is removed),
an instance whose state differs from what was last mailed gets one mail:
the Problem of an outage that began during the silence, or the OK of
one mailed before it that ended during it (in the Problem's thread).

Silences are kept in STATE_DIR/silences.json (0600, picomon's user), so
they need state_dir; they survive restarts and reloads, and a running
picomon sees a change within a tick, without a signal. Every silence
ends: --for is required, at most 7 days; so is --reason.

Exit status:
  0   done
  1   the silences file cannot be read or written, or no silence has ID
  2   command-line usage error (a bad PATTERN, DURATION or TEXT)
  78  invalid configuration, or no state_dir in it";

const ACK_AFTER_HELP: &str = "\
Acknowledgements:
An acknowledgement stops the reminders (renotify_every) of the outage of
each failing instance it matches, until that instance recovers; the OK
mail is still sent, and the next outage is reminded again: an ack never
outlives its outage. picomon status shows who acknowledged, when and
why. The running daemon takes it over its status socket and keeps it in
STATE_DIR/state.json, so it survives restarts; no daemon running is an
error.

Exit status:
  0   acknowledged (the instances matched and not failing are listed)
  1   nothing to acknowledge (no instance matches, none of them fails), or
      no daemon answers
  2   command-line usage error (a bad PATTERN or TEXT)
  78  invalid configuration, or no state_dir in it";

/// The built-in plugins.
#[derive(Debug, Subcommand)]
pub enum Plugin {
    /// Ask every nameserver of ZONE, over UDP and without recursion, for
    /// its SOA: OK when all answer authoritatively with one serial,
    /// WARNING when serials differ, CRITICAL when one does not answer or is
    /// not authoritative.
    DnsZone(DnsZoneArgs),
    /// Send an OpenVPN P_CONTROL_HARD_RESET_CLIENT_V2 (with the tls-auth
    /// HMAC or tls-crypt wrapping of a static key, when given) over UDP:
    /// OK when the server answers with its hard reset.
    Openvpn(OpenvpnArgs),
    /// Fetch a page over TLS (rustls): OK when the certificate is trusted
    /// and names the server, the status is as expected and the page holds
    /// the string; WARNING/CRITICAL when the certificate expires soon.
    Https(HttpsArgs),
}

#[derive(Debug, Args)]
pub struct DnsZoneArgs {
    /// The zone, e.g. example.org.
    #[arg(value_name = "ZONE")]
    pub zone: String,

    /// A nameserver to ask, as NAME=ADDRESS (repeat for each); default:
    /// the zone's NS records, looked up through the system's resolver.
    #[arg(short = 's', long = "server", value_name = "NAME=ADDRESS", value_parser = parse_server)]
    pub servers: Vec<(String, IpAddr)>,

    /// Only IPv4 addresses of the nameservers.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Only IPv6 addresses of the nameservers.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Seconds for the whole check.
    #[arg(short, long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct OpenvpnArgs {
    /// The server's address.
    #[arg(short = 'H', long = "host", value_name = "ADDRESS")]
    pub addr: IpAddr,

    /// The server's UDP port.
    #[arg(short, long, default_value = "1194")]
    pub port: u16,

    /// Seconds to wait for the answer.
    #[arg(short, long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: Duration,

    /// The server's tls-auth static key file.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_crypt")]
    pub tls_auth: Option<PathBuf>,

    /// The client's key-direction for --tls-auth (0 or 1; absent: the key
    /// is used in both directions).
    #[arg(long, value_name = "0|1", requires = "tls_auth", value_parser = clap::value_parser!(u8).range(0..=1))]
    pub key_direction: Option<u8>,

    /// The server's tls-crypt static key file.
    #[arg(long, value_name = "FILE")]
    pub tls_crypt: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HttpsArgs {
    /// The server's address.
    #[arg(short = 'H', long = "host", value_name = "ADDRESS")]
    pub addr: IpAddr,

    /// The server's TCP port.
    #[arg(short, long, default_value = "443")]
    pub port: u16,

    /// Seconds for the whole check.
    #[arg(short, long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: Duration,

    /// The name sent as SNI and Host, and that the certificate must name;
    /// default: the address.
    #[arg(long, value_name = "NAME")]
    pub vhost: Option<String>,

    /// The path to GET.
    #[arg(short, long, value_name = "PATH", default_value = "/")]
    pub url: String,

    /// The status the answer must have; default: any 2xx or 3xx (4xx is
    /// WARNING, 5xx CRITICAL).
    #[arg(short = 'e', long, value_name = "CODE", value_parser = clap::value_parser!(u16).range(100..=999))]
    pub status: Option<u16>,

    /// A string the page's body must contain.
    #[arg(short, long, value_name = "TEXT")]
    pub string: Option<String>,

    /// Take any certificate (its dates are still judged with
    /// --certificate-days).
    #[arg(long, conflicts_with = "ca_file")]
    pub no_verify: bool,

    /// Trust only the CAs of this PEM file, instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// WARNING when the certificate expires in fewer than WARN days,
    /// CRITICAL in fewer than CRIT (or when it has expired).
    #[arg(short = 'C', long, value_name = "WARN,CRIT", value_parser = parse_certificate_days)]
    pub certificate_days: Option<(u32, u32)>,
}

fn parse_certificate_days(s: &str) -> Result<(u32, u32), String> {
    let days = s
        .split_once(',')
        .and_then(|(w, c)| Some((w.parse::<u32>().ok()?, c.parse::<u32>().ok()?)));
    match days {
        Some((warn, crit)) if warn >= crit => Ok((warn, crit)),
        _ => Err(format!(
            "{s:?} is not WARN,CRIT: days before expiry, WARN >= CRIT >= 0"
        )),
    }
}

fn parse_server(s: &str) -> Result<(String, IpAddr), String> {
    let (name, addr) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=ADDRESS"))?;
    let addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    Ok((name.to_string(), addr))
}

/// Runs picomon with the same arguments, emails the addresses of its
/// configuration when picomon exits or stops answering, and starts it
/// again.
#[derive(Debug, Parser)]
#[command(
    name = "picomon-watchdog",
    version,
    about = "Runs picomon, emails when it exits or hangs, and starts it again",
    long_about = None
)]
#[command(after_long_help = WATCHDOG_AFTER_HELP)]
pub struct WatchdogCli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Consider picomon hung when it reports no tick for this many seconds
    /// [default: 3 × base_tick, at least 30].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub hang_timeout: Option<Duration>,

    /// The picomon to run [default: the one next to this program, else the
    /// one on PATH].
    #[arg(long, value_name = "PATH")]
    pub picomon: Option<PathBuf>,

    /// More arguments for picomon, after `--`.
    #[arg(last = true, value_name = "PICOMON_ARGS")]
    pub rest: Vec<OsString>,
}

fn parse_silence_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 30m, 2h, 1day)"))?;
    if d.is_zero() {
        return Err(format!("{s:?}: a silence must last"));
    }
    if d > crate::silence::LONGEST {
        return Err(format!("{s:?}: longer than the longest silence, 7 days"));
    }
    Ok(d)
}

/// A usage error (exit 2) like a bad DURATION, not a failure to silence.
fn parse_pattern(s: &str) -> Result<String, String> {
    crate::pattern::Pattern::new(s).map(|_| s.to_string())
}

fn parse_reason(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("say why, for whoever finds the silence".into());
    }
    if s.chars().any(char::is_control) {
        return Err("one line, without control characters".into());
    }
    Ok(s.to_string())
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}
