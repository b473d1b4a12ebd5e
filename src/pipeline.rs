//! The only place that builds rings, spawns threads and pins cores.
//!
//! ```text
//!  feed thread ──ticks──▶ kernel thread ──events──▶ signal thread
//!                                  │                       │
//!                                  └──events──▶ fan-out ◀──┘ decisions
//! ```
//!
//! Every edge is an rtrb SPSC ring of `Copy` values allocated here. Each
//! thread pops in batches (`read_chunk`), calls its stage's `step`, records
//! the step's latency in its own histogram and pushes results downstream.
//! A full ring is either backpressure (wait, counted as a ring-full event)
//! or a counted drop, per [`FullPolicy`]. Shutdown: the feed thread stops
//! reading its source and drops its producer; each consumer drains its ring
//! and, seeing the producer abandoned, drops its own producers in turn, so
//! every ring drains in order and nothing in flight is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rtrb::{Consumer, Producer, PushError, RingBuffer};

use crate::clock::Clock;
use crate::config::{FaultsConfig, FullPolicy, JournalOnError, PipelineConfig, ThreadConfig};
use crate::event::Event;
use crate::fanout::{FanoutStage, RingState};
use crate::feed::{FeedStage, FeedStep};
use crate::journal::ticks::TickJournal;
use crate::kernel::IndicatorKernel;
use crate::signal::SignalStage;
use crate::telemetry::{Counter, Gauge, StageRecorder, Telemetry};
use crate::tick::Tick;
use crate::wait::Waiter;

/// Most items a consumer takes from a ring per batch.
pub const BATCH: usize = 256;

/// The four stages, constructed (all allocation done) and ready to run.
#[derive(Debug)]
pub struct Stages {
    /// Feed source + adapter.
    pub feed: FeedStage,
    /// Tick journal the feed thread appends to before pushing (None = off).
    pub journal: Option<TickJournal>,
    /// What to do when a journal append fails.
    pub journal_on_error: JournalOnError,
    /// Bars and indicators.
    pub kernel: IndicatorKernel,
    /// Strategies, risk, portfolio.
    pub signal: SignalStage,
    /// Serving and sinks.
    pub fanout: FanoutStage,
}

/// Running pipeline threads.
#[derive(Debug)]
pub struct Pipeline {
    threads: Vec<(String, JoinHandle<()>)>,
}

/// What the stages looked like when the pipeline finished.
#[derive(Debug)]
pub struct Finished {
    /// Kernel stage (bars, stats).
    pub kernel: Option<IndicatorKernel>,
    /// Signal stage.
    pub signal: Option<SignalStage>,
    /// Fan-out stage.
    pub fanout: Option<FanoutStage>,
}

fn pin(name: &str, tc: &ThreadConfig, cores: &[core_affinity::CoreId]) {
    let Some(want) = tc.core else { return };
    match cores.iter().find(|c| c.id == want) {
        Some(c) => {
            if !core_affinity::set_for_current(*c) {
                tracing::warn!(
                    thread = name,
                    core = want,
                    "could not pin; running unpinned"
                );
            }
        }
        None => tracing::warn!(
            thread = name,
            core = want,
            available = cores.len(),
            "core does not exist on this machine; running unpinned"
        ),
    }
}

/// CPU time the calling thread has used, ns (Linux `schedstat`; 0 where
/// unavailable).
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Appends one frame's ticks to the journal and commits them (publishing
/// to tail readers). Returns `false` on failure (counted, logged once).
#[inline]
fn journal_ticks(
    j: &mut TickJournal,
    ticks: &[Tick],
    c: &crate::telemetry::FeedCounters,
    rec: &mut StageRecorder,
    clock: &Clock,
) -> bool {
    let t0 = clock.now_ns();
    for t in ticks {
        if let Err(e) = j.append(t) {
            journal_failed(e, c);
            return false;
        }
    }
    j.commit();
    c.journal_records.add(ticks.len() as u64);
    rec.record(clock.now_ns() - t0);
    true
}

#[cold]
#[inline(never)]
fn journal_failed(e: crate::journal::AppendError, c: &crate::telemetry::FeedCounters) {
    c.journal_errors.inc();
    tracing::error!(error = ?e, "journal append failed");
}

/// Pushes with the configured full-ring policy. Returns `false` when the
/// consumer is gone (shutdown), `true` otherwise (pushed or counted drop).
#[inline]
fn push<T: Copy>(
    p: &mut Producer<T>,
    v: T,
    policy: FullPolicy,
    waiter: &mut Waiter,
    ring_full: &Counter,
    drops: &Counter,
) -> bool {
    match p.push(v) {
        Ok(()) => true,
        Err(PushError::Full(v)) => push_slow(p, v, policy, waiter, ring_full, drops),
    }
}

#[inline(never)]
#[cold]
fn push_slow<T: Copy>(
    p: &mut Producer<T>,
    v: T,
    policy: FullPolicy,
    waiter: &mut Waiter,
    ring_full: &Counter,
    drops: &Counter,
) -> bool {
    ring_full.inc();
    if policy == FullPolicy::Drop {
        drops.inc();
        return true;
    }
    waiter.reset();
    loop {
        if p.is_abandoned() {
            return false;
        }
        waiter.idle();
        if p.push(v).is_ok() {
            waiter.reset();
            return true;
        }
    }
}

/// Pops up to [`BATCH`] items and calls `f` on each. Returns the number
/// taken, or `None` when the ring is empty and its producer is gone.
#[inline]
fn drain_batch<T: Copy>(
    c: &mut Consumer<T>,
    max_occ: &Gauge,
    mut f: impl FnMut(&T),
) -> Option<usize> {
    let n = c.slots();
    if n == 0 {
        // Check abandonment first, then re-read: a producer that pushed and
        // then dropped is seen with its items.
        if c.is_abandoned() && c.slots() == 0 {
            return None;
        }
        return Some(0);
    }
    if n as u64 > max_occ.get() {
        max_occ.set(n as u64);
    }
    let take = n.min(BATCH);
    match c.read_chunk(take) {
        Ok(chunk) => {
            let (a, b) = chunk.as_slices();
            for v in a.iter().chain(b.iter()) {
                f(v);
            }
            chunk.commit_all();
            Some(take)
        }
        Err(_) => Some(0),
    }
}

impl Pipeline {
    /// Builds the rings, spawns and pins the four threads, and starts them.
    /// `stop` ends ingestion; the rest drains by itself.
    ///
    /// # Errors
    /// A thread could not be spawned.
    pub fn spawn(
        stages: Stages,
        cfg: &PipelineConfig,
        tel: Arc<Telemetry>,
        clock: Clock,
        stop: Arc<AtomicBool>,
        faults: &FaultsConfig,
    ) -> std::io::Result<(Self, std::sync::mpsc::Receiver<Finished>)> {
        // Read the core list once, before any thread is pinned (pinning
        // changes what get_core_ids returns for threads spawned later).
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let cap = cfg.ring_capacity.next_power_of_two();
        let (tick_tx, tick_rx) = RingBuffer::<Tick>::new(cap);
        let (k2s_tx, k2s_rx) = RingBuffer::<Event>::new(cap);
        let (k2f_tx, k2f_rx) = RingBuffer::<Event>::new(cap);
        let (s2f_tx, s2f_rx) = RingBuffer::<Event>::new(cap);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Finished>();
        let Stages {
            mut feed,
            mut journal,
            journal_on_error,
            mut kernel,
            mut signal,
            mut fanout,
        } = stages;
        let policy = cfg.full_policy;
        let mut threads = Vec::new();

        // Feed thread.
        {
            let tel = tel.clone();
            let tc = cfg.threads.feed.clone();
            let cores = cores.clone();
            let pcfg = cfg.clone();
            let mut tx = tick_tx;
            let faults = faults.clone();
            let h = std::thread::Builder::new()
                .name("tw-feed".into())
                .spawn(move || {
                    pin("feed", &tc, &cores);
                    let mut stall_pending = faults.feed_stall_ms > 0;
                    let mut waiter = Waiter::new(tc.wait, &pcfg);
                    let mut push_wait = Waiter::new(tc.wait, &pcfg);
                    let mut rec = StageRecorder::new(tel.decode.clone());
                    let mut jrec = StageRecorder::new(tel.journal.clone());
                    let c = &tel.feed;
                    'run: while !stop.load(Ordering::Relaxed) {
                        // Deliberate stall between frames (harness validation).
                        if stall_pending && c.frames.get() >= faults.feed_stall_after_frames {
                            stall_pending = false;
                            std::thread::sleep(std::time::Duration::from_millis(
                                faults.feed_stall_ms,
                            ));
                        }
                        match feed.step(c, &mut rec) {
                            FeedStep::Ticks(n) => {
                                waiter.reset();
                                if n > 0
                                    && let Some(j) = journal.as_mut()
                                    && !journal_ticks(j, feed.ticks(), c, &mut jrec, &clock)
                                {
                                    journal = None;
                                    if journal_on_error == JournalOnError::StopIngest {
                                        tracing::error!("journal failed: ingest stopped (journal.on_error = \"stop_ingest\"); subscribers are still served");
                                        break 'run;
                                    }
                                    tracing::error!("journal failed: journaling disabled, ingest continues (journal.on_error = \"continue\")");
                                }
                                for t in feed.ticks() {
                                    if let Some(ctr) =
                                        tel.per_instrument.get(t.instrument.0 as usize)
                                    {
                                        ctr.inc();
                                    }
                                    if !push(
                                        &mut tx,
                                        *t,
                                        policy,
                                        &mut push_wait,
                                        &c.ring_full,
                                        &c.drops,
                                    ) {
                                        break 'run;
                                    }
                                }
                            }
                            FeedStep::Idle => {
                                if waiter.idle() {
                                    rec.publish();
                                }
                            }
                            FeedStep::Done => break,
                        }
                    }
                    rec.publish_blocking();
                    jrec.publish_blocking();
                    if let Some(mut j) = journal.take() {
                        j.commit();
                        if let Err(e) = j.flush() {
                            tracing::error!(error = %e, "journal flush at shutdown failed");
                        }
                    }
                    tel.thread_cpu_ns[0].set(thread_cpu_ns());
                    drop(tx);
                })?;
            threads.push(("feed".to_string(), h));
        }

        // Kernel thread.
        {
            let tel = tel.clone();
            let tc = cfg.threads.kernel.clone();
            let cores = cores.clone();
            let pcfg = cfg.clone();
            let mut rx = tick_rx;
            let mut to_sig = k2s_tx;
            let mut to_fan = k2f_tx;
            let done = done_tx.clone();
            let h = std::thread::Builder::new()
                .name("tw-kernel".into())
                .spawn(move || {
                    pin("kernel", &tc, &cores);
                    let mut waiter = Waiter::new(tc.wait, &pcfg);
                    let mut push_wait = Waiter::new(tc.wait, &pcfg);
                    let mut rec = StageRecorder::new(tel.kernel_lat.clone());
                    let c = &tel.kernel;
                    let mut out: Vec<Event> = Vec::with_capacity(64);
                    let mut downstream_alive = true;
                    // Live sources: close the bars of quiet symbols on the
                    // wall clock while idle (replays never do this).
                    let mut next_timer_ns = i64::MIN;
                    loop {
                        let got = drain_batch(&mut rx, &c.in_ring_max, |t| {
                            let t0 = clock.now_ns();
                            kernel.step_at(t, t0, &mut out);
                            rec.record(clock.now_ns() - t0);
                            c.ticks.inc();
                            for ev in out.drain(..) {
                                c.events.inc();
                                if downstream_alive {
                                    downstream_alive &= push(
                                        &mut to_sig,
                                        ev,
                                        policy,
                                        &mut push_wait,
                                        &c.ring_full,
                                        &c.drops,
                                    );
                                    downstream_alive &= push(
                                        &mut to_fan,
                                        ev,
                                        policy,
                                        &mut push_wait,
                                        &c.ring_full,
                                        &c.drops,
                                    );
                                }
                            }
                        });
                        match got {
                            None => break,
                            Some(0) => {
                                if waiter.idle() {
                                    rec.publish();
                                }
                                if kernel.wall_timer() {
                                    let now = clock.now_ns();
                                    if now >= next_timer_ns {
                                        next_timer_ns = now + kernel.timer_interval_ns();
                                        kernel.on_timer(now, &mut out);
                                        for ev in out.drain(..) {
                                            c.events.inc();
                                            if downstream_alive {
                                                downstream_alive &= push(
                                                    &mut to_sig,
                                                    ev,
                                                    policy,
                                                    &mut push_wait,
                                                    &c.ring_full,
                                                    &c.drops,
                                                );
                                                downstream_alive &= push(
                                                    &mut to_fan,
                                                    ev,
                                                    policy,
                                                    &mut push_wait,
                                                    &c.ring_full,
                                                    &c.drops,
                                                );
                                            }
                                        }
                                    }
                                }
                            }
                            Some(_) => waiter.reset(),
                        }
                    }
                    rec.publish_blocking();
                    tel.thread_cpu_ns[1].set(thread_cpu_ns());
                    c.bars.add(kernel.stats().bars);
                    drop(to_sig);
                    drop(to_fan);
                    let _ = done.send(Finished {
                        kernel: Some(kernel),
                        signal: None,
                        fanout: None,
                    });
                })?;
            threads.push(("kernel".to_string(), h));
        }

        // Signal thread.
        {
            let tel = tel.clone();
            let tc = cfg.threads.signal.clone();
            let cores = cores.clone();
            let pcfg = cfg.clone();
            let mut rx = k2s_rx;
            let mut tx = s2f_tx;
            let done = done_tx.clone();
            let h = std::thread::Builder::new()
                .name("tw-signal".into())
                .spawn(move || {
                    pin("signal", &tc, &cores);
                    let mut waiter = Waiter::new(tc.wait, &pcfg);
                    let mut push_wait = Waiter::new(tc.wait, &pcfg);
                    let mut rec = StageRecorder::new(tel.signal_lat.clone());
                    let c = &tel.signal;
                    let mut out: Vec<Event> = Vec::with_capacity(64);
                    let mut alive = true;
                    loop {
                        let got = drain_batch(&mut rx, &c.in_ring_max, |ev| {
                            let t0 = clock.now_ns();
                            signal.step(ev, &mut out);
                            rec.record(clock.now_ns() - t0);
                            c.events.inc();
                            for o in out.drain(..) {
                                c.out.inc();
                                if alive {
                                    alive &= push(
                                        &mut tx,
                                        o,
                                        policy,
                                        &mut push_wait,
                                        &c.ring_full,
                                        &c.drops,
                                    );
                                }
                            }
                        });
                        match got {
                            None => break,
                            Some(0) => {
                                if waiter.idle() {
                                    rec.publish();
                                }
                            }
                            Some(_) => waiter.reset(),
                        }
                    }
                    rec.publish_blocking();
                    tel.thread_cpu_ns[2].set(thread_cpu_ns());
                    drop(tx);
                    let _ = done.send(Finished {
                        kernel: None,
                        signal: Some(signal),
                        fanout: None,
                    });
                })?;
            threads.push(("signal".to_string(), h));
        }

        // Fan-out thread.
        {
            let tel = tel.clone();
            let tc = cfg.threads.fanout.clone();
            let cores = cores.clone();
            let pcfg = cfg.clone();
            let mut market = k2f_rx;
            let mut decisions = s2f_rx;
            let done = done_tx;
            let h = std::thread::Builder::new()
                .name("tw-fanout".into())
                .spawn(move || {
                    pin("fanout", &tc, &cores);
                    let mut waiter = Waiter::new(tc.wait, &pcfg);
                    let mut rec = StageRecorder::new(tel.fanout_lat.clone());
                    let mut e2e = StageRecorder::new(tel.e2e.clone());
                    let c = &tel.fanout;
                    let unused = Gauge::default();
                    // With a server attached, its sockets are served on this
                    // thread between batches: `poll_io` on every loop turn
                    // (busy or spinning: a pass at most every 100 µs,
                    // otherwise one clock read; right after a park: a pass
                    // now; with a backlog: no socket writes until caught up).
                    let has_io = fanout.has_io();
                    let (mut m_open, mut d_open) = (true, true);
                    while m_open || d_open {
                        let mut n = 0;
                        if m_open {
                            match drain_batch(&mut market, &c.in_ring_max, |ev| {
                                let t0 = clock.now_ns();
                                e2e.record(t0 - ev.recv_ns);
                                fanout.step(ev);
                                rec.record(clock.now_ns() - t0);
                                c.market_events.inc();
                            }) {
                                None => m_open = false,
                                Some(k) => n += k,
                            }
                        }
                        if d_open {
                            match drain_batch(&mut decisions, &unused, |ev| {
                                let t0 = clock.now_ns();
                                e2e.record(t0 - ev.recv_ns);
                                fanout.step(ev);
                                rec.record(clock.now_ns() - t0);
                                c.signal_events.inc();
                            }) {
                                None => d_open = false,
                                Some(k) => n += k,
                            }
                        }
                        let mut parked = false;
                        if n == 0 {
                            if waiter.idle() {
                                parked = true;
                                rec.publish();
                                e2e.publish();
                            }
                        } else {
                            waiter.reset();
                        }
                        if has_io {
                            fanout.poll_io(if parked {
                                RingState::Idle
                            } else if n >= BATCH {
                                RingState::Backlog
                            } else {
                                RingState::Busy
                            });
                        }
                    }
                    rec.publish_blocking();
                    e2e.publish_blocking();
                    tel.thread_cpu_ns[3].set(thread_cpu_ns());
                    fanout.finish();
                    let _ = done.send(Finished {
                        kernel: None,
                        signal: None,
                        fanout: Some(fanout),
                    });
                })?;
            threads.push(("fanout".to_string(), h));
        }
        Ok((Self { threads }, done_rx))
    }

    /// Whether every thread has ended.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|(_, h)| h.is_finished())
    }

    /// Waits for every thread.
    ///
    /// # Errors
    /// Names a thread that panicked.
    pub fn join(self) -> Result<(), String> {
        let mut err = None;
        for (name, h) in self.threads {
            if h.join().is_err() {
                err.get_or_insert(format!("pipeline thread '{name}' panicked"));
            }
        }
        err.map_or(Ok(()), Err)
    }
}

/// Collects the [`Finished`] messages of a joined pipeline into one.
pub fn collect_finished(rx: &std::sync::mpsc::Receiver<Finished>) -> Finished {
    let mut all = Finished {
        kernel: None,
        signal: None,
        fanout: None,
    };
    while let Ok(f) = rx.try_recv() {
        all.kernel = all.kernel.or(f.kernel);
        all.signal = all.signal.or(f.signal);
        all.fanout = all.fanout.or(f.fanout);
    }
    all
}

/// Runs the same stages on the calling thread, no rings: feed → kernel →
/// signal → fan-out per tick, in order. Used by golden tests (the threaded
/// pipeline must produce the same output) and by deterministic replays.
/// Stops when the source is done or `max_idle_polls` consecutive idle polls
/// pass.
pub fn run_inline(stages: Stages, tel: &Telemetry, max_idle_polls: u64) -> Stages {
    run_inline_with(stages, tel, max_idle_polls, false)
}

/// [`run_inline`]; with `flush_at_end`, every bar still open when the
/// source ends is finalized (and delivered) before the sinks finish — what
/// `tickwire replay --flush` does.
pub fn run_inline_with(
    mut stages: Stages,
    tel: &Telemetry,
    max_idle_polls: u64,
    flush_at_end: bool,
) -> Stages {
    let mut rec = StageRecorder::new(tel.decode.clone());
    let mut jrec = StageRecorder::new(tel.journal.clone());
    let clock = Clock::new();
    let mut kout = Vec::with_capacity(64);
    let mut sout = Vec::with_capacity(64);
    let mut idle = 0;
    loop {
        match stages.feed.step(&tel.feed, &mut rec) {
            FeedStep::Ticks(_) => {
                idle = 0;
                if let Some(j) = stages.journal.as_mut()
                    && !journal_ticks(j, stages.feed.ticks(), &tel.feed, &mut jrec, &clock)
                {
                    stages.journal = None;
                }
                for t in stages.feed.ticks() {
                    stages.kernel.step(t, &mut kout);
                    for ev in kout.drain(..) {
                        stages.signal.step(&ev, &mut sout);
                        stages.fanout.step(&ev);
                        for s in sout.drain(..) {
                            stages.fanout.step(&s);
                        }
                    }
                }
            }
            FeedStep::Idle => {
                idle += 1;
                if idle >= max_idle_polls {
                    break;
                }
                std::thread::yield_now();
            }
            FeedStep::Done => break,
        }
    }
    if flush_at_end {
        let recv = stages.kernel.last_recv_ns();
        stages.kernel.flush_until(i64::MAX, recv, &mut kout);
        for ev in kout.drain(..) {
            stages.signal.step(&ev, &mut sout);
            stages.fanout.step(&ev);
            for s in sout.drain(..) {
                stages.fanout.step(&s);
            }
        }
    }
    stages.fanout.finish();
    if let Some(j) = stages.journal.as_mut() {
        j.commit();
    }
    stages
}
