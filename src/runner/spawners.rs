//! Spawner threads: a spawn holds its thread until the child has exec'd
//! (glibc's `posix_spawn` waits for it, and so does std's exec-error
//! pipe), so one thread spawning one plugin at a time is bound by spawn
//! latency, not CPU. A few threads spawn at once here and hand each run
//! to the watch loop, which does nothing but watch. Plugins are children
//! of these threads, the only ones with SIGCHLD unblocked (see
//! `Runner::new`).

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::spawn::give_up;
use super::watch::Running;
use super::{Launch, RunError, Runner};
use crate::sys;

/// A started run (or why it did not start), with its payload.
pub(super) type Spawned<T> = (T, Result<Running, RunError>);

/// The spawner threads of one watch loop; `close` stops them.
pub(super) struct Spawners<T> {
    orders: Option<Sender<T>>,
    pub(super) spawned: Receiver<Spawned<T>>,
    /// Rung after every spawn: the watch loop waits on it with epoll.
    pub(super) bell: Arc<sys::Waker>,
    threads: Vec<JoinHandle<()>>,
}

impl<T: Launch> Spawners<T> {
    pub(super) fn new(runner: &Arc<Runner>, count: usize) -> std::io::Result<Spawners<T>> {
        let (orders, queue) = crossbeam_channel::unbounded::<T>();
        let (done, spawned) = crossbeam_channel::unbounded();
        let bell = Arc::new(sys::Waker::new()?);
        let mut threads = Vec::with_capacity(count);
        for n in 0..count.max(1) {
            let (runner, queue, done, bell) = (
                Arc::clone(runner),
                queue.clone(),
                done.clone(),
                Arc::clone(&bell),
            );
            // Spawning needs little stack: glibc's spawn maps its own for
            // the child.
            threads.push(
                std::thread::Builder::new()
                    .name(format!("spawner {n}"))
                    .stack_size(128 * 1024)
                    .spawn(move || spawn_loop(&runner, &queue, &done, &bell))?,
            );
        }
        Ok(Spawners {
            orders: Some(orders),
            spawned,
            bell,
            threads,
        })
    }

    /// Orders a spawn; it comes back through `spawned`. False when the
    /// threads are gone (not expected: they end only when dropped).
    pub(super) fn order(&self, payload: T) -> Result<(), T> {
        match &self.orders {
            Some(orders) => orders.send(payload).map_err(|e| e.into_inner()),
            None => Err(payload),
        }
    }
}

impl<T> Spawners<T> {
    /// Stops the threads once the spawns ordered are done, and returns
    /// those, for their watch to give up on.
    pub(super) fn close(&mut self) -> Vec<Spawned<T>> {
        self.orders = None;
        // Ends when every thread has gone, and with it its sender.
        let left = self.spawned.iter().collect();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        left
    }
}

/// One spawner thread: spawns what it is ordered to, until the orders
/// stop. A run whose watch is gone is killed and reaped at once.
fn spawn_loop<T: Launch>(
    runner: &Runner,
    queue: &Receiver<T>,
    done: &Sender<Spawned<T>>,
    bell: &sys::Waker,
) {
    for payload in queue.iter() {
        let run = runner.start(payload.argv(), payload.timeout(), payload.env());
        if let Err(lost) = done.send((payload, run)) {
            if let (_, Ok(run)) = lost.into_inner() {
                let _ = give_up(
                    runner,
                    run.pid,
                    &run.handle,
                    std::io::Error::other("no longer watched"),
                );
            }
            continue;
        }
        bell.wake();
    }
}
