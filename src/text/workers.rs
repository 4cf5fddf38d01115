//! The threads that rank a request's other ranges of documents while the caller ranks one, each
//! woken on a CPU other than the caller's.
//!
//! A thread that a running one wakes or starts should run on an idle CPU, and on the 2-core
//! machine (a Firecracker guest) it often did not: it was queued behind its waker on the
//! waker's CPU while the other CPU idled, and ran only once the caller blocked, its "parallel"
//! range ranked after the caller's. Back to back, one started thread in ten waited so (p90
//! 1.03 ms to start, p50 46 us); after the machine had idled 2 ms, most did (p50 876 us), which
//! is how a served request arrives: a 100k brief with 2 ms between requests took 3.36 ms at p50
//! on two threads, more than on one (3.13). Before waking them, the caller therefore limits its
//! workers to the CPUs other than its own (a started thread then began p50 74 us later, p90
//! 90 us), and each worker lifts the limit once it runs, so that the scheduler may still move
//! it off a CPU another process keeps busy: workers pinned for good made a sentence's p99 go
//! from 1.5 to 4.0 ms beside a busy process.
//!
//! A request wakes its workers as its analysis starts (`wake`), not when its ranking begins:
//! a worker then waits for the ranking spinning on its CPU, and starts on it about 3 us after
//! the caller rather than 30. A caller done with its own part waits for the workers spinning
//! too, rather than asleep.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::thread::{CpuSet, Pid, gettid, sched_getaffinity, sched_getcpu, sched_setaffinity};

/// A pool of one thread fewer than rayon's (the caller is the other).
pub(super) struct Workers {
    pool: rayon::ThreadPool,
    /// Each worker's thread id, recorded as it starts.
    threads: Arc<Mutex<Vec<Pid>>>,
    /// The CPUs this process may run on.
    allowed: CpuSet,
    /// Runs begun so far: a worker on standby (`wake`) stops waiting when it changes.
    runs: AtomicU64,
}

/// How long a woken worker spins, waiting for the run it was woken for: a 70-word brief's
/// analysis takes about 60 us at 100k definitions, and the ranking's setup some 40 more. A worker whose run does not come in time
/// goes back to rayon's sleep, and the run wakes it as it would have without `wake`.
const STANDBY: Duration = Duration::from_micros(300);

/// How long the caller spins, once its own part is done, for the workers to finish theirs
/// before it blocks in rayon's scope.
const FINISH_SPIN: Duration = Duration::from_millis(1);

/// The workers, started on first use; none on a single CPU (or when they cannot be started).
pub(super) fn workers() -> Option<&'static Workers> {
    static WORKERS: OnceLock<Option<Workers>> = OnceLock::new();
    WORKERS
        .get_or_init(|| Workers::start(rayon::current_num_threads().saturating_sub(1)))
        .as_ref()
}

impl Workers {
    fn start(count: usize) -> Option<Workers> {
        if count == 0 {
            return None;
        }
        let allowed = sched_getaffinity(None).ok()?;
        let threads = Arc::new(Mutex::new(Vec::with_capacity(count)));
        let recorded = Arc::clone(&threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(count)
            .thread_name(|i| format!("orchestr8-rank-{i}"))
            .start_handler(move |_| {
                if let Ok(mut threads) = recorded.lock() {
                    threads.push(gettid());
                }
            })
            .build()
            .inspect_err(|error| tracing::warn!(%error, "ranking on the calling thread only"))
            .ok()?;
        Some(Workers {
            pool,
            threads,
            allowed,
            runs: AtomicU64::new(0),
        })
    }

    /// Puts the workers on the CPUs other than the caller's and has one spin there until the
    /// next run begins (at most `STANDBY`): called as a request's analysis starts, so that its
    /// ranking finds a worker running. Woken by the run itself, a worker began ranking about
    /// 30 us after the caller (a sleeping vCPU of the 2-core guest takes that long to wake);
    /// on standby, 3 us. At 100k, with `run_beside`'s spin, a brief's time in the planner fell
    /// by about 32 us at the median (benches/README.md).
    pub(super) fn wake(&'static self) {
        self.limit_to_other_cpus();
        let seen = self.runs.load(Ordering::Acquire);
        self.pool.spawn(move || {
            let since = Instant::now();
            while self.runs.load(Ordering::Acquire) == seen && since.elapsed() < STANDBY {
                spin_loop();
            }
        });
    }

    /// Runs `job` on the calling thread and, at the same time, on up to `helpers` workers
    /// (placed by `wake`, when the caller woke them); returns once every run has returned.
    pub(super) fn run_beside(&self, helpers: usize, job: &(dyn Fn() + Sync)) {
        let helpers = helpers.min(self.pool.current_num_threads());
        self.runs.fetch_add(1, Ordering::AcqRel);
        let finished = AtomicUsize::new(0);
        self.pool.in_place_scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|_| {
                    // Placement is only a hint: a failure leaves the thread where it is.
                    let _ = sched_setaffinity(None, &self.allowed);
                    job();
                    finished.fetch_add(1, Ordering::Release);
                });
            }
            job();
            // rayon's scope puts a caller outside the pool to sleep on a condition variable,
            // and waking it took about 35 us: a caller done first waits spinning instead.
            let since = Instant::now();
            while finished.load(Ordering::Acquire) < helpers && since.elapsed() < FINISH_SPIN {
                spin_loop();
            }
        });
    }

    /// Limits every worker to the CPUs other than the caller's, when there are any. Which
    /// workers take the jobs is rayon's choice, so all are limited; one that takes none keeps
    /// the limit, every CPU but one, until its next run.
    fn limit_to_other_cpus(&self) {
        let mut others = self.allowed;
        others.unset(sched_getcpu());
        if others.count() == 0 {
            return;
        }
        if let Ok(threads) = self.threads.lock() {
            for &thread in threads.iter() {
                let _ = sched_setaffinity(Some(thread), &others);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The job runs on the caller and on the worker, and the worker runs it with every CPU the
    /// process may use: the limit set before waking it is lifted.
    #[test]
    fn a_worker_runs_beside_the_caller_without_a_limit() {
        let workers: &'static Workers = Box::leak(Box::new(Workers::start(1).expect("a worker")));
        let runs = AtomicUsize::new(0);
        let limited = AtomicUsize::new(0);
        let job = || {
            runs.fetch_add(1, Ordering::Relaxed);
            let cpus = sched_getaffinity(None).expect("this thread's CPUs");
            if cpus != workers.allowed {
                limited.fetch_add(1, Ordering::Relaxed);
            }
        };
        for round in 1..=20 {
            // Every other run on a worker woken ahead, as a request's is.
            if round % 2 == 0 {
                workers.wake();
            }
            workers.run_beside(1, &job);
            assert_eq!(runs.load(Ordering::Relaxed), 2 * round);
        }
        assert_eq!(limited.load(Ordering::Relaxed), 0);
        // A worker that was asked for more helpers than it has still runs once a call.
        workers.run_beside(5, &job);
        assert_eq!(runs.load(Ordering::Relaxed), 42);
    }
}
