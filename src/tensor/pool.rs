//! A small pool of worker threads for the layers' parallel parts.
//!
//! Waiting is bounded: after a job a worker watches for the next one for at most
//! [`SPIN`] (jobs come back to back inside a training step), then sleeps on a condition
//! variable until woken. It never spins longer unless asked to ([`keep_watching`], for a few
//! milliseconds, when the caller knows work is coming), so a second process on a 2-core
//! machine is not fought for the CPU (pools that spin for milliseconds were measured to
//! collapse there), while waking a sleeping thread, which costs 50-70 µs in this virtual
//! machine, is paid only after idle gaps.
//!
//! [`run`] hands part `i` of a job to worker `i - 1` and runs part 0 on the calling thread,
//! then waits until every part is done. [`run_queue`] instead lets the calling thread push
//! jobs one by one (a training step's backward pass, layer by layer) that the workers take as
//! they come. While a worker of [`run_queue`] waits with nothing queued, the pushing thread's
//! own parallel parts (its products) are handed to it as jobs ([`share_with_idle`]) instead of
//! running alone. Jobs borrow from the caller's stack: none of these returns before the
//! workers have finished with them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = dyn Fn(usize) + Sync;

/// How long a worker (or the caller, for the last parts) watches before it sleeps.
pub const SPIN: Duration = Duration::from_micros(50);

struct Pool {
    workers: usize,
    /// Bumped for every job; workers run a job once per generation.
    generation: AtomicU64,
    parts: AtomicUsize,
    pending: AtomicUsize,
    panicked: AtomicBool,
    /// The current job, its lifetime erased: valid until `pending` drops to 0.
    job: Mutex<Option<&'static Job>>,
    sleep: Mutex<()>,
    wake: Condvar,
    done: Condvar,
    /// One job at a time (nested calls run inline, see `parallel_chunks`).
    busy: Mutex<()>,
}

static POOL: OnceLock<&'static Pool> = OnceLock::new();

fn pool(workers: usize) -> &'static Pool {
    POOL.get_or_init(|| {
        let p: &'static Pool = Box::leak(Box::new(Pool {
            workers,
            generation: AtomicU64::new(0),
            parts: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            job: Mutex::new(None),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            done: Condvar::new(),
            busy: Mutex::new(()),
        }));
        for w in 0..workers {
            std::thread::Builder::new()
                .name(format!("memcell-{}", w + 1))
                .spawn(move || worker(p, w + 1))
                .expect("spawn a worker thread");
        }
        p
    })
}

/// Waits until `ready()` holds: watching for at most [`SPIN`] (or until the deadline set by
/// [`keep_watching`]), then sleeping on `cv` (woken early by [`keep_watching`]).
fn wait_for(p: &Pool, cv: &Condvar, ready: impl Fn() -> bool) {
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while !ready() {
            spins = spins.wrapping_add(1);
            // The clock is read every 64 rounds only: reading it costs more than a round.
            if spins.is_multiple_of(64) && start.elapsed() > SPIN && !watch_requested() {
                break;
            }
            std::hint::spin_loop();
        }
        let mut g = p.sleep.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if ready() {
                return;
            }
            if watch_requested() {
                break;
            }
            g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// When the watching requested by [`keep_watching`] ends, in nanoseconds since [`epoch`].
static WATCH_UNTIL: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Whether [`keep_watching`] asked the workers to watch for jobs now.
pub(crate) fn watch_requested() -> bool {
    (epoch().elapsed().as_nanos() as u64) < WATCH_UNTIL.load(Ordering::Relaxed)
}

/// Asks the workers to watch for jobs (waking them if they sleep) for the next `d`, when the
/// caller knows that a job is coming after a gap longer than [`SPIN`]: a worker that watches
/// takes a job within a microsecond, a sleeping one is woken in 50-70 µs here. Does nothing
/// before the pool exists.
pub fn keep_watching(d: Duration) {
    let Some(p) = POOL.get() else { return };
    let until = (epoch().elapsed() + d).as_nanos() as u64;
    WATCH_UNTIL.fetch_max(until, Ordering::Relaxed);
    let _g = p.sleep.lock().unwrap_or_else(|e| e.into_inner());
    p.wake.notify_all();
}

fn worker(p: &'static Pool, index: usize) {
    super::IN_PARALLEL.with(|c| c.set(true));
    let mut seen = 0u64;
    loop {
        wait_for(p, &p.wake, || p.generation.load(Ordering::Acquire) != seen);
        seen = p.generation.load(Ordering::Acquire);
        if index < p.parts.load(Ordering::Acquire) {
            let job = *p.job.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(job) = job {
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(index))).is_ok();
                if !ok {
                    p.panicked.store(true, Ordering::Release);
                }
            }
        }
        if p.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _g = p.sleep.lock().unwrap_or_else(|e| e.into_inner());
            p.done.notify_all();
        }
    }
}

/// Runs `f(0)` .. `f(parts - 1)`, part 0 on the calling thread and the others on pooled
/// workers (created on first use: `max_workers` of them, fixed from then on). Returns when
/// all parts are done; a panic in any part is raised here.
pub fn run(parts: usize, max_workers: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 {
        f(0);
        return;
    }
    let p = pool(max_workers.max(1));
    let parts = parts.min(p.workers + 1);
    let _one_job = p.busy.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the reference is used only by workers running this job, and this function
    // waits below until every one of them has finished with it.
    let job: &'static Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Job>(f) };
    *p.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
    p.panicked.store(false, Ordering::Release);
    p.parts.store(parts, Ordering::Release);
    // Every worker decrements `pending` once per generation (those without a part at once).
    p.pending.store(p.workers, Ordering::Release);
    p.generation.fetch_add(1, Ordering::AcqRel);
    {
        let _g = p.sleep.lock().unwrap_or_else(|e| e.into_inner());
        p.wake.notify_all();
    }
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let was = super::IN_PARALLEL.with(|c| c.replace(true));
        f(0);
        super::IN_PARALLEL.with(|c| c.set(was));
    }));
    wait_for(p, &p.done, || p.pending.load(Ordering::Acquire) == 0);
    *p.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if let Err(e) = mine {
        std::panic::resume_unwind(e);
    }
    assert!(!p.panicked.load(Ordering::Acquire), "a worker thread panicked");
}

/// A job of a [`Queue`]; it gets the queue, to push more jobs.
pub type QueueJob<'a> = Box<dyn FnOnce(&Queue<'a>) + Send + 'a>;

/// Jobs pushed by one thread and run by whichever thread takes them first (see [`run_queue`]).
pub struct Queue<'a> {
    jobs: Mutex<std::collections::VecDeque<QueueJob<'a>>>,
    /// Jobs pushed and not yet taken: watched without the lock.
    waiting: AtomicUsize,
    /// Threads in [`Queue::work`] waiting for a job (not running one).
    idle: AtomicUsize,
    closed: AtomicBool,
}

impl<'a> Queue<'a> {
    fn new() -> Self {
        Queue {
            jobs: Mutex::new(std::collections::VecDeque::new()),
            waiting: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Adds a job; it runs on some thread of the [`run_queue`] call before that call returns.
    pub fn push(&self, job: QueueJob<'a>) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).push_back(job);
        self.waiting.fetch_add(1, Ordering::Release);
    }

    /// Runs jobs as they come until the queue is closed and empty.
    fn work(&self) {
        self.idle.fetch_add(1, Ordering::AcqRel);
        loop {
            if self.waiting.load(Ordering::Acquire) > 0 {
                let job = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                if let Some(job) = job {
                    self.idle.fetch_sub(1, Ordering::AcqRel);
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    // Counted idle again however the job ends (a panic unwinds through here).
                    let _back = IdleAgain(&self.idle);
                    job(self);
                }
                continue;
            }
            // Closed after the last push: nothing waiting now means nothing more will come
            // (except from jobs still running elsewhere, which run what they push themselves).
            if self.closed.load(Ordering::Acquire) && self.waiting.load(Ordering::Acquire) == 0 {
                self.idle.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            std::hint::spin_loop();
        }
    }
}

struct IdleAgain<'q>(&'q AtomicUsize);

impl Drop for IdleAgain<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// The queue whose producer this thread is running (see [`run_queue`]), as an address.
    static PRODUCING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Resets [`PRODUCING`] when the producer returns or unwinds.
struct ProducingGuard(usize);

impl Drop for ProducingGuard {
    fn drop(&mut self) {
        PRODUCING.with(|c| c.set(self.0));
    }
}

/// The queue this thread produces for, when a worker of it waits idle with nothing queued:
/// the producer's own products may then be shared with it (see [`share_with_idle`]).
fn idle_queue() -> Option<&'static Queue<'static>> {
    let at = PRODUCING.with(|c| c.get());
    if at == 0 {
        return None;
    }
    // SAFETY: set by `run_queue` to its queue for exactly as long as its producer runs on
    // this thread (reset by `ProducingGuard`), and the queue outlives the producer.
    let q = unsafe { &*(at as *const Queue<'static>) };
    (q.idle.load(Ordering::Acquire) > 0 && q.waiting.load(Ordering::Acquire) == 0).then_some(q)
}

/// Groups of work [`share_with_idle`] has handed to idle workers (for tests).
static SHARED_GROUPS: AtomicUsize = AtomicUsize::new(0);

/// How many groups of a queue producer's work have been handed to its idle workers (the
/// products of `fit`'s backward pass, while the worker has no update job yet); results are
/// the same bits either way, and tests check it ran.
pub fn groups_shared_with_idle_workers() -> usize {
    SHARED_GROUPS.load(Ordering::Relaxed)
}

/// Whether [`share_with_idle`] would share work now.
pub(crate) fn idle_helper() -> bool {
    idle_queue().is_some()
}

/// On a [`run_queue`] producer whose workers wait idle: runs `f` on every item, the items
/// dealt out in contiguous groups, the first group on this thread and the others as jobs of
/// the queue, and returns when all are done. Elsewhere returns the items untouched.
///
/// A training step's backward pass (`fit`'s overlapped update) is produced this way: while
/// the first layers' gradients are computed, no update job exists yet, and the products of
/// that serial stretch are shared with the idle worker instead.
pub(crate) fn share_with_idle<I: Send, F: Fn(I) + Sync>(items: Vec<I>, f: &F) -> Result<(), Vec<I>> {
    let Some(q) = idle_queue() else { return Err(items) };
    let n = items.len();
    let parts = (q.idle.load(Ordering::Acquire) + 1).min(n);
    if parts <= 1 {
        return Err(items);
    }
    let mut groups = super::deal(items, parts).into_iter();
    let mine = groups.next().expect("parts > 1");
    let done = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // Waits for the pushed groups even when this thread's own group panics: they borrow
    // `f`, `done` and `failed` from this frame.
    struct WaitAll<'d>(&'d AtomicUsize, usize);
    impl Drop for WaitAll<'_> {
        fn drop(&mut self) {
            while self.0.load(Ordering::Acquire) < self.1 {
                std::hint::spin_loop();
            }
        }
    }
    let wait = WaitAll(&done, parts - 1);
    for g in groups {
        let (done, failed) = (&done, &failed);
        let job: Box<dyn FnOnce(&Queue<'_>) + Send + '_> = Box::new(move |_: &Queue<'_>| {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for it in g {
                    f(it);
                }
            }))
            .is_ok();
            if !ok {
                failed.store(true, Ordering::Release);
            }
            done.fetch_add(1, Ordering::AcqRel);
        });
        // SAFETY: the job borrows this frame, which `wait` keeps alive until every pushed job
        // has run to its end; the queue's workers take every job before `run_queue` returns,
        // and one of them waits idle for it now (nothing else is queued).
        let job: QueueJob<'static> =
            unsafe { std::mem::transmute::<Box<dyn FnOnce(&Queue<'_>) + Send + '_>, QueueJob<'static>>(job) };
        q.push(job);
        SHARED_GROUPS.fetch_add(1, Ordering::Relaxed);
    }
    for it in mine {
        f(it);
    }
    drop(wait);
    assert!(!failed.load(Ordering::Acquire), "a worker thread panicked");
    Ok(())
}

/// Closes the queue when the producer is done, also when it panics (the workers would wait
/// for more jobs forever otherwise).
struct CloseOnDrop<'q, 'a>(&'q Queue<'a>);

impl Drop for CloseOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
    }
}

/// Runs `producer` on the calling thread while `workers` pooled threads (at most) run the jobs
/// it pushes (and the jobs those push), as they come; when it returns, the calling thread
/// takes what is left too. Returns when every job has run. The workers watch the queue the
/// whole time (the producer is meant to push a job every few microseconds), so this is for
/// short bursts of work such as one training step's backward pass.
pub fn run_queue<'a, F: FnOnce(&Queue<'a>) + Send>(workers: usize, producer: F) {
    let q = Queue::new();
    let producer = Mutex::new(Some(producer));
    run(workers + 1, workers, &|part: usize| {
        if part == 0 {
            let _close = CloseOnDrop(&q);
            let p = producer.lock().unwrap_or_else(|e| e.into_inner()).take().expect("the producer runs once");
            let _producing = ProducingGuard(PRODUCING.with(|c| c.replace(&q as *const Queue<'a> as usize)));
            p(&q);
        }
        q.work();
    });
}
