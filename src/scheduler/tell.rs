//! Telling switches: the switches of a tick are gathered and, once the
//! tick's runs have answered, mailed (one by one, or as a digest in a
//! storm), held back behind a failing parent, kept quiet while flapping or
//! silenced; each mail is spooled, its switch saved, then it is released
//! for delivery, and every switch is logged.

use super::*;

impl Daemon {
    /// Mails what is owed: every instance whose state differs from what
    /// was told (a problem not told, a told problem that recovered), as
    /// single mails or, in a storm, digests (`digest::plan`).
    pub(super) fn flush(&mut self) {
        self.fresh = false;
        let now = SystemTime::now();
        self.update_holds();
        self.tell_flaps(now);
        let mut due = Vec::new();
        // Parent → the instances it holds back that are owed a mail.
        let mut holds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (id, slot) in &self.slots {
            let Some(owed) = slot.state.overdue(&slot.instance) else {
                self.pending.remove(id);
                continue;
            };
            if slot.state.flap.flapping {
                // The flapping mail said it; the settled one will say more.
                self.pending.remove(id);
                continue;
            }
            if let Some(parent) = &slot.state.held_by {
                // Kept pending: mailed when the parent recovers, if still
                // owed. Logged once, as every switch is.
                if let Some(pending) = self.pending.get_mut(id) {
                    if !pending.logged {
                        log::info!(
                            "{id}: {} held back: {parent} failing",
                            match pending.event.transition {
                                Transition::Recovered { .. } => "RECOVERY",
                                _ => "PROBLEM",
                            }
                        );
                        pending.logged = true;
                    }
                }
                holds.entry(parent).or_default().push(id.clone());
                continue;
            }
            if let Some(silence) = self.silences.silencing(id, now) {
                // Kept: mailed when the silence ends, if still owed.
                if let Some(pending) = self.pending.get_mut(id) {
                    if !pending.logged {
                        log::info!(
                            "{id}: silenced until {} by silence {} ({}): no mail",
                            crate::human::human_time(silence.until()),
                            silence.id,
                            silence.reason
                        );
                        log_event(&pending.event);
                        pending.logged = true;
                    }
                }
                continue;
            }
            let same = |e: &Event| {
                std::mem::discriminant(&e.transition) == std::mem::discriminant(&owed.transition)
            };
            let event = match self.pending.remove(id) {
                Some(pending) if same(&pending.event) => pending.event,
                _ => owed,
            };
            // A recovery replies to the mail that told the problem.
            due.push(slot.state.threaded(&event));
        }
        for event in &mut due {
            event.held = holds.remove(event.id.as_str()).unwrap_or_default();
        }
        if due.is_empty() {
            return;
        }
        let plan = crate::digest::plan(due, self.config.emails.digest_over, self.slots.len());
        for outgoing in plan {
            match outgoing {
                Outgoing::One(event) => self.alert(&event),
                Outgoing::Digest(digest) => {
                    // As `alert`: spooled held, the switches saved, released.
                    let mail = Mail::digest(&self.config.emails, &digest);
                    for event in &digest.events {
                        if let Some(slot) = self.slots.get_mut(&event.id) {
                            slot.state.note_mailed(event);
                            if !digest.recovered {
                                slot.state.mailed_by = Some(mail.message_id.clone());
                            }
                        }
                    }
                    let held = self.outbox.hold_mail(mail);
                    let notes: Vec<_> = (digest.events.iter())
                        .map(|e| self.notifiers.hold(&self.config.emails, e))
                        .collect();
                    self.save = Save::Now;
                    self.save_state();
                    self.outbox.release(held);
                    notes.into_iter().for_each(|n| self.notifiers.release(n));
                    log::info!(
                        "{} {} told in one digest mail",
                        digest.events.len(),
                        if digest.recovered {
                            "recoveries"
                        } else {
                            "problems"
                        }
                    );
                    for event in &digest.events {
                        log_event(event);
                    }
                }
            }
        }
    }

    /// Mails that instances started flapping, or where they settled; the
    /// thread goes on from the mail that told their problem, if any. An
    /// instance held back by a failing parent gets none of these.
    pub(super) fn tell_flaps(&mut self, now: SystemTime) {
        for (id, news) in std::mem::take(&mut self.flaps) {
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            if slot.state.held_by.is_some() || self.silences.silencing(&id, now).is_some() {
                continue;
            }
            let state = &mut slot.state;
            let reply_to = state.mailed.map(|since| {
                state
                    .mailed_by
                    .clone()
                    .unwrap_or_else(|| crate::mail::thread_id(&self.config.emails.from, &id, since))
            });
            let mail = Mail::flapping(
                &self.config.emails,
                &slot.instance,
                state,
                news,
                reply_to,
                now,
            );
            // The thread goes on from this mail; settled OK closes it.
            (state.mailed, state.mailed_by) = match (news, state.failing) {
                (crate::flapping::News::Settled, false) => (None, None),
                _ => (
                    Some(state.since.unwrap_or(now)),
                    Some(mail.message_id.clone()),
                ),
            };
            let (what, limits) = (news, slot.instance.flap);
            let held = self.outbox.hold_mail(mail);
            self.save = Save::Now;
            self.save_state();
            self.outbox.release(held);
            match what {
                crate::flapping::News::Started => log::warn!(
                    "{id}: FLAPPING: more than {} switches in {} runs; no switch mails until it is stable for {} runs",
                    limits.switches,
                    limits.window,
                    limits.window
                ),
                crate::flapping::News::Settled => {
                    log::info!("{id}: stopped flapping, settled {}", self.settled_word(&id))
                }
            }
        }
    }

    pub(super) fn settled_word(&self, id: &str) -> &'static str {
        match self.slots.get(id).is_some_and(|s| s.state.failing) {
            true => "failing",
            false => "OK",
        }
    }

    /// Marks each instance with the failing parent that holds its mails
    /// back (`depends`), from the parents' states now; logs changes.
    pub(super) fn update_holds(&mut self) {
        let slots = &self.slots;
        // Only the changes are collected: most flushes have none.
        let changes: Vec<(String, Option<String>)> = slots
            .iter()
            .filter_map(|(id, slot)| {
                let holder = self.config.parents.get(id).and_then(|parents| {
                    crate::depends::holder(parents, |p| {
                        slots.get(p).is_some_and(|s| s.state.failing)
                    })
                });
                (slot.state.held_by.as_deref() != holder)
                    .then(|| (id.clone(), holder.map(str::to_string)))
            })
            .collect();
        for (id, holder) in changes {
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            if slot.state.held_by != holder {
                match &holder {
                    Some(parent) => log::debug!("{id}: held: {parent} failing; its mails wait"),
                    None => log::debug!("{id}: no longer held back"),
                }
                slot.state.held_by = holder;
            }
        }
    }

    /// Tells a switch: the mail is spooled first (held), then the state
    /// that says it was sent is saved, then the mail is released for
    /// delivery, then it is logged: a crash in between neither loses the
    /// mail nor tells the switch twice (see `Outbox::hold`), and nothing
    /// on the way out can fail before both are on disk.
    pub(super) fn alert(&mut self, event: &Event) {
        let now = SystemTime::now();
        let held = if let Some(silence) = self.silences.silencing(&event.id, now) {
            // The switch is kept (and saved); its mail is what the end of
            // the silence compares with.
            log::info!(
                "{}: silenced until {} by silence {} ({}): no mail",
                event.id,
                crate::human::human_time(silence.until()),
                silence.id,
                silence.reason
            );
            None
        } else {
            let event = match self.slots.get_mut(&event.id) {
                Some(slot) => {
                    let event = slot.state.threaded(event);
                    slot.state.note_mailed(&event);
                    event
                }
                None => event.clone(),
            };
            let notes = self.notifiers.hold(&self.config.emails, &event);
            Some((self.outbox.hold(&event), notes))
        };
        self.save = Save::Now;
        self.save_state();
        if let Some((held, notes)) = held {
            self.outbox.release(held);
            self.notifiers.release(notes);
        }
        log_event(event);
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

/// Every switch is logged, whether or not mail goes out.
pub(super) fn log_event(event: &Event) {
    match &event.transition {
        Transition::Failing => log::warn!(
            "{}: PROBLEM {} on {}: {} (failing since {})",
            event.id,
            event.result.state,
            event.dest,
            event.result.summary,
            crate::human::human_time(event.since)
        ),
        Transition::Recovered { after, failed_runs } => log::info!(
            "{}: RECOVERED on {} after {} ({failed_runs} failed runs): {}",
            event.id,
            event.dest,
            crate::human::human_duration(*after),
            event.result.summary
        ),
        Transition::Unmonitored { after } => log::warn!(
            "{}: NO LONGER MONITORED on {}: removed from the configuration while failing, after {}",
            event.id,
            event.dest,
            crate::human::human_duration(*after)
        ),
    }
}
