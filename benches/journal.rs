//! Journal append and replay read cost, 64-byte ticks (80-byte records).
//! Baseline in the same group: a plain `memcpy` of the tick into a
//! preallocated buffer (the floor for any append).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tickwire::config::{JournalDurability, JournalSection};
use tickwire::instruments::{InstrumentId, InstrumentRegistry};
use tickwire::journal::ticks::{TickJournal, TickReader};
use tickwire::tick::{Side, Tick};

fn registry() -> InstrumentRegistry {
    let mut r = InstrumentRegistry::new();
    r.add("SIM:BTCUSDT", 2, 5, None).unwrap();
    r
}

fn section(d: JournalDurability) -> JournalSection {
    JournalSection {
        segment_mb: 256,
        prefault_mb: 32,
        durability: d,
        interval_ms: 100,
        ..JournalSection::default()
    }
}

fn tick(i: u64) -> Tick {
    Tick::trade(
        InstrumentId(0),
        i as i64,
        i as i64,
        6_183_763 + (i % 100) as i64,
        1_000,
        Side::Buy,
        i,
    )
}

fn append_n(j: &mut TickJournal, n: u64, base: u64) -> Duration {
    let t0 = Instant::now();
    for i in 0..n {
        let _ = j.append(black_box(&tick(base + i)));
        if i % 64 == 63 {
            j.commit();
        }
    }
    j.commit();
    t0.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("journal_append_80B");
    g.throughput(Throughput::Elements(1));
    let mut buf = vec![[0u8; 80]; 1 << 16];
    let mut k = 0usize;
    g.bench_function("baseline_memcpy_into_buffer", |b| {
        b.iter(|| {
            let t = tick(k as u64);
            buf[k & 0xFFFF][..64].copy_from_slice(&t.to_bytes());
            k += 1;
        })
    });
    for (name, d) in [
        ("durability_none", JournalDurability::None),
        ("durability_interval_100ms", JournalDurability::IntervalMs),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = TickJournal::open(dir.path(), &section(d), &registry()).unwrap();
        let mut base = 0u64;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let t = append_n(&mut j, iters, base);
                base += iters;
                t
            })
        });
    }
    g.finish();

    // Sequential replay read of 2M committed ticks.
    let n = 2_000_000u64;
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) =
            TickJournal::open(dir.path(), &section(JournalDurability::None), &registry()).unwrap();
        append_n(&mut j, n, 0);
    }
    let mut g = c.benchmark_group("journal_replay_read");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("read_2M_ticks_crc_checked", |b| {
        b.iter_batched(
            || TickReader::open(dir.path()).unwrap(),
            |mut r| {
                let mut sum = 0u64;
                while let Ok(Some((_, t))) = r.next_tick() {
                    sum = sum.wrapping_add(t.id);
                }
                sum
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
