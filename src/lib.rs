//! # tickwire
//!
//! A low-latency, single-process market-data engine.
//!
//! ```text
//!  source (simulator, venue WebSocket, capture)
//!     │ frames
//!  feed thread ── decode (simd-json tape, reused buffers) → Tick (64 B)
//!     │ rtrb SPSC ring
//!  kernel thread ── bars per window (UTC-aligned), indicators
//!     │ rtrb ring ───────────────┐ rtrb ring
//!  signal thread                 │
//!     │ rtrb ring                ▼
//!     └──────────────────▶ fan-out thread ── sinks, subscribers, metrics
//! ```
//!
//! ## Guarantees
//! - Stages are plain structs ([`feed::FeedStage`], [`kernel::IndicatorKernel`],
//!   [`signal::SignalStage`], [`fanout::FanoutStage`]) with a `step` method;
//!   everything they need is allocated in `new`. Only [`pipeline`] builds
//!   rings, spawns threads and pins cores.
//! - Rings carry `Copy` values of fixed size ([`tick::Tick`] is 64 bytes,
//!   [`event::Event`] at most 192). After warm-up the hot path (decode →
//!   kernel → signal → ring pushes) does not allocate, lock, log or format;
//!   `tests/no_alloc.rs` proves it with a counting allocator.
//! - A full ring is backpressure or a counted drop ([`config::FullPolicy`]),
//!   never silent.
//! - Prices and sizes are exact scaled integers ([`decimal`]); floats appear
//!   only in derived values (VWAP, indicators).
//! - Text and JSON are produced only in the fan-out thread and tools
//!   ([`json`]).
//!
//! ## What allocates when
//! - Start-up: registry, rings, histograms, parse buffers, per-instrument state.
//! - Steady state: nothing on the hot path. The fan-out's sinks format text.
//! - A frame larger than any seen before grows the feed's scratch buffers
//!   once (they keep the larger capacity).

#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[deny(unsafe_code)]
pub mod bench;
#[deny(unsafe_code)]
pub mod clock;
#[deny(unsafe_code)]
pub mod config;
#[deny(unsafe_code)]
pub mod decimal;
#[deny(unsafe_code)]
pub mod engine;
#[deny(unsafe_code)]
pub mod event;
#[deny(unsafe_code)]
pub mod fanout;
#[deny(unsafe_code)]
pub mod feed;
#[deny(unsafe_code)]
pub mod feedsim;
#[deny(unsafe_code)]
pub mod instruments;
pub mod journal;
#[deny(unsafe_code)]
pub mod json;
#[deny(unsafe_code)]
pub mod kernel;
#[deny(unsafe_code)]
pub mod pipeline;
#[deny(unsafe_code)]
pub mod replay;
#[deny(unsafe_code)]
pub mod report;
#[deny(unsafe_code)]
pub mod signal;
#[deny(unsafe_code)]
pub mod telemetry;
#[deny(unsafe_code)]
pub mod tick;
#[deny(unsafe_code)]
pub mod wait;
