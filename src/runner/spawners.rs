//! Spawner threads: a spawn holds its thread until the child has exec'd
//! (glibc's `posix_spawn` waits for it, and so does std's exec-error
//! pipe), so one thread spawning one plugin at a time is bound by spawn
//! latency, not CPU. A few threads spawn at once here, each adding its
//! run's descriptors to the watch loop's epoll itself, and hand the run
//! to the loop, which does nothing but watch: the loop learns of a run
//! from its first event, not from a wake-up per spawn (a system call and
//! a turn of the loop each, and the 8 bytes a run that the daemon's
//! figure of bytes written counted). Only a run that did not start rings
//! the loop. Plugins are children of these threads, the only ones with
//! SIGCHLD unblocked (see `Runner::new`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::order::Order;
use super::running::Running;
use super::spawn::{give_up, hold_signals_here};
use super::{Launch, RunError, Runner};
use crate::sys;

/// A started run (or why it did not start), with its order.
pub(super) type Spawned<T> = (Order<T>, Result<Running, RunError>);

/// The spawner threads of one watch loop; `close` stops them.
pub(super) struct Spawners<T> {
    orders: Option<Sender<Order<T>>>,
    pub(super) spawned: Receiver<Spawned<T>>,
    /// Rung after every spawn: the watch loop waits on it with epoll.
    pub(super) bell: Arc<sys::Waker>,
    threads: Vec<JoinHandle<()>>,
}

impl<T: Launch> Spawners<T> {
    pub(super) fn new(
        runner: &Arc<Runner>,
        epoll: &Arc<sys::Epoll>,
        unstarted: &Arc<AtomicUsize>,
        count: usize,
    ) -> std::io::Result<Spawners<T>> {
        let (orders, queue) = crossbeam_channel::unbounded::<Order<T>>();
        let (done, spawned) = crossbeam_channel::unbounded();
        let bell = Arc::new(sys::Waker::new()?);
        let mut threads = Vec::with_capacity(count);
        for n in 0..count.max(1) {
            let (runner, epoll, unstarted, queue, done, bell) = (
                Arc::clone(runner),
                Arc::clone(epoll),
                Arc::clone(unstarted),
                queue.clone(),
                done.clone(),
                Arc::clone(&bell),
            );
            // Spawning needs little stack: the child runs on one of its own
            // (`spawn::CHILD_STACK`).
            threads.push(
                std::thread::Builder::new()
                    .name(format!("spawner {n}"))
                    .stack_size(128 * 1024)
                    .spawn(move || spawn_loop(&runner, &epoll, &unstarted, &queue, &done, &bell))?,
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
    pub(super) fn order(&self, order: Order<T>) -> Result<(), Order<T>> {
        match &self.orders {
            Some(orders) => orders.send(order).map_err(|e| e.into_inner()),
            None => Err(order),
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
    epoll: &sys::Epoll,
    unstarted: &AtomicUsize,
    queue: &Receiver<Order<T>>,
    done: &Sender<Spawned<T>>,
    bell: &sys::Waker,
) {
    hold_signals_here();
    for order in queue.iter() {
        let run = order.launch(runner, epoll);
        unstarted.fetch_sub(1, Ordering::Relaxed);
        let started = run.is_ok();
        if let Err(lost) = done.send((order, run)) {
            if let (_, Ok(run)) = lost.into_inner() {
                let _ = give_up(runner, run.pid, std::io::Error::other("no longer watched"));
            }
            continue;
        }
        // A run that started tells the loop itself, by its first event;
        // one that did not has none.
        if !started {
            bell.wake();
        }
    }
}
