//! `time_zone` and `[maintenance.NAME]`: each window's pattern, cron line
//! and duration checked here, so that a window that cannot work (a line
//! that does not parse, a window that runs into the next) is an error at
//! load naming its key, not a silence that never ends.

use std::time::SystemTime;

use jiff::tz::TimeZone;

use super::raw::RawConfig;
use super::validate::{Seconds, Validator};
use crate::maintenance::{parse_cron, shortest_period, Window};
use crate::pattern::Pattern;

impl Validator {
    /// The time zone of `time_zone`, else the system's (TZ, then
    /// /etc/localtime; UTC when neither names one).
    pub(super) fn time_zone(&mut self, raw: &RawConfig) -> TimeZone {
        match &raw.time_zone {
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => tz,
                Err(e) => {
                    self.bad(
                        "time_zone",
                        format!("{name:?}: not a time zone of the system's tzdata (such as \"Europe/Berlin\" or \"UTC\"): {e}"),
                    );
                    TimeZone::UTC
                }
            },
            None => TimeZone::try_system().unwrap_or(TimeZone::UTC),
        }
    }

    /// The windows of `[maintenance.NAME]`, read in `tz`.
    pub(super) fn maintenance(&mut self, raw: &RawConfig, tz: &TimeZone) -> Vec<Window> {
        let mut windows = Vec::new();
        for (name, m) in &raw.maintenance {
            let key = |k: &str| format!("maintenance.{name}.{k}");
            self.name(&format!("maintenance.{name}"), name);
            let pattern = match Pattern::new(&m.pattern) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.bad(&key("pattern"), e);
                    None
                }
            };
            let cron = match parse_cron(&m.cron) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.bad(&key("cron"), e);
                    None
                }
            };
            let duration = self.secs(&key("duration"), m.duration, Seconds::WEEK);
            if m.reason.trim().is_empty() {
                self.bad(
                    &key("reason"),
                    "missing: say why, for whoever wonders what silenced a check",
                );
            }
            let (Some(pattern), Some(cron)) = (pattern, cron) else {
                continue;
            };
            match shortest_period(&cron, tz, SystemTime::now()) {
                None => self.bad(&key("cron"), format!("{:?}: never comes", m.cron)),
                Some(period) if duration > period => self.bad(
                    &key("duration"),
                    format!(
                        "{} is longer than the {} between two starts of {:?}: the window would never end",
                        crate::human::human_duration(duration),
                        crate::human::human_duration(period),
                        m.cron
                    ),
                ),
                Some(_) => {}
            }
            windows.push(Window {
                name: name.clone(),
                pattern_text: m.pattern.clone(),
                pattern,
                cron_text: m.cron.clone(),
                cron,
                duration,
                reason: m.reason.trim().to_string(),
            });
        }
        windows
    }
}
