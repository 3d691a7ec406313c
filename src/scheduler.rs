//! The daemon loop and the plugin loop. Tick k starts at start + k × tick,
//! whatever the previous tick cost, and plugins run from a thread of their
//! own (up to `max_parallel` at once), so the daemon loop never waits on a
//! plugin, and a plugin never waits on the daemon's mail or disk.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::check::{Instance, RunResult};
use crate::config::{Config, ConfigError};
use crate::digest::Outgoing;
use crate::logging::Throttle;
use crate::mail::Mail;
use crate::mail::Outbox;
use crate::runner::{Runner, Watch};
use crate::signals::Signal;
use crate::silence::Silences;
use crate::state::{CheckState, Event, StateStore, Transition};
use crate::sys;

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
pub enum Msg {
    Done {
        id: String,
        result: RunResult,
        leftovers: Leftovers,
    },
    Signal(Signal),
    /// `picomon status` asks for the live view (see status_socket.rs).
    Status(Sender<crate::status::View>),
    /// A reload's configuration, loaded off the loop; `generation` tells
    /// a late answer to a refused reload from the current one.
    Loaded {
        generation: u64,
        config: Box<Result<Config, ConfigError>>,
    },
}

/// What a run left behind, for the log.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Processes that escaped the plugin's group, killed after the run.
    escaped: Vec<String>,
    /// A process outside the group held the output open.
    held_open: bool,
}

struct Job {
    instance: Arc<Instance>,
    reply: Sender<Msg>,
}

/// The plugin loop: one thread that starts up to `size` plugins at once
/// and watches them all (`Watch`), and that does nothing else, so nothing
/// slow (mail, name lookups, the disk) can hold a run up. Dropping the
/// pool lets it finish what was submitted, then it exits.
pub struct Pool {
    /// None once dropped: the loop sees the channel closed.
    jobs: Option<Sender<Job>>,
    waker: Arc<sys::Waker>,
}

impl Pool {
    pub fn new(size: usize, runner: &Arc<Runner>) -> std::io::Result<Pool> {
        let mut watch = Watch::new(Arc::clone(runner))?;
        let waker = watch.waker()?;
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let loop_waker = Arc::clone(&waker);
        std::thread::Builder::new()
            .name("plugins".into())
            .stack_size(256 * 1024)
            .spawn(move || plugin_loop(watch, &queue, &loop_waker, size.max(1)))?;
        Ok(Pool {
            jobs: Some(jobs),
            waker,
        })
    }

    fn submit(&self, instance: Arc<Instance>, reply: &Sender<Msg>) {
        let job = Job {
            instance,
            reply: reply.clone(),
        };
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => self.waker.wake(),
            _ => log::error!("the plugin loop is gone: cannot run a check"),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        self.waker.wake();
    }
}

/// The plugin loop's thread: takes jobs as they are submitted, keeps at
/// most `size` of them running, and replies to each as it ends.
fn plugin_loop(
    mut watch: Watch<(Job, SystemTime)>,
    queue: &Receiver<Job>,
    waker: &sys::Waker,
    size: usize,
) {
    let mut waiting = VecDeque::new();
    let mut open = true;
    let mut woken = true;
    let mut done = Vec::new();
    loop {
        if woken {
            waker.clear();
            loop {
                match queue.try_recv() {
                    Ok(job) => waiting.push_back(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
        }
        while watch.len() < size {
            let Some(job) = waiting.pop_front() else {
                break;
            };
            let instance = Arc::clone(&job.instance);
            let started = SystemTime::now();
            watch.start(
                &instance.argv,
                instance.timeout,
                &instance.env,
                (job, started),
            );
        }
        if !open && waiting.is_empty() && watch.is_empty() {
            return;
        }
        woken = match watch.turn(&mut done) {
            Ok(woken) => woken,
            Err(e) => {
                // Not expected (epoll_wait fails only on a bad argument);
                // slowed down so that it cannot spin.
                log::error!("cannot watch running plugins: {e}");
                std::thread::sleep(Duration::from_millis(100));
                false
            }
        };
        for ((job, started), mut run) in done.drain(..) {
            let leftovers = match &mut run {
                Ok(finished) => Leftovers {
                    escaped: std::mem::take(&mut finished.escaped),
                    held_open: finished.output_held_open,
                },
                Err(_) => Leftovers::default(),
            };
            let instance = &job.instance;
            let result = instance.interpret(started, run);
            // The daemon may be gone (stopping); nothing to tell then.
            let _ = job.reply.send(Msg::Done {
                id: instance.id.clone(),
                result,
                leftovers,
            });
        }
    }
}

/// Runs every instance once, all at once (up to `max_parallel`), and
/// returns the results in the instances' order.
pub fn run_once(
    config: &Config,
    runner: &Arc<Runner>,
) -> std::io::Result<Vec<(Arc<Instance>, RunResult)>> {
    let pool = Pool::new(
        config.max_parallel.min(config.instances.len().max(1)),
        runner,
    )?;
    let (tx, rx) = crossbeam_channel::unbounded();
    for instance in &config.instances {
        pool.submit(Arc::clone(instance), &tx);
    }
    drop(tx);
    let mut results: BTreeMap<String, RunResult> = BTreeMap::new();
    for msg in rx.iter().take(config.instances.len()) {
        if let Msg::Done { id, result, .. } = msg {
            results.insert(id, result);
        }
    }
    Ok(config
        .instances
        .iter()
        .filter_map(|i| results.remove(&i.id).map(|r| (Arc::clone(i), r)))
        .collect())
}

/// A switch not mailed yet.
struct Pending {
    event: Event,
    /// Logged as held back by a failing parent.
    logged: bool,
}

/// One scheduled instance in the daemon.
struct Slot {
    instance: Arc<Instance>,
    state: CheckState,
    /// Ticks left before the next run; 0 or 1 means "this tick".
    due_in: u32,
    running: bool,
}

/// Drift-free ticks: tick k is due at start + k × length, whatever the
/// ticks before it cost; after a stall (a suspended machine) the ticks
/// already missed are skipped, not run back to back.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    length: Duration,
    /// The next tick to run.
    tick: u64,
}

impl Schedule {
    fn new(start: Instant, length: Duration) -> Schedule {
        Schedule {
            start,
            length,
            tick: 0,
        }
    }

    fn due(&self) -> Instant {
        self.start + self.length.mul_f64(self.tick as f64)
    }

    /// Moves past the tick just run, at `now`; returns how many ticks
    /// were missed and skipped.
    fn advance(&mut self, now: Instant) -> u64 {
        self.tick += 1;
        let elapsed = now.saturating_duration_since(self.start);
        let behind = (elapsed.as_secs_f64() / self.length.as_secs_f64()) as u64;
        if behind > self.tick {
            let missed = behind - self.tick + 1;
            self.tick = behind + 1;
            missed
        } else {
            0
        }
    }
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
pub struct Daemon {
    config: Arc<Config>,
    main_file: std::path::PathBuf,
    runner: Arc<Runner>,
    pool: Pool,
    slots: BTreeMap<String, Slot>,
    /// States of the instances of checks switched off (`enabled = false`):
    /// kept, so that switching one on again continues its thread.
    dormant: BTreeMap<String, CheckState>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    outbox: Outbox,
    /// `[notify.NAME]`: told every switch that is mailed.
    notifiers: crate::notify::Notifiers,
    /// When the next global report is due, if reports are on.
    next_report: Option<Instant>,
    /// Answers `picomon status`, with `state_dir`; declared before
    /// `store` so that its file goes before the lock is let go.
    status_socket: Option<crate::status_socket::StatusSocket>,
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
    /// Switches recorded and not mailed yet, the latest per instance:
    /// collected while a tick's results come in and mailed together by
    /// `flush`, so that a storm is one digest.
    pending: BTreeMap<String, Pending>,
    /// A switch was recorded since the last flush.
    fresh: bool,
    /// Instances that started or stopped flapping since the last flush.
    flaps: Vec<(String, crate::flapping::News)>,
    /// `picomon silence`s, read from `state_dir`.
    silences: Silences,
}

impl Daemon {
    pub fn new(
        config: Config,
        main_file: std::path::PathBuf,
        runner: Arc<Runner>,
        channel: (Sender<Msg>, Receiver<Msg>),
        heartbeat: Option<std::fs::File>,
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
            crate::status_socket::serve(store.dir(), tx.clone())
                .map_err(|e| {
                    log::error!(
                        "{}: cannot serve picomon status there: {e}",
                        store.dir().display()
                    )
                })
                .ok()
        });
        let mut silences = Silences::new(config.state_dir.as_deref());
        // A state that differs from what was mailed was silenced before
        // the restart: its mail is due when no silence covers it now.
        for (id, state) in &saved {
            if state.failing != state.mailed.is_some() {
                silences.assume_muted(id);
            }
        }
        let pool = Pool::new(config.max_parallel, &runner)?;
        let spool = config.state_dir.as_ref().map(|d| d.join("outbox"));
        let failing = crate::state::failing_since(&saved);
        let outbox = Outbox::resume(config.emails.clone(), spool.as_deref(), &failing)?;
        let notifiers = crate::notify::Notifiers::resume(
            &config.notifiers,
            config.state_dir.as_deref(),
            &runner,
            &failing,
        )?;
        let next_report = config
            .emails
            .report_every
            .map(|every| Instant::now() + every);
        let mut daemon = Daemon {
            config: Arc::new(config),
            main_file,
            runner,
            pool,
            slots: BTreeMap::new(),
            // What was saved is looked up like the states of switched-off
            // checks: whatever the configuration no longer has is closed.
            dormant: saved,
            tx,
            rx,
            outbox,
            notifiers,
            next_report,
            status_socket,
            store,
            save: Save::Clean,
            last_save: Instant::now(),
            heartbeat,
            throttle: Throttle::new(Duration::from_secs(60)),
            reloading: None,
            reloads: 0,
            pending: BTreeMap::new(),
            fresh: false,
            flaps: Vec::new(),
            silences,
        };
        daemon.install_instances();
        daemon.save_state();
        Ok(daemon)
    }

    /// Builds the slots of the current configuration. An instance keeps
    /// its state if its identity survives (or comes back from a switched
    /// off check); the state of a switched-off check is kept aside; a
    /// check gone for good that was failing gets one mail closing its
    /// thread ("no longer monitored").
    fn install_instances(&mut self) {
        let mut old = std::mem::take(&mut self.slots);
        for instance in &self.config.instances {
            let slot = match old.remove(&instance.id) {
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
                    }
                }
            };
            self.slots.insert(instance.id.clone(), slot);
        }
        let disabled = |id: &str| {
            let check = id.split('/').next().unwrap_or(id);
            self.config.disabled.iter().any(|d| d == check)
        };
        for (id, slot) in old {
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
        for (id, state) in gone {
            self.save = Save::Now;
            let (check, dest) = id.split_once('/').unwrap_or((&id, &id));
            match state.close(&id, check, dest, now) {
                Some(event) => {
                    self.alert(&event);
                }
                None => log::info!("{id}: check removed by the configuration, its state dropped"),
            }
        }
        let slots = &self.slots;
        self.throttle
            .retain(|key| slots.contains_key(key.rsplit_once(' ').map_or(key, |(id, _)| id)));
        self.pending.retain(|id, _| slots.contains_key(id));
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
    pub fn run(mut self) -> anyhow::Result<()> {
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
                Ok(Msg::Status(reply)) => {
                    // A silence just added shows at once.
                    self.silences.refresh(SystemTime::now());
                    // The asker may have given up: nothing to do then.
                    let _ = reply.send(self.view());
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
        // tick's runs start: no alert waits longer than one tick.
        self.flush();
        let now = Instant::now();
        for slot in self.slots.values_mut() {
            slot.due_in = slot.due_in.saturating_sub(1);
            if slot.due_in > 0 {
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
            self.pool.submit(Arc::clone(&slot.instance), &self.tx);
        }
    }

    /// A run's result: record → (on a switch) mail and save → log.
    fn finished(&mut self, id: &str, result: RunResult, leftovers: Leftovers) {
        // A result for an instance that a reload removed is dropped.
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        slot.running = false;
        log::debug!(
            "{id}: {} in {:.3} s: {}",
            result.state,
            result.duration.as_secs_f64(),
            result.summary
        );
        let durable = slot.state.durable();
        let event = slot.state.record(&slot.instance, result);
        if let Some(news) = slot.state.flap.observe(event.is_some(), slot.instance.flap) {
            self.flaps.push((id.to_string(), news));
            self.fresh = true;
        }
        if slot.state.durable() != durable {
            self.save = self.save.max(Save::Soon);
        }
        if let Some(event) = event {
            // Runs come at `error_every` while failing, `every` otherwise.
            slot.due_in = slot.state.interval(&slot.instance);
            self.pending.insert(
                id.to_string(),
                Pending {
                    event,
                    logged: false,
                },
            );
            self.fresh = true;
        }
        self.log_leftovers(id, leftovers);
        // The flush point: once every run of the tick has answered (else
        // at the next tick), so that switches of one tick go out together.
        if self.fresh && !self.slots.values().any(|s| s.running) {
            self.flush();
        }
    }

    /// Mails what is owed: every instance whose state differs from what
    /// was told (a problem not told, a told problem that recovered), as
    /// single mails or, in a storm, digests (`digest::plan`).
    fn flush(&mut self) {
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
    fn tell_flaps(&mut self, now: SystemTime) {
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

    fn settled_word(&self, id: &str) -> &'static str {
        match self.slots.get(id).is_some_and(|s| s.state.failing) {
            true => "failing",
            false => "OK",
        }
    }

    /// Marks each instance with the failing parent that holds its mails
    /// back (`depends`), from the parents' states now; logs changes.
    fn update_holds(&mut self) {
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
    fn alert(&mut self, event: &Event) {
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
    fn end_silences(&mut self) {
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

    /// The live view, for SIGUSR1, the report and `picomon status`.
    fn view(&self) -> crate::status::View {
        let now = SystemTime::now();
        crate::status::View::new(
            self.slots.values().map(|s| {
                (
                    s.instance.as_ref(),
                    &s.state,
                    self.silences.find(&s.instance.id, now),
                )
            }),
            now,
        )
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
        self.outbox.report(self.view().render());
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

    /// Loads every layer again in a thread of its own: reading files can
    /// block (a hung filesystem), and the loop must go on ticking.
    fn start_reload(&mut self) {
        self.reloads += 1;
        let generation = self.reloads;
        self.reloading = Some((generation, Instant::now() + RELOAD_LIMIT));
        let main_file = self.main_file.clone();
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let config = Box::new(Config::load(&main_file));
                let _ = tx.send(Msg::Loaded { generation, config });
            });
        if let Err(e) = spawned {
            self.reloading = None;
            log::error!("reload refused, still running the previous configuration: cannot start a thread to load it: {e}");
        }
    }

    fn check_reload_deadline(&mut self, now: Instant) {
        if let Some((_, deadline)) = self.reloading {
            if now >= deadline {
                self.reloading = None;
                log::error!(
                    "reload refused, still running the previous configuration: loading it took longer than {} (a file on a hung filesystem?)",
                    crate::human::human_duration(RELOAD_LIMIT)
                );
            }
        }
    }

    /// Switches to a newly loaded configuration; keeps the old one if the
    /// new one is invalid. New instances run at the next tick.
    fn reload(&mut self, loaded: Result<Config, ConfigError>) {
        let config = match loaded {
            Ok(config) => config,
            Err(e) => {
                log::error!("reload refused, still running the previous configuration: {e}");
                return;
            }
        };
        if config.max_parallel != self.config.max_parallel {
            match Pool::new(config.max_parallel, &self.runner) {
                Ok(pool) => self.pool = pool,
                Err(e) => {
                    log::error!("reload refused: cannot start plugin workers: {e}");
                    return;
                }
            }
        }
        if config.state_dir != self.config.state_dir {
            log::warn!(
                "state_dir changed: picomon keeps using the previous one until it is restarted"
            );
        }
        crate::set_log_level(config.log_level);
        self.outbox.reconfigure(config.emails.clone());
        self.notifiers.reconfigure(&config.notifiers);
        if config.emails.report_every != self.config.emails.report_every {
            self.next_report = config
                .emails
                .report_every
                .map(|every| Instant::now() + every);
        }
        self.config = Arc::new(config);
        self.install_instances();
        self.save_state();
        log::info!("configuration reloaded: {}", self.config.summary());
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
        self.flush();
        if self.save != Save::Clean {
            self.save = Save::Now;
        }
        self.save_state();
        self.outbox.stop(FLUSH_GRACE);
        self.notifiers.stop(FLUSH_GRACE);
        // No status is answered from here on.
        self.status_socket = None;
        log::info!("stopped");
    }
}

/// Every switch is logged, whether or not mail goes out.
fn log_event(event: &Event) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_k_is_due_at_start_plus_k_ticks_and_missed_ticks_are_skipped() {
        let t0 = Instant::now();
        let tick = Duration::from_millis(100);
        let mut s = Schedule::new(t0, tick);
        assert_eq!(s.due(), t0);
        // A slow tick does not push the next ones back.
        assert_eq!(s.advance(t0 + Duration::from_millis(90)), 0);
        assert_eq!(s.due(), t0 + tick);
        // After a stall of 1.05 s, ticks 2..=10 are skipped: the next is
        // the first one still in the future.
        assert_eq!(s.advance(t0 + Duration::from_millis(1050)), 9);
        assert_eq!(s.due(), t0 + tick * 11);
        assert!(s.due() > t0 + Duration::from_millis(1050));
    }
}
