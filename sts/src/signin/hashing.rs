//! Threads for password hashing that run below the token endpoint's priority.
//!
//! An argon2id check takes tens of milliseconds of CPU. On tokio's blocking pool it competes
//! with the runtime's workers as an equal, so on a small node a flood of wrong passwords takes a
//! core's share from machine tokens and their tail latency grows with it. These threads lower
//! their own niceness once at start: the kernel then runs a worker that wakes with a token
//! request ahead of a hash, and hashes still get every cycle the workers leave idle.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use thread_priority::ThreadPriority;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of low-priority threads fed by one queue. The caller bounds the queue (the
/// verifier pool's semaphores let no more jobs in than there are threads); this only runs
/// what it is given.
pub struct Hashers {
    jobs: Sender<Job>,
}

impl Hashers {
    /// Starts `threads` threads (at least one).
    pub fn start(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("signet-hash-{n}"))
                .spawn(move || run(&queue))
                .expect("the OS starts a thread");
        }
        Self { jobs }
    }

    /// Runs `work` on a hashing thread and waits for its answer; None when the threads are
    /// gone (never while the process runs).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(work());
        });
        // Sending never blocks (the channel is unbounded, the caller bounds it).
        self.jobs.send(job).ok()?;
        answered.await.ok()
    }
}

fn run(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Gives this thread the lowest priority of its policy: niceness 19 on Linux, not
/// `SCHED_IDLE`, which could stop logins outright while tokens keep a node busy. Against a
/// busy worker it gets a small share (weight 15 against 1024), and all the CPU left idle. Lowering it
/// needs no privilege; where the platform refuses, the thread hashes at normal priority and
/// says so.
fn lower_priority() {
    if let Err(error) = thread_priority::set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!(error = ?error, "password hashing runs at normal priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ThreadPriority::Min` means for the normal policy on Linux.
    const NICENESS: i64 = 19;

    /// The niceness of the calling thread, from /proc (field 19 of its stat line).
    fn own_niceness() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux /proc");
        // The command name (field 2) may hold spaces; fields after its ')' are plain.
        let after = &stat[stat.rfind(')').expect("stat has a name") + 2..];
        after.split(' ').nth(16).expect("field 19").parse().unwrap()
    }

    #[tokio::test]
    async fn work_runs_on_a_thread_of_lower_priority_than_the_callers() {
        let hashers = Hashers::start(1);
        let caller = own_niceness();
        let (nice, name) = hashers
            .run(|| {
                (
                    own_niceness(),
                    std::thread::current().name().map(str::to_owned),
                )
            })
            .await
            .expect("answered");
        assert_eq!(name.as_deref(), Some("signet-hash-0"));
        assert_eq!(nice, caller.max(NICENESS), "caller at {caller}");
    }

    #[tokio::test]
    async fn every_job_is_answered_with_its_own_result() {
        let hashers = Arc::new(Hashers::start(2));
        let answers = futures::future::join_all((0..32).map(|n| {
            let hashers = hashers.clone();
            async move { hashers.run(move || n * 2).await }
        }))
        .await;
        assert_eq!(answers, (0..32).map(|n| Some(n * 2)).collect::<Vec<_>>());
    }
}
