//! REST endpoints (JSON through [`crate::json`]) and `/metrics`.
//!
//! | path | answer |
//! |---|---|
//! | `GET /health` | 200 when data flowed within `server.health_stale_secs`, else 503 |
//! | `GET /metrics` | Prometheus text format 0.0.4 ([`super::metrics`]) |
//! | `GET /api/v1/status` | uptime, version, rates, counters, server figures |
//! | `GET /api/v1/symbols` | configured instruments |
//! | `GET /api/v1/latest/{symbol}` | latest trade, quote, anomaly, last bar per window |
//! | `GET /api/v1/bars/{symbol}?window=1m&limit=N` | recent final bars, oldest first |
//! | `GET /api/v1/performance` | per-stage latency percentiles |

use std::time::Duration;

use super::MarketState;
use super::http::{self, Response};
use super::protocol::{ChannelTable, Scope, error_code};
use super::server::{FeedInfo, ServerCounters};
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::event::Event;
use crate::json::{self, EngineStats, JsonContext, Obj};
use crate::telemetry::{Percentiles, Telemetry};

/// Default `limit` of `/api/v1/bars`.
pub const DEFAULT_BAR_LIMIT: usize = 100;

/// What the endpoints read: borrowed from the server and the fan-out.
#[derive(Debug)]
pub struct View<'a> {
    /// Latest values and bars.
    pub market: &'a MarketState,
    /// Serializer context (registry).
    pub ctx: &'a JsonContext,
    /// Engine counters and histograms.
    pub tel: &'a Telemetry,
    /// Channel table.
    pub channels: &'a ChannelTable,
    /// Server counters.
    pub counters: &'a ServerCounters,
    /// The last `stats` period.
    pub stats: &'a EngineStats,
    /// Feeds.
    pub feeds: &'a [FeedInfo],
    /// `[server]`.
    pub cfg: &'a ServerConfig,
    /// Engine clock.
    pub clock: &'a Clock,
    /// Time since the server started.
    pub uptime: Duration,
    /// Start time, ns since the Unix epoch.
    pub started_ns: i64,
    /// Connected subscribers.
    pub subscribers: usize,
    /// Open connections.
    pub connections: usize,
    /// Subscriptions over all clients.
    pub subscriptions: usize,
    /// Bar window names, kernel order.
    pub window_names: &'a [String],
    /// Slots per pipeline ring.
    pub ring_capacity: usize,
    /// The tick journal directory, when journaling.
    pub journal_dir: Option<&'a std::path::Path>,
}

/// Whether `path` is one of the REST paths (for 404 vs 405).
pub fn is_api_path(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/status"
            | "/api/v1/symbols"
            | "/api/v1/performance"
            | "/api/v1/movers"
            | "/api/v1/sectors"
            | "/api/v1/indices"
            | "/api/v1/signals"
            | "/api/v1/portfolio"
    ) || path
        .strip_prefix("/api/v1/latest/")
        .or_else(|| path.strip_prefix("/api/v1/bars/"))
        .or_else(|| path.strip_prefix("/api/v1/indicators/"))
        .or_else(|| path.strip_prefix("/api/v1/ticks/"))
        .is_some_and(|s| !s.is_empty() && !s.contains('/'))
}

/// Answers a GET (or HEAD) on a known non-WebSocket path.
pub fn handle(v: &View<'_>, req: &http::Request) -> Response {
    let path = req.path.as_str();
    match path {
        "/health" => health(v),
        "/metrics" => {
            let mut body = Vec::with_capacity(16 * 1024);
            super::metrics::render(&mut body, v);
            Response {
                status: 200,
                content_type: http::PROMETHEUS,
                body,
                headers: Vec::new(),
                close: false,
            }
        }
        "/api/v1/status" => status(v),
        "/api/v1/symbols" => symbols(v),
        "/api/v1/performance" => performance(v),
        "/api/v1/movers" => events(v, "movers", v.market.movers().iter()),
        "/api/v1/sectors" => events(v, "sectors", v.market.sectors()),
        "/api/v1/indices" => events(v, "indices", v.market.indices()),
        "/api/v1/portfolio" => events(v, "portfolio", v.market.portfolio().into_iter()),
        "/api/v1/signals" => signals(v, &req.query),
        _ => {
            if let Some(sym) = path.strip_prefix("/api/v1/latest/") {
                latest(v, sym)
            } else if let Some(sym) = path.strip_prefix("/api/v1/bars/") {
                bars(v, sym, &req.query)
            } else if let Some(sym) = path.strip_prefix("/api/v1/indicators/") {
                indicators(v, sym, &req.query)
            } else if let Some(sym) = path.strip_prefix("/api/v1/ticks/") {
                ticks(v, sym, &req.query)
            } else {
                Response::error(404, error_code::NOT_FOUND, "no such path")
            }
        }
    }
}

fn body(f: impl FnOnce(&mut Obj<'_>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    json::object(&mut out, f);
    out
}

fn ring_stats(o: &mut Obj<'_>, v: &View<'_>) {
    o.obj("rings", |o| {
        o.uint("capacity", v.ring_capacity as u64);
        o.uint("feed_to_kernel_max", v.tel.kernel.in_ring_max.get());
        o.uint("kernel_to_signal_max", v.tel.signal.in_ring_max.get());
        o.uint("kernel_to_fanout_max", v.tel.fanout.in_ring_max.get());
        o.uint(
            "ring_full",
            v.tel.feed.ring_full.get()
                + v.tel.kernel.ring_full.get()
                + v.tel.signal.ring_full.get(),
        );
        o.uint(
            "drops",
            v.tel.feed.drops.get() + v.tel.kernel.drops.get() + v.tel.signal.drops.get(),
        );
    });
}

fn feeds(o: &mut Obj<'_>, v: &View<'_>) {
    let f = &v.tel.feed;
    o.arr("feeds", |a| {
        for info in v.feeds {
            a.obj(|o| {
                o.str("name", &info.name);
                o.str("venue", &info.venue);
                o.uint("frames", f.frames.get());
                o.uint("ticks", f.ticks.get());
                o.uint("decode_errors", f.decode_errors.get());
                o.uint("decimal_errors", f.decimal_errors.get());
                o.uint("unknown_symbols", f.unknown_symbols.get());
            });
        }
    });
}

/// `/health`: 200 `ok` when market data reached the fan-out within
/// `server.health_stale_secs`; otherwise 503 with `no_data` or `stale`.
fn health(v: &View<'_>) -> Response {
    let last = v.market.last_data_ns();
    let age_ns = (v.clock.now_ns() - last).max(0);
    let stale_ns = (v.cfg.health_stale_secs as i64).saturating_mul(1_000_000_000);
    let status = if last == 0 {
        "no_data"
    } else if age_ns > stale_ns {
        "stale"
    } else {
        "ok"
    };
    let b = body(|o| {
        o.str("type", "health");
        o.str("status", status);
        o.float("uptime_s", v.uptime.as_secs_f64());
        if last > 0 {
            o.uint("last_data_age_ms", (age_ns / 1_000_000) as u64);
        }
        feeds(o, v);
        ring_stats(o, v);
        o.str("journal", "disabled");
        o.uint("subscribers", v.subscribers as u64);
    });
    Response::json(if status == "ok" { 200 } else { 503 }, b)
}

fn status(v: &View<'_>) -> Response {
    let t = v.tel;
    let s = v.stats;
    Response::json(
        200,
        body(|o| {
            o.str("type", "status");
            o.str("version", env!("CARGO_PKG_VERSION"));
            o.float("uptime_s", v.uptime.as_secs_f64());
            o.int("started_at", v.started_ns);
            o.float("msgs_per_sec", s.msgs_per_sec);
            o.float("events_per_sec", s.events_per_sec);
            o.float("sent_per_sec", s.sent_per_sec);
            o.uint("instruments", v.ctx.registry().len() as u64);
            o.obj("counters", |o| {
                o.uint("frames", t.feed.frames.get());
                o.uint("ticks", t.feed.ticks.get());
                o.uint("decode_errors", t.feed.decode_errors.get());
                o.uint("decimal_errors", t.feed.decimal_errors.get());
                o.uint("unknown_symbols", t.feed.unknown_symbols.get());
                o.uint("control_messages", t.feed.control.get());
                o.uint("kernel_events", t.kernel.events.get());
                o.uint("signal_events", t.signal.out.get());
                o.uint(
                    "fanout_events",
                    t.fanout.market_events.get() + t.fanout.signal_events.get(),
                );
                o.uint("ring_full", s.ring_full);
                o.uint("drops", s.drops);
            });
            feeds(o, v);
            ring_stats(o, v);
            o.obj("server", |o| {
                let c = v.counters;
                o.uint("subscribers", v.subscribers as u64);
                o.uint("connections", v.connections as u64);
                o.uint("subscriptions", v.subscriptions as u64);
                o.uint("messages_sent", c.sent);
                o.uint("messages_conflated", c.conflated);
                o.uint("requests", c.requests);
                o.uint("errors", c.errors);
                o.obj("closes", |o| {
                    for r in super::ws::CloseReason::ALL {
                        o.uint(r.as_str(), c.closes[r.index()]);
                    }
                });
                o.obj("refused", |o| {
                    for (i, r) in super::server::RefuseReason::ALL.iter().enumerate() {
                        o.uint(r.as_str(), c.refused[i]);
                    }
                });
            });
            o.arr("channels", |a| {
                for c in v.channels.iter() {
                    a.obj(|o| {
                        o.str("name", &c.name);
                        o.str("delivery", c.def.delivery.as_str());
                        o.str(
                            "scope",
                            if c.def.scope == Scope::Global {
                                "global"
                            } else {
                                "symbol"
                            },
                        );
                    });
                }
            });
            o.str("journal", "disabled");
        }),
    )
}

fn symbols(v: &View<'_>) -> Response {
    Response::json(
        200,
        body(|o| {
            o.str("type", "symbols");
            o.arr("symbols", |a| {
                for i in v.ctx.registry().iter() {
                    a.obj(|o| {
                        o.str("symbol", &i.key);
                        o.str("venue", &i.venue);
                        o.uint("price_precision", u64::from(i.price_precision));
                        o.uint("size_precision", u64::from(i.size_precision));
                        if let Some(s) = &i.sector {
                            o.str("sector", s);
                        }
                    });
                }
            });
        }),
    )
}

fn unknown_symbol(sym: &str) -> Response {
    Response::error(
        404,
        error_code::UNKNOWN_SYMBOL,
        &format!(
            "symbol '{}' is not configured; GET /api/v1/symbols lists them (VENUE:SYMBOL)",
            sym.chars().take(64).collect::<String>()
        ),
    )
}

fn latest(v: &View<'_>, sym: &str) -> Response {
    let Some(id) = v.ctx.registry().lookup_key(sym) else {
        return unknown_symbol(sym);
    };
    let key = v.ctx.registry().get(id).map_or(sym, |i| i.key.as_str());
    let i = id.0 as usize;
    let l = v.market.latest(i).unwrap_or_default();
    Response::json(
        200,
        body(|o| {
            o.str("type", "latest");
            o.str("symbol", key);
            let mut buf = Vec::new();
            for (name, t) in [
                ("trade", l.trade),
                ("quote", l.quote),
                ("anomaly", l.anomaly),
            ] {
                if let Some(t) = t {
                    buf.clear();
                    json::write_tick(&mut buf, v.ctx, &t);
                    o.raw(name, &buf);
                }
            }
            o.obj("bars", |o| {
                for (w, name) in v.window_names.iter().enumerate() {
                    if let Some(b) = v.market.last_bar(i, w) {
                        buf.clear();
                        json::write_bar(&mut buf, v.ctx, b);
                        o.raw(name, &buf);
                    }
                }
            });
        }),
    )
}

fn bars(v: &View<'_>, sym: &str, query: &str) -> Response {
    let Some(id) = v.ctx.registry().lookup_key(sym) else {
        return unknown_symbol(sym);
    };
    let key = v.ctx.registry().get(id).map_or(sym, |i| i.key.as_str());
    let window = http::query_param(query, "window");
    let w = match window.as_deref() {
        None => 0,
        Some(name) => match v.window_names.iter().position(|n| n == name) {
            Some(w) => w,
            None => {
                return Response::error(
                    400,
                    error_code::UNKNOWN_WINDOW,
                    &format!(
                        "window '{}' is not configured; known: {}",
                        name.chars().take(16).collect::<String>(),
                        v.window_names.join(", ")
                    ),
                );
            }
        },
    };
    let max = v.cfg.bar_history;
    let limit = match http::query_param(query, "limit") {
        None => DEFAULT_BAR_LIMIT.min(max),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Response::error(
                    400,
                    error_code::BAD_REQUEST,
                    &format!("limit must be an integer from 1 to {max} (server.bar_history)"),
                );
            }
        },
    };
    let Some(wname) = v.window_names.get(w) else {
        return Response::error(400, error_code::UNKNOWN_WINDOW, "no bar windows configured");
    };
    let i = id.0 as usize;
    let n = v.market.bars(i, w).count();
    Response::json(
        200,
        body(|o| {
            o.str("type", "bars");
            o.str("symbol", key);
            o.str("window", wname);
            o.arr("bars", |a| {
                for b in v.market.bars(i, w).skip(n.saturating_sub(limit)) {
                    a.bar(v.ctx, b);
                }
            });
        }),
    )
}

/// `{"type":NAME,"items":[event, ...]}` with each event in the EVENTS.md
/// schema (empty list before the first one: not an error).
fn events<'e>(v: &View<'_>, name: &str, evs: impl Iterator<Item = &'e Event>) -> Response {
    Response::json(
        200,
        body(|o| {
            o.str("type", name);
            o.arr("items", |a| {
                for e in evs {
                    a.event(v.ctx, e);
                }
            });
        }),
    )
}

/// Recent decisions (signals, rejected signals, orders, fills), newest
/// last; `?limit=N` (1..=server.bar_history, default 100).
fn signals(v: &View<'_>, query: &str) -> Response {
    let max = v.cfg.bar_history;
    let limit = match http::query_param(query, "limit") {
        None => 100.min(max),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Response::error(
                    400,
                    error_code::BAD_REQUEST,
                    &format!("limit must be an integer from 1 to {max} (server.bar_history)"),
                );
            }
        },
    };
    let n = v.market.decisions().count();
    events(
        v,
        "signals",
        v.market.decisions().skip(n.saturating_sub(limit)),
    )
}

/// Latest indicator snapshot of a symbol for `?window=` (default: the
/// first configured window).
fn indicators(v: &View<'_>, sym: &str, query: &str) -> Response {
    let Some(id) = v.ctx.registry().lookup_key(sym) else {
        return unknown_symbol(sym);
    };
    let key = v.ctx.registry().get(id).map_or(sym, |i| i.key.as_str());
    let w = match http::query_param(query, "window").as_deref() {
        None => 0,
        Some(name) => match v.window_names.iter().position(|n| n == name) {
            Some(w) => w,
            None => {
                return Response::error(
                    400,
                    error_code::UNKNOWN_WINDOW,
                    &format!(
                        "window '{}' is not configured; known: {}",
                        name.chars().take(16).collect::<String>(),
                        v.window_names.join(", ")
                    ),
                );
            }
        },
    };
    let snap = v.market.indicators(id.0 as usize, w);
    Response::json(
        200,
        body(|o| {
            o.str("type", "indicators_latest");
            o.str("symbol", key);
            if let Some(name) = v.window_names.get(w) {
                o.str("window", name);
            }
            if let Some(e) = snap {
                let mut buf = Vec::new();
                json::write_event(&mut buf, v.ctx, e);
                o.raw("indicators", &buf);
            }
        }),
    )
}

/// Most ticks `/api/v1/ticks` returns.
const MAX_TICK_LIMIT: usize = 10_000;
/// Most journal records one `/api/v1/ticks` request scans (bounds the time
/// the fan-out thread spends on it: ≈ 10 ns per record).
const MAX_TICK_SCAN: u64 = 2_000_000;

/// Recent ticks of a symbol from the tick journal, oldest first:
/// `?limit=N` (default 100, at most 10,000), `&from=&to=` (event time, ns
/// since the epoch; `[from, to)`). Scans back from the journal's end (at
/// most 2,000,000 records per request), so it answers "recent" queries.
fn ticks(v: &View<'_>, sym: &str, query: &str) -> Response {
    let Some(id) = v.ctx.registry().lookup_key(sym) else {
        return unknown_symbol(sym);
    };
    let Some(dir) = v.journal_dir else {
        return Response::error(
            404,
            error_code::NOT_FOUND,
            "the engine is not journaling ticks (journal.enabled = false)",
        );
    };
    let num = |k: &str| http::query_param(query, k).map(|s| s.parse::<i64>());
    let limit = match num("limit") {
        None => 100,
        Some(Ok(n)) if (1..=MAX_TICK_LIMIT as i64).contains(&n) => n as usize,
        _ => {
            return Response::error(
                400,
                error_code::BAD_REQUEST,
                &format!("limit must be an integer from 1 to {MAX_TICK_LIMIT}"),
            );
        }
    };
    let (from, to) = match (num("from"), num("to")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            return Response::error(
                400,
                error_code::BAD_REQUEST,
                "from/to must be integers (ns since the Unix epoch)",
            );
        }
        (f, t) => (
            f.and_then(Result::ok).unwrap_or(i64::MIN),
            t.and_then(Result::ok).unwrap_or(i64::MAX),
        ),
    };
    let mut reader = match crate::journal::ticks::TickReader::open(dir) {
        Ok(r) => r,
        Err(e) => return Response::error(503, error_code::NOT_FOUND, &format!("journal: {e}")),
    };
    let (first, next) = match crate::journal::inspect(dir) {
        Ok(r) => (r.first_index.unwrap_or(0), r.next_index.unwrap_or(0)),
        Err(e) => return Response::error(503, error_code::NOT_FOUND, &format!("journal: {e}")),
    };
    let start = next.saturating_sub(MAX_TICK_SCAN).max(first);
    if reader.seek(start).is_err() {
        return Response::error(503, error_code::NOT_FOUND, "journal: cannot seek");
    }
    // The journal's instrument table maps to the engine's by name.
    let jid = reader.registry.lookup_key(sym);
    let mut found: std::collections::VecDeque<crate::tick::Tick> =
        std::collections::VecDeque::new();
    let mut scanned = 0u64;
    while scanned < MAX_TICK_SCAN {
        match reader.next_tick() {
            Ok(Some((_, t))) => {
                scanned += 1;
                if Some(t.instrument) == jid && (from..to).contains(&t.ts_event_ns) {
                    if found.len() == limit {
                        found.pop_front();
                    }
                    let mut t = t;
                    t.instrument = id;
                    found.push_back(t);
                }
            }
            Ok(None) => break,
            Err(e) => return Response::error(503, error_code::NOT_FOUND, &format!("journal: {e}")),
        }
    }
    let key = v.ctx.registry().get(id).map_or(sym, |i| i.key.as_str());
    Response::json(
        200,
        body(|o| {
            o.str("type", "ticks");
            o.str("symbol", key);
            o.uint("scanned", scanned);
            o.arr("ticks", |a| {
                let mut buf = Vec::new();
                for t in &found {
                    buf.clear();
                    json::write_tick(&mut buf, v.ctx, t);
                    a.raw(&buf);
                }
            });
        }),
    )
}

fn performance(v: &View<'_>) -> Response {
    Response::json(
        200,
        body(|o| {
            o.str("type", "performance");
            o.str("unit", "ns");
            o.obj("since_start", |o| {
                for st in v.tel.stages() {
                    let p = st.with_cumulative(Percentiles::of);
                    o.percentiles(st.name, &p);
                }
            });
            o.uint("period_ms", v.cfg.stats_interval_ms);
            o.obj("last_period", |o| {
                for (name, p) in &v.stats.stages {
                    o.percentiles(name, p);
                }
            });
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths() {
        assert!(is_api_path("/api/v1/status"));
        assert!(is_api_path("/api/v1/latest/SIM:BTCUSDT"));
        assert!(is_api_path("/api/v1/bars/X"));
        assert!(!is_api_path("/api/v1/bars/"));
        assert!(!is_api_path("/api/v1/bars/a/b"));
        assert!(!is_api_path("/api/v2/status"));
        assert!(!is_api_path("/"));
    }
}
