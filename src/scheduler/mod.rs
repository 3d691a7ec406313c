//! The daemon loop. Tick k starts at start + k × tick, whatever the
//! previous tick cost (`schedule`), and plugins run from a thread of their
//! own (`pool`, up to `max_parallel` at once), so the daemon loop never
//! waits on a plugin, and a plugin never waits on the daemon's mail or
//! disk. A run's result goes record → at the flush, plan what to tell
//! (`crate::tell`) → carry it out (`tell`: held, saved once, released).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::check::{Instance, RunResult};
use crate::config::{Config, ConfigError};
use crate::courier::Post;
use crate::mail::Mail;
use crate::runner::Runner;
use crate::signals::Signal;
use crate::silence::Silences;
use crate::state::{CheckState, Event, Transition};
use crate::state_store::StateStore;
use crate::throttle::Throttle;

mod pool;
mod push;
mod reload;
mod schedule;
mod slots;
mod tell;

pub(crate) use pool::{run_once, Leftovers, Plugins, Pool};
use schedule::Schedule;
use slots::Slots;

/// How long a stopping daemon waits for killed plugins to be reaped.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a stopping daemon tries to deliver queued mail.
const FLUSH_GRACE: Duration = Duration::from_secs(5);
/// A reload that has not finished loading by then is refused: the files
/// may sit on a hung filesystem, and the running configuration goes on.
const RELOAD_LIMIT: Duration = Duration::from_secs(10);
/// Changes that are not switches (a retry counted, an outage's start) are
/// saved at most this often, so that a failing check does not rewrite the
/// state file on every run; a switch is saved at once.
const TRICKLE: Duration = Duration::from_secs(60);

/// What the daemon loop is told.
#[derive(Debug)]
pub(crate) enum Msg {
    Done {
        id: String,
        result: RunResult,
        leftovers: Leftovers,
    },
    Signal(Signal),
    /// `picomon status` asks for the live view (see status/socket.rs).
    Status(Sender<crate::status::View>),
    /// `picomon ack` (see status/ack.rs).
    Ack(
        crate::status::socket::AckRequest,
        Sender<crate::status::socket::AckAnswer>,
    ),
    /// A push check's report (`picomon push`, `POST /push/NAME`); the
    /// answer says what was recorded, or why nothing was.
    Push {
        check: String,
        report: crate::push::Report,
        reply: Sender<Result<String, String>>,
    },
    /// A reload's configuration, loaded off the loop; `generation` tells
    /// a late answer to a refused reload from the current one.
    Loaded {
        generation: u64,
        config: Box<Result<Config, ConfigError>>,
    },
}

/// One scheduled instance in the daemon.
struct Slot {
    instance: Arc<Instance>,
    state: CheckState,
    /// Ticks left before the next run; 0 or 1 means "this tick".
    due_in: u32,
    running: bool,
    /// When its last run ended, in the daemon's count of ended runs.
    ended: u64,
}

/// When the state must reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Save {
    /// Nothing changed that a restart needs.
    Clean,
    /// Retries or an outage's start changed: saved within `TRICKLE`.
    Soon,
    /// A switch, or a check's state kept or dropped: saved at once.
    Now,
}

/// The running daemon: its configuration, its instances and their state.
pub(crate) struct Daemon {
    config: Arc<Config>,
    main_file: std::path::PathBuf,
    runner: Arc<Runner>,
    /// Where plugins run: the plugin loop, or a script in unit tests.
    pool: Box<dyn Plugins>,
    slots: Slots,
    /// States of the instances of checks switched off (`enabled = false`):
    /// kept, so that switching one on again continues its thread.
    dormant: BTreeMap<String, CheckState>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    /// Every channel alerts go out on: the outbox and `[notify.NAME]`.
    post: Post,
    /// When the next global report is due, if reports are on.
    next_report: Option<Instant>,
    /// Answers `picomon status`, with `state_dir`; declared before
    /// `store` so that its file goes before the lock is let go.
    status_socket: Option<crate::status::socket::StatusSocket>,
    /// Where state is saved, with `state_dir`.
    store: Option<StateStore>,
    save: Save,
    last_save: Instant,
    /// Written to after every tick, for the watchdog.
    heartbeat: Option<std::fs::File>,
    /// Repeated warnings about one check, held to one line a minute.
    throttle: Throttle,
    /// The reload being loaded off the loop: its generation and deadline.
    reloading: Option<(u64, Instant)>,
    reloads: u64,
    /// Instances that switched since their switch was last told or
    /// noted: collected while a tick's results come in and told together
    /// by `flush`, so that a storm is one digest. What is told comes from
    /// the states; this says only what is news.
    switched: BTreeSet<String>,
    /// The last flush kept switches back for the rest of their storm.
    waiting: bool,
    /// Ticks they have waited.
    waited: u32,
    /// A switch was recorded since the last flush.
    fresh: bool,
    /// Instances that started or stopped flapping since the last flush.
    flaps: Vec<(String, crate::flapping::News)>,
    /// `picomon silence`s, read from `state_dir`.
    silences: Silences,
    /// Runs due and done, to say when picomon falls behind.
    pace: crate::pace::Pace,
    /// Runs ended so far, to order the next tick's.
    ended: u64,
    /// The runs a tick starts, kept to reuse its memory.
    starting: Vec<(u64, Arc<Instance>)>,
    /// When the plugin loop last answered (a run ended), for `[heartbeat]`.
    last_answer: Option<Instant>,
    /// `[heartbeat]`: pings the dead man's switch while healthy.
    dead_mans_switch: Option<crate::dead_mans_switch::Switch>,
    /// `[push] listen`: takes pushes over HTTP.
    push_listener: Option<crate::push::listen::Listener>,
}

impl Daemon {
    pub(crate) fn new(
        config: Config,
        main_file: std::path::PathBuf,
        runner: Arc<Runner>,
        channel: (Sender<Msg>, Receiver<Msg>),
        heartbeat: Option<std::fs::File>,
    ) -> anyhow::Result<Daemon> {
        let pool = Pool::new(config.max_parallel, &runner)?;
        Daemon::with_plugins(
            config,
            main_file,
            runner,
            channel,
            heartbeat,
            Box::new(pool),
        )
    }

    /// A daemon whose plugins run through `pool` (see `Plugins`).
    pub(crate) fn with_plugins(
        config: Config,
        main_file: std::path::PathBuf,
        runner: Arc<Runner>,
        channel: (Sender<Msg>, Receiver<Msg>),
        heartbeat: Option<std::fs::File>,
        pool: Box<dyn Plugins>,
    ) -> anyhow::Result<Daemon> {
        let (tx, rx) = channel;
        // The lock comes first: it also guards the mail spool.
        let store = config
            .state_dir
            .as_deref()
            .map(StateStore::open)
            .transpose()?;
        let saved = store.as_ref().map(StateStore::load).unwrap_or_default();
        // Without it the daemon still monitors and mails: logged, not fatal.
        let status_socket = store.as_ref().and_then(|store| {
            let (tx, ack_tx, push_tx) = (tx.clone(), tx.clone(), tx.clone());
            crate::status::socket::serve(
                store.dir(),
                move |reply| tx.send(Msg::Status(reply)).is_ok(),
                move |request, reply| ack_tx.send(Msg::Ack(request, reply)).is_ok(),
                move |check, report, reply| {
                    push_tx
                        .send(Msg::Push {
                            check,
                            report,
                            reply,
                        })
                        .is_ok()
                },
            )
            .map_err(|e| {
                log::error!(
                    "{}: cannot serve picomon status there: {e}",
                    store.dir().display()
                )
            })
            .ok()
        });
        let mut silences = Silences::new(config.state_dir.as_deref());
        silences.set_windows(config.maintenance.clone(), config.time_zone.clone());
        // A state that differs from what was mailed was silenced before
        // the restart: its mail is due when no silence covers it now.
        for (id, state) in &saved {
            if state.failing != state.mailed.is_some() {
                silences.assume_muted(id);
            }
        }
        let open: Vec<String> = saved
            .iter()
            .flat_map(|(id, state)| crate::mail::open_threads(&config.emails.from, id, state))
            .collect();
        let post = Post::resume(
            &config.emails,
            &config.notifiers,
            config.state_dir.as_deref(),
            &runner,
            crate::courier::Told {
                open: &open,
                mailed: &crate::state::mailed_since(&saved),
                failing: &crate::state::failing_since(&saved),
            },
        )?;
        let next_report = config
            .emails
            .report_every
            .map(|every| Instant::now() + every);
        let push_listener = match config.push_listen {
            Some(addr) => {
                let tx = tx.clone();
                Some(crate::push::listen::Listener::start(
                    addr,
                    &config.push_checks,
                    move |check, report, reply| {
                        tx.send(Msg::Push {
                            check,
                            report,
                            reply,
                        })
                        .is_ok()
                    },
                )?)
            }
            None => None,
        };
        let dead_mans_switch = config
            .heartbeat
            .clone()
            .map(|settings| crate::dead_mans_switch::Switch::start(settings, &runner))
            .transpose()
            .map_err(|e| anyhow::anyhow!("cannot start the heartbeat's thread: {e}"))?;
        let mut daemon = Daemon {
            config: Arc::new(config),
            main_file,
            runner,
            pool,
            slots: Slots::default(),
            // What was saved is looked up like the states of switched-off
            // checks: whatever the configuration no longer has is closed.
            dormant: saved,
            tx,
            rx,
            post,
            next_report,
            status_socket,
            store,
            save: Save::Clean,
            last_save: Instant::now(),
            heartbeat,
            throttle: Throttle::new(Duration::from_secs(60)),
            reloading: None,
            reloads: 0,
            switched: BTreeSet::new(),
            waiting: false,
            waited: 0,
            fresh: false,
            flaps: Vec::new(),
            silences,
            pace: crate::pace::Pace::new(Instant::now()),
            ended: 0,
            starting: Vec::new(),
            // Counted from the start: the first tick's runs have not
            // answered yet, and that is no hang.
            last_answer: Some(Instant::now()),
            dead_mans_switch,
            push_listener,
        };
        daemon.install_instances(None);
        daemon.save_state();
        // What loading the states and building the slots freed goes back
        // to the system before the first tick, as after a reload.
        crate::sys::trim_allocator();
        Ok(daemon)
    }

    /// Builds the slots of the current configuration. An instance keeps
    /// its state if its identity survives (or comes back from a switched
    /// off check); the state of a switched-off check is kept aside; a
    /// check gone for good that was failing gets one mail closing its
    /// thread ("no longer monitored"), to whom the configuration `before`
    /// (None: the current one) told it to, in each contact's thread.
    fn install_instances(&mut self, before: Option<&crate::config::Config>) {
        // Both in id order: the old slots are walked beside the new
        // instances.
        let mut old = std::mem::take(&mut self.slots)
            .into_vec()
            .into_iter()
            .peekable();
        let mut gone = Vec::new();
        let mut slots = Vec::with_capacity(self.config.instances.len());
        for instance in &self.config.instances {
            while let Some(before) = old.next_if(|s| s.instance.id < instance.id) {
                gone.push(before);
            }
            let slot = match old.next_if(|s| s.instance.id == instance.id) {
                Some(mut slot) => {
                    slot.instance = Arc::clone(instance);
                    slot
                }
                None => {
                    let state = self.dormant.remove(&instance.id).unwrap_or_default();
                    if state != CheckState::default() {
                        self.save = Save::Now;
                    }
                    Slot {
                        instance: Arc::clone(instance),
                        state,
                        due_in: 0,
                        running: false,
                        ended: 0,
                    }
                }
            };
            slots.push(slot);
        }
        gone.extend(old);
        self.slots = Slots::new(slots);
        self.watch_pushes();
        let disabled = |id: &str| {
            let check = id.split('/').next().unwrap_or(id);
            self.config.disabled.iter().any(|d| d == check)
        };
        for slot in gone {
            let id = slot.instance.id.clone();
            if disabled(&id) {
                log::info!("{id}: check switched off (enabled = false), its state kept");
            }
            self.dormant.insert(id, slot.state);
        }
        let (kept, gone): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.dormant)
            .into_iter()
            .partition(|(id, _)| disabled(id));
        self.dormant = kept;
        let now = SystemTime::now();
        let mut closed = Vec::new();
        for (id, state) in gone {
            self.save = Save::Now;
            let (check, dest) = id.split_once('/').unwrap_or((&id, &id));
            // Those its Problem was told to, not the new configuration's.
            let audience = before.unwrap_or(&self.config).audience(&id);
            let threads = (!audience.contacts.is_empty())
                .then(|| {
                    let from = &self.config.emails.from;
                    crate::mail::contact_threads(from, &id, &state, &audience.contacts)
                })
                .flatten();
            match state.close(&id, check, dest, now) {
                Some(mut event) => {
                    if threads.is_some() {
                        event.reply_to = threads;
                    }
                    closed.push((event, audience));
                }
                None => log::info!("{id}: check removed by the configuration, its state dropped"),
            }
        }
        self.tell_closed(closed);
        let slots = &self.slots;
        self.throttle
            .retain(|key| slots.contains_key(key.rsplit_once(' ').map_or(key, |(id, _)| id)));
        self.switched.retain(|id| slots.contains_key(id));
    }

    /// Writes every state to `state_dir`, if there is one and something
    /// that a restart needs changed.
    fn save_state(&mut self) {
        if self.save == Save::Clean {
            return;
        }
        let Some(store) = &self.store else {
            self.save = Save::Clean;
            return;
        };
        let states = self
            .slots
            .iter()
            .map(|(id, s)| (id.as_str(), &s.state))
            .chain(self.dormant.iter().map(|(id, s)| (id.as_str(), s)));
        match store.save(states) {
            Ok(()) => {
                self.save = Save::Clean;
                self.last_save = Instant::now();
            }
            // Kept dirty: the next occasion tries again.
            Err(e) => log::error!("cannot save state in {}: {e}", store.dir().display()),
        }
    }

    /// Tells the watchdog that the loop is alive.
    fn beat(&mut self) {
        if let Some(fd) = &mut self.heartbeat {
            // A full pipe (a slow watchdog) or a gone watchdog is no reason
            // to stop monitoring.
            let _ = fd.write(b".");
        }
    }

    /// Runs until SIGTERM or SIGINT.
    pub(crate) fn run(mut self) -> anyhow::Result<()> {
        log::info!(
            "picomon started: {} instances of {} checks, tick {} s",
            self.slots.len(),
            self.config.check_count(),
            crate::human::fmt_secs(self.config.base_tick)
        );
        let mut schedule = Schedule::new(Instant::now(), self.config.base_tick);
        loop {
            let due = schedule.due();
            // A due tick goes before queued results: a burst of them must
            // not delay it.
            let next = match Instant::now() >= due {
                true => Err(RecvTimeoutError::Timeout),
                false => self.rx.recv_deadline(due),
            };
            match next {
                Ok(Msg::Done {
                    id,
                    result,
                    leftovers,
                }) => self.finished(&id, result, leftovers),
                Ok(Msg::Signal(Signal::Status)) => {
                    self.print_status();
                    schedule = Schedule::new(Instant::now(), self.config.base_tick);
                }
                Ok(Msg::Push {
                    check,
                    report,
                    reply,
                }) => {
                    // The pusher may have given up: nothing to do then.
                    let _ = reply.send(self.pushed(&check, report));
                }
                Ok(Msg::Status(reply)) => {
                    // A silence just added shows at once.
                    self.silences.refresh(SystemTime::now());
                    // The asker may have given up: nothing to do then.
                    let _ = reply.send(self.view());
                }
                Ok(Msg::Ack(request, reply)) => {
                    let _ = reply.send(self.acknowledge(&request));
                }
                Ok(Msg::Signal(Signal::Reload)) => self.start_reload(),
                Ok(Msg::Loaded { generation, config }) => {
                    if self.reloading.is_some_and(|(g, _)| g == generation) {
                        self.reloading = None;
                        let old_tick = self.config.base_tick;
                        self.reload(*config);
                        if self.config.base_tick != old_tick {
                            // A new tick length starts a new schedule, one tick from now.
                            schedule = Schedule::new(Instant::now(), self.config.base_tick);
                            schedule.tick = 1;
                        }
                    }
                }
                Ok(Msg::Signal(Signal::Stop)) => {
                    self.stop();
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    log::debug!(
                        "tick {} started {:.3} ms after its time",
                        schedule.tick,
                        now.saturating_duration_since(due).as_secs_f64() * 1000.0
                    );
                    self.end_silences();
                    self.tick();
                    self.ping_switch(now, now.saturating_duration_since(due));
                    self.maybe_report();
                    self.check_reload_deadline(now);
                    if self.save == Save::Soon && now.duration_since(self.last_save) >= TRICKLE {
                        self.save_state();
                    }
                    self.beat();
                    let missed = schedule.advance(Instant::now());
                    if missed > 0 {
                        log::warn!("{missed} ticks missed (was the machine suspended?)");
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("the daemon's message channel closed")
                }
            }
        }
    }

    fn tick(&mut self) {
        // What the last tick's late results switched goes out before this
        // tick's runs start: no alert waits longer than one tick, but for
        // a storm's, which wait for the rest of it (`tell::SETTLE_TICKS`).
        self.waited = match self.waiting {
            true => self.waited.saturating_add(1),
            false => 0,
        };
        self.flush();
        let now = Instant::now();
        let due_per_s = || {
            let per_tick: f64 = self
                .slots
                .values()
                .map(|s| 1.0 / f64::from(s.state.interval(&s.instance).max(1)))
                .sum();
            per_tick / self.config.base_tick.as_secs_f64()
        };
        if let Some(behind) = self.pace.minute(now, due_per_s) {
            log::warn!(
                "falling behind: {behind}; every check still runs, each less often than configured"
            );
        }
        // Runs still waiting for their turn: the plugin loop is behind,
        // and a skipped run says so about the daemon, not the check.
        let backlog = self.pool.queued() > 0;
        let mut starting = std::mem::take(&mut self.starting);
        let pushes = &self.config.push_checks;
        for slot in self.slots.values_mut() {
            if pushes.contains_key(&slot.instance.check) {
                continue;
            }
            // 0 before the count down: owed since a tick that found it
            // still waiting (or never run).
            let owed = slot.due_in == 0;
            slot.due_in = slot.due_in.saturating_sub(1);
            if slot.due_in > 0 {
                continue;
            }
            if slot.running && backlog {
                if !owed {
                    self.pace.skipped();
                }
                // Owed: it runs at the first tick after its run ended,
                // whatever its interval, so that every check runs at the
                // same reduced rate.
                continue;
            }
            slot.due_in = slot.state.interval(&slot.instance);
            if slot.running {
                let id = &slot.instance.id;
                if let Some(note) = self.throttle.admit(&format!("{id} still-running"), now) {
                    log::warn!("{id}: previous run still going, this run is skipped{note}");
                }
                continue;
            }
            slot.running = true;
            log::debug!(
                "{}: running {}",
                slot.instance.id,
                slot.instance.command_line()
            );
            starting.push((slot.ended, Arc::clone(&slot.instance)));
        }
        // The one whose last run ended first goes first (never run: first
        // of all): the plugin loop takes runs in this order, so that when
        // it cannot run them all, none overtakes another.
        starting.sort_by_key(|(ended, _)| *ended);
        for (_, instance) in starting.drain(..) {
            self.pool.submit(instance, &self.tx);
        }
        self.starting = starting;
        self.push_tick();
    }

    /// A run's result: record → (on a switch) mail and save → log.
    fn finished(&mut self, id: &str, result: RunResult, leftovers: Leftovers) {
        // A result for an instance that a reload removed is dropped.
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        slot.running = false;
        self.ended += 1;
        slot.ended = self.ended;
        self.last_answer = Some(Instant::now());
        self.log_leftovers(id, leftovers);
        self.record(id, result);
    }

    /// A result (a run's, a push's, a missed push's): record → (on a
    /// switch) mail and save.
    fn record(&mut self, id: &str, result: RunResult) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        self.pace.ran();
        log::debug!(
            "{id}: {} in {:.3} s: {}",
            result.state,
            result.duration.as_secs_f64(),
            result.summary
        );
        let durable = slot.state.durable();
        // When the run started, on the monotonic clock: outages are
        // measured on it, so that a step of the wall clock does not
        // stretch them.
        let now = Instant::now();
        let started = now.checked_sub(result.duration).unwrap_or(now);
        let recorded = slot.state.record(&slot.instance, result, started);
        if let Some(news) = recorded.flap {
            self.flaps.push((id.to_string(), news));
            self.fresh = true;
        }
        if slot.state.durable() != durable {
            self.save = self.save.max(Save::Soon);
        }
        if recorded.switch.is_some() {
            // Runs come at `error_every` while failing, `every` otherwise.
            slot.due_in = slot.state.interval(&slot.instance);
            self.switched.insert(id.to_string());
            self.fresh = true;
        }
        // The flush point: once every run of the tick has answered (else
        // at the next tick), so that switches of one tick go out together.
        if self.fresh && !self.slots.values().any(|s| s.running) {
            self.flush();
        }
    }

    /// `picomon ack`: acknowledges the outage of every failing instance
    /// matching the request's pattern, and saves that at once, so that a
    /// kill right after the answer keeps it.
    fn acknowledge(
        &mut self,
        request: &crate::status::socket::AckRequest,
    ) -> crate::status::socket::AckAnswer {
        let pattern = crate::pattern::Pattern::new(&request.pattern)?;
        let now = SystemTime::now();
        let mut reply = crate::status::socket::AckReply::default();
        for slot in self.slots.values_mut() {
            let id = slot.instance.id.clone();
            if !pattern.matches(&id) {
                continue;
            }
            if slot.state.acknowledge(&request.by, &request.reason, now) {
                log::info!(
                    "{id}: acknowledged by {}: {}; no reminders until it recovers",
                    request.by,
                    request.reason
                );
                reply.acked.push(id);
            } else {
                reply.not_failing.push(id);
            }
        }
        if reply.acked.is_empty() && reply.not_failing.is_empty() {
            return Err(format!(
                "{:?} matches no instance; instance ids are NAME/HOST/FAMILY, see picomon status",
                request.pattern
            ));
        }
        if !reply.acked.is_empty() {
            self.save = Save::Now;
            self.save_state();
        }
        Ok(reply)
    }

    /// The live view, for SIGUSR1, the report and `picomon status`.
    fn view(&self) -> crate::status::View {
        let now = SystemTime::now();
        let mut view = crate::status::View::new(
            self.slots.values().map(|s| {
                (
                    s.instance.as_ref(),
                    &s.state,
                    self.silences.find(&s.instance.id, now),
                )
            }),
            now,
        );
        view.falling_behind = self.pace.behind();
        for inst in &mut view.instances {
            if let Some(audience) = self.config.audiences.get(&inst.instance) {
                inst.told = audience.contacts.clone();
            }
        }
        view.maintenance =
            crate::maintenance::views(&self.config.maintenance, &self.config.time_zone, now);
        view
    }

    fn log_leftovers(&mut self, id: &str, leftovers: Leftovers) {
        let now = Instant::now();
        if !leftovers.escaped.is_empty() {
            if let Some(note) = self.throttle.admit(&format!("{id} escaped"), now) {
                log::warn!(
                    "{id}: the plugin left processes outside its group, killed: {}{note}",
                    leftovers.escaped.join(", ")
                );
            }
        }
        if leftovers.held_open {
            if let Some(note) = self.throttle.admit(&format!("{id} held-open"), now) {
                log::warn!(
                    "{id}: the plugin exited but a process outside its group kept its output open; not waiting for it{note}"
                );
            }
        }
    }

    /// Sends the global report when it is due and some check has been
    /// failing for longer than the report interval.
    fn maybe_report(&mut self) {
        let (Some(due), Some(every)) = (self.next_report, self.config.emails.report_every) else {
            return;
        };
        let now = Instant::now();
        if now < due {
            return;
        }
        self.next_report = Some(now + every);
        let wall = SystemTime::now();
        let long_failing = self.slots.values().any(|s| {
            s.state.failing
                && s.state
                    .since
                    .and_then(|since| wall.duration_since(since).ok())
                    .is_some_and(|d| d > every)
        });
        if !long_failing {
            return;
        }
        let view = self.view();
        self.post.report(view.render());
        self.report_contacts(&view, wall, every);
    }

    /// Each contact with a mailbox gets a report of its own checks, when
    /// one of them has been failing for longer than a report's period.
    fn report_contacts(&mut self, view: &crate::status::View, wall: SystemTime, every: Duration) {
        for (name, to) in &self.config.contacts {
            let mut own = view.clone();
            own.instances.retain(|i| i.told.contains(name));
            let long_failing = own.instances.iter().any(|i| {
                i.standing == crate::status::Standing::Failing
                    && i.since.is_some_and(|since| {
                        let since = std::time::UNIX_EPOCH + Duration::from_secs(since);
                        wall.duration_since(since).is_ok_and(|d| d > every)
                    })
            });
            if to.is_empty() || !long_failing {
                continue;
            }
            let emails = &self.config.emails;
            let mut mail = Mail::new(emails, emails.report_subject.clone(), own.render(), wall);
            mail.to = to.clone();
            self.post.send(mail);
            log::info!("report of contact {name} mailed to {}", to.join(", "));
        }
    }

    fn print_status(&self) {
        let text = self.view().render();
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            log::warn!("cannot write the status to standard output");
        }
    }

    fn stop(mut self) {
        log::info!("stopping: killing running plugins");
        self.runner.stop();
        let deadline = Instant::now() + STOP_GRACE;
        while self.slots.values().any(|s| s.running) {
            match self.rx.recv_deadline(deadline) {
                Ok(Msg::Done { id, .. }) => {
                    if let Some(slot) = self.slots.get_mut(&id) {
                        slot.running = false;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.runner.sweep();
        // A storm waiting for the rest of it is told now: what is stopping
        // will not see the rest.
        self.waited = crate::tell::SETTLE_TICKS;
        self.flush();
        if self.save != Save::Clean {
            self.save = Save::Now;
        }
        self.save_state();
        self.post.stop(FLUSH_GRACE);
        // No status is answered from here on.
        self.status_socket = None;
        log::info!("stopped");
    }
}

#[cfg(test)]
mod tests;
