//! The per-instance state machine of SPEC section 4: consecutive failed
//! runs, the switch to failing after `retry + 1` of them, recovery at the
//! first OK run. `record` takes a run's result and returns the switch it
//! causes as a complete `Event`, built here where `since` is known; the
//! daemon only tells it on (log, mail) and saves.
//! The store that keeps states across restarts is `state_store`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::check::{Instance, RunResult, State};

/// What is remembered about one check instance between runs (and, with
/// `state_dir`, across restarts: every field but `last`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckState {
    /// Failed runs in a row, the current one included.
    pub failed_runs: u32,
    /// When the first of those failed runs started.
    pub since: Option<SystemTime>,
    /// True from the `retry + 1`-th failed run to the next OK one.
    pub failing: bool,
    /// What the last mail about this instance said: the `since` of the
    /// outage its Problem mail announced, or None after an OK mail (or
    /// none yet). It differs from `failing` only while mail is withheld
    /// (a silence); when that ends, the difference is the one mail due,
    /// and an OK mail replies to the Problem mail that was really sent.
    pub mailed: Option<SystemTime>,
    /// The Message-ID of the mail that told the outage `mailed` names,
    /// when that was not the instance's own Problem mail (a digest, a
    /// flapping mail), whose id cannot be derived from the instance; None
    /// for the own mail, whose id is derived from the instance and
    /// `mailed`, so the state file holds no Message-ID for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailed_by: Option<String>,
    /// Per contact (`[contacts.NAME]`), the Message-ID of the Problem
    /// digest that contact got, when a contact's digest told the outage:
    /// each contact's OK replies to the mail it got. A contact absent
    /// here got the instance's own Problem mail (derived id) or the one
    /// `mailed_by` names. State files written before it load empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub threads: BTreeMap<String, String>,
    /// Recent switches, and whether it is flapping (no switch mails then).
    #[serde(skip_serializing_if = "crate::flapping::Flap::is_quiet")]
    pub flap: crate::flapping::Flap,
    /// When the current outage was last told (its Problem, or its last
    /// reminder): `renotify_every` counts from it, across restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_told: Option<SystemTime>,
    /// Reminders told for the current outage.
    #[serde(skip_serializing_if = "is_zero")]
    pub reminders: u32,
    /// `picomon ack`: who acknowledged the current outage, and why; no
    /// reminders while it stands. Dropped when the outage ends. Boxed:
    /// few instances ever have one, and every slot would carry its 72
    /// bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<Box<Ack>>,
    /// A push check's pushes (the last one, a run going on); state files
    /// of picomons without push checks have none, and load as before.
    /// None until a push check has something to keep: its 48 bytes in
    /// every slot of the other checks were a tenth of it.
    #[serde(skip_serializing_if = "crate::state::is_unpushed")]
    pub push: Option<Box<crate::push::Pushed>>,
    /// The last run, for the status view; a restart starts without it.
    #[serde(skip)]
    pub last: Option<RunResult>,
    /// `since` on the monotonic clock, when this picomon saw that run:
    /// an outage's length comes from it, so that a step of the wall clock
    /// does not stretch it (after a restart, the wall clock is all there
    /// is).
    #[serde(skip)]
    pub since_mono: Option<Instant>,
    /// The last outage that ended, for its OK mail when that is sent
    /// later (a silence or a hold ended): so every OK mail of it says the
    /// same, whenever it goes out. Boxed: kept after the first recovery
    /// only, and 40 bytes in every slot otherwise.
    #[serde(skip)]
    pub ended: Option<Box<Ended>>,
    /// The failing instance this one depends on that holds its mails
    /// back, as of the last flush (`depends`); for the status view.
    #[serde(skip)]
    pub held_by: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An acknowledgement of one outage (`picomon ack`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The user who ran `picomon ack`.
    pub by: String,
    pub reason: String,
    /// When, in seconds since the epoch.
    pub at: u64,
    /// The `since` of the outage it acknowledges: it stands for that one
    /// only.
    pub since: SystemTime,
}

/// An outage that ended: when it began, how long it lasted, how many
/// runs failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub since: SystemTime,
    pub after: Duration,
    pub failed_runs: u32,
}

/// What a run changed: the switch it causes, and the news about flapping.
#[derive(Debug)]
pub struct Recorded {
    pub switch: Option<Event>,
    pub flap: Option<crate::flapping::News>,
}

/// A switch of a check instance, to be told to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The instance is now failing.
    Failing,
    /// The instance was failing and its last run was OK.
    Recovered {
        /// From the first failed run to the OK one.
        after: Duration,
        /// How many runs failed in between.
        failed_runs: u32,
    },
    /// The instance was failing when its check left the configuration:
    /// its Problem thread is closed, since no recovery will ever come.
    Unmonitored {
        /// From the first failed run to the removal.
        after: Duration,
    },
}

/// A transition with everything needed to describe it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub check: String,
    pub dest: String,
    pub transition: Transition,
    /// When the outage began: the first failed run.
    pub since: SystemTime,
    /// The run that caused the switch (for `Unmonitored`, the last one).
    pub result: RunResult,
    /// For a recovery or a removal: the Message-ID it replies to, when the
    /// problem was told by another mail than the instance's own Problem
    /// mail (a digest); None replies to the Message-ID derived from the
    /// instance and `since`.
    pub reply_to: Option<String>,
    /// Instances that depend on this one and whose mails are held back
    /// while it fails, for its mail to list.
    pub held: Vec<String>,
    /// Why its mail goes out later than the switch, if it does.
    pub late: Option<Late>,
}

/// Why a switch is told later than it happened: the mail says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Late {
    /// Held back while the instance it depends on was failing.
    Held {
        /// The parent that held it.
        parent: String,
    },
    /// Kept quiet by a silence that ended (or by a restart).
    Silenced,
}

impl CheckState {
    /// Records a run of `instance` that started at `mono` on the
    /// monotonic clock; returns the switch it causes, if any, and what it
    /// changed about flapping. Flapping counts results that differ from
    /// the one before (as Nagios does), not switches: a check failing
    /// every other run never switches under `retry = 1`, and is exactly
    /// what flapping is there to report.
    pub fn record(&mut self, instance: &Instance, result: RunResult, mono: Instant) -> Recorded {
        let at = result.started;
        let failed_before = self.failed_runs > 0;
        let failed_now = result.state != State::Ok;
        let transition = if !failed_now {
            let was_failing = self.failing;
            let failed_runs = self.failed_runs;
            let since = self.since.take();
            let since_mono = self.since_mono.take();
            self.failed_runs = 0;
            self.failing = false;
            // An ack does not outlive its outage, nor do its reminders.
            self.ack = None;
            self.reminders = 0;
            match (was_failing, since) {
                (true, Some(since)) => {
                    let after = match since_mono {
                        Some(start) => mono.saturating_duration_since(start),
                        None => at.duration_since(since).unwrap_or_default(),
                    };
                    self.ended = Some(Box::new(Ended {
                        since,
                        after,
                        failed_runs,
                    }));
                    Some((Transition::Recovered { after, failed_runs }, since))
                }
                _ => None,
            }
        } else {
            self.failed_runs = self.failed_runs.saturating_add(1);
            if self.since.is_none() {
                self.since_mono = Some(mono);
            }
            let since = *self.since.get_or_insert(at);
            if !self.failing && self.failed_runs > instance.retry {
                self.failing = true;
                Some((Transition::Failing, since))
            } else {
                None
            }
        };
        let switch = transition.map(|(transition, since)| Event {
            id: instance.id.clone(),
            check: instance.check.clone(),
            dest: instance.dest.clone(),
            transition,
            since,
            result: result.clone(),
            reply_to: None,
            held: Vec::new(),
            late: None,
        });
        self.last = Some(result);
        let flap = self
            .flap
            .observe(failed_now != failed_before, instance.flap);
        Recorded { switch, flap }
    }

    /// The check of instance `id` left the configuration for good: when
    /// it was failing, the event that closes its thread.
    pub fn close(self, id: &str, check: &str, dest: &str, now: SystemTime) -> Option<Event> {
        if !self.failing {
            return None;
        }
        // The thread to close is the one whose Problem mail went out.
        let since = self.mailed.or(self.since).unwrap_or(now);
        let result = self.last.unwrap_or_else(|| RunResult {
            state: State::Unknown,
            exit_code: None,
            summary: "no longer monitored".to_string(),
            perfdata: String::new(),
            details: String::new(),
            duration: Duration::ZERO,
            started: now,
        });
        Some(Event {
            id: id.to_string(),
            check: check.to_string(),
            dest: dest.to_string(),
            transition: Transition::Unmonitored {
                after: now.duration_since(since).unwrap_or_default(),
            },
            since,
            result,
            reply_to: self.mailed_by,
            held: Vec::new(),
            late: None,
        })
    }

    /// What a restart needs of this state; a change of it is worth a save.
    #[allow(clippy::type_complexity)]
    pub fn durable(
        &self,
    ) -> (
        u32,
        Option<SystemTime>,
        bool,
        Option<SystemTime>,
        bool,
        Option<SystemTime>,
        Option<Ack>,
        crate::push::Pushed,
    ) {
        (
            self.failed_runs,
            self.since,
            self.failing,
            self.mailed,
            self.flap.flapping,
            self.last_told,
            self.ack.as_deref().cloned(),
            self.push.as_deref().cloned().unwrap_or_default(),
        )
    }

    /// The acknowledgement of the current outage, if one stands.
    pub fn acked(&self) -> Option<&Ack> {
        self.ack
            .as_deref()
            .filter(|a| self.failing && Some(a.since) == self.since)
    }

    /// `picomon ack`: acknowledges the current outage; false when the
    /// instance is not failing (nothing to acknowledge).
    pub fn acknowledge(&mut self, by: &str, reason: &str, now: SystemTime) -> bool {
        let (true, Some(since)) = (self.failing, self.since) else {
            return false;
        };
        self.ack = Some(Box::new(Ack {
            by: by.to_string(),
            reason: reason.to_string(),
            at: now
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            since,
        }));
        true
    }

    /// The reminder due at `now` for an instance failing and told so,
    /// every `every` (None or zero: never), unacknowledged and not
    /// flapping: the Problem event again, in its thread, with how long
    /// the outage has lasted. Pure: the clock is passed in.
    pub fn reminder_due(
        &self,
        instance: &Instance,
        every: Option<Duration>,
        now: SystemTime,
    ) -> Option<(Event, Duration)> {
        if self.next_reminder(every).map_or(true, |due| now < due) {
            return None;
        }
        let mailed = self.mailed?;
        let since = self.since?;
        let last = self.last.as_ref()?;
        let event = Event {
            id: instance.id.clone(),
            check: instance.check.clone(),
            dest: instance.dest.clone(),
            transition: Transition::Failing,
            since: mailed,
            result: last.clone(),
            reply_to: self.mailed_by.clone(),
            held: Vec::new(),
            late: None,
        };
        Some((event, now.duration_since(since).unwrap_or_default()))
    }

    /// When the next reminder is due, every `every` (None or zero:
    /// never): for an outage told, unacknowledged and not flapping.
    pub fn next_reminder(&self, every: Option<Duration>) -> Option<SystemTime> {
        let every = every.filter(|e| !e.is_zero())?;
        if !self.failing || self.flap.flapping || self.acked().is_some() {
            return None;
        }
        let mailed = self.mailed?;
        // Told before picomon kept the time (an older state file): from
        // the outage's start.
        Some(self.last_told.unwrap_or(mailed) + every)
    }

    /// Remembers a reminder told at `now`.
    pub fn note_reminded(&mut self, now: SystemTime) {
        self.last_told = Some(now);
        self.reminders = self.reminders.saturating_add(1);
    }

    /// `event` as it is mailed: an OK (or "no longer monitored") mail
    /// replies to the Problem mail that was sent, which is another outage
    /// than the event's when the check recovered and failed again while
    /// silenced.
    ///
    /// `contact` is whom the mail goes to (None: no contact covers the
    /// instance): its OK replies to the Problem mail that contact got.
    pub fn threaded(&self, event: &Event, contact: Option<&str>) -> Event {
        let mut event = event.clone();
        if event.transition != Transition::Failing {
            if let Some(since) = self.mailed {
                event.since = since;
            }
            // A Problem told by a digest: its id is not derived.
            if let Some(by) = self.thread_of(contact) {
                event.reply_to = Some(by.to_string());
            }
        }
        event
    }

    /// The Message-ID of the mail that told `contact` the outage, when
    /// it is not derived from the instance (a digest, a flapping mail).
    pub fn thread_of(&self, contact: Option<&str>) -> Option<&str> {
        contact
            .and_then(|c| self.threads.get(c))
            .or(self.mailed_by.as_ref())
            .map(String::as_str)
    }

    /// Remembers that the mail of `event` is told (spooled) to `contacts`
    /// (empty: no contact covers the instance): by the instance's own
    /// mail when `by` is None, else by the mail with that Message-ID (a
    /// Problem digest), which their OK will reply to.
    pub fn note_told(&mut self, event: &Event, by: Option<String>, contacts: &[String]) {
        match event.transition {
            Transition::Failing => {
                self.mailed = Some(event.since);
                if contacts.is_empty() {
                    self.mailed_by = by;
                } else {
                    // Each contact's own thread; the mail of another
                    // contact told in the same plan keeps its own.
                    self.mailed_by = None;
                    for contact in contacts {
                        match &by {
                            Some(by) => self.threads.insert(contact.clone(), by.clone()),
                            None => self.threads.remove(contact),
                        };
                    }
                }
            }
            Transition::Recovered { .. } | Transition::Unmonitored { .. } => {
                (self.mailed, self.mailed_by) = (None, None);
                self.threads.clear();
            }
        }
        // Reminders count from the Problem's mail (its run is now, or the
        // last run when it comes late).
        self.last_told = self.mailed.map(|_| event.result.started);
        self.reminders = 0;
    }

    /// Remembers the flapping mail `message_id`, sent at `now`: the
    /// thread goes on from it; the settled-OK one closes it.
    pub fn note_flapping(
        &mut self,
        news: crate::flapping::News,
        message_id: String,
        now: SystemTime,
    ) {
        (self.mailed, self.mailed_by) = match (news, self.failing) {
            (crate::flapping::News::Settled, false) => (None, None),
            _ => (Some(self.since.unwrap_or(now)), Some(message_id)),
        };
        // One flapping mail goes to every contact at once: its thread.
        self.threads.clear();
        self.last_told = self.mailed.map(|_| now);
    }

    /// Marks the failing parent that holds this instance's mails back
    /// (None: nothing does); true when that changed.
    pub fn hold(&mut self, parent: Option<&str>) -> bool {
        if self.held_by.as_deref() == parent {
            return false;
        }
        self.held_by = parent.map(str::to_string);
        true
    }

    /// The one mail due when the state differs from what was last mailed
    /// (a silence ended): the Problem of an outage that began unmailed,
    /// or the OK closing a mailed one that ended unmailed. None when
    /// nothing is due, or before the instance's first run since a start
    /// (the mail would have no output to show; it comes after that run).
    pub fn overdue(&self, instance: &Instance) -> Option<Event> {
        let last = self.last.as_ref()?;
        let (transition, since) = match (self.failing, self.mailed) {
            (true, None) => (Transition::Failing, self.since?),
            (false, Some(since)) => {
                let transition = match self.ended.as_deref().copied() {
                    // The outage that was mailed is the one that ended.
                    Some(ended) if ended.since == since => Transition::Recovered {
                        after: ended.after,
                        failed_runs: ended.failed_runs,
                    },
                    // Another one: the mailed outage ended unseen (a
                    // restart, or it recovered and failed again while
                    // silenced); its runs are gone, counted as none.
                    _ => Transition::Recovered {
                        after: last.started.duration_since(since).unwrap_or_default(),
                        failed_runs: 0,
                    },
                };
                (transition, since)
            }
            _ => return None,
        };
        Some(Event {
            id: instance.id.clone(),
            check: instance.check.clone(),
            dest: instance.dest.clone(),
            transition,
            since,
            result: last.clone(),
            reply_to: None,
            held: Vec::new(),
            late: None,
        })
    }

    /// Ticks until the next run: `error_every` while failing, else `every`.
    pub fn interval(&self, instance: &Instance) -> u32 {
        if self.failing {
            instance.error_every
        } else {
            instance.every
        }
    }
}

/// True for every check that is not pushed to: nothing to save of it.
pub(crate) fn is_unpushed(push: &Option<Box<crate::push::Pushed>>) -> bool {
    push.as_deref()
        .map_or(true, |p| *p == crate::push::Pushed::default())
}

/// The failing instances of `states`, each with the start of its outage:
/// the threads they keep open.
pub(crate) fn failing_since(states: &BTreeMap<String, CheckState>) -> Vec<(String, SystemTime)> {
    states
        .iter()
        .filter(|(_, state)| state.failing)
        .filter_map(|(id, state)| Some((id.clone(), state.since?)))
        .collect()
}

/// The instances of `states` whose Problem was told, each with the start
/// of the outage it told: the threads the saved state says are open. A
/// spooled alert is kept at a restart when it agrees with these, not with
/// `failing`, which a save may hold before the Problem's mail is noted.
pub(crate) fn mailed_since(states: &BTreeMap<String, CheckState>) -> Vec<(String, SystemTime)> {
    states
        .iter()
        .filter_map(|(id, state)| Some((id.clone(), state.mailed?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(state: State, at_secs: u64) -> RunResult {
        RunResult {
            state,
            exit_code: Some(0),
            summary: String::new(),
            perfdata: String::new(),
            details: String::new(),
            duration: Duration::ZERO,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(at_secs),
        }
    }

    fn instance(retry: u32) -> Instance {
        Instance {
            id: "c/h/ipv4".into(),
            check: "c".into(),
            dest: "h".into(),
            argv: vec!["/bin/true".into()],
            reading: crate::check::Reading::Nagios,
            pattern: None,
            every: 1,
            error_every: 1,
            retry,
            timeout: Duration::from_secs(2),
            flap: crate::flapping::Limits::default(),
            renotify_every: None,
            env: Vec::new(),
        }
    }

    /// Records `r` as seen at its start on a monotonic clock that agrees
    /// with the wall clock; the switch it causes, if any.
    fn record(s: &mut CheckState, inst: &Instance, r: RunResult) -> Option<Event> {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let base = *BASE.get_or_init(Instant::now);
        let since_epoch = r
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        s.record(inst, r, base + since_epoch).switch
    }

    /// The switch a run causes, if any.
    #[track_caller]
    fn switch(s: &mut CheckState, retry: u32, state: State, at: u64) -> Option<Transition> {
        record(s, &instance(retry), result(state, at)).map(|e| e.transition)
    }

    #[test]
    fn failing_from_the_retry_plus_one_th_failed_run() {
        let mut s = CheckState::default();
        assert_eq!(switch(&mut s, 2, State::Critical, 0), None);
        assert_eq!(switch(&mut s, 2, State::Warning, 60), None);
        assert!(!s.failing);
        assert_eq!(
            switch(&mut s, 2, State::Unknown, 120),
            Some(Transition::Failing)
        );
        assert!(s.failing);
        // Staying down says nothing more.
        assert_eq!(switch(&mut s, 2, State::Critical, 180), None);
        let event = record(&mut s, &instance(2), result(State::Ok, 3723)).expect("a recovery");
        assert_eq!(
            event.transition,
            Transition::Recovered {
                after: Duration::from_secs(3723),
                failed_runs: 4
            }
        );
        // The event knows when the outage began, and which run ended it.
        assert_eq!(event.since, SystemTime::UNIX_EPOCH);
        assert_eq!(event.id, "c/h/ipv4");
        assert!(!s.failing);
        assert_eq!(s.failed_runs, 0);
    }

    #[test]
    fn retry_zero_fails_at_once_and_a_blip_below_retry_is_silent() {
        let mut s = CheckState::default();
        assert_eq!(
            switch(&mut s, 0, State::Critical, 0),
            Some(Transition::Failing)
        );
        let mut s = CheckState::default();
        assert_eq!(switch(&mut s, 1, State::Critical, 0), None);
        assert_eq!(switch(&mut s, 1, State::Ok, 60), None);
        assert_eq!(switch(&mut s, 1, State::Critical, 120), None);
        assert_eq!(
            s.since,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(120))
        );
    }

    #[test]
    fn a_check_removed_while_failing_closes_its_thread_and_an_ok_one_says_nothing() {
        let mut s = CheckState::default();
        switch(&mut s, 0, State::Critical, 100);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(160);
        let event = s
            .clone()
            .close("c/h/ipv4", "c", "h/ipv4", now)
            .expect("closing event");
        assert_eq!(
            event.transition,
            Transition::Unmonitored {
                after: Duration::from_secs(60)
            }
        );
        let mut ok = CheckState::default();
        switch(&mut ok, 0, State::Ok, 100);
        assert!(ok.close("c/h/ipv4", "c", "h/ipv4", now).is_none());
    }

    #[test]
    fn an_ok_check_that_stays_ok_changes_nothing_worth_saving() {
        let mut s = CheckState::default();
        let before = s.durable();
        for at in 0..5 {
            switch(&mut s, 0, State::Ok, at);
        }
        assert_eq!(s.durable(), before);
        assert!(s.last.is_some(), "the last run is kept for the status view");
    }

    #[test]
    fn the_end_of_a_silence_owes_one_mail_when_the_state_differs_from_the_last_mail() {
        let inst = instance(0);
        // Failed during the silence, never mailed: the Problem is due.
        let mut s = CheckState::default();
        let event = record(&mut s, &inst, result(State::Critical, 10)).expect("switch");
        let due = s.overdue(&inst).expect("a Problem is due");
        assert_eq!(due.transition, Transition::Failing);
        assert_eq!(due.since, event.since);
        s.note_told(&due, None, &[]);
        assert!(s.overdue(&inst).is_none(), "mailed: nothing more is due");
        // Mailed failing, recovered, failed again, recovered: the OK is
        // due, in the thread of the outage that was mailed.
        switch(&mut s, 0, State::Ok, 20);
        switch(&mut s, 0, State::Critical, 30);
        assert!(s.overdue(&inst).is_none(), "still failing, as mailed");
        let ok = record(&mut s, &inst, result(State::Ok, 40)).expect("recovery");
        assert_eq!(
            s.threaded(&ok, None).since,
            SystemTime::UNIX_EPOCH + Duration::from_secs(10)
        );
        let due = s.overdue(&inst).expect("the OK is due");
        assert!(matches!(due.transition, Transition::Recovered { .. }));
        assert_eq!(due.since, SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        // Began and ended within the silence: nothing.
        let mut quiet = CheckState::default();
        switch(&mut quiet, 0, State::Critical, 10);
        switch(&mut quiet, 0, State::Ok, 20);
        assert!(quiet.overdue(&inst).is_none());
        // No run since a start: it waits for one.
        let restarted = CheckState {
            failing: true,
            since: Some(SystemTime::UNIX_EPOCH),
            failed_runs: 1,
            ..CheckState::default()
        };
        assert!(restarted.overdue(&inst).is_none());
    }

    #[test]
    fn a_recovery_replies_to_the_digest_that_told_its_problem() {
        let inst = instance(0);
        let mut s = CheckState::default();
        let problem = record(&mut s, &inst, result(State::Critical, 10)).expect("switch");
        s.note_told(&problem, None, &[]);
        s.mailed_by = Some("<digest@example.org>".into());
        let ok = record(&mut s, &inst, result(State::Ok, 40)).expect("recovery");
        let ok = s.threaded(&ok, None);
        assert_eq!(ok.reply_to.as_deref(), Some("<digest@example.org>"));
        s.note_told(&ok, None, &[]);
        assert_eq!((s.mailed, s.mailed_by.as_deref()), (None, None));
        // Its own Problem mail: no id kept, the thread is derived.
        let again = record(&mut s, &inst, result(State::Critical, 50)).expect("switch");
        s.note_told(&again, None, &[]);
        assert_eq!(s.mailed_by, None);
        let ok = record(&mut s, &inst, result(State::Ok, 60)).expect("recovery");
        assert_eq!(s.threaded(&ok, None).reply_to, None);
    }

    #[test]
    fn each_contacts_recovery_replies_to_the_mail_that_contact_got() {
        let inst = instance(0);
        let mut s = CheckState::default();
        let problem = record(&mut s, &inst, result(State::Critical, 10)).expect("switch");
        // web got a digest, db the instance's own mail, in one plan.
        s.note_told(&problem, Some("<web-digest>".into()), &["web".into()]);
        s.note_told(&problem, None, &["db".into()]);
        let ok = record(&mut s, &inst, result(State::Ok, 40)).expect("recovery");
        let web = s.threaded(&ok, Some("web"));
        assert_eq!(web.reply_to.as_deref(), Some("<web-digest>"));
        assert_eq!(s.threaded(&ok, Some("db")).reply_to, None);
        s.note_told(&web, None, &["web".into()]);
        assert!(s.threads.is_empty() && s.mailed.is_none());
        // A state file from before per-contact threads loads without them.
        let old: CheckState =
            serde_json::from_str(r#"{"failed_runs":1,"failing":true,"mailed_by":"<d>"}"#)
                .expect("an older state loads");
        assert!(old.threads.is_empty());
        assert_eq!(old.thread_of(Some("web")), Some("<d>"));
        let saved = serde_json::to_string(&CheckState::default()).expect("saves");
        assert!(!saved.contains("threads"), "{saved}");
    }
}
