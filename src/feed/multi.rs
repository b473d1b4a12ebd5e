//! [`MultiSource`]: several frame sources read by one feed thread.
//!
//! Children are polled round-robin; a child that has frames keeps the turn
//! for up to [`BURST`] frames (batching), then the next child gets it, so a
//! never-idle child (an unpaced simulator, a busy socket) cannot starve the
//! others. Each child has a stream map: its own stream `s` is the stage's
//! stream `map[s]`; frames, events and sends are translated both ways.

use super::{FrameSource, SourceEvent, SourcePoll};
use crate::clock::Clock;

/// Most consecutive frames taken from one child before rotating.
pub const BURST: u32 = 32;

struct Child {
    source: Box<dyn FrameSource>,
    /// Child stream → stage stream.
    map: Vec<u32>,
    done: bool,
}

impl Child {
    fn global(&self, local: u32) -> u32 {
        self.map.get(local as usize).copied().unwrap_or(u32::MAX)
    }
}

/// Round-robin combination of sources.
pub struct MultiSource {
    children: Vec<Child>,
    /// Child that produced the last frame.
    current: usize,
    /// Frames taken from `current` in the present turn.
    burst: u32,
    /// Child whose events are drained next.
    event_child: usize,
    name: String,
}

impl std::fmt::Debug for MultiSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiSource")
            .field("name", &self.name)
            .field("children", &self.children.len())
            .finish_non_exhaustive()
    }
}

impl MultiSource {
    /// Combines `(source, stream map)` pairs: a child's stream `s` is the
    /// stage's stream `map[s]` (a single-stream simulator: `vec![i]`).
    pub fn new(children: Vec<(Box<dyn FrameSource>, Vec<u32>)>) -> Self {
        let name = children
            .iter()
            .map(|(s, _)| s.name())
            .collect::<Vec<_>>()
            .join("+");
        Self {
            children: children
                .into_iter()
                .map(|(source, map)| Child {
                    source,
                    map,
                    done: false,
                })
                .collect(),
            current: 0,
            burst: 0,
            event_child: 0,
            name,
        }
    }
}

impl FrameSource for MultiSource {
    fn poll_frame(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> SourcePoll {
        let n = self.children.len();
        if n == 0 {
            return SourcePoll::Done;
        }
        if self.burst >= BURST {
            self.burst = 0;
            self.current = (self.current + 1) % n;
        }
        let mut all_done = true;
        for k in 0..n {
            let i = (self.current + k) % n;
            let c = &mut self.children[i];
            if c.done {
                continue;
            }
            match c.source.poll_frame(buf, clock) {
                SourcePoll::Frame { recv_ns } => {
                    if i != self.current {
                        self.current = i;
                        self.burst = 0;
                    }
                    self.burst += 1;
                    return SourcePoll::Frame { recv_ns };
                }
                SourcePoll::Idle => all_done = false,
                SourcePoll::Done => c.done = true,
            }
        }
        // Nobody had a frame: start the next round with the next child.
        self.burst = 0;
        self.current = (self.current + 1) % n;
        if all_done {
            SourcePoll::Done
        } else {
            SourcePoll::Idle
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn current_stream(&self) -> u32 {
        self.children
            .get(self.current)
            .map_or(u32::MAX, |c| c.global(c.source.current_stream()))
    }

    fn next_event(&mut self) -> Option<SourceEvent> {
        let n = self.children.len();
        for k in 0..n {
            let i = (self.event_child + k) % n;
            let c = &mut self.children[i];
            if let Some(mut ev) = c.source.next_event() {
                ev.stream = c.global(ev.stream);
                self.event_child = i;
                return Some(ev);
            }
        }
        None
    }

    fn send(&mut self, stream: u32, msgs: &[String]) {
        for c in &mut self.children {
            if let Some(local) = c.map.iter().position(|g| *g == stream) {
                c.source.send(local as u32, msgs);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::SourceEventKind;

    /// Emits `n` frames "<tag><i>" then Done (or Idle forever).
    struct Fake {
        tag: u8,
        left: u32,
        idle_after: bool,
        events: Vec<SourceEvent>,
        sent: std::sync::Arc<std::sync::Mutex<Vec<(u32, String)>>>,
        stream: u32,
    }

    impl FrameSource for Fake {
        fn poll_frame(&mut self, buf: &mut Vec<u8>, _: &Clock) -> SourcePoll {
            if self.left == 0 {
                return if self.idle_after {
                    SourcePoll::Idle
                } else {
                    SourcePoll::Done
                };
            }
            self.left -= 1;
            buf.push(self.tag);
            SourcePoll::Frame { recv_ns: 1 }
        }
        fn name(&self) -> &str {
            "fake"
        }
        fn current_stream(&self) -> u32 {
            self.stream
        }
        fn next_event(&mut self) -> Option<SourceEvent> {
            self.events.pop()
        }
        fn send(&mut self, stream: u32, msgs: &[String]) {
            let mut s = self.sent.lock().unwrap();
            for m in msgs {
                s.push((stream, m.clone()));
            }
        }
    }

    fn fake(tag: u8, left: u32, idle_after: bool) -> Fake {
        Fake {
            tag,
            left,
            idle_after,
            events: Vec::new(),
            sent: Default::default(),
            stream: 0,
        }
    }

    #[test]
    fn round_robin_in_bursts_and_done_when_all_done() {
        let a = fake(b'a', 100, false);
        let b = fake(b'b', 10, false);
        let mut m = MultiSource::new(vec![(Box::new(a), vec![0]), (Box::new(b), vec![1])]);
        let clock = Clock::new();
        let mut seq = Vec::new();
        let mut streams = Vec::new();
        loop {
            let mut buf = Vec::new();
            match m.poll_frame(&mut buf, &clock) {
                SourcePoll::Frame { .. } => {
                    seq.push(buf[0]);
                    streams.push(m.current_stream());
                }
                SourcePoll::Idle => panic!("no child idles"),
                SourcePoll::Done => break,
            }
        }
        assert_eq!(seq.len(), 110);
        // First burst from a, then b gets its turn before a continues.
        assert!(seq[..BURST as usize].iter().all(|&c| c == b'a'));
        assert_eq!(seq[BURST as usize], b'b');
        for (c, s) in seq.iter().zip(&streams) {
            assert_eq!(u32::from(*c == b'b'), *s, "stream follows the child");
        }
    }

    #[test]
    fn idle_child_keeps_source_alive_and_events_map_streams() {
        let mut a = fake(b'a', 2, true);
        a.events.push(SourceEvent {
            stream: 1,
            kind: SourceEventKind::Connected,
            detail: 1,
        });
        a.stream = 1;
        let sent = a.sent.clone();
        let b = fake(b'b', 1, false);
        // `a` carries two streams (like a WebSocket source): its 0 and 1
        // are the stage's 2 and 4.
        let mut m = MultiSource::new(vec![(Box::new(b), vec![0]), (Box::new(a), vec![2, 4])]);
        let ev = m.next_event().unwrap();
        assert_eq!(ev.stream, 4);
        assert_eq!(m.next_event(), None);
        let clock = Clock::new();
        let mut frames = 0;
        for _ in 0..10 {
            let mut buf = Vec::new();
            match m.poll_frame(&mut buf, &clock) {
                SourcePoll::Frame { .. } => {
                    frames += 1;
                    if buf[0] == b'a' {
                        assert_eq!(m.current_stream(), 4);
                    }
                }
                SourcePoll::Idle => {}
                SourcePoll::Done => panic!("a never ends"),
            }
        }
        assert_eq!(frames, 3);
        m.send(4, &["x".to_string()]);
        m.send(0, &["ignored by a".to_string()]);
        m.send(3, &["nobody's".to_string()]);
        assert_eq!(*sent.lock().unwrap(), vec![(1, "x".to_string())]);
    }
}
