//! When the disk does not take an entry (full, read-only, gone): the one
//! home of that fallback, for every channel. The entry is kept in memory
//! and delivered all the same; the disk is tried again at each retry
//! interval, and an entry it finally takes is logged as spooled at last.
//! A stop says exactly what stays on disk and what only in memory is lost.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::channel::{Entry, Words};
use super::queue::{Queue, Queued};
use crate::human::human_duration;

/// How many queued entries are on disk and how many only in memory.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backlog {
    pub(crate) on_disk: usize,
    pub(crate) in_memory: usize,
}

impl Backlog {
    pub(crate) fn of<E>(queued: &VecDeque<Queued<E>>) -> Backlog {
        let on_disk = queued.iter().filter(|q| q.path.is_some()).count();
        Backlog {
            on_disk,
            in_memory: queued.len() - on_disk,
        }
    }
}

/// Writes `entry` to `queue` (pending, until its switch is saved, when
/// `pending`); None when there is no queue on disk or the disk refused it,
/// which is logged: the entry is then kept in memory.
pub(crate) fn write<E: Entry>(
    queue: Option<&Queue>,
    entry: &E,
    pending: bool,
    words: &Words,
) -> Option<PathBuf> {
    let queue = queue?;
    let saved = match pending {
        true => queue.save_pending(entry),
        false => queue.save(entry, None),
    };
    match saved {
        Ok(path) => Some(path),
        Err(e) => {
            log::error!(
                "{}cannot spool {} {:?} in {}: {e}; keeping it in memory and trying the disk again at each retry",
                words.prefix,
                words.one,
                entry.subject(),
                queue.dir().display()
            );
            None
        }
    }
}

/// When the disk is tried again for entries held only in memory.
#[derive(Debug)]
pub(crate) struct DiskFull {
    next_try: Instant,
}

impl DiskFull {
    pub(crate) fn new(now: Instant) -> DiskFull {
        DiskFull { next_try: now }
    }

    /// Whether to try the disk now for `backlog` (at a stop: `force`).
    pub(crate) fn due(&self, backlog: Backlog, now: Instant, force: bool) -> bool {
        backlog.in_memory > 0 && (force || now >= self.next_try)
    }

    /// Writes what is held only in memory to `queue`, oldest first, until
    /// the disk refuses one; then waits `retry` before the next try.
    pub(crate) fn retry<E: Entry>(
        &mut self,
        queue: &Queue,
        queued: &mut VecDeque<Queued<E>>,
        now: Instant,
        retry: Duration,
        words: &Words,
    ) {
        let mut failed = None;
        for q in queued.iter_mut().filter(|q| q.path.is_none()) {
            match queue.save(&q.entry, None) {
                Ok(path) => {
                    log::info!(
                        "{}{} {:?} spooled in {} at last",
                        words.prefix,
                        words.one,
                        q.entry.subject(),
                        queue.dir().display()
                    );
                    q.path = Some(path);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            self.next_try = now + retry;
            log::error!(
                "{}still cannot spool {} in {}: {e}; {} kept in memory, trying again in {}",
                words.prefix,
                words.many,
                queue.dir().display(),
                Backlog::of(queued).in_memory,
                human_duration(retry)
            );
        }
    }
}

/// At a stop, once the disk was tried a last time: says what is lost.
pub(crate) fn tell_lost<E: Entry>(
    queue: Option<&Queue>,
    queued: &VecDeque<Queued<E>>,
    words: &Words,
) {
    let why = match queue {
        Some(queue) => format!("it could not be written to {}", queue.dir().display()),
        None => "no state_dir to keep it".to_string(),
    };
    let lost: Vec<&Queued<E>> = queued.iter().filter(|q| q.path.is_none()).collect();
    for q in &lost {
        log::error!(
            "{}stopping: {} lost ({why}): {}",
            words.prefix,
            words.one,
            q.entry.subject()
        );
    }
    if !lost.is_empty() {
        log::error!(
            "{}stopping: {} {} lost in all",
            words.prefix,
            lost.len(),
            words.many
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::courier::channel::tests::Text;

    fn words() -> Words {
        Words {
            prefix: "test: ".into(),
            one: "text",
            many: "texts",
        }
    }

    fn queued(entry: &str, path: Option<PathBuf>) -> Queued<Text> {
        Queued {
            entry: Text(entry.into()),
            path,
            next_try: Instant::now(),
        }
    }

    #[test]
    fn the_disk_is_tried_again_only_for_entries_in_memory_and_at_each_retry() {
        let now = Instant::now();
        let full = DiskFull::new(now);
        let none = Backlog {
            on_disk: 3,
            in_memory: 0,
        };
        let some = Backlog {
            on_disk: 0,
            in_memory: 1,
        };
        assert!(!full.due(none, now, true));
        assert!(full.due(some, now, false));
        let waiting = DiskFull {
            next_try: now + Duration::from_secs(60),
        };
        assert!(!waiting.due(some, now, false));
        // A stop tries once more, whenever the last try was.
        assert!(waiting.due(some, now, true));
    }

    #[test]
    fn an_entry_the_disk_refused_is_kept_in_memory_then_spooled_once_the_disk_takes_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue = Queue::open(&dir.path().join("q"), "test queue").expect("queue");
        // The directory gone: every write fails, as on a full disk.
        std::fs::remove_dir_all(queue.dir()).expect("remove");
        assert_eq!(write(Some(&queue), &Text("a".into()), true, &words()), None);
        let mut all = VecDeque::from([queued("a", None), queued("b", None)]);
        assert_eq!(
            Backlog::of(&all),
            Backlog {
                on_disk: 0,
                in_memory: 2
            }
        );
        let now = Instant::now();
        let mut full = DiskFull::new(now);
        full.retry(&queue, &mut all, now, Duration::from_secs(30), &words());
        assert!(all.iter().all(|q| q.path.is_none()));
        assert!(!full.due(Backlog::of(&all), now, false));
        assert!(full.due(Backlog::of(&all), now + Duration::from_secs(30), false));
        // The disk back: both written, in queueing order.
        std::fs::create_dir(queue.dir()).expect("mkdir");
        full.retry(&queue, &mut all, now, Duration::from_secs(30), &words());
        assert_eq!(Backlog::of(&all).on_disk, 2);
        let loaded: Vec<String> = queue
            .load(|_: &Text| true)
            .into_iter()
            .map(|(t, _)| t.0)
            .collect();
        assert_eq!(loaded, ["a", "b"]);
    }
}
