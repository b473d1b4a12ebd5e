//! Kernel stage: ticks in, market events out (forwarded ticks, bars).
//!
//! Per-instrument state is allocated in [`IndicatorKernel::new`]; `step` is
//! O(windows) per tick and allocation-free once the caller's output buffer
//! has its capacity.

pub mod bars;
pub mod indicators;

use crate::event::{Event, EventBody};
use crate::instruments::InstrumentRegistry;
use crate::tick::{Tick, TickKind};
use bars::BarBuilder;

/// Kernel configuration (validated by [`crate::config`]).
#[derive(Debug, Clone)]
pub struct KernelSetup {
    /// Bar windows in ns, in configured order.
    pub windows_ns: Vec<i64>,
}

/// Per-instrument kernel state.
#[derive(Debug, Clone)]
struct InstState {
    bars: Vec<BarBuilder>,
}

/// Counters the kernel keeps itself (plain integers: single-threaded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Ticks seen.
    pub ticks: u64,
    /// Trades older than the open bar of their window (not applied).
    pub late_trades: u64,
    /// Ticks whose instrument id is not in the registry.
    pub bad_instrument: u64,
    /// Final bars emitted.
    pub bars: u64,
}

/// The indicator kernel: bars per instrument and window.
#[derive(Debug)]
pub struct IndicatorKernel {
    windows_ns: Vec<i64>,
    insts: Vec<InstState>,
    price_precision: Vec<u8>,
    stats: KernelStats,
}

impl IndicatorKernel {
    /// Allocates state for every instrument in `registry` and every window.
    ///
    /// # Panics
    /// If a window is not positive (config validation rules this out).
    pub fn new(registry: &InstrumentRegistry, setup: &KernelSetup) -> Self {
        assert!(
            setup.windows_ns.iter().all(|w| *w > 0),
            "bar windows must be positive"
        );
        let insts = registry
            .iter()
            .map(|i| InstState {
                bars: setup
                    .windows_ns
                    .iter()
                    .enumerate()
                    .map(|(w, ns)| BarBuilder::new(i.id, w as u8, *ns, i.price_precision))
                    .collect(),
            })
            .collect();
        Self {
            windows_ns: setup.windows_ns.clone(),
            insts,
            price_precision: registry.iter().map(|i| i.price_precision).collect(),
            stats: KernelStats::default(),
        }
    }

    /// Processes one tick, appending the events it causes to `out`: the tick
    /// itself, then any bars it finalized (window order).
    #[inline]
    pub fn step(&mut self, t: &Tick, out: &mut Vec<Event>) {
        self.stats.ticks += 1;
        let recv_ns = t.ts_recv_ns;
        out.push(Event {
            recv_ns,
            body: EventBody::Tick(*t),
        });
        let Some(st) = self.insts.get_mut(t.instrument.0 as usize) else {
            self.stats.bad_instrument += 1;
            return;
        };
        if t.kind() != Some(TickKind::Trade) {
            return;
        }
        for b in st.bars.iter_mut() {
            match b.on_trade(t) {
                bars::TradeOutcome::Applied => {}
                bars::TradeOutcome::Rolled(fin) => {
                    self.stats.bars += 1;
                    out.push(Event {
                        recv_ns,
                        body: EventBody::Bar(fin),
                    });
                }
                bars::TradeOutcome::Late => self.stats.late_trades += 1,
            }
        }
    }

    /// Finalizes every open bar whose window ended at or before
    /// `watermark_ns` (event time), e.g. on shutdown or a timer.
    pub fn flush_until(&mut self, watermark_ns: i64, recv_ns: i64, out: &mut Vec<Event>) {
        for st in &mut self.insts {
            for b in st.bars.iter_mut() {
                if let Some(fin) = b.close_if_ended(watermark_ns) {
                    self.stats.bars += 1;
                    out.push(Event {
                        recv_ns,
                        body: EventBody::Bar(fin),
                    });
                }
            }
        }
    }

    /// The forming (provisional) bar of an instrument and window, if any.
    pub fn provisional_bar(&self, inst: usize, window: usize) -> Option<crate::event::Bar> {
        self.insts.get(inst)?.bars.get(window)?.provisional()
    }

    /// Configured windows, ns.
    pub fn windows_ns(&self) -> &[i64] {
        &self.windows_ns
    }

    /// Price precision per instrument id.
    pub fn price_precision(&self, inst: usize) -> Option<u8> {
        self.price_precision.get(inst).copied()
    }

    /// Counters.
    pub fn stats(&self) -> KernelStats {
        self.stats
    }
}
