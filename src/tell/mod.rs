//! Telling as a plan: what a flush sees (every instance's state, which
//! switched since the last flush, flapping news, silences, dependencies)
//! in; what to tell out, in the order to tell it. A pure function, so that
//! the interplay of storms, holds, silences and flapping is tested over
//! many cases in milliseconds; the daemon carries a plan out in one place
//! (`scheduler/tell.rs`), as the watchdog's supervisor carries out what
//! its policy returns.
//!
//! A switch has one source: what a state owes (`CheckState::overdue`, the
//! difference between what it is and what was told). Which instances
//! switched since the last flush only says whether a note is news and
//! whether a mail is late.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::check::Instance;
use crate::config::Audience;
use crate::digest::Outgoing;
use crate::flapping::News;
use crate::state::{CheckState, Event, Late, Transition};

/// A storm's switches wait at most this many ticks for the rest of it:
/// an outage that starts while a tick's runs are under way reaches some
/// instances' `retry + 1`-th failed run a tick later than others'.
pub(crate) const SETTLE_TICKS: u32 = 3;

/// One instance as a flush sees it.
pub(crate) struct Seen<'a> {
    pub(crate) instance: &'a Instance,
    pub(crate) state: &'a CheckState,
    /// It switched since its switch was last told or noted.
    pub(crate) fresh: bool,
    /// What its runs since the last flush changed about flapping.
    pub(crate) flap: Option<News>,
    /// The silence keeping its mails back now, if any.
    pub(crate) silence: Option<Quiet>,
}

/// A silence (or a maintenance window), as the note about it names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quiet {
    /// `silence 4`, `maintenance window nightly`.
    pub(crate) by: String,
    pub(crate) until: SystemTime,
    pub(crate) reason: String,
}

/// Everything a flush looks at.
pub(crate) struct Flush<'a> {
    /// Every instance, by id.
    pub(crate) seen: BTreeMap<&'a str, Seen<'a>>,
    /// Each instance's parents (`depends`).
    pub(crate) parents: &'a crate::depends::Parents,
    /// `emails.digest_over`.
    pub(crate) digest_over: u32,
    /// Ticks the switches kept back so far have waited for their storm.
    pub(crate) waited: u32,
    /// The wall clock now: reminders are due by it.
    pub(crate) now: SystemTime,
    /// Who is told about the instances a contact covers (`[contacts]`).
    pub(crate) audiences: &'a BTreeMap<String, Audience>,
    /// Who is told about the others: `emails.to` and every notifier.
    pub(crate) everyone: Audience,
    /// Each contact's own mailboxes (`[contacts.NAME] to`).
    pub(crate) mailboxes: &'a BTreeMap<String, Vec<String>>,
}

impl Flush<'_> {
    /// Who is told about instance `id`.
    pub(crate) fn audience(&self, id: &str) -> &Audience {
        self.audiences.get(id).unwrap_or(&self.everyone)
    }
}

/// One thing to tell, or to note.
#[derive(Debug)]
pub(crate) enum Tell {
    /// The failing parent holding an instance's mails back changed (None:
    /// none holds it now).
    Hold { id: String, parent: Option<String> },
    /// A switch held back by a failing parent: logged, not mailed.
    Held {
        id: String,
        parent: String,
        event: Box<Event>,
    },
    /// A switch kept quiet by a silence: logged, not mailed.
    Silenced {
        id: String,
        silence: Quiet,
        event: Box<Event>,
    },
    /// The instance started flapping, or settled: its one mail.
    Flapping { id: String, news: News },
    /// A reminder of an outage told and still going (`renotify_every`),
    /// unacknowledged, neither silenced nor held back.
    Reminder {
        event: Box<Event>,
        /// How long the outage has lasted.
        after: Duration,
        failed_runs: u32,
    },
    /// A switch's own mail, or a digest, and who it is told to: each
    /// contact gets digests of its own instances only. The audience
    /// names the contacts (empty: no contact, `emails.to`) and their
    /// mailboxes; its `notify` is empty: `Notify` tells the notifiers.
    Mail(Outgoing, Audience),
    /// A switch mailed in this plan, told to each of `notify` (its
    /// contacts' notifiers, or every notifier) once, however many of its
    /// contacts' mails list it.
    Notify {
        event: Box<Event>,
        notify: Vec<String>,
    },
}

/// What a flush tells.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// In the order to tell them.
    pub(crate) tells: Vec<Tell>,
    /// Instances whose mail waits for the rest of its storm.
    pub(crate) kept: Vec<String>,
}

/// The plan of a flush.
pub(crate) fn plan(flush: &Flush) -> Plan {
    let mut plan = Plan::default();
    let failing = |id: &str| flush.seen.get(id).is_some_and(|s| s.state.failing);
    // Parent → the instances it holds back that are owed a mail.
    let mut holding: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut due = Vec::new();
    for (&id, seen) in &flush.seen {
        let state = seen.state;
        let holder = flush
            .parents
            .get(id)
            .and_then(|parents| crate::depends::holder(parents, failing));
        if state.held_by.as_deref() != holder {
            plan.tells.push(Tell::Hold {
                id: id.to_string(),
                parent: holder.map(str::to_string),
            });
        }
        if let Some(news) = seen.flap {
            // Held or silenced, it gets none of these (as no switch mail).
            if holder.is_none() && seen.silence.is_none() {
                plan.tells.push(Tell::Flapping {
                    id: id.to_string(),
                    news,
                });
                continue;
            }
        }
        let Some(owed) = state.overdue(seen.instance) else {
            if holder.is_none() && seen.silence.is_none() {
                let every = seen.instance.renotify_every;
                if let Some((event, after)) = state.reminder_due(seen.instance, every, flush.now) {
                    plan.tells.push(Tell::Reminder {
                        event: Box::new(event),
                        after,
                        failed_runs: state.failed_runs,
                    });
                }
            }
            continue;
        };
        if state.flap.flapping {
            // The flapping mail said it; the settled one will say more.
            continue;
        }
        if let Some(parent) = holder {
            if seen.fresh {
                plan.tells.push(Tell::Held {
                    id: id.to_string(),
                    parent: parent.to_string(),
                    event: Box::new(owed),
                });
            }
            holding.entry(parent).or_default().push(id.to_string());
            continue;
        }
        if let Some(silence) = &seen.silence {
            if seen.fresh {
                plan.tells.push(Tell::Silenced {
                    id: id.to_string(),
                    silence: silence.clone(),
                    event: Box::new(owed),
                });
            }
            continue;
        }
        // A recovery replies to the mail that told the problem (to each
        // contact, the one it got: see `per_contact`).
        let mut event = state.threaded(&owed, None);
        event.late = match (&state.held_by, seen.fresh) {
            (Some(parent), _) => Some(Late::Held {
                parent: parent.clone(),
            }),
            (None, false) => Some(Late::Silenced),
            (None, true) => None,
        };
        due.push(event);
    }
    for event in &mut due {
        event.held = holding.remove(event.id.as_str()).unwrap_or_default();
    }
    let (problems, recoveries): (Vec<Event>, Vec<Event>) = due
        .into_iter()
        .partition(|e| e.transition == Transition::Failing);
    let mut going = Vec::new();
    for (events, settling) in [
        (problems, problems_settling(flush)),
        (recoveries, recoveries_settling(flush)),
    ] {
        let storm = events.len() + settling > flush.digest_over as usize;
        if flush.digest_over > 0 && settling > 0 && storm && flush.waited < SETTLE_TICKS {
            // The rest of this storm is on its way: one digest for all.
            plan.kept.extend(events.into_iter().map(|e| e.id));
        } else {
            going.extend(events);
        }
    }
    // Released from a hold, they go after the news of their parents (its
    // OK first, then what still fails behind it), in a mail of their own.
    let (released, told_now): (Vec<Event>, Vec<Event>) = going
        .into_iter()
        .partition(|e| matches!(e.late, Some(Late::Held { .. })));
    for events in [told_now, released] {
        // Each switch to each of its notifiers once: not per contact mail.
        let notes: Vec<Tell> = events
            .iter()
            .filter_map(|event| {
                let notify = &flush.audience(&event.id).notify;
                (!notify.is_empty()).then(|| Tell::Notify {
                    event: Box::new(event.clone()),
                    notify: notify.clone(),
                })
            })
            .collect();
        plan.tells.extend(per_contact::mails(flush, events));
        plan.tells.extend(notes);
    }
    plan
}

/// Instances whose outage is under way but not yet a switch (fewer
/// failed runs than `retry + 1`): a storm's Problems waiting for them.
fn problems_settling(flush: &Flush) -> usize {
    flush
        .seen
        .values()
        .filter(|s| !s.state.failing && s.state.failed_runs > 0 && !s.state.flap.flapping)
        .count()
}

/// Instances told failing whose last run started before the first
/// recovery due: not seen since the storm began to end.
fn recoveries_settling(flush: &Flush) -> usize {
    let first = flush
        .seen
        .values()
        .filter(|s| s.fresh && !s.state.failing && s.state.mailed.is_some())
        .filter_map(|s| s.state.last.as_ref().map(|l| l.started))
        .min();
    let Some(first) = first else { return 0 };
    flush
        .seen
        .values()
        .filter(|s| s.state.failing && s.state.mailed.is_some() && !s.state.flap.flapping)
        .filter(|s| s.state.last.as_ref().is_some_and(|l| l.started < first))
        .count()
}

mod per_contact;

#[cfg(test)]
mod tests;
