//! The normalized tick: one fixed-size `Copy` record for every market update.
//!
//! Every adapter turns venue frames into [`Tick`]s; the journal stores them
//! byte-for-byte; the kernel consumes them. A tick is exactly 64 bytes
//! (one cache line), asserted at compile time.
//!
//! | field | meaning |
//! |---|---|
//! | `ts_event_ns` | venue event time, ns since the Unix epoch (0 when the venue sends none) |
//! | `ts_recv_ns` | when tickwire read the frame: monotonic clock, expressed as ns since the Unix epoch (see [`crate::clock`]) |
//! | `price`, `size` | trade price/size; quote bid price/size; book level price/size; bar close/volume |
//! | `price2`, `size2` | quote ask price/size; bar high/low; otherwise 0 |
//! | `id` | trade id, book update id or venue sequence (see [`flags::ID_HASHED`]); bar open price for bars |
//! | `instrument` | interned [`crate::instruments::InstrumentId`] |
//! | `kind`, `side`, `flags` | see [`TickKind`], [`Side`], [`flags`] |
//!
//! Prices are counts of `10^-price_precision`, sizes counts of
//! `10^-size_precision` of the instrument (see [`crate::decimal`]).

use crate::instruments::InstrumentId;

/// What a tick describes.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TickKind {
    /// A trade print: `price`, `size`, aggressor `side`, `id` = trade id.
    #[default]
    Trade = 0,
    /// Best bid/offer: `price`/`size` = bid, `price2`/`size2` = ask.
    Quote = 1,
    /// One L2 book level: `side` (Buy = bid, Sell = ask), `price`, `size`
    /// (0 deletes the level), `id` = venue update id.
    BookLevel = 2,
    /// A venue bar (kline): `price` = close, `size` = volume, `price2` = high,
    /// `size2` = low, `id` = open (as `i64` bits).
    Bar = 3,
    /// A sequence gap the adapter detected: `id` = the id expected next,
    /// `price` = the id received (as `i64` bits), `size` = ids missing
    /// (saturating). Journaled like any tick so replays see the gap too.
    Gap = 4,
    /// Feed status change for the instrument's connection: `id` = one of
    /// [`feed_status`] codes, `size` = detail (e.g. reconnect attempt).
    FeedStatus = 5,
}

/// Codes carried in `id` of a [`TickKind::FeedStatus`] tick.
pub mod feed_status {
    /// Connected and subscribed.
    pub const CONNECTED: u64 = 1;
    /// Connection lost; reconnecting with backoff.
    pub const DISCONNECTED: u64 = 2;
    /// No data within the stale-feed watchdog interval.
    pub const STALE: u64 = 3;
    /// Circuit breaker open: not retrying for a while.
    pub const CIRCUIT_OPEN: u64 = 4;
    /// A crossed or locked book/BBO was seen.
    pub const CROSSED: u64 = 5;
}

impl TickKind {
    /// Decodes the on-disk byte. Unknown values are `None`.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Trade),
            1 => Some(Self::Quote),
            2 => Some(Self::BookLevel),
            3 => Some(Self::Bar),
            4 => Some(Self::Gap),
            5 => Some(Self::FeedStatus),
            _ => None,
        }
    }

    /// Lower-case name used in JSON (`trade`, `quote`, `book_level`, `bar`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trade => "trade",
            Self::Quote => "quote",
            Self::BookLevel => "book_level",
            Self::Bar => "bar",
            Self::Gap => "gap",
            Self::FeedStatus => "feed_status",
        }
    }
}

/// Aggressor side of a trade, or the book side of a level.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Side {
    /// Unknown or not applicable.
    #[default]
    None = 0,
    /// Buyer-initiated trade, or a bid level.
    Buy = 1,
    /// Seller-initiated trade, or an ask level.
    Sell = 2,
}

impl Side {
    /// Decodes the on-disk byte. Unknown values map to [`Side::None`].
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Buy,
            2 => Self::Sell,
            _ => Self::None,
        }
    }

    /// `buy`, `sell` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
            Self::None => "none",
        }
    }
}

/// Bit flags carried in [`Tick::flags`].
pub mod flags {
    /// The level belongs to a book snapshot (not an incremental diff).
    pub const SNAPSHOT: u16 = 1 << 0;
    /// Last tick decoded from one venue frame (batch boundary).
    pub const LAST_IN_FRAME: u16 = 1 << 1;
    /// The venue's trade id was not numeric; `id` holds a 64-bit hash of it.
    pub const ID_HASHED: u16 = 1 << 2;
    /// A data-quality check flagged this tick (crossed quote, stale time...).
    pub const SUSPECT: u16 = 1 << 3;
    /// The tick came from a replayed journal or capture, not a live socket.
    pub const REPLAYED: u16 = 1 << 4;
    /// The venue sent no event time; `ts_event_ns` is the receive time.
    pub const NO_EVENT_TIME: u16 = 1 << 5;
}

/// One normalized market update. 64 bytes, `Copy`, no pointers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tick {
    /// Venue event time, ns since the Unix epoch.
    pub ts_event_ns: i64,
    /// Receive time, ns since the Unix epoch on tickwire's monotonic clock.
    pub ts_recv_ns: i64,
    /// Price in `10^-price_precision` units.
    pub price: i64,
    /// Size in `10^-size_precision` units.
    pub size: i64,
    /// Second price (quote ask, bar high).
    pub price2: i64,
    /// Second size (quote ask size, bar low as price units).
    pub size2: i64,
    /// Trade id, update id or sequence number.
    pub id: u64,
    /// Interned instrument.
    pub instrument: InstrumentId,
    /// [`TickKind`] as `u8`.
    pub kind: u8,
    /// [`Side`] as `u8`.
    pub side: u8,
    /// [`flags`] bits.
    pub flags: u16,
}

const _: () = assert!(std::mem::size_of::<Tick>() == 64);
const _: () = assert!(std::mem::align_of::<Tick>() == 8);

/// Size of a tick on the wire and on disk, in bytes.
pub const TICK_BYTES: usize = 64;

impl Tick {
    /// The tick's kind; unknown bytes decode as [`TickKind::Trade`] only if
    /// they are 0, otherwise `None`.
    #[inline]
    pub fn kind(&self) -> Option<TickKind> {
        TickKind::from_u8(self.kind)
    }

    /// The tick's side.
    #[inline]
    pub fn side(&self) -> Side {
        Side::from_u8(self.side)
    }

    /// Whether a flag bit is set.
    #[inline]
    pub fn has_flag(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// A trade tick.
    #[allow(clippy::too_many_arguments)]
    pub fn trade(
        instrument: InstrumentId,
        ts_event_ns: i64,
        ts_recv_ns: i64,
        price: i64,
        size: i64,
        side: Side,
        trade_id: u64,
    ) -> Self {
        Self {
            ts_event_ns,
            ts_recv_ns,
            price,
            size,
            id: trade_id,
            instrument,
            kind: TickKind::Trade as u8,
            side: side as u8,
            ..Self::default()
        }
    }

    /// A best bid/offer tick.
    #[allow(clippy::too_many_arguments)]
    pub fn quote(
        instrument: InstrumentId,
        ts_event_ns: i64,
        ts_recv_ns: i64,
        bid: i64,
        bid_size: i64,
        ask: i64,
        ask_size: i64,
        update_id: u64,
    ) -> Self {
        Self {
            ts_event_ns,
            ts_recv_ns,
            price: bid,
            size: bid_size,
            price2: ask,
            size2: ask_size,
            id: update_id,
            instrument,
            kind: TickKind::Quote as u8,
            ..Self::default()
        }
    }

    /// Serializes to the 64-byte little-endian wire/disk layout.
    pub fn to_bytes(&self) -> [u8; TICK_BYTES] {
        let mut b = [0u8; TICK_BYTES];
        b[0..8].copy_from_slice(&self.ts_event_ns.to_le_bytes());
        b[8..16].copy_from_slice(&self.ts_recv_ns.to_le_bytes());
        b[16..24].copy_from_slice(&self.price.to_le_bytes());
        b[24..32].copy_from_slice(&self.size.to_le_bytes());
        b[32..40].copy_from_slice(&self.price2.to_le_bytes());
        b[40..48].copy_from_slice(&self.size2.to_le_bytes());
        b[48..56].copy_from_slice(&self.id.to_le_bytes());
        b[56..60].copy_from_slice(&self.instrument.0.to_le_bytes());
        b[60] = self.kind;
        b[61] = self.side;
        b[62..64].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    /// Parses the layout written by [`Tick::to_bytes`]. `None` when `b` is
    /// shorter than 64 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; TICK_BYTES] = b.get(..TICK_BYTES)?.try_into().ok()?;
        let i64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            i64::from_le_bytes(a)
        };
        Some(Self {
            ts_event_ns: i64_at(0),
            ts_recv_ns: i64_at(8),
            price: i64_at(16),
            size: i64_at(24),
            price2: i64_at(32),
            size2: i64_at(40),
            id: i64_at(48) as u64,
            instrument: InstrumentId(u32::from_le_bytes([b[56], b[57], b[58], b[59]])),
            kind: b[60],
            side: b[61],
            flags: u16::from_le_bytes([b[62], b[63]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Tick>(), 64);
        assert!(std::mem::size_of::<Tick>() <= 64);
    }

    #[test]
    fn bytes_round_trip() {
        let t = Tick {
            ts_event_ns: 1_723_161_255_342_000_000,
            ts_recv_ns: -5,
            price: 6_183_763,
            size: 2_000_000,
            price2: i64::MIN,
            size2: i64::MAX,
            id: u64::MAX,
            instrument: InstrumentId(7),
            kind: TickKind::Quote as u8,
            side: Side::Sell as u8,
            flags: flags::SNAPSHOT | flags::ID_HASHED,
        };
        assert_eq!(Tick::from_bytes(&t.to_bytes()), Some(t));
        assert_eq!(Tick::from_bytes(&[0u8; 63]), None);
    }

    #[test]
    fn enums_decode() {
        for k in [
            TickKind::Trade,
            TickKind::Quote,
            TickKind::BookLevel,
            TickKind::Bar,
            TickKind::Gap,
            TickKind::FeedStatus,
        ] {
            assert_eq!(TickKind::from_u8(k as u8), Some(k));
        }
        assert_eq!(TickKind::from_u8(9), None);
        assert_eq!(Side::from_u8(2), Side::Sell);
        assert_eq!(Side::from_u8(77), Side::None);
    }
}
