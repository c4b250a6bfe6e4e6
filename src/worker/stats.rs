//! The worker's counters and the histogram of handler times.

use super::*;

/// The counters behind [`WorkerStats`].
#[derive(Default)]
pub(super) struct Counters {
    pub(super) prefetched: AtomicU64,
    pub(super) handler_times: Latencies,
    pub(super) processed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) panicked: AtomicU64,
    pub(super) timed_out: AtomicU64,
    pub(super) leases_lost: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) in_flight: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> WorkerStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WorkerStats {
            processed: read(&self.processed),
            retried: read(&self.retried),
            dead_lettered: read(&self.dead_lettered),
            panicked: read(&self.panicked),
            timed_out: read(&self.timed_out),
            leases_lost: read(&self.leases_lost),
            errors: read(&self.errors),
            in_flight: read(&self.in_flight),
            prefetched: read(&self.prefetched),
            handler_p50: self.handler_times.quantile(0.5),
            handler_p99: self.handler_times.quantile(0.99),
        }
    }
}

/// Buckets per doubling of [`Latencies`].
pub(super) const STEPS_PER_DOUBLING: f64 = 4.0;

/// A histogram of durations in microseconds, four buckets per doubling
/// (each about 19 % wide), from 1 µs to 2^40 µs (about 12 days).
pub(super) struct Latencies {
    pub(super) buckets: [AtomicU64; 161],
    pub(super) longest: AtomicU64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            longest: AtomicU64::new(0),
        }
    }
}

impl Latencies {
    pub(super) fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let index = ((micros as f64).log2() * STEPS_PER_DOUBLING) as usize;
        self.buckets[index.min(self.buckets.len() - 1)].fetch_add(1, Ordering::Relaxed);
        self.longest.fetch_max(micros, Ordering::Relaxed);
    }

    /// The upper edge of the bucket holding the `q` quantile.
    pub(super) fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let index = counts
            .iter()
            .position(|count| {
                seen += count;
                seen >= rank
            })
            .unwrap_or(counts.len() - 1);
        let edge = 2f64.powf((index + 1) as f64 / STEPS_PER_DOUBLING);
        let longest = self.longest.load(Ordering::Relaxed);
        Duration::from_micros((edge.ceil() as u64).min(longest))
    }
}
