//! Instrument registry: `VENUE:SYMBOL` names interned to `u32` ids at start.
//!
//! Built once from config; after that, [`InstrumentRegistry::lookup`] maps a
//! venue symbol seen in a frame to its id without allocating. An unknown
//! symbol returns `None`; the caller counts it (see `unknown_symbol` in the
//! telemetry counters).

use std::collections::HashMap;

use crate::decimal::MAX_SCALE;

/// Interned instrument id: index into the registry.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InstrumentId(pub u32);

/// Longest accepted venue symbol, in bytes.
pub const MAX_SYMBOL_LEN: usize = 32;

/// One instrument as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Interned id.
    pub id: InstrumentId,
    /// Venue name, upper case (`BINANCE`, `SIM`).
    pub venue: String,
    /// Venue symbol as the venue spells it (`BTCUSDT`, `BTC-USD`).
    pub symbol: String,
    /// `VENUE:SYMBOL`.
    pub key: String,
    /// Digits after the point for prices (0..=18).
    pub price_precision: u8,
    /// Digits after the point for sizes (0..=18).
    pub size_precision: u8,
    /// Optional sector for market-overview aggregation.
    pub sector: Option<String>,
}

/// Why an instrument definition was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The name is not `VENUE:SYMBOL`.
    #[error("instrument '{0}' must be written VENUE:SYMBOL, e.g. BINANCE:BTCUSDT")]
    BadName(String),
    /// The symbol is longer than [`MAX_SYMBOL_LEN`].
    #[error("instrument '{0}': symbol longer than {MAX_SYMBOL_LEN} bytes")]
    TooLong(String),
    /// Listed twice.
    #[error("instrument '{0}' is listed twice")]
    Duplicate(String),
    /// Precision above [`MAX_SCALE`].
    #[error("instrument '{0}': precision {1} is above the maximum {MAX_SCALE}")]
    Precision(String, u8),
}

/// Fixed-size, allocation-free lookup key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SymKey {
    venue: u16,
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
}

impl SymKey {
    fn new(venue: u16, sym: &[u8]) -> Option<Self> {
        if sym.len() > MAX_SYMBOL_LEN {
            return None;
        }
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        for (d, s) in bytes.iter_mut().zip(sym) {
            *d = s.to_ascii_uppercase();
        }
        Some(Self {
            venue,
            len: sym.len() as u8,
            bytes,
        })
    }
}

/// Index of a venue name in the registry (see [`InstrumentRegistry::venue_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VenueId(pub u16);

/// The set of instruments the engine knows, immutable after start.
#[derive(Debug, Clone, Default)]
pub struct InstrumentRegistry {
    instruments: Vec<Instrument>,
    venues: Vec<String>,
    by_sym: HashMap<SymKey, InstrumentId>,
}

impl std::fmt::Debug for SymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}",
            self.venue,
            String::from_utf8_lossy(&self.bytes[..usize::from(self.len)])
        )
    }
}

impl InstrumentRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `VENUE:SYMBOL`. Venue and symbol lookups are case-insensitive;
    /// names are stored upper case.
    ///
    /// # Errors
    /// Bad name, too long, duplicate, or precision above 18.
    pub fn add(
        &mut self,
        name: &str,
        price_precision: u8,
        size_precision: u8,
        sector: Option<String>,
    ) -> Result<InstrumentId, RegistryError> {
        let (venue, symbol) = name
            .split_once(':')
            .filter(|(v, s)| !v.is_empty() && !s.is_empty() && !s.contains(':'))
            .ok_or_else(|| RegistryError::BadName(name.to_string()))?;
        if symbol.len() > MAX_SYMBOL_LEN {
            return Err(RegistryError::TooLong(name.to_string()));
        }
        for p in [price_precision, size_precision] {
            if p > MAX_SCALE {
                return Err(RegistryError::Precision(name.to_string(), p));
            }
        }
        let venue = venue.to_ascii_uppercase();
        let symbol = symbol.to_ascii_uppercase();
        let vid = self.intern_venue(&venue);
        let key = SymKey::new(vid.0, symbol.as_bytes())
            .ok_or_else(|| RegistryError::TooLong(name.to_string()))?;
        if self.by_sym.contains_key(&key) {
            return Err(RegistryError::Duplicate(name.to_string()));
        }
        let id = InstrumentId(self.instruments.len() as u32);
        self.by_sym.insert(key, id);
        self.instruments.push(Instrument {
            id,
            key: format!("{venue}:{symbol}"),
            venue,
            symbol,
            price_precision,
            size_precision,
            sector,
        });
        Ok(id)
    }

    fn intern_venue(&mut self, venue: &str) -> VenueId {
        if let Some(i) = self.venues.iter().position(|v| v == venue) {
            return VenueId(i as u16);
        }
        self.venues.push(venue.to_string());
        VenueId((self.venues.len() - 1) as u16)
    }

    /// The id of a venue name, if any instrument uses it (case-insensitive).
    pub fn venue_id(&self, venue: &str) -> Option<VenueId> {
        self.venues
            .iter()
            .position(|v| v.eq_ignore_ascii_case(venue))
            .map(|i| VenueId(i as u16))
    }

    /// Maps a venue symbol (any case) to its id. No allocation.
    #[inline]
    pub fn lookup(&self, venue: VenueId, symbol: &[u8]) -> Option<InstrumentId> {
        let key = SymKey::new(venue.0, symbol)?;
        self.by_sym.get(&key).copied()
    }

    /// Looks up `VENUE:SYMBOL` (any case).
    pub fn lookup_key(&self, key: &str) -> Option<InstrumentId> {
        let (v, s) = key.split_once(':')?;
        self.lookup(self.venue_id(v)?, s.as_bytes())
    }

    /// The instrument with this id.
    #[inline]
    pub fn get(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.0 as usize)
    }

    /// All instruments, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Instrument> {
        self.instruments.iter()
    }

    /// Number of instruments.
    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    /// The instruments of one venue.
    pub fn of_venue<'a>(&'a self, venue: &'a str) -> impl Iterator<Item = &'a Instrument> + 'a {
        self.instruments
            .iter()
            .filter(move |i| i.venue.eq_ignore_ascii_case(venue))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> InstrumentRegistry {
        let mut r = InstrumentRegistry::new();
        r.add("BINANCE:BTCUSDT", 2, 5, Some("crypto".into()))
            .unwrap();
        r.add("binance:ethusdt", 2, 4, None).unwrap();
        r.add("COINBASE:BTC-USD", 2, 8, None).unwrap();
        r
    }

    #[test]
    fn interns_and_looks_up() {
        let r = reg();
        assert_eq!(r.len(), 3);
        let b = r.venue_id("BINANCE").unwrap();
        assert_eq!(r.lookup(b, b"BTCUSDT"), Some(InstrumentId(0)));
        assert_eq!(r.lookup(b, b"ethusdt"), Some(InstrumentId(1)));
        assert_eq!(r.lookup(b, b"BTC-USD"), None, "other venue");
        assert_eq!(r.lookup(b, b"XRPUSDT"), None, "unknown symbol");
        assert_eq!(r.lookup_key("coinbase:btc-usd"), Some(InstrumentId(2)));
        let i = r.get(InstrumentId(1)).unwrap();
        assert_eq!(i.key, "BINANCE:ETHUSDT");
        assert_eq!(i.size_precision, 4);
        assert_eq!(
            r.get(InstrumentId(0)).unwrap().sector.as_deref(),
            Some("crypto")
        );
        assert_eq!(r.of_venue("binance").count(), 2);
        assert!(r.lookup(b, &[b'A'; 40]).is_none());
    }

    #[test]
    fn refuses_bad_definitions() {
        let mut r = reg();
        assert!(matches!(
            r.add("BTCUSDT", 2, 2, None),
            Err(RegistryError::BadName(_))
        ));
        assert!(matches!(
            r.add(":BTC", 2, 2, None),
            Err(RegistryError::BadName(_))
        ));
        assert!(matches!(
            r.add("A:B:C", 2, 2, None),
            Err(RegistryError::BadName(_))
        ));
        assert!(matches!(
            r.add("BINANCE:btcusdt", 2, 2, None),
            Err(RegistryError::Duplicate(_))
        ));
        assert!(matches!(
            r.add(&format!("X:{}", "A".repeat(33)), 2, 2, None),
            Err(RegistryError::TooLong(_))
        ));
        assert!(matches!(
            r.add("X:Y", 19, 2, None),
            Err(RegistryError::Precision(_, 19))
        ));
        assert_eq!(r.len(), 3);
    }
}
