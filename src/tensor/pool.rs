//! A small pool of worker threads for the layers' parallel parts.
//!
//! Waiting is bounded: after a job a worker watches for the next one for at most
//! [`SPIN`] (jobs come back to back inside a training step), then sleeps on a condition
//! variable until woken. It never spins longer, so a second process on a 2-core machine is
//! not fought for the CPU (pools that spin for milliseconds were measured to collapse there),
//! while waking a sleeping thread, which costs 50-70 µs in this virtual machine, is paid only
//! after idle gaps.
//!
//! [`run`] hands part `i` of a job to worker `i - 1` and runs part 0 on the calling thread,
//! then waits until every part is done. Jobs borrow from the caller's stack: `run` does not
//! return before the workers have finished with them.

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

/// Waits until `ready()` holds: watching for at most [`SPIN`], then sleeping on `cv`.
fn wait_for(p: &Pool, cv: &Condvar, ready: impl Fn() -> bool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !ready() {
        spins = spins.wrapping_add(1);
        // The clock is read every 64 rounds only: reading it costs more than a round.
        if spins.is_multiple_of(64) && start.elapsed() > SPIN {
            let mut g = p.sleep.lock().unwrap_or_else(|e| e.into_inner());
            while !ready() {
                g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
            }
            return;
        }
        std::hint::spin_loop();
    }
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
