//! The daemon loop and the worker pool. Tick k starts at start + k × tick,
//! whatever the previous tick cost, and plugins run on a fixed pool of
//! `max_parallel` threads, so the loop itself never waits on a plugin.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::check::{Instance, RunResult};
use crate::config::Config;
use crate::mail::Outbox;
use crate::runner::Runner;
use crate::signals::Signal;
use crate::state::{self, CheckState, Event, StateStore, Transition};

/// How long a stopping daemon waits for killed plugins to be reaped.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a stopping daemon tries to deliver queued mail.
const FLUSH_GRACE: Duration = Duration::from_secs(5);

/// What the daemon loop is told.
#[derive(Debug)]
pub enum Msg {
    Done { id: String, result: RunResult },
    Signal(Signal),
}

struct Job {
    instance: Arc<Instance>,
    reply: Sender<Msg>,
}

/// A fixed set of threads running plugins; dropping it lets them finish
/// their current job and exit.
pub struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    pub fn new(size: usize, runner: &Arc<Runner>) -> std::io::Result<Pool> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        for n in 0..size {
            let queue = queue.clone();
            let runner = Arc::clone(runner);
            std::thread::Builder::new()
                .name(format!("plugin-{n}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    for job in queue.iter() {
                        let started = SystemTime::now();
                        let run = runner.run(&job.instance.argv, job.instance.timeout);
                        let result = job.instance.interpret(started, run);
                        let id = job.instance.id.clone();
                        // The daemon may be gone (stopping); nothing to tell then.
                        let _ = job.reply.send(Msg::Done { id, result });
                    }
                })?;
        }
        Ok(Pool { jobs })
    }

    fn submit(&self, instance: Arc<Instance>, reply: &Sender<Msg>) {
        let job = Job {
            instance,
            reply: reply.clone(),
        };
        if self.jobs.send(job).is_err() {
            log::error!("no plugin worker left to run a check");
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
        if let Msg::Done { id, result } = msg {
            results.insert(id, result);
        }
    }
    Ok(config
        .instances
        .iter()
        .filter_map(|i| results.remove(&i.id).map(|r| (Arc::clone(i), r)))
        .collect())
}

/// One scheduled instance in the daemon.
struct Slot {
    instance: Arc<Instance>,
    state: CheckState,
    /// Ticks left before the next run; 0 or 1 means "this tick".
    due_in: u32,
    running: bool,
}

/// The running daemon: its configuration, its instances and their state.
pub struct Daemon {
    config: Arc<Config>,
    main_file: std::path::PathBuf,
    runner: Arc<Runner>,
    pool: Pool,
    slots: BTreeMap<String, Slot>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    outbox: Outbox,
    /// When the next global report is due, if reports are on.
    next_report: Option<Instant>,
    /// Where state is saved, with `state_dir`.
    store: Option<StateStore>,
    /// States loaded at start, waiting for their instances.
    saved: BTreeMap<String, CheckState>,
    /// Some state changed since the last save.
    dirty: bool,
    /// Written to after every tick, for the watchdog.
    heartbeat: Option<std::fs::File>,
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
        let pool = Pool::new(config.max_parallel, &runner)?;
        let spool = config.state_dir.as_ref().map(|d| d.join("outbox"));
        let outbox = Outbox::start(config.emails.clone(), spool.as_deref())?;
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
            tx,
            rx,
            outbox,
            next_report,
            store,
            saved,
            dirty: false,
            heartbeat,
        };
        daemon.install_instances();
        daemon.saved.clear();
        daemon.save();
        Ok(daemon)
    }

    /// Builds the slots of the current configuration, keeping the state of
    /// every instance whose identity survives.
    fn install_instances(&mut self) {
        let mut old = std::mem::take(&mut self.slots);
        for instance in &self.config.instances {
            let slot = match old.remove(&instance.id) {
                Some(mut slot) => {
                    slot.instance = Arc::clone(instance);
                    slot
                }
                None => Slot {
                    instance: Arc::clone(instance),
                    state: self.saved.remove(&instance.id).unwrap_or_default(),
                    due_in: 0,
                    running: false,
                },
            };
            self.slots.insert(instance.id.clone(), slot);
        }
        for id in old.keys() {
            log::info!("{id}: check removed by the new configuration, its state dropped");
            self.dirty = true;
        }
        for id in self.saved.keys() {
            log::info!("{id}: saved state of a check no longer configured, dropped");
            self.dirty = true;
        }
    }

    /// Writes every state to `state_dir`, if there is one and something
    /// changed.
    fn save(&mut self) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let Some(store) = &self.store else { return };
        let states = self.slots.iter().map(|(id, s)| (id.as_str(), &s.state));
        if let Err(e) = store.save(states) {
            log::error!("cannot save state in {}: {e}", store.dir().display());
            self.dirty = true;
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
        let mut start = Instant::now();
        let mut tick: u64 = 0;
        loop {
            let due = start + self.config.base_tick.mul_f64(tick as f64);
            // A due tick goes before queued results: a burst of them must
            // not delay it.
            let next = match Instant::now() >= due {
                true => Err(RecvTimeoutError::Timeout),
                false => self.rx.recv_deadline(due),
            };
            match next {
                Ok(Msg::Done { id, result }) => {
                    self.finished(&id, result);
                    // Save once a burst of results is in, not after each.
                    if self.rx.is_empty() {
                        self.save();
                    }
                }
                Ok(Msg::Signal(Signal::Status)) => {
                    self.print_status();
                    start = Instant::now();
                    tick = 0;
                }
                Ok(Msg::Signal(Signal::Reload)) => {
                    let old_tick = self.config.base_tick;
                    self.reload();
                    if self.config.base_tick != old_tick {
                        // A new tick length starts a new schedule, one tick from now.
                        start = Instant::now();
                        tick = 1;
                    }
                }
                Ok(Msg::Signal(Signal::Stop)) => {
                    self.stop();
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    log::debug!(
                        "tick {tick} started {:.3} ms after its time",
                        now.saturating_duration_since(due).as_secs_f64() * 1000.0
                    );
                    self.tick();
                    self.maybe_report();
                    self.beat();
                    tick += 1;
                    // After a suspend or a stall, skip the ticks already missed
                    // instead of running them back to back.
                    let elapsed = Instant::now().saturating_duration_since(start);
                    let behind =
                        (elapsed.as_secs_f64() / self.config.base_tick.as_secs_f64()) as u64;
                    if behind > tick {
                        log::warn!(
                            "{} ticks missed (was the machine suspended?)",
                            behind - tick + 1
                        );
                        tick = behind + 1;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("the daemon's message channel closed")
                }
            }
        }
    }

    fn tick(&mut self) {
        for slot in self.slots.values_mut() {
            slot.due_in = slot.due_in.saturating_sub(1);
            if slot.due_in > 0 {
                continue;
            }
            slot.due_in = slot.state.interval(&slot.instance);
            if slot.running {
                log::warn!(
                    "{}: previous run still going, this run is skipped",
                    slot.instance.id
                );
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

    fn finished(&mut self, id: &str, result: RunResult) {
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
        let was_failing = slot.state.failing;
        let transition = slot.state.record(result, slot.instance.retry);
        self.dirty = true;
        if slot.state.failing != was_failing {
            // Runs come at `error_every` while failing, `every` otherwise.
            slot.due_in = slot.state.interval(&slot.instance);
        }
        // Only a switch needs its own copy of the result, for the mail.
        if let (Some(transition), Some(result)) = (transition, slot.state.last.clone()) {
            let since = match &transition {
                Transition::Failing => slot.state.since.unwrap_or(result.started),
                Transition::Recovered { after, .. } => {
                    result.started.checked_sub(*after).unwrap_or(result.started)
                }
            };
            let event = Event {
                id: id.to_string(),
                check: slot.instance.check.clone(),
                dest: slot.instance.dest.clone(),
                since,
                transition,
                result,
            };
            log_event(&event);
            // The mail is queued (spooled) before the state that says it
            // was sent is saved: a crash in between repeats, never loses.
            self.outbox.alert(&event);
            self.save();
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
        let body = state::render_states(
            self.slots.values().map(|s| (s.instance.as_ref(), &s.state)),
            wall,
        );
        self.outbox.report(body);
    }

    fn print_status(&self) {
        let text = state::render_states(
            self.slots.values().map(|s| (s.instance.as_ref(), &s.state)),
            SystemTime::now(),
        );
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            log::warn!("cannot write the status to standard output");
        }
    }

    /// Loads every layer again; keeps the old configuration if the new one
    /// is invalid. New instances run at the next tick.
    fn reload(&mut self) {
        let config = match Config::load(&self.main_file) {
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
        if config.emails.report_every != self.config.emails.report_every {
            self.next_report = config
                .emails
                .report_every
                .map(|every| Instant::now() + every);
        }
        self.config = Arc::new(config);
        self.install_instances();
        self.save();
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
                Ok(Msg::Signal(_)) => {}
                Err(_) => break,
            }
        }
        self.save();
        self.outbox.stop(FLUSH_GRACE);
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
    }
}
