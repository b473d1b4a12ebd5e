//! The event journal: an audit trail of every decision the engine took.
//!
//! Signals, rejected signals (with the rule and values that rejected them),
//! orders, fills, portfolio snapshots, market open/close and anomalies are
//! appended by the fan-out thread — off the hot path — to a journal of the
//! same segment format as the tick journal, as the same JSON objects
//! subscribers receive (docs/EVENTS.md). Records are [`EVENT_RECORD_SIZE`]
//! bytes; the payload is a little-endian `u16` length followed by JSON
//! bytes. An object longer than one record is split: kind
//! [`KIND_EVENT_PART`] records carry the leading chunks and a final
//! [`KIND_EVENT`] record the rest, so nothing is ever truncated.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{AppendError, JournalConfig, JournalReader, JournalWriter, RecoveryReport, read_meta};
use crate::config::{EngineConfig, JournalSection};
use crate::event::{Event, EventBody};
use crate::fanout::EventSink;
use crate::json::{JsonContext, write_event};

/// A complete JSON object (or the last chunk of a split one).
pub const KIND_EVENT: u32 = 2;
/// A leading chunk of a JSON object continued in the next record.
pub const KIND_EVENT_PART: u32 = 3;
/// Record size of an event journal.
pub const EVENT_RECORD_SIZE: u32 = 512;
/// JSON bytes per record (record − 16-byte header − 2-byte length).
pub const EVENT_CHUNK: usize = EVENT_RECORD_SIZE as usize - 16 - 2;

/// `meta.json` of an event journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventJournalMeta {
    /// Always `"tickwire.events"`.
    pub format: String,
    /// Payload encoding.
    pub encoding: String,
}

impl Default for EventJournalMeta {
    fn default() -> Self {
        Self {
            format: "tickwire.events".into(),
            encoding: "json-v1".into(),
        }
    }
}

/// Whether an event is a decision or alert that belongs in the audit trail.
pub fn is_audited(ev: &Event) -> bool {
    match &ev.body {
        EventBody::Tick(_)
        | EventBody::Bar(_)
        | EventBody::Indicators(_)
        | EventBody::Movers(_)
        | EventBody::Sector(_)
        | EventBody::Index(_) => false,
        EventBody::Anomaly(_)
        | EventBody::Signal(_)
        | EventBody::SignalRejected(_)
        | EventBody::Order(_)
        | EventBody::Fill(_)
        | EventBody::Portfolio(_)
        | EventBody::MarketStatus(_) => true,
    }
}

/// Appends audited events as JSON to an event journal.
pub struct EventJournalSink {
    writer: JournalWriter,
    ctx: JsonContext,
    buf: Vec<u8>,
    rec: Vec<u8>,
    /// Events appended.
    pub appended: u64,
    /// Append failures (each logged once per kind of failure).
    pub errors: u64,
}

impl std::fmt::Debug for EventJournalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventJournalSink")
            .field("appended", &self.appended)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl EventJournalSink {
    /// Opens (creating or recovering) the event journal in `dir`.
    ///
    /// # Errors
    /// I/O errors, a locked journal, or a directory holding another kind of
    /// journal.
    pub fn open(
        dir: &Path,
        sec: &JournalSection,
        cfg: &EngineConfig,
    ) -> Result<(Self, RecoveryReport), String> {
        if dir.join("meta.json").exists() {
            let bytes = read_meta(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let m: EventJournalMeta = serde_json::from_slice(&bytes)
                .map_err(|_| format!("{} is not a tickwire event journal", dir.display()))?;
            if m.format != "tickwire.events" {
                return Err(format!("{} is not a tickwire event journal", dir.display()));
            }
        }
        let mut jc = JournalConfig::new(EVENT_RECORD_SIZE);
        jc.segment_bytes = sec.segment_mb.max(1) * 1024 * 1024;
        jc.prefault_ahead_bytes = 0;
        let meta = serde_json::to_vec(&EventJournalMeta::default()).map_err(|e| e.to_string())?;
        let (writer, rep) = JournalWriter::open(dir, &jc, &meta)
            .map_err(|e| format!("event journal {}: {e}", dir.display()))?;
        let ctx = JsonContext::for_config(cfg).map_err(|e| e.to_string())?;
        Ok((
            Self {
                writer,
                ctx,
                buf: Vec::with_capacity(4096),
                rec: Vec::with_capacity(EVENT_RECORD_SIZE as usize),
                appended: 0,
                errors: 0,
            },
            rep,
        ))
    }

    fn append_json(&mut self) -> Result<(), AppendError> {
        let n = self.buf.len();
        let mut off = 0;
        loop {
            let end = (off + EVENT_CHUNK).min(n);
            let last = end == n;
            self.rec.clear();
            self.rec
                .extend_from_slice(&((end - off) as u16).to_le_bytes());
            self.rec.extend_from_slice(&self.buf[off..end]);
            let kind = if last { KIND_EVENT } else { KIND_EVENT_PART };
            self.writer.append(kind, &self.rec)?;
            off = end;
            if last {
                break;
            }
        }
        self.writer.commit();
        Ok(())
    }
}

impl EventSink for EventJournalSink {
    fn on_event(&mut self, ev: &Event) {
        if !is_audited(ev) {
            return;
        }
        self.buf.clear();
        write_event(&mut self.buf, &self.ctx, ev);
        match self.append_json() {
            Ok(()) => self.appended += 1,
            Err(e) => {
                self.errors += 1;
                if self.errors == 1 || self.errors.is_power_of_two() {
                    tracing::error!(error = ?e, failures = self.errors, "event journal append failed");
                }
            }
        }
    }

    fn finish(&mut self) {
        self.writer.commit();
        if let Err(e) = self.writer.flush() {
            tracing::error!(error = %e, "event journal flush failed");
        }
    }
}

/// Reads the JSON objects of an event journal, in order.
#[derive(Debug)]
pub struct EventReader {
    reader: JournalReader,
    pending: Vec<u8>,
}

impl EventReader {
    /// Opens an event journal.
    ///
    /// # Errors
    /// Not an event journal, or unreadable.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let bytes = read_meta(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let m: EventJournalMeta = serde_json::from_slice(&bytes)
            .map_err(|_| format!("{} is not a tickwire event journal", dir.display()))?;
        if m.format != "tickwire.events" {
            return Err(format!("{} is not a tickwire event journal", dir.display()));
        }
        Ok(Self {
            reader: JournalReader::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?,
            pending: Vec::new(),
        })
    }

    /// Whether `dir` holds an event journal.
    pub fn is_event_journal(dir: &Path) -> bool {
        read_meta(dir)
            .ok()
            .and_then(|b| serde_json::from_slice::<EventJournalMeta>(&b).ok())
            .is_some_and(|m| m.format == "tickwire.events")
    }

    /// Positions the reader at record `index`.
    ///
    /// # Errors
    /// The index is no longer stored.
    pub fn seek(&mut self, index: u64) -> Result<(), String> {
        self.pending.clear();
        self.reader.seek(index).map_err(|e| e.to_string())
    }

    /// The next complete JSON object, `Ok(None)` when caught up.
    ///
    /// # Errors
    /// A corrupt record or an unknown kind.
    pub fn next_json(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            let Some(r) = self.reader.try_next_record().map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let p = r.payload();
            let len = usize::from(u16::from_le_bytes([p[0], p[1]]));
            let chunk = p
                .get(2..2 + len)
                .ok_or_else(|| format!("record {}: length {len} exceeds the record", r.index()))?;
            self.pending.extend_from_slice(chunk);
            match r.kind() {
                KIND_EVENT => return Ok(Some(std::mem::take(&mut self.pending))),
                KIND_EVENT_PART => {}
                k => {
                    return Err(format!(
                        "record {}: kind {k} is not an event record",
                        r.index()
                    ));
                }
            }
        }
    }
}
