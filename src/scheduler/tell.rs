//! Carrying out what to tell (`crate::tell::plan`): every mail of a plan
//! is composed and spooled held, every telling noted in the states through
//! their own methods, then ONE save, then every mail and notification is
//! released for delivery, then it is logged. A kill before the save finds
//! none of the plan told (its held mails are dropped at the next start and
//! the checks tell them again); a kill after it finds all of it told, with
//! the mails that say so in the spool: never a state that says one thing
//! beside a spool that says another.

use super::*;
use crate::digest::Outgoing;
use crate::tell::{Flush, Quiet, Seen, Tell};

/// A mail of a plan, composed and noted, with what to log once it is out
/// (no mail when its contacts have no mailbox, only notifiers).
struct Told {
    mail: Option<Mail>,
    /// The notifiers told of its switches (its contacts').
    notify: Vec<String>,
    log: Log,
}

/// What the log says about a mail once it is released.
enum Log {
    Switch(Box<Event>),
    Flap(String, crate::flapping::News, crate::flapping::Limits),
    Reminder(Box<Event>, Duration, u32),
    /// Told to notifiers only; its mails log it.
    Notify(Box<Event>),
    /// A digest, and the contacts it went to (empty: no contact).
    Digest(crate::digest::Digest, Vec<String>),
}

impl Log {
    /// The switches the mail tells, each also told to its notifiers (a
    /// reminder tells the Problem again: an Alertmanager refreshes it).
    fn switches(&self) -> Vec<&Event> {
        match self {
            Log::Switch(event) | Log::Reminder(event, ..) | Log::Notify(event) => vec![event],
            Log::Digest(digest, _) => digest.events.iter().collect(),
            Log::Flap(..) => Vec::new(),
        }
    }
}

impl Daemon {
    /// Tells what is owed: plans it from every instance's state and carries
    /// the plan out.
    pub(super) fn flush(&mut self) {
        self.fresh = false;
        let now = SystemTime::now();
        let flaps: BTreeMap<String, crate::flapping::News> =
            std::mem::take(&mut self.flaps).into_iter().collect();
        let silences = &mut self.silences;
        let seen = self
            .slots
            .iter()
            .map(|(id, slot)| {
                let flap = flaps.get(id).copied();
                // The file is looked at only where a mail could be due.
                let every = slot.instance.renotify_every;
                let owes = slot.state.failing != slot.state.mailed.is_some()
                    || flap.is_some()
                    || slot
                        .state
                        .next_reminder(every)
                        .is_some_and(|due| now >= due);
                let silence = owes
                    .then(|| silences.silencing(id, now))
                    .flatten()
                    .map(|s| Quiet {
                        by: s.by(),
                        until: s.until(),
                        reason: s.reason.clone(),
                    });
                let seen = Seen {
                    instance: &slot.instance,
                    state: &slot.state,
                    fresh: self.switched.contains(id),
                    flap,
                    silence,
                };
                (id.as_str(), seen)
            })
            .collect();
        let plan = crate::tell::plan(&Flush {
            seen,
            parents: &self.config.parents,
            digest_over: self.config.emails.digest_over,
            waited: self.waited,
            now,
            audiences: &self.config.audiences,
            everyone: self.config.everyone(),
            mailboxes: &self.config.contacts,
        });
        self.waiting = !plan.kept.is_empty();
        self.switched = plan.kept.into_iter().collect();
        self.carry_out(plan.tells, now);
    }

    /// Carries out `tells`: notes logged, mails composed and held, the
    /// tellings noted, one save, every mail released, then logged.
    pub(super) fn carry_out(&mut self, tells: Vec<Tell>, now: SystemTime) {
        let mut told = Vec::new();
        for tell in tells {
            match tell {
                Tell::Hold { id, parent } => {
                    if let Some(slot) = self.slots.get_mut(&id) {
                        slot.state.hold(parent.as_deref());
                    }
                    match parent {
                        Some(parent) => log::debug!("{id}: held: {parent} failing; its mails wait"),
                        None => log::debug!("{id}: no longer held back"),
                    }
                }
                Tell::Held { id, parent, event } => log::info!(
                    "{id}: {} held back: {parent} failing",
                    match event.transition {
                        Transition::Recovered { .. } => "RECOVERY",
                        _ => "PROBLEM",
                    }
                ),
                Tell::Silenced { id, silence, event } => {
                    log::info!(
                        "{id}: silenced until {} by {} ({}): no mail",
                        crate::human::human_time(silence.until),
                        silence.by,
                        silence.reason
                    );
                    log_event(&event);
                }
                Tell::Flapping { id, news } => {
                    if let Some(told_one) = self.compose_flapping(&id, news, now) {
                        told.push(told_one);
                    }
                }
                Tell::Reminder {
                    mut event,
                    after,
                    failed_runs,
                } => {
                    let Some(slot) = self.slots.get_mut(&event.id) else {
                        continue;
                    };
                    let audience = self.config.audience(&event.id);
                    // One reminder to every contact: in each one's thread.
                    if !audience.contacts.is_empty() {
                        event.reply_to = crate::mail::contact_threads(
                            &self.config.emails.from,
                            &event.id,
                            &slot.state,
                            &audience.contacts,
                        );
                    }
                    let mut mail = Mail::reminder(
                        &self.config.emails,
                        &event,
                        after,
                        failed_runs,
                        slot.state.reminders,
                    );
                    mail.to = audience.to.clone();
                    slot.state.note_reminded(now);
                    // Told to the notifiers as the Problem again: an
                    // Alertmanager refreshes the alert (its own
                    // repeat_interval decides when it notifies again).
                    told.push(Told {
                        mail: addressed(mail, &audience),
                        notify: audience.notify.clone(),
                        log: Log::Reminder(event, after, failed_runs),
                    });
                }
                Tell::Mail(Outgoing::One(event), audience) => {
                    let mut mail = Mail::alert(&self.config.emails, &event);
                    mail.to = audience.to.clone();
                    if let Some(slot) = self.slots.get_mut(&event.id) {
                        slot.state.note_told(&event, None, &audience.contacts);
                    }
                    told.push(Told {
                        mail: addressed(mail, &audience),
                        notify: audience.notify.clone(),
                        log: Log::Switch(event),
                    });
                }
                Tell::Mail(Outgoing::Digest(digest), audience) => {
                    let mut mail = Mail::digest(&self.config.emails, &digest);
                    mail.to = audience.to.clone();
                    // A Problem digest's Message-ID is what the OKs reply to.
                    let by = (!digest.recovered).then(|| mail.message_id.clone());
                    for event in &digest.events {
                        if let Some(slot) = self.slots.get_mut(&event.id) {
                            slot.state.note_told(event, by.clone(), &audience.contacts);
                        }
                    }
                    told.push(Told {
                        mail: addressed(mail, &audience),
                        notify: audience.notify.clone(),
                        log: Log::Digest(digest, audience.contacts),
                    });
                }
                Tell::Notify { event, notify } => told.push(Told {
                    mail: None,
                    notify,
                    log: Log::Notify(event),
                }),
            }
        }
        self.deliver(told);
    }

    /// The flapping mail of instance `id`, noted in its state.
    fn compose_flapping(
        &mut self,
        id: &str,
        news: crate::flapping::News,
        now: SystemTime,
    ) -> Option<Told> {
        let slot = self.slots.get_mut(id)?;
        let state = &mut slot.state;
        let audience = self.config.audience(id);
        // One mail to every contact: in each contact's thread.
        let reply_to =
            crate::mail::contact_threads(&self.config.emails.from, id, state, &audience.contacts);
        let mut mail = Mail::flapping(
            &self.config.emails,
            &slot.instance,
            state,
            news,
            reply_to,
            now,
        );
        state.note_flapping(news, mail.message_id.clone(), now);
        mail.to = audience.to.clone();
        Some(Told {
            mail: addressed(mail, &audience),
            notify: audience.notify.clone(),
            log: Log::Flap(id.to_string(), news, slot.instance.flap),
        })
    }

    /// Spools every mail of a plan held, saves the states that say they
    /// were told (once), then releases them all and logs them: see the
    /// file's opening comment.
    fn deliver(&mut self, told: Vec<Told>) {
        if told.is_empty() {
            return;
        }
        let emails = &self.config.emails;
        let held: Vec<_> = told
            .into_iter()
            .map(|t| {
                let held = self.post.hold(emails, t.mail, &t.log.switches(), &t.notify);
                (held, t.log)
            })
            .collect();
        self.save = Save::Now;
        self.save_state();
        // A switch in the mails of two contacts is logged once.
        let mut logged = std::collections::BTreeSet::new();
        let mut log_once = |event: &Event| {
            if logged.insert(event.id.clone()) {
                log_event(event);
            }
        };
        for (held, log) in held {
            self.post.release(held);
            match log {
                Log::Switch(event) => log_once(&event),
                Log::Notify(_) => {}
                Log::Reminder(event, after, failed_runs) => log::warn!(
                    "{}: REMINDER still failing after {}, {failed_runs} failed runs: {}",
                    event.id,
                    crate::human::human_duration(after),
                    event.result.summary
                ),
                Log::Digest(digest, contacts) => {
                    log::info!(
                        "{} {} told in one digest mail{}",
                        digest.events.len(),
                        if digest.recovered {
                            "recoveries"
                        } else {
                            "problems"
                        },
                        match contacts.is_empty() {
                            true => String::new(),
                            false => format!(" to {}", contacts.join(", ")),
                        }
                    );
                    digest.events.iter().for_each(&mut log_once);
                }
                Log::Flap(id, news, limits) => match news {
                    crate::flapping::News::Started => log::warn!(
                        "{id}: FLAPPING: more than {} changes in {} runs; no switch mails until it is stable for {} runs",
                        limits.switches,
                        limits.window,
                        limits.window
                    ),
                    crate::flapping::News::Settled => {
                        log::info!("{id}: stopped flapping, settled {}", self.settled_word(&id))
                    }
                },
            }
        }
    }

    pub(super) fn settled_word(&self, id: &str) -> &'static str {
        match self.slots.get(id).is_some_and(|s| s.state.failing) {
            true => "failing",
            false => "OK",
        }
    }

    /// Tells that checks left the configuration while failing (`events`,
    /// their states already dropped), each with who was told its Problem:
    /// each closes its thread, unless a silence keeps it quiet.
    pub(super) fn tell_closed(&mut self, events: Vec<(Event, crate::config::Audience)>) {
        let now = SystemTime::now();
        let mut tells = Vec::new();
        for (event, audience) in events {
            match self.silences.silencing(&event.id, now) {
                Some(silence) => {
                    log::info!(
                        "{}: silenced until {} by {} ({}): no mail",
                        event.id,
                        crate::human::human_time(silence.until()),
                        silence.by(),
                        silence.reason
                    );
                    log_event(&event);
                }
                None => {
                    tells.push(Tell::Mail(Outgoing::One(Box::new(event)), audience));
                }
            }
        }
        self.carry_out(tells, now);
    }

    /// Mails what is due for the instances whose silence ended (expired
    /// or removed): one mail each, when the state differs from what was
    /// last mailed.
    pub(super) fn end_silences(&mut self) {
        let ids = self
            .slots
            .iter()
            .map(|(id, slot)| (id.as_str(), slot.state.last.is_some()));
        for id in self.silences.ended(ids, SystemTime::now()) {
            let Some(slot) = self.slots.get(&id) else {
                continue;
            };
            // The flush that follows mails it (with the others, held back
            // by a failing parent or flapping as they may be).
            match slot.state.overdue(&slot.instance) {
                Some(_) => log::info!("{id}: silence ended, mailing what happened meanwhile"),
                None => log::info!("{id}: silence ended, nothing to mail"),
            }
            self.fresh = true;
        }
    }
}

/// The mail, unless its contacts have no mailbox (notifiers only). With
/// no contacts and an empty `emails.to`, the outbox logs it unsent, as
/// ever.
fn addressed(mail: Mail, audience: &crate::config::Audience) -> Option<Mail> {
    (audience.contacts.is_empty() || !mail.to.is_empty()).then_some(mail)
}

/// Every switch is logged, whether or not mail goes out.
pub(super) fn log_event(event: &Event) {
    let (level, line) = event_line(event);
    log::log!(level, "{line}");
}

/// The log line of a switch. " on TARGET" only when the target is not
/// already the instance's id (a check without hosts is its own target:
/// "flag: PROBLEM", not "flag: PROBLEM on flag").
fn event_line(event: &Event) -> (log::Level, String) {
    let on = match event.id == event.dest {
        true => String::new(),
        false => format!(" on {}", event.dest),
    };
    let id = &event.id;
    match &event.transition {
        Transition::Failing => (
            log::Level::Warn,
            format!(
                "{id}: PROBLEM {}{on}: {} (failing since {})",
                event.result.state,
                event.result.summary,
                crate::human::human_time(event.since)
            ),
        ),
        Transition::Recovered { after, failed_runs } => (
            log::Level::Info,
            format!(
                "{id}: RECOVERED{on} after {} ({failed_runs} failed runs): {}",
                crate::human::human_duration(*after),
                event.result.summary
            ),
        ),
        Transition::Unmonitored { after } => (
            log::Level::Warn,
            format!(
                "{id}: NO LONGER MONITORED{on}: removed from the configuration while failing, after {}",
                crate::human::human_duration(*after)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn switch(id: &str, dest: &str, transition: Transition) -> Event {
        let since = UNIX_EPOCH + Duration::from_secs(1000);
        Event {
            id: id.into(),
            check: id.split('/').next().unwrap_or(id).into(),
            dest: dest.into(),
            transition,
            since,
            result: crate::check::RunResult {
                state: crate::check::State::Critical,
                exit_code: Some(2),
                summary: "down".into(),
                perfdata: String::new(),
                details: String::new(),
                duration: Duration::ZERO,
                started: since,
            },
            reply_to: None,
            held: Vec::new(),
            late: None,
        }
    }

    #[test]
    fn a_check_that_is_its_own_target_is_named_once_in_the_log() {
        let (level, line) = event_line(&switch("flag", "flag", Transition::Failing));
        assert_eq!(level, log::Level::Warn);
        assert!(line.starts_with("flag: PROBLEM CRITICAL: down"), "{line}");
        let recovered = Transition::Recovered {
            after: Duration::from_secs(90),
            failed_runs: 3,
        };
        let (level, line) = event_line(&switch("flag", "flag", recovered));
        assert_eq!(level, log::Level::Info);
        assert!(line.starts_with("flag: RECOVERED after 1m 30s"), "{line}");
        let (_, line) = event_line(&switch("web/srv/4", "srv", Transition::Failing));
        assert!(
            line.starts_with("web/srv/4: PROBLEM CRITICAL on srv: down"),
            "{line}"
        );
    }
}
