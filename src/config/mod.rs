//! Configuration in three stages, each in its own file:
//!
//! 1. `raw`: what users write, serde types that reject unknown keys;
//! 2. `load`: the layers (defaults, main file, `NAME.d/*.toml` fragments,
//!    `PICOMON_*` variables) merged with figment;
//! 3. `validate`: the immutable `Config` the daemon runs from, built by
//!    `emails` (mail settings and secrets) and `checks` (hosts, checks
//!    expanded into instances).
//!
//! `error` tells where a key came from, so that every error names the key
//! and the file or environment variable that set it; `paths` checks the
//! files and directories a configuration names (state_dir, secrets)
//! without ever blocking on them.

mod checks;
mod contacts;
mod emails;
mod error;
mod load;
mod maintenance;
mod notify;
mod paths;
mod push;
pub(crate) mod raw;
mod sections;
mod toml_format;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use checks::Host;
pub use emails::{load_emails, Emails, MailSettings};
pub use error::ConfigError;
pub use error::ENV_PREFIX;
pub use load::fragment_dir;
pub use notify::{Alertmanager, HttpAuth, Notifier, NotifierKind};
// The built-in https check reads its ca_file as the loader checked it.
pub(crate) use contacts::Audience;
pub(crate) use paths::others_may_write;
pub(crate) use paths::CA_CAP;
use raw::RawConfig;
pub use raw::SmtpSecurity;
use validate::Validator;

use crate::check::Instance;

/// The whole validated configuration. Never changed once built: a reload
/// builds a new one.
#[derive(Debug, Clone)]
pub struct Config {
    pub base_tick: Duration,
    pub max_parallel: usize,
    pub log_level: log::LevelFilter,
    pub plugin_dir: PathBuf,
    pub state_dir: Option<PathBuf>,
    pub emails: Emails,
    /// `[notify.NAME]`: where every switch mailed is also told.
    pub notifiers: Vec<Notifier>,
    pub hosts: BTreeMap<String, Host>,
    /// Every enabled check, expanded per host and family, sorted by id;
    /// shared with the scheduler rather than copied.
    pub instances: Vec<Arc<Instance>>,
    /// Each instance's parents (`depends`, resolved): while one of them is
    /// failing, the instance's mails are held back.
    pub parents: crate::depends::Parents,
    /// `time_zone`, or the system's: cron lines are read in it.
    pub time_zone: jiff::tz::TimeZone,
    /// `[maintenance.NAME]`, by name.
    pub(crate) maintenance: Vec<crate::maintenance::Window>,
    /// Who is told about each instance a `[contacts.NAME]` covers; the
    /// others are told to `emails.to` and every notifier.
    pub(crate) audiences: BTreeMap<String, Audience>,
    /// `[contacts.NAME] to`, by contact: where its report goes.
    pub(crate) contacts: BTreeMap<String, Vec<String>>,
    /// Names of the checks switched off with `enabled = false`.
    pub disabled: Vec<String>,
    /// The enabled push checks (`type = "push"`), by name.
    pub(crate) push_checks: BTreeMap<String, crate::push::Rule>,
    /// `[push] listen`: where pushes over HTTP are taken (None: nowhere).
    pub(crate) push_listen: Option<std::net::SocketAddr>,
    /// `[heartbeat]`: the dead man's switch picomon pings while healthy.
    pub(crate) heartbeat: Option<crate::dead_mans_switch::Heartbeat>,
    /// The files read, in the order they were merged.
    pub files: Vec<PathBuf>,
    /// The merged layers as read, for `check-config --dump`; the daemon
    /// lets go of it (`forget_source`): with 1,000 checks it held about
    /// 1.3 MiB of resident memory.
    pub(crate) raw: Option<Box<RawConfig>>,
}

impl Config {
    /// Who is told about instance `id`.
    pub(crate) fn audience(&self, id: &str) -> Audience {
        match self.audiences.get(id) {
            Some(audience) => audience.clone(),
            None => self.everyone(),
        }
    }

    /// `emails.to` and every notifier: an instance no contact covers.
    pub(crate) fn everyone(&self) -> Audience {
        Audience {
            contacts: Vec::new(),
            to: self.emails.to.clone(),
            notify: self.notifiers.iter().map(|n| n.name.clone()).collect(),
        }
    }

    /// Loads every layer for the main file `main`, then validates.
    pub fn load(main: &Path) -> Result<Config, ConfigError> {
        Config::load_with(main, true)
    }

    /// Like `load`, for the daemon: without what `dump` needs, which is
    /// let go of check by check as they are validated.
    pub fn load_for_daemon(main: &Path) -> Result<Config, ConfigError> {
        let layers = load::load(main)?;
        let mut validator = Validator::new(layers.files);
        validator.keep_source = false;
        validator.config(layers.raw)
    }

    /// Like `load`; with `read_secrets` false, the password file and the
    /// CA file are not read, no password is required and `state_dir` is
    /// only checked as text: for validating a configuration where it is
    /// built, before its secrets and directories exist there.
    pub fn load_with(main: &Path, read_secrets: bool) -> Result<Config, ConfigError> {
        if main.extension().is_some_and(|e| e == "py") {
            return Err(ConfigError::python(main));
        }
        let layers = load::load(main)?;
        let mut validator = Validator::new(layers.files);
        validator.on_this_machine = read_secrets;
        validator.config(layers.raw)
    }

    /// The number of enabled checks (before expansion).
    pub fn check_count(&self) -> usize {
        let mut names: Vec<&str> = self.instances.iter().map(|i| i.check.as_str()).collect();
        names.dedup();
        names.len()
    }

    /// Lets go of what `dump` needs, which a running daemon never does.
    pub fn forget_source(&mut self) {
        self.raw = None;
    }

    /// The merged configuration as TOML that picomon accepts again, with
    /// secrets left out. An error after `forget_source`.
    pub fn dump(&self) -> Result<String, toml::ser::Error> {
        let Some(raw) = &self.raw else {
            return Err(serde::ser::Error::custom(
                "the configuration as read was not kept",
            ));
        };
        let mut raw = raw.clone();
        if raw.emails.smtp_password.is_some() {
            raw.emails.smtp_password = Some("<hidden>".into());
        }
        toml::to_string(&raw)
    }

    /// `OK: N checks (M instances) on H hosts from: FILES`.
    pub fn summary(&self) -> String {
        let files: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        let mut s = format!(
            "OK: {} checks ({} instances) on {} hosts",
            self.check_count(),
            self.instances.len(),
            self.hosts.len()
        );
        if !self.disabled.is_empty() {
            s.push_str(&format!(", {} disabled", self.disabled.len()));
        }
        if !self.push_checks.is_empty() {
            s.push_str(&format!(", {} push", self.push_checks.len()));
            if let Some(listen) = self.push_listen {
                s.push_str(&format!(" (HTTP on {listen})"));
            }
        }
        if let Some(heartbeat) = &self.heartbeat {
            s.push_str(&format!(", {}", heartbeat.summary()));
        }
        s.push_str(&format!(" from: {}", files.join(", ")));
        s
    }
}

#[cfg(test)]
mod tests;
