//! The plan over many cases: storms split across ticks, holds that end,
//! silences, flapping; each flush planned, then noted as the daemon notes
//! it, so that several flushes in a row are followed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::check::{Reading, RunResult, State};
use crate::digest::Digest;

/// Instances, their states, and what the daemon keeps between flushes.
struct World {
    instances: BTreeMap<String, Instance>,
    states: BTreeMap<String, CheckState>,
    parents: crate::depends::Parents,
    switched: BTreeSet<String>,
    flaps: BTreeMap<String, News>,
    silenced: BTreeSet<String>,
    waited: u32,
    audiences: BTreeMap<String, crate::config::Audience>,
    /// Each contact's mailboxes.
    mailboxes: BTreeMap<String, Vec<String>>,
    clock: u64,
    mono: Instant,
}

fn instance(id: &str, retry: u32) -> Instance {
    Instance {
        id: id.into(),
        check: id.split('/').next().unwrap_or(id).into(),
        dest: id.into(),
        argv: vec!["/bin/true".into()],
        reading: Reading::Nagios,
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

impl World {
    fn new(ids: &[String], retry: u32) -> World {
        World {
            instances: ids
                .iter()
                .map(|id| (id.clone(), instance(id, retry)))
                .collect(),
            states: ids
                .iter()
                .map(|id| (id.clone(), CheckState::default()))
                .collect(),
            parents: Default::default(),
            switched: BTreeSet::new(),
            flaps: BTreeMap::new(),
            silenced: BTreeSet::new(),
            waited: 0,
            audiences: BTreeMap::new(),
            mailboxes: BTreeMap::new(),
            clock: 1000,
            mono: Instant::now(),
        }
    }

    /// A run of `id`, one second after the one before.
    fn run(&mut self, id: &str, ok: bool) {
        self.clock += 1;
        let result = RunResult {
            state: if ok { State::Ok } else { State::Critical },
            exit_code: Some(if ok { 0 } else { 2 }),
            summary: if ok { "fine" } else { "down" }.into(),
            perfdata: String::new(),
            details: String::new(),
            duration: Duration::ZERO,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(self.clock),
        };
        let mono = self.mono + Duration::from_secs(self.clock);
        let state = self.states.get_mut(id).expect("instance");
        let recorded = state.record(&self.instances[id], result, mono);
        if let Some(news) = recorded.flap {
            self.flaps.insert(id.to_string(), news);
        }
        if recorded.switch.is_some() {
            self.switched.insert(id.to_string());
        }
    }

    /// Plans a flush and notes it as the daemon does; the tick counter
    /// goes on as the daemon's does.
    fn flush(&mut self) -> Vec<Tell> {
        let flaps = std::mem::take(&mut self.flaps);
        let seen = self
            .states
            .iter()
            .map(|(id, state)| {
                let seen = Seen {
                    instance: &self.instances[id],
                    state,
                    fresh: self.switched.contains(id),
                    flap: flaps.get(id).copied(),
                    silence: self.silenced.contains(id).then(|| Quiet {
                        by: "silence 1".into(),
                        until: SystemTime::UNIX_EPOCH,
                        reason: "maintenance".into(),
                    }),
                };
                (id.as_str(), seen)
            })
            .collect();
        let plan = plan(&Flush {
            seen,
            parents: &self.parents,
            digest_over: 5,
            waited: self.waited,
            now: self.now(),
            audiences: &self.audiences,
            everyone: crate::config::Audience {
                contacts: Vec::new(),
                to: vec!["ops@example.org".into()],
                notify: Vec::new(),
            },
            mailboxes: &self.mailboxes,
        });
        self.waited = match plan.kept.is_empty() {
            true => 0,
            false => self.waited + 1,
        };
        self.switched = plan.kept.into_iter().collect();
        for tell in &plan.tells {
            match tell {
                Tell::Hold { id, parent } => {
                    self.states
                        .get_mut(id)
                        .expect("held")
                        .hold(parent.as_deref());
                }
                Tell::Mail(Outgoing::One(event), a) => {
                    self.states.get_mut(&event.id).expect("told").note_told(
                        event,
                        None,
                        &a.contacts,
                    );
                }
                Tell::Mail(Outgoing::Digest(digest), a) => {
                    // Each digest has an id of its own, named by its contacts.
                    let by = format!("<digest {}>", a.contacts.join(","));
                    for event in &digest.events {
                        self.states.get_mut(&event.id).expect("told").note_told(
                            event,
                            Some(by.clone()),
                            &a.contacts,
                        );
                    }
                }
                Tell::Flapping { id, news } => {
                    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(self.clock);
                    self.states.get_mut(id).expect("flapping").note_flapping(
                        *news,
                        "<flapping>".into(),
                        now,
                    );
                }
                Tell::Reminder { event, .. } => {
                    let now = self.now();
                    self.states
                        .get_mut(&event.id)
                        .expect("reminded")
                        .note_reminded(now);
                }
                Tell::Held { .. } | Tell::Silenced { .. } | Tell::Notify { .. } => {}
            }
        }
        plan.tells
    }

    /// The wall clock of the world: the last run's start.
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.clock)
    }

    /// Lets `secs` seconds pass without a run.
    fn wait(&mut self, secs: u64) {
        self.clock += secs;
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i:03}")).collect()
}

/// The mails of a plan, in order: "problem c001", "ok c001", or a digest
/// as "problems 20 (blind)" / "oks 20", "flapping c001".
fn mails(tells: &[Tell]) -> Vec<String> {
    let digest = |d: &Digest| {
        format!(
            "{} {}{}",
            if d.recovered { "oks" } else { "problems" },
            d.events.len(),
            if d.blind.is_some() { " (blind)" } else { "" }
        )
    };
    tells
        .iter()
        .filter_map(|t| match t {
            Tell::Mail(Outgoing::One(e), _) => Some(format!(
                "{} {}",
                match e.transition {
                    Transition::Failing => "problem",
                    _ => "ok",
                },
                e.id
            )),
            Tell::Mail(Outgoing::Digest(d), _) => Some(digest(d)),
            Tell::Flapping { id, news } => Some(format!("{news:?} {id}").to_lowercase()),
            Tell::Reminder {
                event, failed_runs, ..
            } => Some(format!("reminder {} {failed_runs}", event.id)),
            _ => None,
        })
        .collect()
}

#[test]
fn twenty_switches_at_one_flush_are_one_digest() {
    let all = ids(20);
    let mut w = World::new(&all, 0);
    all.iter().for_each(|id| w.run(id, false));
    assert_eq!(mails(&w.flush()), ["problems 20 (blind)"]);
    all.iter().for_each(|id| w.run(id, true));
    assert_eq!(mails(&w.flush()), ["oks 20"]);
    assert!(mails(&w.flush()).is_empty(), "told once");
}

#[test]
fn an_outage_starting_while_a_tick_runs_is_one_problem_digest_and_one_ok_digest() {
    // 100 checks, retry 1: the outage begins after 40 of tick 1's runs,
    // so 60 reach their second failed run a tick before the other 40.
    let all = ids(100);
    let mut w = World::new(&all, 1);
    for (i, id) in all.iter().enumerate() {
        w.run(id, i < 40);
    }
    assert!(mails(&w.flush()).is_empty(), "no switch yet");
    all.iter().for_each(|id| w.run(id, false));
    assert!(
        mails(&w.flush()).is_empty(),
        "60 switched, 40 on their way: the digest waits for them"
    );
    all.iter().for_each(|id| w.run(id, false));
    assert_eq!(mails(&w.flush()), ["problems 100 (blind)"]);
    // It ends while a tick runs: 30 seen OK, 70 not run since.
    for (i, id) in all.iter().enumerate() {
        if i >= 70 {
            w.run(id, true);
        }
    }
    assert!(mails(&w.flush()).is_empty(), "70 not seen since it ended");
    all[..70].iter().for_each(|id| w.run(id, true));
    assert_eq!(mails(&w.flush()), ["oks 100"]);
}

#[test]
fn a_storm_waits_for_its_rest_at_most_settle_ticks() {
    let all = ids(20);
    let mut w = World::new(&all, 1);
    // Ten fail for good (retry 0 would switch: two runs each), ten fail
    // once and then stay at one failed run (never run again).
    all.iter().for_each(|id| w.run(id, false));
    all[..10].iter().for_each(|id| w.run(id, false));
    for _ in 0..SETTLE_TICKS {
        assert!(mails(&w.flush()).is_empty());
    }
    assert_eq!(mails(&w.flush()), ["problems 10"]);
}

#[test]
fn a_few_switches_beside_a_retrying_check_are_not_held() {
    let all = ids(3);
    let mut w = World::new(&all, 1);
    all.iter().for_each(|id| w.run(id, false));
    w.run(&all[0], false);
    w.run(&all[1], false);
    // Two switches and one on its way are no storm (digest_over 5).
    assert_eq!(mails(&w.flush()), ["problem c000", "problem c001"]);
}

#[test]
fn a_switch_undone_before_the_flush_tells_nothing() {
    let all = ids(1);
    let mut w = World::new(&all, 0);
    w.run("c000", false);
    w.run("c000", true);
    assert!(mails(&w.flush()).is_empty());
}

#[test]
fn a_check_failing_every_other_run_is_reported_flapping() {
    // Retry 1 and the default limits: it never fails twice in a row, so
    // it never switches; its results change at every run.
    let all = ids(1);
    let mut w = World::new(&all, 1);
    let mut told = Vec::new();
    for run in 0..40 {
        w.run("c000", run % 2 == 1);
        told.extend(mails(&w.flush()));
    }
    assert_eq!(told, ["started c000"]);
    // Stable OK for a whole window: where it settled.
    for _ in 0..10 {
        w.run("c000", true);
        told.extend(mails(&w.flush()));
    }
    assert_eq!(told, ["started c000", "settled c000"]);
}

#[test]
fn children_held_for_their_parent_are_told_after_its_ok_as_held_not_blind() {
    let mut all = ids(20);
    all.push("uplink".into());
    let mut w = World::new(&all, 0);
    for id in &all[..20] {
        w.parents.insert(id.clone(), vec!["uplink".into()]);
    }
    w.run("uplink", false);
    all[..20].iter().for_each(|id| w.run(id, false));
    let tells = w.flush();
    assert_eq!(mails(&tells), ["problem uplink"]);
    let held = tells
        .iter()
        .filter(|t| matches!(t, Tell::Held { .. }))
        .count();
    assert_eq!(held, 20, "each child's switch noted as held");
    let Some(Tell::Mail(Outgoing::One(problem), _)) =
        tells.iter().find(|t| matches!(t, Tell::Mail(..)))
    else {
        panic!("the uplink's mail")
    };
    assert_eq!(problem.held.len(), 20, "its mail lists them");
    // The uplink recovers, its children still fail: its OK, then theirs,
    // said to be late for the uplink and not "monitoring may be blind".
    w.run("uplink", true);
    let tells = w.flush();
    assert_eq!(mails(&tells), ["ok uplink", "problems 20"]);
    let Some(Tell::Mail(Outgoing::Digest(digest), _)) = tells.last() else {
        panic!("the children's digest")
    };
    assert!(digest.events.iter().all(|e| e.late
        == Some(Late::Held {
            parent: "uplink".into()
        })));
    assert!(mails(&w.flush()).is_empty(), "told once");
}

#[test]
fn a_silenced_switch_is_noted_once_and_mailed_late_when_the_silence_ends() {
    let all = ids(1);
    let mut w = World::new(&all, 0);
    w.silenced.insert("c000".into());
    w.run("c000", false);
    let tells = w.flush();
    assert!(matches!(tells.as_slice(), [Tell::Silenced { .. }]));
    assert!(w.flush().is_empty(), "noted once");
    w.silenced.clear();
    let tells = w.flush();
    let [Tell::Mail(Outgoing::One(event), _)] = tells.as_slice() else {
        panic!("the Problem, late: {tells:?}")
    };
    assert_eq!(event.late, Some(Late::Silenced));
}

#[test]
fn an_outage_measured_on_the_monotonic_clock_ignores_a_wall_clock_step() {
    let inst = instance("c000", 0);
    let mono = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    let run = |ok: bool, at: SystemTime| RunResult {
        state: if ok { State::Ok } else { State::Critical },
        exit_code: Some(0),
        summary: String::new(),
        perfdata: String::new(),
        details: String::new(),
        duration: Duration::ZERO,
        started: at,
    };
    let mut state = CheckState::default();
    let problem = state.record(&inst, run(false, wall), mono).switch;
    state.note_told(&problem.expect("a switch"), None, &[]);
    // The wall clock is stepped an hour forward between the two runs,
    // ten seconds apart.
    let ok = state
        .record(
            &inst,
            run(true, wall + Duration::from_secs(3610)),
            mono + Duration::from_secs(10),
        )
        .switch
        .expect("a recovery");
    assert_eq!(
        ok.transition,
        Transition::Recovered {
            after: Duration::from_secs(10),
            failed_runs: 1
        }
    );
    // Told later (a silence), it says the same.
    let owed = state.overdue(&inst).expect("its OK is owed");
    assert_eq!(owed.transition, ok.transition);
}

#[test]
fn a_reminder_is_due_every_renotify_every_from_the_problem_mail_and_not_before() {
    let mut w = World::new(&ids(1), 0);
    w.instances.get_mut("c000").expect("c000").renotify_every = Some(Duration::from_secs(100));
    w.run("c000", false);
    assert_eq!(mails(&w.flush()), ["problem c000"]);
    // Told at 1001: due at 1101, not a second before.
    w.wait(98);
    w.run("c000", false);
    assert!(mails(&w.flush()).is_empty(), "a reminder before its time");
    w.run("c000", false);
    assert_eq!(mails(&w.flush()), ["reminder c000 3"]);
    assert!(mails(&w.flush()).is_empty(), "one reminder per period");
    // The next counts from the reminder.
    w.wait(99);
    assert!(mails(&w.flush()).is_empty());
    w.wait(1);
    assert_eq!(mails(&w.flush()), ["reminder c000 3"]);
    assert_eq!(w.states["c000"].reminders, 2);
    // The recovery is mailed; no reminder after it.
    w.run("c000", true);
    assert_eq!(mails(&w.flush()), ["ok c000"]);
    w.wait(500);
    assert!(mails(&w.flush()).is_empty());
    assert_eq!(w.states["c000"].reminders, 0);
}

#[test]
fn an_acknowledged_silenced_or_unconfigured_outage_gets_no_reminder_and_an_ack_ends_with_it() {
    let all = ids(3);
    let mut w = World::new(&all, 0);
    for id in &all[..2] {
        w.instances.get_mut(id).expect("instance").renotify_every = Some(Duration::from_secs(60));
    }
    all.iter().for_each(|id| w.run(id, false));
    assert_eq!(
        mails(&w.flush()),
        ["problem c000", "problem c001", "problem c002"]
    );
    let now = w.now();
    assert!(w
        .states
        .get_mut("c000")
        .expect("c000")
        .acknowledge("ops", "on it", now));
    w.silenced.insert("c001".into());
    w.wait(600);
    // c000 acknowledged, c001 silenced, c002 without renotify_every.
    assert!(mails(&w.flush()).is_empty());
    // The ack ends with its outage: the next one is reminded again.
    w.run("c000", true);
    assert_eq!(mails(&w.flush()), ["ok c000"]);
    assert!(w.states["c000"].ack.is_none());
    assert!(!w
        .states
        .get_mut("c000")
        .expect("c000")
        .acknowledge("ops", "ok now", now));
    w.run("c000", false);
    assert_eq!(mails(&w.flush()), ["problem c000"]);
    w.wait(60);
    assert_eq!(mails(&w.flush()), ["reminder c000 1"]);
}

#[test]
fn each_contact_gets_a_digest_of_its_own_instances_and_the_rest_go_to_everyone() {
    let all = ids(16);
    let mut w = World::new(&all, 0);
    let web = crate::config::Audience {
        contacts: vec!["web".into()],
        to: vec!["web@example.org".into()],
        notify: vec!["pager".into()],
    };
    for id in &all[..8] {
        w.audiences.insert(id.clone(), web.clone());
    }
    // c008 alone for db.
    let db = crate::config::Audience {
        contacts: vec!["db".into()],
        to: vec!["db@example.org".into()],
        notify: Vec::new(),
    };
    w.audiences.insert("c008".into(), db);
    w.mailboxes
        .insert("web".into(), vec!["web@example.org".into()]);
    w.mailboxes
        .insert("db".into(), vec!["db@example.org".into()]);
    all.iter().for_each(|id| w.run(id, false));
    let tells = w.flush();
    let told: Vec<(String, Vec<String>)> = tells
        .iter()
        .filter_map(|t| match t {
            Tell::Mail(Outgoing::Digest(d), a) => {
                Some((format!("digest {}", d.events.len()), a.to.clone()))
            }
            Tell::Mail(Outgoing::One(e), a) => Some((format!("one {}", e.id), a.to.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        told,
        [
            ("digest 7".to_string(), vec!["ops@example.org".to_string()]),
            ("one c008".to_string(), vec!["db@example.org".to_string()]),
            ("digest 8".to_string(), vec!["web@example.org".to_string()]),
        ]
    );
    // Only web's instances go to its notifier (no one else has any).
    let paged: Vec<&str> = tells
        .iter()
        .filter_map(|t| match t {
            Tell::Notify { event, notify } if notify == &["pager"] => Some(event.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(paged, &all[..8]);
}

/// Contacts web (web@ and shared@, notifier pager) and db (db@ and
/// shared@, notifiers pager and dbpage); `web`, `both` and `db` are the
/// instances each covers alone or both cover.
fn overlapping(w: &mut World, web: &[String], both: &[String], db: &[String]) {
    let audience = |contacts: &[&str], to: &[&str], notify: &[&str]| crate::config::Audience {
        contacts: contacts.iter().map(|c| c.to_string()).collect(),
        to: to.iter().map(|c| c.to_string()).collect(),
        notify: notify.iter().map(|c| c.to_string()).collect(),
    };
    let mailboxes = |to: &[&str]| to.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    w.mailboxes
        .insert("web".into(), mailboxes(&["web@", "shared@"]));
    w.mailboxes
        .insert("db".into(), mailboxes(&["db@", "shared@"]));
    for id in web {
        let a = audience(&["web"], &["web@", "shared@"], &["pager"]);
        w.audiences.insert(id.clone(), a);
    }
    for id in both {
        let a = audience(
            &["db", "web"],
            &["db@", "shared@", "web@"],
            &["pager", "dbpage"],
        );
        w.audiences.insert(id.clone(), a);
    }
    for id in db {
        let a = audience(&["db"], &["db@", "shared@"], &["pager", "dbpage"]);
        w.audiences.insert(id.clone(), a);
    }
}

/// The mails of a plan with who they go to: ("digest 12 [web]", "web@ shared@").
fn addressed(tells: &[Tell]) -> Vec<(String, String)> {
    tells
        .iter()
        .filter_map(|t| match t {
            Tell::Mail(o, a) => {
                let what = match o {
                    Outgoing::Digest(d) => format!("digest {}", d.events.len()),
                    Outgoing::One(e) => format!("one {}", e.id),
                };
                Some((format!("{what} {:?}", a.contacts), a.to.join(" ")))
            }
            _ => None,
        })
        .collect()
}

/// Each (instance, notifier) told in a plan, sorted.
fn notified(tells: &[Tell]) -> Vec<(String, String)> {
    let mut told: Vec<(String, String)> = tells
        .iter()
        .filter_map(|t| match t {
            Tell::Notify { event, notify } => Some(
                notify
                    .iter()
                    .map(|n| (event.id.clone(), n.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    told.sort();
    told
}

#[test]
fn in_a_storm_each_contact_gets_one_digest_of_all_and_only_its_own_checks() {
    let all = ids(13);
    let mut w = World::new(&all, 0);
    overlapping(&mut w, &all[..6], &all[6..12], &all[12..]);
    all.iter().for_each(|id| w.run(id, false));
    let tells = w.flush();
    assert_eq!(
        addressed(&tells),
        [
            (r#"digest 7 ["db"]"#.to_string(), "db@ shared@".to_string()),
            (
                r#"digest 12 ["web"]"#.to_string(),
                "web@ shared@".to_string()
            ),
        ]
    );
    let listed = |contact: &str| -> Vec<String> {
        tells
            .iter()
            .find_map(|t| match t {
                Tell::Mail(Outgoing::Digest(d), a) if a.contacts == [contact] => {
                    Some(d.events.iter().map(|e| e.id.clone()).collect())
                }
                _ => None,
            })
            .unwrap_or_default()
    };
    assert_eq!(listed("web"), &all[..12]);
    assert_eq!(listed("db"), &all[6..]);
    // Each switch to each of its notifiers once, not once per contact.
    let told = notified(&tells);
    assert_eq!(told.len(), 6 + 6 * 2 + 2, "{told:?}");
    assert!(told.contains(&("c006".into(), "dbpage".into())));
    assert!(!told.contains(&("c000".into(), "dbpage".into())));

    // The OKs: one digest each, every line in the thread its contact got.
    all.iter().for_each(|id| w.run(id, true));
    let tells = w.flush();
    assert_eq!(
        addressed(&tells),
        [
            (r#"digest 7 ["db"]"#.to_string(), "db@ shared@".to_string()),
            (
                r#"digest 12 ["web"]"#.to_string(),
                "web@ shared@".to_string()
            ),
        ]
    );
    for tell in &tells {
        if let Tell::Mail(Outgoing::Digest(d), a) = tell {
            let thread = format!("<digest {}>", a.contacts.join(","));
            assert!(d.recovered);
            assert!(
                d.events
                    .iter()
                    .all(|e| e.reply_to.as_deref() == Some(&thread)),
                "{d:?}"
            );
        }
    }
    assert!(w.states.values().all(|s| s.threads.is_empty()));
}

#[test]
fn one_alert_for_two_contacts_is_one_mail_and_each_ok_goes_in_its_contacts_thread() {
    let all = ids(8);
    let mut w = World::new(&all, 0);
    // c007 is both's; web has seven more, db none: web's storm is a
    // digest, db gets c007's own mail.
    overlapping(&mut w, &all[..7], &all[7..], &[]);
    w.run("c007", false);
    let tells = w.flush();
    // One mail, to every mailbox of both, shared@ once.
    assert_eq!(
        addressed(&tells),
        [(
            r#"one c007 ["db", "web"]"#.to_string(),
            "db@ shared@ web@".to_string()
        )]
    );
    assert_eq!(
        notified(&tells),
        [
            ("c007".to_string(), "dbpage".to_string()),
            ("c007".to_string(), "pager".to_string())
        ]
    );
    w.run("c007", true);
    assert_eq!(addressed(&w.flush()).len(), 1);

    // Now a storm: web gets c000..c007 in a digest, db c007 alone.
    all.iter().for_each(|id| w.run(id, false));
    assert_eq!(
        addressed(&w.flush()),
        [
            (r#"one c007 ["db"]"#.to_string(), "db@ shared@".to_string()),
            (
                r#"digest 8 ["web"]"#.to_string(),
                "web@ shared@".to_string()
            ),
        ]
    );
    // c007's OK alone: to web in the digest's thread, to db in its own
    // mail's: two threads, two mails (once the storm's rest, still
    // failing, is no longer waited for).
    w.run("c007", true);
    let mut tells = w.flush();
    for _ in 0..SETTLE_TICKS {
        if tells.iter().any(|t| matches!(t, Tell::Mail(..))) {
            break;
        }
        tells = w.flush();
    }
    let threads: Vec<(Vec<String>, Option<String>)> = tells
        .iter()
        .filter_map(|t| match t {
            Tell::Mail(Outgoing::One(e), a) => Some((a.contacts.clone(), e.reply_to.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        threads,
        [
            (vec!["db".to_string()], None),
            (vec!["web".to_string()], Some("<digest web>".to_string())),
        ]
    );
    assert_eq!(notified(&tells).len(), 2, "each notifier once");
}
