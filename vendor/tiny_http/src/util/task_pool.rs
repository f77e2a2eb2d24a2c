use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// Manages a collection of threads, each handling one item (a connection) at a time.
///
/// A new thread is created every time all the existing threads are full.
/// Any idle thread will automatically die after a few seconds.
///
/// lsmdb patch: upstream spawned with `thread::spawn`, which panics when no thread can be
/// created (under `ulimit -u`, a container's pids limit, systemd's `TasksMax`); the panic
/// took down the accept thread, and the server stopped accepting for good while the process
/// lived on. `spawn` now hands the item back with the error, so the caller can refuse the
/// connection and go on. The pool is generic over its items so that the item comes back.
pub struct TaskPool<T: Send + 'static> {
    sharing: Arc<Sharing<T>>,
}

struct Sharing<T> {
    // items waiting for a thread
    todo: Mutex<VecDeque<T>>,

    // condvar that will be notified whenever an item is added to `todo`
    condvar: Condvar,

    // number of total worker threads running
    active_tasks: AtomicUsize,

    // number of idle worker threads
    waiting_tasks: AtomicUsize,

    handler: Box<dyn Fn(T) + Send + Sync>,
}

/// Minimum number of active threads.
static MIN_THREADS: usize = 4;

struct Registration<'a> {
    nb: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(nb: &'a AtomicUsize) -> Registration<'a> {
        nb.fetch_add(1, Ordering::Release);
        Registration { nb }
    }
}

impl<'a> Drop for Registration<'a> {
    fn drop(&mut self) {
        self.nb.fetch_sub(1, Ordering::Release);
    }
}

impl<T: Send + 'static> TaskPool<T> {
    /// A pool whose threads pass each item to `handler`.
    pub fn new(handler: impl Fn(T) + Send + Sync + 'static) -> TaskPool<T> {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                todo: Mutex::new(VecDeque::new()),
                condvar: Condvar::new(),
                active_tasks: AtomicUsize::new(0),
                waiting_tasks: AtomicUsize::new(0),
                handler: Box::new(handler),
            }),
        };

        // A thread that cannot start now is started later, when an item needs it.
        for _ in 0..MIN_THREADS {
            let _ = pool.add_thread();
        }

        pool
    }

    /// Hands `item` to an idle thread, or to a new one; gives it back if no thread can
    /// be started.
    pub fn spawn(&self, item: T) -> Result<(), (io::Error, T)> {
        let mut queue = self
            .sharing
            .todo
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        queue.push_back(item);

        // lsmdb patch: upstream queued the task whenever one thread was idle, even when an
        // earlier task was already queued for that same thread (it counts as idle until it
        // takes the lock again). Two connections accepted in quick succession then left the
        // second waiting until the first connection closed. Every idle thread takes one queued
        // task (both counts change only under this lock), so a task waits in the queue only
        // when there are at least as many idle threads as queued tasks.
        if queue.len() <= self.sharing.waiting_tasks.load(Ordering::Acquire) {
            self.sharing.condvar.notify_one();
            return Ok(());
        }
        // The new thread takes the lock only once this one lets go of it: if it cannot
        // start, the item just pushed is still the last one.
        match self.add_thread() {
            Ok(()) => Ok(()),
            Err(e) => queue.pop_back().map_or(Ok(()), |item| Err((e, item))),
        }
    }

    fn add_thread(&self) -> io::Result<()> {
        let sharing = self.sharing.clone();

        let spawned = thread::Builder::new()
            .name("http-connection".into())
            .spawn(move || {
                let sharing = sharing;
                let _active_guard = Registration::new(&sharing.active_tasks);

                loop {
                    let item = {
                        let mut todo = sharing.todo.lock().unwrap_or_else(PoisonError::into_inner);

                        let item;
                        loop {
                            if let Some(poped) = todo.pop_front() {
                                item = poped;
                                break;
                            }
                            let _waiting_guard = Registration::new(&sharing.waiting_tasks);

                            let received =
                                if sharing.active_tasks.load(Ordering::Acquire) <= MIN_THREADS {
                                    todo = sharing
                                        .condvar
                                        .wait(todo)
                                        .unwrap_or_else(PoisonError::into_inner);
                                    true
                                } else {
                                    let (new_lock, waitres) = sharing
                                        .condvar
                                        .wait_timeout(todo, Duration::from_millis(5000))
                                        .unwrap_or_else(PoisonError::into_inner);
                                    todo = new_lock;
                                    !waitres.timed_out()
                                };

                            if !received && todo.is_empty() {
                                return;
                            }
                        }

                        item
                    };

                    (sharing.handler)(item);
                }
            });
        spawned.map(drop)
    }
}

impl<T: Send + 'static> Drop for TaskPool<T> {
    fn drop(&mut self) {
        self.sharing
            .active_tasks
            .store(999_999_999, Ordering::Release);
        self.sharing.condvar.notify_all();
    }
}
