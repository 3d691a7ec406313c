//! Push checks and the dead man's switch in the daemon loop: a push is
//! recorded as a run's result, a push overdue becomes a failed run at the
//! check's usual interval (so `retry` counts missed periods), and the
//! heartbeat is pinged at the end of a healthy tick. The decisions are
//! `crate::push` and `crate::dead_mans_switch`; this carries them out.

use super::*;
use crate::push::Report;

impl Daemon {
    /// Push checks never pushed start their clock now (kept across
    /// restarts, so a restart does not reset it).
    pub(super) fn watch_pushes(&mut self) {
        let now = SystemTime::now();
        for slot in self.slots.values_mut() {
            if self.config.push_checks.contains_key(&slot.instance.check)
                && slot
                    .state
                    .push
                    .as_ref()
                    .map_or(true, |p| p.watched.is_none())
            {
                slot.state.push.get_or_insert_with(Default::default).watched = Some(now);
                self.save = Save::Now;
            }
        }
        if let Some(listener) = &self.push_listener {
            listener.reconfigure(&self.config.push_checks);
        }
    }

    /// A push for `check`: its report noted, a result recorded, saved at
    /// once (the last push must survive a restart).
    pub(super) fn pushed(&mut self, check: &str, report: Report) -> Result<String, String> {
        // A push check switched off has no rule: said so, not "no such check".
        if self.config.disabled.iter().any(|d| d == check) {
            return Err(format!("{check} is switched off (enabled = false)"));
        }
        if !self.config.push_checks.contains_key(check) {
            return Err(
                match self.slots.values().any(|s| s.instance.check == check) {
                    true => format!("{check} is not a push check (type = \"push\")"),
                    false => format!("no push check named {check:?} in the running configuration"),
                },
            );
        }
        let id = self
            .slots
            .values()
            .find(|s| s.instance.check == check)
            .map(|s| s.instance.id.clone())
            .ok_or_else(|| format!("{check} is switched off (enabled = false)"))?;
        let now = SystemTime::now();
        let Some(slot) = self.slots.get_mut(&id) else {
            return Err(format!("{check}: gone from the configuration"));
        };
        crate::push::note(
            slot.state.push.get_or_insert_with(Default::default),
            &report,
            now,
        );
        // The missed-push evaluation starts over from this push.
        slot.due_in = slot.state.interval(&slot.instance);
        self.save = Save::Now;
        let said = match report {
            Report::Start => {
                log::info!("{id}: push: a run started");
                "run start recorded".to_string()
            }
            Report::Done { exit, output } => {
                let result = crate::push::result_of(exit, &output, now);
                let said = format!("{} recorded: {}", result.state, result.summary);
                log::info!("{id}: push: {said}");
                self.record(&id, result);
                said
            }
        };
        self.save_state();
        Ok(said)
    }

    /// At every tick: each push check due for an evaluation whose push is
    /// overdue records a failed run.
    pub(super) fn push_tick(&mut self) {
        if self.config.push_checks.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let mut missed = Vec::new();
        for slot in self.slots.values_mut() {
            let Some(rule) = self.config.push_checks.get(&slot.instance.check) else {
                continue;
            };
            slot.due_in = slot.due_in.saturating_sub(1);
            if slot.due_in > 0 {
                continue;
            }
            slot.due_in = slot.state.interval(&slot.instance);
            match crate::push::missed(
                slot.state
                    .push
                    .as_deref()
                    .unwrap_or(&crate::push::Pushed::default()),
                rule,
                now,
            ) {
                Some(result) => missed.push((slot.instance.id.clone(), result)),
                // An evaluation is the run of a push check: counted, so
                // that the pace of runs due and done stays even.
                None => self.pace.ran(),
            }
        }
        for (id, result) in missed {
            self.record(&id, result);
        }
    }

    /// Pings the dead man's switch at the end of a tick that started
    /// `late` after its time, if picomon is healthy.
    pub(super) fn ping_switch(&mut self, now: Instant, late: Duration) {
        let Some(switch) = &mut self.dead_mans_switch else {
            return;
        };
        let running = self.slots.values().filter(|s| s.running).count();
        let longest_run = self
            .config
            .instances
            .iter()
            .map(|i| i.timeout)
            .max()
            .unwrap_or_default();
        let health = crate::dead_mans_switch::Health {
            late,
            tick: self.config.base_tick,
            in_flight: running.max(self.pool.queued()),
            last_answer: self.last_answer.map(|at| now.saturating_duration_since(at)),
            longest_run,
        };
        switch.tick(Instant::now(), health);
    }

    /// A reload's `[heartbeat]`: started, changed or stopped.
    pub(super) fn reconfigure_switch(&mut self) {
        match (&mut self.dead_mans_switch, self.config.heartbeat.clone()) {
            (Some(switch), Some(settings)) => switch.reconfigure(settings),
            (None, Some(settings)) => {
                match crate::dead_mans_switch::Switch::start(settings, &self.runner) {
                    Ok(switch) => self.dead_mans_switch = Some(switch),
                    Err(e) => log::error!("cannot start the heartbeat's thread: {e}"),
                }
            }
            (_, None) => self.dead_mans_switch = None,
        }
    }
}
