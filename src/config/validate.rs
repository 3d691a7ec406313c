//! The validation stage: turns the merged raw configuration into a
//! `Config`, collecting every problem instead of stopping at the first, so
//! that one `check-config` run shows them all. The sections are validated
//! by `emails` and `checks`; the shared helpers (bounds, names) live here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;

use super::error::{origin, ConfigError};
use super::raw::RawConfig;
use super::Config;

/// Collects every problem instead of stopping at the first, so that one
/// `check-config` run shows them all.
pub(super) struct Validator<'a> {
    pub(super) figment: &'a Figment,
    pub(super) problems: Vec<String>,
    pub(super) read_secrets: bool,
    pub(super) defaults: Defaults,
}

/// The validated `default_*` keys, for checks that do not set their own.
#[derive(Clone, Copy)]
pub(super) struct Defaults {
    pub(super) every: u32,
    pub(super) error_every: Option<u32>,
    pub(super) retry: u32,
    pub(super) timeout: Duration,
}

impl<'a> Validator<'a> {
    pub(super) fn new(figment: &'a Figment) -> Validator<'a> {
        Validator {
            figment,
            problems: Vec::new(),
            read_secrets: true,
            defaults: Defaults {
                every: 1,
                error_every: None,
                retry: 1,
                timeout: Duration::from_secs(2),
            },
        }
    }

    /// Records a problem with `key`, naming the layer that set it.
    pub(super) fn bad(&mut self, key: &str, what: impl fmt::Display) {
        let origin = origin(self.figment.find_metadata(key), key);
        self.problems.push(format!("{origin}: {key}: {what}"));
    }

    pub(super) fn positive_secs(&mut self, key: &str, value: f64) -> Duration {
        if value.is_finite() && value > 0.0 && value < 1e9 {
            Duration::from_secs_f64(value)
        } else {
            self.bad(
                key,
                format!("must be a positive number of seconds, not {value}"),
            );
            Duration::from_secs(1)
        }
    }

    pub(super) fn count(&mut self, key: &str, value: i64, min: i64) -> u32 {
        match u32::try_from(value) {
            Ok(v) if value >= min => v,
            _ => {
                self.bad(
                    key,
                    format!("must be a whole number of at least {min}, not {value}"),
                );
                1
            }
        }
    }

    pub(super) fn name(&mut self, key: &str, name: &str) {
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            self.bad(
                key,
                "a name must be non-empty, without '/' or control characters",
            );
        }
    }

    pub(super) fn config(
        mut self,
        raw: RawConfig,
        files: Vec<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let base_tick = self.positive_secs("base_tick", raw.base_tick);
        let max_parallel = self.count("max_parallel", raw.max_parallel, 1) as usize;
        self.defaults = Defaults {
            every: self.count("default_every", raw.default_every, 1),
            error_every: raw
                .default_error_every
                .map(|v| self.count("default_error_every", v, 1)),
            retry: self.count("default_retry", raw.default_retry, 0),
            timeout: self.positive_secs("default_timeout", raw.default_timeout),
        };
        let emails = self.emails(&raw.emails);
        let mut hosts = BTreeMap::new();
        for (key, host) in &raw.hosts {
            if let Some(host) = self.host(key, host) {
                hosts.insert(key.clone(), host);
            }
        }
        let mut instances = Vec::new();
        let mut disabled = Vec::new();
        for (name, check) in &raw.checks {
            if check.enabled == Some(false) {
                disabled.push(name.clone());
                continue;
            }
            instances.extend(self.check(&raw, &hosts, name, check));
        }
        instances.sort_by(|a, b| a.id.cmp(&b.id));
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
            hosts,
            instances,
            disabled,
            files,
            raw,
        })
    }
}
