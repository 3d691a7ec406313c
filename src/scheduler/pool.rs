//! The plugin loop: one thread that starts up to `max_parallel` plugins
//! and watches them all, replying to the daemon loop as each ends; and
//! `-1`, which runs every instance once through it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::Msg;
use crate::check::{Instance, RunResult};
use crate::config::Config;
use crate::runner::{Launch, Runner, Watch};
use crate::sys;

/// What a run left behind, for the log.
#[derive(Debug, Default)]
pub(crate) struct Leftovers {
    /// Processes that escaped the plugin's group, killed after the run.
    pub(super) escaped: Vec<String>,
    /// A process outside the group held the output open.
    pub(super) held_open: bool,
}

struct Job {
    instance: Arc<Instance>,
    reply: Sender<Msg>,
    /// When the plugin loop took the run up, for its result.
    started: SystemTime,
}

impl Launch for Job {
    fn argv(&self) -> &[std::ffi::OsString] {
        &self.instance.argv
    }
    fn env(&self) -> &[(std::ffi::OsString, std::ffi::OsString)] {
        &self.instance.env
    }
    fn timeout(&self) -> Duration {
        self.instance.timeout
    }
}

/// Threads that spawn plugins for the plugin loop, several spawns in
/// flight at once: a spawn waits for the child's exec, so one thread is
/// bound by that latency rather than by CPU.
const SPAWNERS: usize = 4;

/// The plugin loop: one thread that starts up to `size` plugins at once
/// and watches them all (`Watch`), and that does nothing else, so nothing
/// slow (mail, name lookups, the disk) can hold a run up. Dropping the
/// pool lets it finish what was submitted, then it exits.
pub(crate) struct Pool {
    /// None once dropped: the loop sees the channel closed.
    jobs: Option<Sender<Job>>,
    waker: Arc<sys::Waker>,
    runner: Arc<Runner>,
    /// Runs submitted and not started yet: counted down by the loop as it
    /// hands them to the spawners, and by the spawners as they start them.
    queued: Arc<Queued>,
}

struct Queued {
    waiting: AtomicUsize,
    /// Kept by the spawners themselves (`Watch::unstarted`).
    spawning: Arc<AtomicUsize>,
}

/// What the daemon loop runs plugins through: the plugin loop (`Pool`),
/// or in unit tests a script, so that the loop is tested without
/// spawning anything.
pub(crate) trait Plugins {
    /// Runs `instance` once; its result comes back to `reply` as
    /// `Msg::Done`.
    fn submit(&self, instance: Arc<Instance>, reply: &Sender<Msg>);

    /// Runs at most `max` plugins at once from now on.
    fn set_parallel(&mut self, max: usize) -> std::io::Result<()>;

    /// Runs submitted that have not started yet: more than none at a tick
    /// means the machine cannot run all that comes due.
    fn queued(&self) -> usize;
}

impl Pool {
    pub(crate) fn new(size: usize, runner: &Arc<Runner>) -> std::io::Result<Pool> {
        let mut watch = Watch::with_spawners(Arc::clone(runner), SPAWNERS.min(size.max(1)))?;
        let waker = watch.waker()?;
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let loop_waker = Arc::clone(&waker);
        let queued = Arc::new(Queued {
            waiting: AtomicUsize::new(0),
            spawning: watch.unstarted(),
        });
        let loop_queued = Arc::clone(&queued);
        std::thread::Builder::new()
            .name("plugins".into())
            .stack_size(256 * 1024)
            .spawn(move || plugin_loop(watch, &queue, &loop_waker, &loop_queued, size.max(1)))?;
        Ok(Pool {
            jobs: Some(jobs),
            waker,
            runner: Arc::clone(runner),
            queued,
        })
    }
}

impl Plugins for Pool {
    fn submit(&self, instance: Arc<Instance>, reply: &Sender<Msg>) {
        let job = Job {
            instance,
            reply: reply.clone(),
            started: SystemTime::UNIX_EPOCH,
        };
        self.queued.waiting.fetch_add(1, Ordering::Relaxed);
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => self.waker.wake(),
            _ => log::error!("the plugin loop is gone: cannot run a check"),
        }
    }

    /// A new loop of the new size; the old one finishes its runs, then
    /// exits.
    fn set_parallel(&mut self, max: usize) -> std::io::Result<()> {
        *self = Pool::new(max, &self.runner)?;
        Ok(())
    }

    fn queued(&self) -> usize {
        self.queued.waiting.load(Ordering::Relaxed) + self.queued.spawning.load(Ordering::Relaxed)
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
    mut watch: Watch<Job>,
    queue: &Receiver<Job>,
    waker: &sys::Waker,
    queued: &Queued,
    size: usize,
) {
    // The channel is the queue: a job is taken from it only when there is
    // room to start it. A queue of its own beside it kept the capacity of
    // the longest backlog for good (0.65 MiB with 10,000 checks), where
    // the channel frees its blocks as they are read.
    let mut open = true;
    let mut woken = true;
    let mut done = Vec::new();
    loop {
        if woken {
            waker.clear();
        }
        while open && watch.len() < size {
            match queue.try_recv() {
                Ok(mut job) => {
                    job.started = SystemTime::now();
                    queued.waiting.fetch_sub(1, Ordering::Relaxed);
                    watch.start(job);
                }
                Err(TryRecvError::Empty) => break,
                // Only once every job sent has been taken.
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        if !open && watch.is_empty() {
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
        for (job, mut run) in done.drain(..) {
            let leftovers = match &mut run {
                Ok(finished) => Leftovers {
                    escaped: std::mem::take(&mut finished.escaped),
                    held_open: finished.output_held_open,
                },
                Err(_) => Leftovers::default(),
            };
            let instance = &job.instance;
            let result = instance.interpret(job.started, run);
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
pub(crate) fn run_once(
    config: &Config,
    runner: &Arc<Runner>,
) -> std::io::Result<Vec<(Arc<Instance>, RunResult)>> {
    let pool = Pool::new(
        config.max_parallel.min(config.instances.len().max(1)),
        runner,
    )?;
    let (tx, rx) = crossbeam_channel::unbounded();
    // Push checks run nothing: only the daemon, told their results, has one.
    let run: Vec<&Arc<Instance>> = config
        .instances
        .iter()
        .filter(|i| !config.push_checks.contains_key(&i.check))
        .collect();
    for instance in &run {
        pool.submit(Arc::clone(instance), &tx);
    }
    drop(tx);
    let mut results: BTreeMap<String, RunResult> = BTreeMap::new();
    for msg in rx.iter().take(run.len()) {
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
