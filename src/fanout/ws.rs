//! One WebSocket subscriber: its outbound queue, conflation slots, and the
//! non-blocking read and write paths over tungstenite.
//!
//! Outbound messages are shared, already-serialized bytes
//! ([`Utf8Bytes`], refcounted): one serialization per event, one clone (an
//! atomic increment) per subscriber. The queue holds two kinds of entries:
//! - lossless messages, counted against `max_queued_messages`; when that
//!   is reached the client is a slow consumer and is closed (4008);
//! - conflation slots, one per (conflated channel, symbol) subscription:
//!   a newer message replaces the pending one in place, so these never
//!   grow the queue.
//!
//! Writing moves queue entries into tungstenite's write buffer (bounded by
//! `max_write_buffer_size`) and flushes it. `WouldBlock` from `write` means
//! the frame was buffered (never resent); `WouldBlock` from `flush` means
//! wait for the socket to become writable.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::time::Instant;

use mio::net::TcpStream;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Error as WsError, Message, Utf8Bytes, WebSocket};

use super::protocol::NO_SLOT;
use crate::telemetry::StageRecorder;

/// Why a connection ended (counted per reason in `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed (close frame or EOF).
    ClientClose,
    /// Lossless queue overflow (4008).
    SlowConsumer,
    /// No inbound traffic within the idle timeout (4011, or HTTP idle).
    IdleTimeout,
    /// No pong within the ping interval (4010).
    PingTimeout,
    /// Inbound message above the limit (1009).
    MessageTooBig,
    /// Framing or UTF-8 violation (1002 / 1007), or malformed HTTP.
    ProtocolError,
    /// Socket error or reset.
    IoError,
    /// Engine shutdown (1001).
    Shutdown,
}

impl CloseReason {
    /// Every reason, in `/metrics` order.
    pub const ALL: [Self; 8] = [
        Self::ClientClose,
        Self::SlowConsumer,
        Self::IdleTimeout,
        Self::PingTimeout,
        Self::MessageTooBig,
        Self::ProtocolError,
        Self::IoError,
        Self::Shutdown,
    ];

    /// Label value used in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClose => "client_close",
            Self::SlowConsumer => "slow_consumer",
            Self::IdleTimeout => "idle_timeout",
            Self::PingTimeout => "ping_timeout",
            Self::MessageTooBig => "message_too_big",
            Self::ProtocolError => "protocol_error",
            Self::IoError => "io_error",
            Self::Shutdown => "shutdown",
        }
    }

    /// Index into [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Room kept in tungstenite's write buffer for a pong or close frame.
const CONTROL_ROOM: usize = 256;
/// Largest server frame header (no mask).
const FRAME_HEADER: usize = 10;

#[derive(Debug)]
enum Out {
    /// A lossless message and the receive time of the event behind it.
    Msg(Utf8Bytes, i64),
    /// The pending value of a conflation slot.
    Slot(u32),
}

#[derive(Debug, Default)]
struct Slot {
    msg: Option<(Utf8Bytes, i64)>,
    /// An `Out::Slot` entry for it is in the queue.
    queued: bool,
}

/// Result of [`WsClient::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued; `true` when the client just became dirty (needs a flush).
    Queued(bool),
    /// Replaced a pending value of the same slot.
    Conflated,
    /// The lossless queue is full: slow consumer.
    Overflow,
    /// The client is closing; the message was dropped.
    Ignored,
}

/// How a write pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued is in the socket.
    Done,
    /// The socket is full; wait for WRITABLE.
    Blocked,
    /// The close handshake finished: drop the connection.
    Closed,
    /// A fatal error: drop the connection.
    Failed,
}

/// How a read pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// Nothing more to read now.
    WouldBlock,
    /// Stopped at the per-pass message budget; read again soon.
    Budget,
    /// Connection over (close handshake done, EOF, reset).
    Closed,
    /// Inbound message or frame above the limit.
    TooBig,
    /// Protocol violation; close with this code.
    Protocol(u16),
    /// Socket error.
    Io,
}

/// An inbound data message.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A text message (a JSON request).
    Text(Utf8Bytes),
    /// A binary message (not part of the protocol).
    Binary,
}

/// One connected subscriber.
#[derive(Debug)]
pub struct WsClient {
    ws: WebSocket<TcpStream>,
    queue: VecDeque<Out>,
    lossless: usize,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// Subscribed stream keys ([`super::protocol::Router::key`]) → slot.
    pub subs: HashMap<usize, u32>,
    /// In the server's dirty list.
    pub dirty: bool,
    /// The socket returned `WouldBlock`: writes wait for WRITABLE.
    pub blocked: bool,
    /// Set when the server started a close: drop at this deadline.
    pub closing: Option<Instant>,
    /// Why the connection is ending, once known.
    pub close_reason: Option<CloseReason>,
    /// When the last server ping was sent.
    pub last_ping: Instant,
    /// A ping is unanswered.
    pub awaiting_pong: bool,
    /// tungstenite has a control reply (pong, close) to send.
    pub needs_flush: bool,
    /// After an oversized or malformed frame tungstenite's reader must not
    /// be used again: input is read raw and discarded until EOF.
    pub discard_input: bool,
}

impl WsClient {
    /// Wraps an upgraded connection.
    pub fn new(ws: WebSocket<TcpStream>, now: Instant) -> Self {
        Self {
            ws,
            queue: VecDeque::new(),
            lossless: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            subs: HashMap::new(),
            dirty: false,
            blocked: false,
            closing: None,
            close_reason: None,
            last_ping: now,
            awaiting_pong: false,
            needs_flush: false,
            discard_input: false,
        }
    }

    /// The underlying socket (for registration).
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        self.ws.get_mut()
    }

    /// Lossless messages waiting.
    pub fn queued(&self) -> usize {
        self.lossless
    }

    /// A new conflation slot.
    pub fn alloc_slot(&mut self) -> u32 {
        if let Some(s) = self.free_slots.pop() {
            return s;
        }
        self.slots.push(Slot::default());
        (self.slots.len() - 1) as u32
    }

    /// Releases a slot (its pending value is dropped).
    pub fn free_slot(&mut self, s: u32) {
        if let Some(slot) = self.slots.get_mut(s as usize) {
            slot.msg = None;
            self.free_slots.push(s);
        }
    }

    /// Queues a message: lossless when `slot` is [`NO_SLOT`], else conflated
    /// into that slot.
    #[inline]
    pub fn push(&mut self, msg: &Utf8Bytes, recv_ns: i64, slot: u32, max_queue: usize) -> Push {
        if self.closing.is_some() {
            return Push::Ignored;
        }
        let was_idle = !self.dirty && !self.blocked;
        if slot == NO_SLOT {
            if self.lossless >= max_queue {
                return Push::Overflow;
            }
            self.queue.push_back(Out::Msg(msg.clone(), recv_ns));
            self.lossless += 1;
        } else {
            let Some(s) = self.slots.get_mut(slot as usize) else {
                return Push::Ignored;
            };
            let replaced = s.msg.replace((msg.clone(), recv_ns)).is_some();
            if s.queued {
                return if replaced {
                    Push::Conflated
                } else {
                    Push::Queued(false)
                };
            }
            s.queued = true;
            self.queue.push_back(Out::Slot(slot));
        }
        if was_idle {
            self.dirty = true;
        }
        Push::Queued(was_idle)
    }

    /// Moves queued messages into the socket until the queue is empty or
    /// the socket is full. Records receive → write latency per message in
    /// `rec`. Returns how it ended and how many messages were written.
    ///
    /// tungstenite's buffer is first flushed; once it is empty, messages
    /// are moved (not cloned) into it up to `max_write_buffer_size` minus
    /// room for a control frame, so `WriteBufferFull` does not happen in
    /// practice (when it does, the payload is taken back from the frame).
    pub fn flush(&mut self, now_ns: i64, rec: &mut StageRecorder) -> (Flushed, u64) {
        let mut sent = 0u64;
        loop {
            match self.ws.flush() {
                Ok(()) => {
                    self.blocked = false;
                    self.needs_flush = false;
                }
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return (Flushed::Blocked, sent);
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    return (Flushed::Closed, sent);
                }
                Err(_) => return (Flushed::Failed, sent),
            }
            if self.queue.is_empty() || self.closing.is_some() {
                return (Flushed::Done, sent);
            }
            // The buffer is empty now: fill it up to its limit.
            let mut budget = self
                .ws
                .get_config()
                .max_write_buffer_size
                .saturating_sub(CONTROL_ROOM);
            let mut first = true;
            while let Some(front) = self.queue.pop_front() {
                let (msg, recv_ns, slot) = match front {
                    Out::Msg(m, r) => {
                        self.lossless -= 1;
                        (m, r, NO_SLOT)
                    }
                    Out::Slot(s) => match self.slots.get_mut(s as usize) {
                        Some(x) => {
                            x.queued = false;
                            match x.msg.take() {
                                Some((m, r)) => (m, r, s),
                                None => continue,
                            }
                        }
                        None => continue,
                    },
                };
                let frame_len = msg.len() + FRAME_HEADER;
                // The first message of a batch goes even when larger than
                // the budget (the buffer is empty; tungstenite decides).
                if frame_len > budget && !first {
                    self.unpop(msg, recv_ns, slot);
                    break;
                }
                let was_first = std::mem::replace(&mut first, false);
                budget = budget.saturating_sub(frame_len);
                match self.ws.write(Message::Text(msg)) {
                    Ok(()) => {}
                    // The frame is in tungstenite's buffer: never resend.
                    Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // Larger than the whole buffer: it can never be sent.
                    Err(WsError::WriteBufferFull(_)) if was_first => continue,
                    Err(WsError::WriteBufferFull(m)) => {
                        if let Message::Frame(f) = *m
                            && let Ok(t) = Utf8Bytes::try_from(f.into_payload())
                        {
                            self.unpop(t, recv_ns, slot);
                        }
                        break;
                    }
                    Err(_) => return (Flushed::Failed, sent),
                }
                rec.record(now_ns - recv_ns);
                sent += 1;
            }
        }
    }

    /// Puts a message taken from the queue back at its front.
    fn unpop(&mut self, msg: Utf8Bytes, recv_ns: i64, slot: u32) {
        if slot == NO_SLOT {
            self.queue.push_front(Out::Msg(msg, recv_ns));
            self.lossless += 1;
        } else if let Some(x) = self.slots.get_mut(slot as usize) {
            // A newer value may not have arrived in between (same thread).
            x.msg.get_or_insert((msg, recv_ns));
            x.queued = true;
            self.queue.push_front(Out::Slot(slot));
        }
    }

    /// Reads until `WouldBlock` or `budget` data messages, appending data
    /// messages to `out`. Pongs clear the ping watchdog; pings and close
    /// frames queue tungstenite's automatic replies (`needs_flush`).
    /// Returns how it ended and whether any frame arrived.
    pub fn read(&mut self, out: &mut Vec<Inbound>, budget: usize) -> (ReadEnd, bool) {
        let mut any = false;
        let mut n = 0;
        loop {
            if n >= budget {
                return (ReadEnd::Budget, any);
            }
            match self.ws.read() {
                Ok(msg) => {
                    any = true;
                    match msg {
                        Message::Text(t) => {
                            n += 1;
                            out.push(Inbound::Text(t));
                        }
                        Message::Binary(_) => {
                            n += 1;
                            out.push(Inbound::Binary);
                        }
                        Message::Ping(_) | Message::Close(_) => self.needs_flush = true,
                        Message::Pong(_) => self.awaiting_pong = false,
                        Message::Frame(_) => {}
                    }
                }
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return (ReadEnd::WouldBlock, any);
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    return (ReadEnd::Closed, any);
                }
                Err(WsError::Capacity(_)) => return (ReadEnd::TooBig, any),
                Err(WsError::Utf8(_)) => {
                    return (
                        ReadEnd::Protocol(super::protocol::close_code::INVALID_DATA),
                        any,
                    );
                }
                Err(WsError::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => return (ReadEnd::Closed, any),
                Err(WsError::Protocol(_)) => {
                    return (
                        ReadEnd::Protocol(super::protocol::close_code::PROTOCOL),
                        any,
                    );
                }
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return (ReadEnd::Io, any),
            }
        }
    }

    /// Queues a server ping (best effort: skipped when the write buffer is
    /// full, which the ping watchdog then catches).
    pub fn ping(&mut self, now: Instant) {
        self.last_ping = now;
        self.awaiting_pong = true;
        match self.ws.write(Message::Ping(Default::default())) {
            Ok(()) | Err(_) => self.needs_flush = true,
        }
    }

    /// Starts a server-side close: optionally drops what is queued, queues
    /// the close frame (the write-buffer limit is lifted so it always fits)
    /// and tries to send it. The connection is dropped when the peer
    /// answers, or at `deadline`.
    pub fn begin_close(
        &mut self,
        code: u16,
        reason: &'static str,
        drop_queue: bool,
        deadline: Instant,
    ) {
        if self.closing.is_some() {
            return;
        }
        if drop_queue {
            self.queue.clear();
            self.lossless = 0;
            for s in &mut self.slots {
                s.msg = None;
                s.queued = false;
            }
        }
        self.closing = Some(deadline);
        self.ws.set_config(|c| c.max_write_buffer_size = usize::MAX);
        let _ = self.ws.close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: Utf8Bytes::from_static(reason),
        }));
        self.needs_flush = true;
    }

    /// Reads and discards raw input (see [`Self::discard_input`]). Returns
    /// `true` at EOF or on an error: the connection can be dropped.
    pub fn discard_raw(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.ws.get_mut().read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Shuts the write side (after the close frame went out) so the peer
    /// sees EOF after it.
    pub fn shutdown_write(&mut self) {
        let _ = self.ws.get_ref().shutdown(std::net::Shutdown::Write);
    }

    /// Whether the server started a close.
    pub fn is_closing(&self) -> bool {
        self.closing.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::StageStats;
    use std::sync::Arc;
    use tungstenite::protocol::Role;

    /// A server-side client over a real loopback socket, and the peer.
    fn pair() -> (WsClient, WebSocket<std::net::TcpStream>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let ws = WebSocket::from_raw_socket(TcpStream::from_std(s), Role::Server, None);
        peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        (
            WsClient::new(ws, Instant::now()),
            WebSocket::from_raw_socket(peer, Role::Client, None),
        )
    }

    fn msg(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s)
    }

    #[test]
    fn conflated_slot_keeps_only_the_newest_and_lossless_overflows() {
        let (mut c, mut peer) = pair();
        let mut rec = StageRecorder::new(Arc::new(StageStats::new("t")));
        let slot = c.alloc_slot();
        assert_eq!(c.push(&msg("q1"), 1, slot, 3), Push::Queued(true));
        assert!(c.dirty);
        assert_eq!(c.push(&msg("t1"), 1, NO_SLOT, 3), Push::Queued(false));
        assert_eq!(c.push(&msg("q2"), 1, slot, 3), Push::Conflated);
        assert_eq!(c.push(&msg("q3"), 1, slot, 3), Push::Conflated);
        assert_eq!(c.push(&msg("t2"), 1, NO_SLOT, 3), Push::Queued(false));
        assert_eq!(c.push(&msg("t3"), 1, NO_SLOT, 3), Push::Queued(false));
        assert_eq!(c.queued(), 3);
        assert_eq!(c.push(&msg("t4"), 1, NO_SLOT, 3), Push::Overflow);
        // The slot keeps its queue position with the newest value.
        let (how, sent) = c.flush(10, &mut rec);
        assert_eq!((how, sent), (Flushed::Done, 4));
        assert_eq!(c.queued(), 0);
        let got: Vec<String> = (0..4)
            .map(|_| peer.read().unwrap().into_text().unwrap().to_string())
            .collect();
        assert_eq!(got, ["q3", "t1", "t2", "t3"]);
        // A freed slot's pending value is dropped, not sent.
        assert_eq!(c.push(&msg("q4"), 1, slot, 3), Push::Queued(false));
        c.free_slot(slot);
        assert_eq!(c.push(&msg("t5"), 1, NO_SLOT, 3), Push::Queued(false));
        assert_eq!(c.flush(10, &mut rec), (Flushed::Done, 1));
        assert_eq!(peer.read().unwrap().into_text().unwrap(), "t5");
        rec.publish_blocking();
    }

    #[test]
    fn a_full_socket_blocks_and_resumes_without_loss_or_duplicates() {
        let (mut c, mut peer) = pair();
        let mut rec = StageRecorder::new(Arc::new(StageStats::new("t")));
        c.ws.set_config(|k| {
            k.max_write_buffer_size = 8192;
            k.write_buffer_size = 4096;
        });
        let body = "x".repeat(1000);
        let n = 20_000;
        let mut pushed = 0;
        let mut got = Vec::new();
        // Push faster than the peer reads; read in between; never lose order.
        while got.len() < n {
            while pushed < n && c.queued() < 5_000 {
                let m = Utf8Bytes::from(format!("{pushed:06}{body}"));
                assert!(matches!(c.push(&m, 1, NO_SLOT, 10_000), Push::Queued(_)));
                pushed += 1;
            }
            c.blocked = false;
            let (how, _) = c.flush(10, &mut rec);
            assert!(matches!(how, Flushed::Done | Flushed::Blocked), "{how:?}");
            if let Ok(Message::Text(t)) = peer.read() {
                got.push(t[..6].parse::<usize>().unwrap());
            }
        }
        assert!(got.iter().enumerate().all(|(i, v)| i == *v));
        // A message larger than the whole write buffer is dropped, not looped on.
        let huge = Utf8Bytes::from("y".repeat(20_000));
        c.push(&huge, 1, NO_SLOT, 10);
        c.push(&msg("after"), 1, NO_SLOT, 10);
        let (how, sent) = c.flush(10, &mut rec);
        assert_eq!((how, sent), (Flushed::Done, 1));
        assert_eq!(peer.read().unwrap().into_text().unwrap(), "after");
    }

    #[test]
    fn closing_client_ignores_pushes_and_sends_the_close_code() {
        let (mut c, mut peer) = pair();
        let mut rec = StageRecorder::new(Arc::new(StageStats::new("t")));
        c.push(&msg("a"), 1, NO_SLOT, 10);
        c.begin_close(4008, "slow consumer", true, Instant::now());
        assert!(c.is_closing());
        assert_eq!(c.push(&msg("b"), 1, NO_SLOT, 10), Push::Ignored);
        let _ = c.flush(10, &mut rec);
        match peer.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 4008);
                assert_eq!(f.reason, "slow consumer");
            }
            other => panic!("{other:?}"),
        }
    }
}
