//! Ring hop throughput: rtrb SPSC (one at a time and chunked) against a
//! crossbeam bounded channel, between two threads, 64-byte ticks.
//! `iter_custom` with a barrier start; a no-contention group (same thread,
//! the harness floor) and a capacity-2 group (maximum contention).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tickwire::tick::Tick;

fn tick(i: u64) -> Tick {
    Tick {
        id: i,
        price: i as i64,
        ..Tick::default()
    }
}

fn rtrb_hop(n: u64, cap: usize) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<Tick>::new(cap);
    let start = Arc::new(Barrier::new(2));
    let b = start.clone();
    let consumer = std::thread::spawn(move || {
        b.wait();
        let mut got = 0u64;
        let mut sum = 0u64;
        while got < n {
            if let Ok(t) = rx.pop() {
                sum = sum.wrapping_add(t.id);
                got += 1;
            } else {
                std::hint::spin_loop();
            }
        }
        black_box(sum);
    });
    start.wait();
    let t0 = Instant::now();
    for i in 0..n {
        let mut v = tick(i);
        loop {
            match tx.push(v) {
                Ok(()) => break,
                Err(rtrb::PushError::Full(back)) => {
                    v = back;
                    std::hint::spin_loop();
                }
            }
        }
    }
    consumer.join().unwrap();
    t0.elapsed()
}

fn rtrb_chunked(n: u64, cap: usize, batch: usize) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<Tick>::new(cap);
    let start = Arc::new(Barrier::new(2));
    let b = start.clone();
    let consumer = std::thread::spawn(move || {
        b.wait();
        let mut got = 0u64;
        let mut sum = 0u64;
        while got < n {
            let k = rx.slots().min(batch);
            if k == 0 {
                std::hint::spin_loop();
                continue;
            }
            if let Ok(c) = rx.read_chunk(k) {
                let (a, bb) = c.as_slices();
                for t in a.iter().chain(bb) {
                    sum = sum.wrapping_add(t.id);
                }
                c.commit_all();
                got += k as u64;
            }
        }
        black_box(sum);
    });
    start.wait();
    let t0 = Instant::now();
    let mut i = 0u64;
    while i < n {
        let k = tx.slots().min(batch).min((n - i) as usize);
        if k == 0 {
            std::hint::spin_loop();
            continue;
        }
        if let Ok(c) = tx.write_chunk_uninit(k) {
            let base = i;
            c.fill_from_iter((0..k as u64).map(|j| tick(base + j)));
            i += k as u64;
        }
    }
    consumer.join().unwrap();
    t0.elapsed()
}

fn crossbeam_hop(n: u64, cap: usize) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<Tick>(cap);
    let start = Arc::new(Barrier::new(2));
    let b = start.clone();
    let consumer = std::thread::spawn(move || {
        b.wait();
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(rx.recv().unwrap().id);
        }
        black_box(sum);
    });
    start.wait();
    let t0 = Instant::now();
    for i in 0..n {
        tx.send(tick(i)).unwrap();
    }
    consumer.join().unwrap();
    t0.elapsed()
}

fn same_thread_floor(n: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<Tick>::new(1024);
    let t0 = Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        let _ = tx.push(tick(i));
        if let Ok(t) = rx.pop() {
            sum = sum.wrapping_add(t.id);
        }
    }
    black_box(sum);
    t0.elapsed()
}

const N: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_hop_64B");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("baseline_same_thread_rtrb", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| same_thread_floor(N)).sum())
    });
    g.bench_function("rtrb_push_pop_cap65536", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rtrb_hop(N, 65_536)).sum())
    });
    g.bench_function("rtrb_chunk256_cap65536", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rtrb_chunked(N, 65_536, 256)).sum())
    });
    g.bench_function("crossbeam_bounded_cap65536", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| crossbeam_hop(N, 65_536)).sum())
    });
    g.finish();

    let mut g = c.benchmark_group("ring_hop_64B_cap2");
    g.throughput(Throughput::Elements(N / 10));
    g.sample_size(10);
    g.bench_function("rtrb_push_pop_cap2", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rtrb_hop(N / 10, 2)).sum())
    });
    g.bench_function("crossbeam_bounded_cap2", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| crossbeam_hop(N / 10, 2)).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
