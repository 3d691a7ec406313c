//! The validation stage: turns the merged raw configuration into a
//! `Config`, collecting every problem instead of stopping at the first, so
//! that one `check-config` run shows them all. The sections are validated
//! by `emails` and `checks`; the shared helpers (bounds, names) live here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;

use super::error::{origin, shown, ConfigError};
use super::paths;
use super::raw::RawConfig;
use super::Config;

/// The shortest duration picomon accepts, in seconds. A shorter tick or
/// retry would keep the daemon loop busy; a tick that rounds down to
/// nothing (1e-7 s) left SIGTERM unanswered.
pub(super) const SHORTEST: f64 = 0.01;

/// The most plugin workers: each is a thread with its own stack, so a
/// ceiling keeps a typo (100000) from aborting the daemon at start.
pub(super) const MAX_PARALLEL: u32 = 1024;

/// The longest a duration key may be, with the words for the message.
#[derive(Clone, Copy)]
pub(super) struct Seconds {
    max: f64,
    words: &'static str,
}

impl Seconds {
    /// Ticks, timeouts, keep-alive and retry delays.
    pub(super) const DAY: Seconds = Seconds {
        max: 86_400.0,
        words: "one day",
    };
    /// A maintenance window, as long as the longest silence.
    pub(super) const WEEK: Seconds = Seconds {
        max: 604_800.0,
        words: "7 days",
    };
    /// The error report's period: a weekly report must fit.
    pub(super) const YEAR: Seconds = Seconds {
        max: 31_622_400.0,
        words: "366 days",
    };
}

/// Collects every problem instead of stopping at the first, so that one
/// `check-config` run shows them all.
pub(super) struct Validator {
    /// The files merged, and their figment, merged again only when a
    /// message must say where a key came from (see `load::extract`).
    files: Vec<PathBuf>,
    figment: std::cell::OnceCell<Figment>,
    pub(super) problems: Vec<String>,
    /// False when validating where the configuration is built, not where
    /// it runs: secrets and `state_dir` are not looked at on this machine.
    pub(super) on_this_machine: bool,
    /// False for the daemon, which never prints the configuration back:
    /// each raw check is dropped as soon as it is validated, rather than
    /// all of them kept beside the instances made from them.
    pub(super) keep_source: bool,
    pub(super) defaults: Defaults,
}

/// The validated `default_*` keys, for checks that do not set their own.
#[derive(Clone, Copy)]
pub(super) struct Defaults {
    pub(super) every: u32,
    pub(super) error_every: Option<u32>,
    pub(super) retry: u32,
    pub(super) timeout: Duration,
    pub(super) flap: crate::flapping::Limits,
    pub(super) renotify_every: Option<Duration>,
}

impl Validator {
    pub(super) fn new(files: Vec<PathBuf>) -> Validator {
        Validator {
            files,
            figment: std::cell::OnceCell::new(),
            problems: Vec::new(),
            on_this_machine: true,
            keep_source: true,
            defaults: Defaults {
                every: 1,
                error_every: None,
                retry: 1,
                timeout: Duration::from_secs(2),
                flap: crate::flapping::Limits::default(),
                renotify_every: None,
            },
        }
    }

    /// `renotify_every`: 0 for never, else seconds up to a week.
    pub(super) fn renotify(&mut self, key: &str, value: f64) -> Option<Duration> {
        (value != 0.0).then(|| self.secs(key, value, Seconds::WEEK))
    }

    /// The layers merged, to look up where a key came from. Merged anew:
    /// should a file have changed since it was read, a message may name
    /// the wrong one of the files, never a wrong value.
    pub(super) fn layers(&self) -> &Figment {
        self.figment.get_or_init(|| super::load::merge(&self.files))
    }

    /// Records a problem with `key`, naming the layer that set it.
    pub(super) fn bad(&mut self, key: &str, what: impl fmt::Display) {
        let origin = origin(self.layers(), key);
        let shown = shown(key);
        self.problems.push(format!("{origin}: {shown}: {what}"));
    }

    /// A duration in seconds within `range`, or a problem naming both
    /// bounds.
    pub(super) fn secs(&mut self, key: &str, value: f64, range: Seconds) -> Duration {
        if value.is_finite() && value >= SHORTEST && value <= range.max {
            Duration::from_secs_f64(value)
        } else {
            self.bad(
                key,
                format!(
                    "must be a number of seconds from {SHORTEST} to {} ({}), not {value}",
                    range.max, range.words
                ),
            );
            Duration::from_secs(1)
        }
    }

    /// A whole number from `min` to `max`.
    pub(super) fn count(&mut self, key: &str, value: i64, min: u32, max: u32) -> u32 {
        match u32::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => v,
            _ => {
                self.bad(
                    key,
                    format!("must be a whole number from {min} to {max}, not {value}"),
                );
                min.max(1)
            }
        }
    }

    /// `flap_switches` and `flap_window` under `at` (`""` or
    /// `checks.NAME.`): a window of 1 to 64 runs, and fewer switches than
    /// runs (0 turns flapping detection off).
    pub(super) fn flap_limits(
        &mut self,
        at: &str,
        switches: i64,
        window: i64,
    ) -> crate::flapping::Limits {
        use crate::flapping::{Limits, MAX_WINDOW};
        let window = self.count(&format!("{at}flap_window"), window, 1, MAX_WINDOW);
        let switches = self.count(&format!("{at}flap_switches"), switches, 0, MAX_WINDOW);
        if switches >= window {
            self.bad(
                &format!("{at}flap_switches"),
                format!("must be below flap_window ({window}): {window} runs cannot switch more than {window} times (0 turns flapping detection off)"),
            );
        }
        Limits { switches, window }
    }

    pub(super) fn name(&mut self, key: &str, name: &str) {
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            self.bad(
                key,
                "a name must be non-empty, without '/' or control characters",
            );
        }
    }

    /// The configuration of `raw`, read from the validator's files.
    pub(super) fn config(mut self, mut raw: RawConfig) -> Result<Config, ConfigError> {
        let base_tick = self.secs("base_tick", raw.base_tick, Seconds::DAY);
        let max_parallel = self.count("max_parallel", raw.max_parallel, 1, MAX_PARALLEL) as usize;
        self.defaults = Defaults {
            every: self.count("default_every", raw.default_every, 1, u32::MAX),
            error_every: raw
                .default_error_every
                .map(|v| self.count("default_error_every", v, 1, u32::MAX)),
            retry: self.count("default_retry", raw.default_retry, 0, u32::MAX),
            timeout: self.secs("default_timeout", raw.default_timeout, Seconds::DAY),
            flap: crate::flapping::Limits::default(),
            renotify_every: self.renotify("renotify_every", raw.renotify_every),
        };
        let flap = self.flap_limits("", raw.flap_switches, raw.flap_window);
        self.defaults.flap = flap;
        if let Some(dir) = &raw.state_dir {
            if let Some(problem) = paths::state_dir_problem(dir, self.on_this_machine) {
                self.bad("state_dir", problem);
            } else if let Some(warning) = self
                .on_this_machine
                .then(|| paths::group_may_write(dir))
                .flatten()
            {
                log::warn!("{warning}");
            }
        }
        let emails = self.emails(&raw.emails);
        let notifiers = raw
            .notify
            .iter()
            .filter_map(|(name, notify)| self.notifier(name, notify))
            .collect();
        let mut hosts = BTreeMap::new();
        for (key, host) in &raw.hosts {
            if let Some(host) = self.host(key, host) {
                hosts.insert(key.clone(), host);
            }
        }
        let mut instances = Vec::new();
        let mut disabled = Vec::new();
        // Taken out, so that each can go once validated (`keep_source`).
        // Push checks' rules read their tables before they go.
        let push_checks = self.push_rules(&raw);
        let checks = std::mem::take(&mut raw.checks);
        let depends: BTreeMap<String, Vec<String>> = checks
            .iter()
            .filter_map(|(name, c)| c.depends.clone().map(|d| (name.clone(), d)))
            .collect();
        // Which contacts each check names, kept for the same reason.
        let named_contacts: BTreeMap<String, Vec<String>> = checks
            .iter()
            .filter_map(|(name, c)| c.contacts.clone().map(|n| (name.clone(), n)))
            .collect();
        let names: BTreeSet<String> = match depends.is_empty() {
            true => BTreeSet::new(),
            false => checks.keys().cloned().collect(),
        };
        let mut kept = BTreeMap::new();
        for (name, check) in checks {
            if check.enabled == Some(false) {
                disabled.push(name.clone());
            } else {
                instances.extend(self.check(&raw, &hosts, &name, &check));
            }
            if self.keep_source {
                kept.insert(name, check);
            }
        }
        raw.checks = kept;
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        let parents = self.depends(&depends, &names, &instances, &disabled);
        let time_zone = self.time_zone(&raw);
        let maintenance = self.maintenance(&raw, &time_zone);
        let (audiences, contacts) = self.contacts(&raw, &named_contacts, &instances);
        let push_listen = self.push_listen(raw.push.as_ref());
        let heartbeat = self.heartbeat(raw.heartbeat.as_ref());
        if !self.problems.is_empty() {
            return Err(ConfigError {
                problems: self.problems,
            });
        }
        Ok(Config {
            base_tick,
            max_parallel,
            log_level: raw.log_level.filter(),
            plugin_dir: raw.plugin_dir.clone(),
            state_dir: raw.state_dir.clone(),
            emails,
            notifiers,
            hosts,
            instances,
            parents,
            time_zone,
            maintenance,
            audiences,
            contacts,
            disabled,
            push_checks,
            push_listen,
            heartbeat,
            files: self.files,
            raw: self.keep_source.then(|| Box::new(raw)),
        })
    }
}
