//! The tick journal: normalized [`Tick`]s in a journal, with the
//! instrument table in `meta.json`.
//!
//! Records are kind [`KIND_TICK`] with the tick's 64-byte little-endian
//! layout ([`Tick::to_bytes`]) as payload (record size 80). `meta.json`
//! holds the instrument table the ids refer to; reopening a journal with a
//! table that is not an extension of the stored one is refused, so an id can
//! never silently change meaning.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{
    AppendError, Durability, JournalConfig, JournalError, JournalReader, JournalWriter,
    RecoveryReport, read_meta,
};
use crate::config::{JournalDurability, JournalSection};
use crate::instruments::InstrumentRegistry;
use crate::tick::{TICK_BYTES, Tick};

/// Record kind of a tick.
pub const KIND_TICK: u32 = 1;
/// Record size of a tick journal: 16-byte record header + 64-byte tick.
pub const TICK_RECORD_SIZE: u32 = 80;

/// One instrument in `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaInstrument {
    /// Interned id used in the records.
    pub id: u32,
    /// `VENUE:SYMBOL`.
    pub symbol: String,
    /// Price precision.
    pub price_precision: u8,
    /// Size precision.
    pub size_precision: u8,
    /// Sector, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
}

/// `meta.json` of a tick journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickJournalMeta {
    /// Always `"tickwire.ticks"`.
    pub format: String,
    /// Payload layout version (1: `Tick::to_bytes`).
    pub tick_layout: u32,
    /// Instrument table.
    pub instruments: Vec<MetaInstrument>,
}

impl TickJournalMeta {
    /// The meta for a registry.
    pub fn from_registry(reg: &InstrumentRegistry) -> Self {
        Self {
            format: "tickwire.ticks".into(),
            tick_layout: 1,
            instruments: reg
                .iter()
                .map(|i| MetaInstrument {
                    id: i.id.0,
                    symbol: i.key.clone(),
                    price_precision: i.price_precision,
                    size_precision: i.size_precision,
                    sector: i.sector.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds the registry the records refer to.
    ///
    /// # Errors
    /// A malformed table (ids out of order, bad names).
    pub fn registry(&self) -> Result<InstrumentRegistry, String> {
        let mut reg = InstrumentRegistry::new();
        for (i, m) in self.instruments.iter().enumerate() {
            if m.id as usize != i {
                return Err(format!(
                    "meta.json: instrument ids must be 0..n in order (found {} at {i})",
                    m.id
                ));
            }
            reg.add(
                &m.symbol,
                m.price_precision,
                m.size_precision,
                m.sector.clone(),
            )
            .map_err(|e| format!("meta.json: {e}"))?;
        }
        Ok(reg)
    }

    /// Reads the meta of a journal directory.
    ///
    /// # Errors
    /// Missing or malformed `meta.json`, or not a tick journal.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let bytes = read_meta(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let m: Self = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{}/meta.json is not a tickwire tick journal: {e}",
                dir.display()
            )
        })?;
        if m.format != "tickwire.ticks" {
            return Err(format!(
                "{}/meta.json: format '{}' is not tickwire.ticks",
                dir.display(),
                m.format
            ));
        }
        Ok(m)
    }
}

/// Journal settings from config.
pub fn journal_config(sec: &JournalSection) -> JournalConfig {
    let mut c = JournalConfig::new(TICK_RECORD_SIZE);
    c.segment_bytes = sec.segment_mb.max(1) * 1024 * 1024;
    c.prefault_ahead_bytes = sec.prefault_mb * 1024 * 1024;
    c.durability = match sec.durability {
        JournalDurability::None => Durability::None,
        JournalDurability::IntervalMs => Durability::IntervalMs(sec.interval_ms.max(1)),
        JournalDurability::EveryN => Durability::EveryN(sec.every_n.max(1)),
    };
    c
}

/// The feed thread's tick journal writer.
#[derive(Debug)]
pub struct TickJournal {
    writer: JournalWriter,
}

impl TickJournal {
    /// Opens (creating or recovering) the tick journal in `dir` for
    /// `registry`'s instruments.
    ///
    /// # Errors
    /// I/O errors, a locked journal, or a journal written with a different
    /// instrument table (names what to do).
    pub fn open(
        dir: &Path,
        sec: &JournalSection,
        registry: &InstrumentRegistry,
    ) -> Result<(Self, RecoveryReport), String> {
        let meta = TickJournalMeta::from_registry(registry);
        if dir.join("meta.json").exists() {
            let old = TickJournalMeta::read(dir)?;
            let prefix = old.instruments.len() <= meta.instruments.len()
                && old
                    .instruments
                    .iter()
                    .zip(&meta.instruments)
                    .all(|(a, b)| a == b);
            if !prefix {
                return Err(format!(
                    "journal {} was written with a different instrument table; its ids would change meaning. \
                     Use another --journal-dir, or keep the instruments of that journal first and in the same order",
                    dir.display()
                ));
            }
        }
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| e.to_string())?;
        let (writer, report) = JournalWriter::open(dir, &journal_config(sec), &bytes)
            .map_err(|e| format!("journal {}: {e}", dir.display()))?;
        Ok((Self { writer }, report))
    }

    /// Appends one tick. Hot path: a copy and a crc, no allocation.
    ///
    /// # Errors
    /// Disk full or I/O failure at segment roll-over.
    #[inline]
    pub fn append(&mut self, t: &Tick) -> Result<u64, AppendError> {
        self.writer.append(KIND_TICK, &t.to_bytes())
    }

    /// Publishes appended ticks to readers (one Release store).
    #[inline]
    pub fn commit(&mut self) {
        self.writer.commit();
    }

    /// Forces committed data to disk.
    ///
    /// # Errors
    /// msync failure.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.writer.flush()
    }

    /// Index of the next tick.
    pub fn next_index(&self) -> u64 {
        self.writer.next_index()
    }
}

/// Reads ticks from a journal directory: meta (registry) + reader.
#[derive(Debug)]
pub struct TickReader {
    /// The instrument table of the journal.
    pub registry: InstrumentRegistry,
    reader: JournalReader,
}

impl TickReader {
    /// Opens a tick journal for reading.
    ///
    /// # Errors
    /// Not a tick journal, or unreadable.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let meta = TickJournalMeta::read(dir)?;
        let registry = meta.registry()?;
        let reader = JournalReader::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self { registry, reader })
    }

    /// The next committed tick (with its journal index), `Ok(None)` when
    /// caught up (a live journal may grow later).
    ///
    /// # Errors
    /// A corrupt record, a deleted segment, or a record that is not a tick.
    pub fn next_tick(&mut self) -> Result<Option<(u64, Tick)>, String> {
        match self.reader.try_next_record() {
            Ok(Some(r)) => {
                if r.kind() != KIND_TICK {
                    return Err(format!(
                        "record {} has kind {}, not a tick",
                        r.index(),
                        r.kind()
                    ));
                }
                let idx = r.index();
                Tick::from_bytes(&r.payload()[..TICK_BYTES.min(r.payload().len())])
                    .map(|t| Some((idx, t)))
                    .ok_or_else(|| format!("record {idx}: payload shorter than a tick"))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Positions the reader at journal index `index`.
    ///
    /// # Errors
    /// The index is no longer stored.
    pub fn seek(&mut self, index: u64) -> Result<(), String> {
        self.reader.seek(index).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruments::InstrumentId;
    use crate::tick::Side;

    fn reg(names: &[&str]) -> InstrumentRegistry {
        let mut r = InstrumentRegistry::new();
        for n in names {
            r.add(n, 2, 5, None).unwrap();
        }
        r
    }

    #[test]
    fn ticks_round_trip_with_meta() {
        let dir = tempfile::tempdir().unwrap();
        let sec = JournalSection {
            segment_mb: 1,
            prefault_mb: 0,
            ..JournalSection::default()
        };
        let r = reg(&["SIM:A", "SIM:B"]);
        let (mut j, rep) = TickJournal::open(dir.path(), &sec, &r).unwrap();
        assert!(rep.created);
        let ticks: Vec<Tick> = (0..30_000u64)
            .map(|i| {
                Tick::trade(
                    InstrumentId((i % 2) as u32),
                    i as i64,
                    0,
                    100 + i as i64,
                    1,
                    Side::Buy,
                    i,
                )
            })
            .collect();
        for t in &ticks {
            j.append(t).unwrap();
        }
        j.commit();
        drop(j);
        let mut rd = TickReader::open(dir.path()).unwrap();
        assert_eq!(rd.registry.len(), 2);
        assert_eq!(rd.registry.get(InstrumentId(1)).unwrap().key, "SIM:B");
        let mut got = Vec::new();
        while let Some((idx, t)) = rd.next_tick().unwrap() {
            assert_eq!(idx as usize, got.len());
            got.push(t);
        }
        assert_eq!(got, ticks, "across several 1 MiB segments");
    }

    #[test]
    fn refuses_a_different_instrument_table_but_accepts_an_extension() {
        let dir = tempfile::tempdir().unwrap();
        let sec = JournalSection {
            segment_mb: 1,
            prefault_mb: 0,
            ..JournalSection::default()
        };
        drop(TickJournal::open(dir.path(), &sec, &reg(&["SIM:A", "SIM:B"])).unwrap());
        let e = TickJournal::open(dir.path(), &sec, &reg(&["SIM:B", "SIM:A"])).unwrap_err();
        assert!(e.contains("different instrument table"), "{e}");
        drop(TickJournal::open(dir.path(), &sec, &reg(&["SIM:A", "SIM:B", "SIM:C"])).unwrap());
        assert_eq!(
            TickJournalMeta::read(dir.path()).unwrap().instruments.len(),
            3
        );
    }
}
