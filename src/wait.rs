//! Wait strategies for idle pipeline threads.
//!
//! With two cores and four pipeline threads, spinning threads steal the
//! core from the thread that has work; `backoff` (the default) spins
//! briefly, then yields, then parks with a short timeout. Producers never
//! signal consumers (a futex wake per message costs more than it saves), so
//! a parked consumer notices new work within `park` time; that bounds the
//! latency tail when the pipeline is idle and costs nothing under load.

use std::time::Duration;

use crate::config::{PipelineConfig, WaitKind};

/// Per-thread idle state.
#[derive(Debug, Clone)]
pub struct Waiter {
    kind: WaitKind,
    spins: u32,
    yields: u32,
    park: Duration,
    count: u32,
}

impl Waiter {
    /// A waiter of `kind` with the backoff parameters from `cfg`.
    pub fn new(kind: WaitKind, cfg: &PipelineConfig) -> Self {
        Self {
            kind,
            spins: cfg.backoff_spins,
            yields: cfg.backoff_yields,
            park: Duration::from_micros(cfg.backoff_park_us),
            count: 0,
        }
    }

    /// Called when there was no work. Returns `true` when the thread is
    /// about to park (a good moment for housekeeping such as publishing
    /// histograms).
    #[inline]
    pub fn idle(&mut self) -> bool {
        let c = self.count;
        self.count = self.count.saturating_add(1);
        match self.kind {
            WaitKind::Spin => {
                std::hint::spin_loop();
                c % 4096 == 4095
            }
            WaitKind::Yield => {
                std::thread::yield_now();
                c % 64 == 63
            }
            WaitKind::Backoff => {
                if c < self.spins {
                    std::hint::spin_loop();
                    false
                } else if c < self.spins + self.yields {
                    std::thread::yield_now();
                    false
                } else {
                    std::thread::park_timeout(self.park);
                    true
                }
            }
        }
    }

    /// Called when work was found: the next idle starts from spinning.
    #[inline]
    pub fn reset(&mut self) {
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_escalates_to_park() {
        let cfg = PipelineConfig {
            backoff_spins: 3,
            backoff_yields: 2,
            backoff_park_us: 1,
            ..PipelineConfig::default()
        };
        let mut w = Waiter::new(WaitKind::Backoff, &cfg);
        let parks: Vec<bool> = (0..7).map(|_| w.idle()).collect();
        assert_eq!(parks, [false, false, false, false, false, true, true]);
        w.reset();
        assert!(!w.idle());
    }
}
