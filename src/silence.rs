//! Silences: `picomon silence add PATTERN --for 2h --reason …`, `list`,
//! `remove ID`. A silenced instance runs and keeps its state but sends no
//! mail; when its silence ends, the one mail due (the state differs from
//! what was last mailed) goes out.
//!
//! Silences live in `state_dir/silences.json`, written whole by the
//! commands (under `silences.lock`, so two commands never lose each
//! other's silence) and only read by the daemon: it looks at the file's
//! stamp once per tick and before each mail, so a silence reaches a
//! running daemon without a signal, survives restarts and reloads, and
//! costs one `stat` a tick.
//!
//! Maintenance windows (`[maintenance.NAME]`, see `maintenance.rs`) are
//! silences that come back on a cron line: while one is in force it is
//! looked up here beside the file's, so that the instances it covers
//! behave exactly as silenced ones, its end included.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::files::{self, Access, Links, Refused};
use crate::human::{human_duration, human_time};
use crate::maintenance::Window;
use crate::pattern::Pattern;
use jiff::tz::TimeZone;

/// The longest silence: a silence must end, and a forgotten one must not
/// hide an outage for more than a week.
pub(crate) const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

const FILE_NAME: &str = "silences.json";
const LOCK_NAME: &str = "silences.lock";
/// Largest silences file read: a silence is some hundred bytes.
const CAP: u64 = 16 * 1024 * 1024;
/// The file's format version; another one is refused, not misread.
const VERSION: u32 = 1;

/// One silence, as kept in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Silence {
    pub id: u64,
    /// Instance ids (`NAME/HOST/FAMILY`) it covers; `*` is any run of
    /// characters.
    pub pattern: String,
    /// Its end, in seconds since the epoch.
    pub until: u64,
    pub reason: String,
    /// When it was added, in seconds since the epoch.
    pub created: u64,
    /// The maintenance window it is an occurrence of; never in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

impl Silence {
    pub(crate) fn until(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.until)
    }

    fn active(&self, now: SystemTime) -> bool {
        self.until() > now
    }

    /// What keeps the mail back, for a log line: `silence 4`, or
    /// `maintenance window nightly`.
    pub(crate) fn by(&self) -> String {
        match &self.window {
            Some(name) => format!("maintenance window {name}"),
            None => format!("silence {}", self.id),
        }
    }
}

/// The maintenance windows of `windows` in force at `now`, as silences,
/// and when that next changes (a window ends or starts).
pub(crate) fn windows_in_force(
    windows: &[Window],
    tz: &TimeZone,
    now: SystemTime,
) -> (Vec<(Silence, Pattern)>, Option<SystemTime>) {
    let mut in_force = Vec::new();
    let mut change: Option<SystemTime> = None;
    let mut sooner = |t: SystemTime| change = Some(change.map_or(t, |c| c.min(t)));
    for w in windows {
        if let Some(span) = crate::maintenance::in_force(w, tz, now) {
            sooner(span.end);
            in_force.push((
                Silence {
                    id: 0,
                    pattern: w.pattern_text.clone(),
                    // Rounded up: it ends at its end, not a second early.
                    until: secs(span.end + Duration::from_nanos(999_999_999)),
                    reason: w.reason.clone(),
                    created: secs(span.start),
                    window: Some(w.name.clone()),
                },
                w.pattern.clone(),
            ));
        }
        if let Some(next) = crate::maintenance::next(w, tz, now) {
            sooner(next.start);
        }
    }
    (in_force, change)
}

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
struct SilenceFile {
    version: u32,
    /// The id of the next silence: ids are never reused, so `remove`
    /// cannot hit a newer silence that took an old number.
    next_id: u64,
    silences: Vec<Silence>,
}

impl Default for SilenceFile {
    fn default() -> SilenceFile {
        SilenceFile {
            version: VERSION,
            next_id: 1,
            silences: Vec::new(),
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Reads the silences of `path`; a missing file holds none.
fn read(path: &Path) -> anyhow::Result<SilenceFile> {
    let bytes = match files::read_regular(path, CAP, Links::Refuse) {
        Ok((bytes, _)) => bytes,
        Err(Refused::Missing) => return Ok(SilenceFile::default()),
        Err(e) => anyhow::bail!("{}: cannot read it: {e}", path.display()),
    };
    let file: SilenceFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a silences file", path.display()))?;
    anyhow::ensure!(
        file.version == VERSION,
        "{}: version {} (this picomon reads {VERSION})",
        path.display(),
        file.version
    );
    Ok(file)
}

/// The file's identity and content stamp: an atomic write changes the
/// inode, an edit in place the modification time or the length.
type Stamp = (u64, i64, i64, u64);

fn stamp(path: &Path) -> io::Result<Option<Stamp>> {
    // Of the name itself: a link there is refused when read.
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some((m.ino(), m.mtime(), m.mtime_nsec(), m.len()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the daemon knows of the silences, and which instances it kept
/// quiet, so that it can tell when their silence ends.
pub(crate) struct Silences {
    path: Option<PathBuf>,
    /// The stamp of the file as last read (None: missing).
    stamp: Option<Option<Stamp>>,
    active: Vec<(Silence, Pattern)>,
    /// Instances silenced at the last look.
    muted: BTreeSet<String>,
    /// The last problem logged, so that a bad file is logged once, not
    /// every tick.
    complaint: Option<String>,
    /// The configuration's maintenance windows, and the zone they are in.
    windows: Vec<Window>,
    time_zone: TimeZone,
    /// The windows in force, as silences, as of `windows_at`.
    in_window: Vec<(Silence, Pattern)>,
    /// When `in_window` was worked out, and until when it holds.
    windows_at: Option<(SystemTime, Option<SystemTime>)>,
}

impl Silences {
    /// The silences of `state_dir` (none without one).
    pub(crate) fn new(state_dir: Option<&Path>) -> Silences {
        let mut silences = Silences {
            path: state_dir.map(|d| d.join(FILE_NAME)),
            stamp: None,
            active: Vec::new(),
            muted: BTreeSet::new(),
            complaint: None,
            windows: Vec::new(),
            time_zone: TimeZone::UTC,
            in_window: Vec::new(),
            windows_at: None,
        };
        silences.refresh(SystemTime::now());
        silences
    }

    fn complain(&mut self, what: String) {
        if self.complaint.as_ref() != Some(&what) {
            log::error!("{what}; the silences read before stay in force");
            self.complaint = Some(what);
        }
    }

    /// Takes the maintenance windows of a (re)loaded configuration.
    pub(crate) fn set_windows(&mut self, windows: Vec<Window>, time_zone: TimeZone) {
        self.windows = windows;
        self.time_zone = time_zone;
        self.windows_at = None;
        self.refresh(SystemTime::now());
    }

    /// Works the windows in force out again when one may have started or
    /// ended since (or the wall clock went back).
    fn refresh_windows(&mut self, now: SystemTime) {
        let holds = self
            .windows_at
            .is_some_and(|(at, until)| at <= now && until.map_or(true, |until| now < until));
        if holds {
            return;
        }
        let (in_window, until) = windows_in_force(&self.windows, &self.time_zone, now);
        for (s, _) in &in_window {
            if !self.in_window.iter().any(|(t, _)| t == s) {
                log::info!(
                    "maintenance window {} in force until {}: {} ({})",
                    s.window.as_deref().unwrap_or(""),
                    human_time(s.until()),
                    s.pattern,
                    s.reason
                );
            }
        }
        self.in_window = in_window;
        self.windows_at = Some((now, until));
    }

    /// Reads the file again if it changed since the last look; drops the
    /// silences that ended.
    pub(crate) fn refresh(&mut self, now: SystemTime) {
        self.refresh_windows(now);
        self.active.retain(|(s, _)| s.active(now));
        let Some(path) = self.path.clone() else {
            return;
        };
        let current = match stamp(&path) {
            Ok(current) => current,
            Err(e) => return self.complain(format!("{}: cannot look at it: {e}", path.display())),
        };
        if self.stamp == Some(current) {
            return;
        }
        let file = match read(&path) {
            Ok(file) => file,
            // The stamp is not kept: the file is read again next time
            // (a chown or chmod does not change it).
            Err(e) => return self.complain(format!("{e:#}")),
        };
        self.complaint = None;
        self.stamp = Some(current);
        let mut active = Vec::new();
        for silence in file.silences.into_iter().filter(|s| s.active(now)) {
            match Pattern::new(&silence.pattern) {
                Ok(pattern) => active.push((silence, pattern)),
                Err(e) => log::error!("{}: silence {}: {e}", path.display(), silence.id),
            }
        }
        log::info!("{} silences in force from {}", active.len(), path.display());
        self.active = active;
    }

    /// The silence covering instance `id` at `now`, if any (the longest).
    pub(crate) fn find(&self, id: &str, now: SystemTime) -> Option<&Silence> {
        self.active
            .iter()
            .chain(&self.in_window)
            .filter(|(s, p)| s.active(now) && p.matches(id))
            .map(|(s, _)| s)
            .max_by_key(|s| s.until)
    }

    /// The silence that keeps the mail of instance `id` back now, after a
    /// look at the file; the instance is then remembered as muted.
    pub(crate) fn silencing(&mut self, id: &str, now: SystemTime) -> Option<&Silence> {
        self.refresh(now);
        if self.find(id, now).is_some() {
            self.muted.insert(id.to_string());
        }
        self.find(id, now)
    }

    /// Remembers `id` as muted: at a start, an instance whose state
    /// differs from what was last mailed was silenced before it.
    pub(crate) fn assume_muted(&mut self, id: &str) {
        self.muted.insert(id.to_string());
    }

    /// After a look at the file, the instances among `ids` whose silence
    /// ended since the last call (expired or removed). An instance that is
    /// not `ready` (no run since the start) stays muted until it is.
    pub(crate) fn ended<'a>(
        &mut self,
        ids: impl IntoIterator<Item = (&'a str, bool)>,
        now: SystemTime,
    ) -> Vec<String> {
        self.refresh(now);
        if self.active.is_empty() && self.muted.is_empty() {
            return Vec::new();
        }
        let before = std::mem::take(&mut self.muted);
        let mut ended = Vec::new();
        for (id, ready) in ids {
            if self.find(id, now).is_some() || (before.contains(id) && !ready) {
                self.muted.insert(id.to_string());
            } else if before.contains(id) {
                ended.push(id.to_string());
            }
        }
        ended
    }
}

/// The silences file of the configuration `main`, or an EX_CONFIG error
/// naming the missing key.
fn silences_path(main: &Path) -> anyhow::Result<(PathBuf, Config)> {
    let config = Config::load_with(main, false)?;
    let Some(dir) = config.state_dir.clone() else {
        return Err(ConfigError {
            problems: vec![format!(
                "{}: state_dir: not set; silences are kept in state_dir, so they need one",
                main.display()
            )],
        }
        .into());
    };
    Ok((dir.join(FILE_NAME), config))
}

/// Runs `change` on the silences of `path` under their lock and writes
/// the result, with the silences that ended left out.
fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut SilenceFile) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    files::create_private_dir(dir)
        .with_context(|| format!("state_dir {}: cannot create it", dir.display()))?;
    // root adding a silence for a daemon running as another user (a
    // systemd DynamicUser): the files stay that user's, or it could not
    // read them.
    let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    let owner = (meta.uid() != crate::sys::euid()).then_some((meta.uid(), meta.gid()));
    let lock_path = dir.join(LOCK_NAME);
    let lock = files::open_regular(&lock_path, Access::Lock, Links::Refuse)
        .map_err(|e| anyhow::anyhow!("{}: cannot open the lock file: {e}", lock_path.display()))?;
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::fchown(&lock, Some(uid), Some(gid));
    }
    crate::sys::lock_exclusive(&lock)
        .with_context(|| format!("{}: cannot lock it", lock_path.display()))?;
    let mut file = read(path)?;
    let now = SystemTime::now();
    file.silences.retain(|s| s.active(now));
    let out = change(&mut file)?;
    let json = serde_json::to_vec_pretty(&file).context("cannot encode the silences")?;
    files::write_atomic_owned(path, &json, owner)
        .with_context(|| format!("{}: cannot write it", path.display()))?;
    drop(lock);
    Ok(out)
}

/// `picomon silence add`.
pub(crate) fn add(
    main: &Path,
    pattern: &str,
    duration: Duration,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    let compiled = Pattern::new(pattern).map_err(|e| anyhow::anyhow!("PATTERN: {e}"))?;
    let (path, config) = silences_path(main)?;
    let now = SystemTime::now();
    let until = secs(now + duration);
    let silence = update(&path, |file| {
        let silence = Silence {
            id: file.next_id,
            pattern: pattern.to_string(),
            until,
            reason: reason.trim().to_string(),
            created: secs(now),
            window: None,
        };
        file.next_id += 1;
        file.silences.push(silence.clone());
        Ok(silence)
    })?;
    let matched: Vec<&str> = config
        .instances
        .iter()
        .map(|i| i.id.as_str())
        .filter(|id| compiled.matches(id))
        .collect();
    println!(
        "silence {}: {} until {} ({}): {}",
        silence.id,
        silence.pattern,
        human_time(silence.until()),
        human_duration(duration),
        silence.reason
    );
    if matched.is_empty() {
        eprintln!(
            "picomon: warning: {pattern:?} matches no instance of {} (yet); instance ids are NAME/HOST/FAMILY, see `picomon status`",
            main.display()
        );
    } else {
        println!(
            "silences {}: {}",
            crate::human::count(matched.len(), "instance", "instances"),
            matched.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The silences in force, one a line: ID, PATTERN, UNTIL, REASON.
fn render_list(silences: &[Silence], now: SystemTime) -> String {
    let mut out = String::new();
    if silences.is_empty() {
        out.push_str("no silences\n");
        return out;
    }
    let width = silences
        .iter()
        .map(|s| s.pattern.chars().count())
        .max()
        .unwrap_or(0)
        .max("PATTERN".len());
    let _ = writeln!(
        out,
        "{:<4} {:<width$}  {:<31}  REASON",
        "ID", "PATTERN", "UNTIL"
    );
    for s in silences {
        let left = human_duration(s.until().duration_since(now).unwrap_or_default());
        let until = format!("{} ({left} left)", human_time(s.until()));
        let _ = writeln!(
            out,
            "{:<4} {:<width$}  {until:<31}  {}",
            s.id, s.pattern, s.reason
        );
    }
    out
}

/// `picomon silence list`.
pub(crate) fn list(main: &Path) -> anyhow::Result<ExitCode> {
    let (path, config) = silences_path(main)?;
    let now = SystemTime::now();
    let mut silences = read(&path)?.silences;
    silences.retain(|s| s.active(now));
    print!("{}", render_list(&silences, now));
    // The windows, worked out here from the configuration and the clock
    // as the daemon does: no daemon need run.
    let windows = crate::maintenance::views(&config.maintenance, &config.time_zone, now);
    print!("{}", crate::maintenance::render(&windows, now));
    Ok(ExitCode::SUCCESS)
}

/// `picomon silence remove`.
pub(crate) fn remove(main: &Path, id: u64) -> anyhow::Result<ExitCode> {
    let (path, _) = silences_path(main)?;
    let removed = update(&path, |file| {
        let at = file
            .silences
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| {
                anyhow::anyhow!("ID {id}: no such silence in force (see `picomon silence list`)")
            })?;
        Ok(file.silences.remove(at))
    })?;
    println!("silence {} removed: {}", removed.id, removed.pattern);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(id: u64, pattern: &str, until: u64) -> Silence {
        Silence {
            id,
            pattern: pattern.into(),
            until,
            reason: "test".into(),
            created: 0,
            window: None,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn daemon_view(dir: &Path, silences: Vec<Silence>) -> Silences {
        let file = SilenceFile {
            version: VERSION,
            next_id: 9,
            silences,
        };
        files::write_atomic(
            &dir.join(FILE_NAME),
            &serde_json::to_vec(&file).expect("json"),
        )
        .expect("write");
        Silences::new(Some(dir))
    }

    #[test]
    fn an_instance_whose_silence_expires_or_is_removed_is_told_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let far = secs(SystemTime::now()) + 3600;
        let mut s = daemon_view(dir.path(), vec![silence(1, "a/*", far)]);
        let now = SystemTime::now();
        assert!(s.silencing("a/h/ipv4", now).is_some());
        assert!(s.silencing("b/h/ipv4", now).is_none());
        let ids = [("a/h/ipv4", true), ("b/h/ipv4", true)];
        assert!(s.ended(ids, now).is_empty());
        // Expired: the end is told once.
        let later = at(far + 1);
        assert_eq!(s.ended(ids, later), vec!["a/h/ipv4".to_string()]);
        assert!(s.ended(ids, later).is_empty());
        // Removed from the file (a new file: a new inode).
        let mut s = daemon_view(dir.path(), vec![silence(2, "b/*", far)]);
        assert!(s.silencing("b/h/ipv4", now).is_some());
        let file = SilenceFile::default();
        files::write_atomic(
            &dir.path().join(FILE_NAME),
            &serde_json::to_vec(&file).expect("json"),
        )
        .expect("write");
        // Not run since the start: it waits for its run.
        assert!(s.ended([("b/h/ipv4", false)], now).is_empty());
        assert_eq!(s.ended(ids, now), vec!["b/h/ipv4".to_string()]);
    }

    #[test]
    fn a_bad_silences_file_keeps_the_silences_read_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let far = secs(SystemTime::now()) + 3600;
        let mut s = daemon_view(dir.path(), vec![silence(1, "*", far)]);
        std::fs::write(dir.path().join(FILE_NAME), b"{ half").expect("write");
        assert!(s.silencing("x", SystemTime::now()).is_some());
    }

    #[test]
    fn the_list_shows_id_pattern_until_and_reason() {
        let now = at(1_000_000);
        let text = render_list(&[silence(3, "web/*", 1_000_000 + 7200)], now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID   PATTERN"), "{text}");
        assert!(lines[1].starts_with("3    web/*"), "{text}");
        assert!(
            lines[1].contains("1970-01-12T15:46:40Z (2h 00m 00s left)"),
            "{text}"
        );
        assert!(lines[1].ends_with("test"), "{text}");
        assert_eq!(render_list(&[], now), "no silences\n");
    }
}
