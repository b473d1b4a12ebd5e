//! Signal/risk stage: kernel events in, decision events out.
//!
//! The backbone version keeps the per-instrument marks (last trade price and
//! quote) that strategies, risk checks and the paper portfolio read; it emits
//! no decisions yet. Strategies, risk checks and the paper broker plug in
//! here (issue: signal, risk and paper-trading stage).

use crate::event::{Event, EventBody};
use crate::instruments::InstrumentRegistry;
use crate::tick::TickKind;

/// Latest marks for one instrument, in price units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// Last trade price (0 = none yet).
    pub last: i64,
    /// Best bid (0 = none yet).
    pub bid: i64,
    /// Best ask (0 = none yet).
    pub ask: i64,
    /// Event time of the latest update, ns.
    pub ts_ns: i64,
}

/// The signal/risk stage.
#[derive(Debug)]
pub struct SignalStage {
    marks: Vec<Marks>,
    events: u64,
}

impl SignalStage {
    /// Allocates per-instrument state.
    pub fn new(registry: &InstrumentRegistry) -> Self {
        Self {
            marks: vec![Marks::default(); registry.len()],
            events: 0,
        }
    }

    /// Processes one kernel event, appending decision events to `out`.
    #[inline]
    pub fn step(&mut self, ev: &Event, out: &mut Vec<Event>) {
        let _ = out;
        self.events += 1;
        if let EventBody::Tick(t) = &ev.body
            && let Some(m) = self.marks.get_mut(t.instrument.0 as usize)
        {
            match t.kind() {
                Some(TickKind::Trade) => {
                    m.last = t.price;
                    m.ts_ns = t.ts_event_ns;
                }
                Some(TickKind::Quote) => {
                    m.bid = t.price;
                    m.ask = t.price2;
                    m.ts_ns = t.ts_event_ns;
                }
                _ => {}
            }
        }
    }

    /// Marks of an instrument.
    pub fn marks(&self, inst: usize) -> Option<Marks> {
        self.marks.get(inst).copied()
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruments::InstrumentId;
    use crate::tick::{Side, Tick};

    #[test]
    fn keeps_marks() {
        let mut r = InstrumentRegistry::new();
        r.add("SIM:A", 2, 2, None).unwrap();
        let mut s = SignalStage::new(&r);
        let mut out = Vec::new();
        let t = Tick::trade(InstrumentId(0), 5, 6, 100, 1, Side::Buy, 1);
        s.step(
            &Event {
                recv_ns: 6,
                body: EventBody::Tick(t),
            },
            &mut out,
        );
        let q = Tick::quote(InstrumentId(0), 7, 8, 99, 1, 101, 1, 2);
        s.step(
            &Event {
                recv_ns: 8,
                body: EventBody::Tick(q),
            },
            &mut out,
        );
        assert_eq!(
            s.marks(0),
            Some(Marks {
                last: 100,
                bid: 99,
                ask: 101,
                ts_ns: 7
            })
        );
        assert_eq!(s.events(), 2);
        assert!(out.is_empty());
    }
}
