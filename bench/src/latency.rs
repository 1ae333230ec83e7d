//! Requests timed one by one, a fixed number in flight: for flows wrk cannot drive (each
//! request needs what the one before answered) and for latencies of a light load.

use std::future::{Future, ready};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, stream};

/// Latencies of one measurement, sorted.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts `durations`.
    pub fn new(mut durations: Vec<Duration>) -> Self {
        durations.sort();
        Self(durations)
    }

    /// The `q` quantile (0.5: the median); zero when nothing was measured.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[index]
    }

    /// How many were measured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a measurement gave: the latencies of the requests that succeeded, the failures, and
/// how long it took.
#[derive(Debug)]
pub struct Outcome {
    /// Of the successful requests.
    pub latencies: Latencies,
    /// Requests that failed.
    pub failures: usize,
    /// The first failure, to say what went wrong.
    pub first_failure: Option<String>,
    /// Wall time of the whole measurement.
    pub elapsed: Duration,
}

impl Outcome {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latencies, or the first failure if any request failed.
    pub fn strict(self) -> anyhow::Result<Latencies> {
        match self.first_failure {
            Some(failure) => {
                anyhow::bail!("{} requests failed, the first: {failure}", self.failures)
            }
            None => Ok(self.latencies),
        }
    }
}

async fn timed<S, F, Fut>(indices: S, concurrency: usize, send: F) -> Outcome
where
    S: Stream<Item = usize>,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let send = &send;
    let started = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = indices
        .map(|i| async move {
            let at = Instant::now();
            send(i).await.map(|()| at.elapsed())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut durations = Vec::with_capacity(results.len());
    let (mut failures, mut first_failure) = (0, None);
    for result in results {
        match result {
            Ok(duration) => durations.push(duration),
            Err(error) => {
                failures += 1;
                first_failure.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    Outcome {
        latencies: Latencies::new(durations),
        failures,
        first_failure,
        elapsed,
    }
}

/// Sends `requests` requests (`send(i)` for each i), `concurrency` at a time, each timed.
pub async fn measure<F, Fut>(requests: usize, concurrency: usize, send: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    timed(stream::iter(0..requests), concurrency, send).await
}

/// Sends requests for `duration`, `concurrency` at a time (a new one as soon as one ends; none
/// started after the time is up), each timed.
pub async fn measure_for<F, Fut>(duration: Duration, concurrency: usize, send: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let deadline = Instant::now() + duration;
    let indices = stream::iter(0..).take_while(move |_| ready(Instant::now() < deadline));
    timed(indices, concurrency, send).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_sorted_latencies() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.quantile(0.5), Duration::from_millis(50));
        assert_eq!(l.quantile(0.99), Duration::from_millis(99));
        assert_eq!(l.quantile(0.0), Duration::from_millis(1));
        assert_eq!(Latencies::default().quantile(0.5), Duration::ZERO);
    }

    #[tokio::test]
    async fn counts_failures_and_keeps_the_first() {
        let outcome = measure(10, 3, |i| async move {
            anyhow::ensure!(i % 4 != 1, "request {i}");
            Ok(())
        })
        .await;
        assert_eq!((outcome.latencies.len(), outcome.failures), (7, 3));
        assert!(outcome.strict().is_err());
        let timed = measure_for(Duration::from_millis(50), 2, |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await;
        assert!(timed.failures == 0 && timed.latencies.len() >= 10);
    }
}
