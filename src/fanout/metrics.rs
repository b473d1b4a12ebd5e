//! `GET /metrics`: Prometheus text exposition format 0.0.4.
//!
//! Counters end in `_total`; latencies are summaries in seconds with
//! quantiles 0.5, 0.9, 0.99 and 0.999 over everything since start (read
//! from the cumulative histograms, so the stats logger's interval
//! histograms are untouched). `_sum` is computed from the histogram (mean ×
//! count, within its 3 significant digits).

use std::fmt::Write as _;

use super::rest::View;
use super::server::RefuseReason;
use super::ws::CloseReason;
use crate::telemetry::StageStats;

/// Quantiles of every latency summary.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

struct Writer<'a> {
    out: &'a mut String,
}

impl Writer<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        if value.is_nan() {
            self.out.push_str("NaN");
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.head(name, kind, help);
        self.sample(name, &[], value);
    }

    fn summary(&mut self, name: &str, label: &str, stages: &[(&str, &StageStats)]) {
        for (value, st) in stages {
            let (qs, count, mean) = st.with_cumulative(|h| {
                let qs: Vec<u64> = QUANTILES.iter().map(|q| h.value_at_quantile(*q)).collect();
                (qs, h.len(), h.mean())
            });
            for (q, v) in QUANTILES.iter().zip(qs) {
                let qv = q.to_string();
                let x = if count == 0 { f64::NAN } else { v as f64 / 1e9 };
                self.sample(name, &[(label, value), ("quantile", &qv)], x);
            }
            let sum = if count == 0 {
                0.0
            } else {
                mean * count as f64 / 1e9
            };
            self.sample(&format!("{name}_sum"), &[(label, value)], sum);
            self.sample(&format!("{name}_count"), &[(label, value)], count as f64);
        }
    }
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders every metric into `out`.
pub fn render(out: &mut Vec<u8>, v: &View<'_>) {
    let mut s = String::with_capacity(16 * 1024);
    let mut w = Writer { out: &mut s };
    let t = v.tel;
    let feed = v.feeds.first().map_or("none", |f| f.name.as_str());

    w.head(
        "tickwire_build_info",
        "gauge",
        "Build information (always 1).",
    );
    w.sample(
        "tickwire_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    w.one(
        "tickwire_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        v.uptime.as_secs_f64(),
    );

    w.head(
        "tickwire_messages_total",
        "counter",
        "Market messages (ticks) decoded, per feed and instrument.",
    );
    for (i, inst) in v.ctx.registry().iter().enumerate() {
        let n = t.per_instrument.get(i).map_or(0, |c| c.get());
        w.sample(
            "tickwire_messages_total",
            &[("feed", feed), ("symbol", &inst.key)],
            n as f64,
        );
    }
    w.head(
        "tickwire_frames_total",
        "counter",
        "Frames read from the feed source.",
    );
    w.sample(
        "tickwire_frames_total",
        &[("feed", feed)],
        t.feed.frames.get() as f64,
    );
    w.head(
        "tickwire_decode_errors_total",
        "counter",
        "Frames or values that failed to decode, by kind.",
    );
    w.sample(
        "tickwire_decode_errors_total",
        &[("feed", feed), ("kind", "frame")],
        t.feed.decode_errors.get() as f64,
    );
    w.sample(
        "tickwire_decode_errors_total",
        &[("feed", feed), ("kind", "decimal")],
        t.feed.decimal_errors.get() as f64,
    );
    w.head(
        "tickwire_unknown_symbols_total",
        "counter",
        "Ticks for symbols not in the registry.",
    );
    w.sample(
        "tickwire_unknown_symbols_total",
        &[("feed", feed)],
        t.feed.unknown_symbols.get() as f64,
    );
    w.head(
        "tickwire_control_messages_total",
        "counter",
        "Feed control messages (acks, pings, unsupported streams).",
    );
    w.sample(
        "tickwire_control_messages_total",
        &[("feed", feed)],
        t.feed.control.get() as f64,
    );
    w.head(
        "tickwire_sequence_gaps_total",
        "counter",
        "Sequence gaps reported by adapters, per instrument.",
    );
    for (i, inst) in v.ctx.registry().iter().enumerate() {
        w.sample(
            "tickwire_sequence_gaps_total",
            &[("symbol", &inst.key)],
            v.market.gaps(i) as f64,
        );
    }

    w.one(
        "tickwire_ring_capacity",
        "gauge",
        "Slots per pipeline ring.",
        v.ring_capacity as f64,
    );
    w.head(
        "tickwire_ring_occupancy_max",
        "gauge",
        "Highest ring occupancy seen by the consumer in the current stats interval.",
    );
    for (ring, g) in [
        ("feed_kernel", &t.kernel.in_ring_max),
        ("kernel_signal", &t.signal.in_ring_max),
        ("kernel_fanout", &t.fanout.in_ring_max),
    ] {
        w.sample(
            "tickwire_ring_occupancy_max",
            &[("ring", ring)],
            g.get() as f64,
        );
    }
    w.head(
        "tickwire_ring_full_total",
        "counter",
        "Times a producer found its output ring full, per producing stage.",
    );
    for (stage, c) in [
        ("feed", &t.feed.ring_full),
        ("kernel", &t.kernel.ring_full),
        ("signal", &t.signal.ring_full),
    ] {
        w.sample(
            "tickwire_ring_full_total",
            &[("stage", stage)],
            c.get() as f64,
        );
    }
    w.head(
        "tickwire_drops_total",
        "counter",
        "Items dropped on a full ring (drop policy), per producing stage.",
    );
    for (stage, c) in [
        ("feed", &t.feed.drops),
        ("kernel", &t.kernel.drops),
        ("signal", &t.signal.drops),
    ] {
        w.sample("tickwire_drops_total", &[("stage", stage)], c.get() as f64);
    }
    w.head(
        "tickwire_fanout_events_total",
        "counter",
        "Events consumed by the fan-out, per input ring.",
    );
    w.sample(
        "tickwire_fanout_events_total",
        &[("ring", "market")],
        t.fanout.market_events.get() as f64,
    );
    w.sample(
        "tickwire_fanout_events_total",
        &[("ring", "signal")],
        t.fanout.signal_events.get() as f64,
    );

    let c = v.counters;
    w.one(
        "tickwire_subscribers",
        "gauge",
        "Connected WebSocket subscribers.",
        v.subscribers as f64,
    );
    w.one(
        "tickwire_connections",
        "gauge",
        "Open TCP connections (subscribers and HTTP).",
        v.connections as f64,
    );
    w.one(
        "tickwire_subscriptions",
        "gauge",
        "(channel, symbol) subscriptions over all subscribers.",
        v.subscriptions as f64,
    );
    w.one(
        "tickwire_subscriber_messages_total",
        "counter",
        "Messages written to subscribers.",
        c.sent as f64,
    );
    w.one(
        "tickwire_subscriber_conflated_total",
        "counter",
        "Latest-value messages replaced by a newer one before being sent.",
        c.conflated as f64,
    );
    w.one(
        "tickwire_subscriber_requests_total",
        "counter",
        "Requests received from subscribers.",
        c.requests as f64,
    );
    w.one(
        "tickwire_subscriber_errors_total",
        "counter",
        "Error replies sent to subscribers.",
        c.errors as f64,
    );
    w.head(
        "tickwire_subscriber_closes_total",
        "counter",
        "Subscriber connections ended, by reason.",
    );
    for r in CloseReason::ALL {
        w.sample(
            "tickwire_subscriber_closes_total",
            &[("reason", r.as_str())],
            c.closes[r.index()] as f64,
        );
    }
    w.head(
        "tickwire_connections_refused_total",
        "counter",
        "Connections or upgrades refused, by reason.",
    );
    for (i, r) in RefuseReason::ALL.iter().enumerate() {
        w.sample(
            "tickwire_connections_refused_total",
            &[("reason", r.as_str())],
            c.refused[i] as f64,
        );
    }
    w.head(
        "tickwire_http_responses_total",
        "counter",
        "HTTP responses sent, by status code.",
    );
    for (code, n) in &c.http_responses {
        w.sample(
            "tickwire_http_responses_total",
            &[("code", &code.to_string())],
            *n as f64,
        );
    }

    w.head(
        "tickwire_stage_latency_seconds",
        "summary",
        "Time spent per item in each pipeline stage, since start.",
    );
    w.summary(
        "tickwire_stage_latency_seconds",
        "stage",
        &[
            ("decode", &t.decode),
            ("kernel", &t.kernel_lat),
            ("signal", &t.signal_lat),
            ("fanout", &t.fanout_lat),
        ],
    );
    w.head(
        "tickwire_e2e_latency_seconds",
        "summary",
        "Receive time to fan-out (path=fanout) and to a subscriber's socket (path=subscriber), since start.",
    );
    w.summary(
        "tickwire_e2e_latency_seconds",
        "path",
        &[("fanout", &t.e2e), ("subscriber", &t.deliver)],
    );
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut s = String::new();
        escape_label(&mut s, "a\"b\\c\nd");
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
