//! A small pool of worker threads that sleep on a condition variable between jobs: no
//! spinning, so a second process on a 2-core machine is not fought for the CPU (thread pools
//! that spin-wait were measured to collapse there), and waking a sleeping worker costs a few
//! microseconds instead of the tens a new thread would.
//!
//! [`run`] hands part `i` of a job to worker `i - 1` and runs part 0 on the calling thread,
//! then waits until every part is done. Jobs borrow from the caller's stack: `run` does not
//! return before the workers have finished with them.

use std::sync::{Condvar, Mutex, OnceLock};

type Job = dyn Fn(usize) + Sync;

struct State {
    /// The current job, its lifetime erased: valid until `pending` drops to 0.
    job: Option<&'static Job>,
    generation: u64,
    parts: usize,
    pending: usize,
    panicked: bool,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    workers: usize,
    /// One job at a time (nested calls run inline, see `run`).
    busy: Mutex<()>,
}

static POOL: OnceLock<&'static Pool> = OnceLock::new();

fn pool(workers: usize) -> &'static Pool {
    POOL.get_or_init(|| {
        let p: &'static Pool = Box::leak(Box::new(Pool {
            state: Mutex::new(State { job: None, generation: 0, parts: 0, pending: 0, panicked: false }),
            work: Condvar::new(),
            done: Condvar::new(),
            workers,
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

fn worker(p: &'static Pool, index: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
            while st.generation == seen {
                st = p.work.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            seen = st.generation;
            if index < st.parts {
                st.job
            } else {
                None
            }
        };
        if let Some(job) = job {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                super::IN_PARALLEL.with(|c| c.set(true));
                job(index);
            }))
            .is_ok();
            let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
            st.panicked |= !ok;
            st.pending -= 1;
            if st.pending == 0 {
                p.done.notify_all();
            }
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
    {
        let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
        st.job = Some(job);
        st.parts = parts;
        st.pending = parts - 1;
        st.panicked = false;
        st.generation += 1;
        p.work.notify_all();
    }
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let was = super::IN_PARALLEL.with(|c| c.replace(true));
        f(0);
        super::IN_PARALLEL.with(|c| c.set(was));
    }));
    let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
    while st.pending > 0 {
        st = p.done.wait(st).unwrap_or_else(|e| e.into_inner());
    }
    st.job = None;
    let theirs = st.panicked;
    drop(st);
    if let Err(e) = mine {
        std::panic::resume_unwind(e);
    }
    assert!(!theirs, "a worker thread panicked");
}
