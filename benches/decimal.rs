//! Decimal parse cost: exact scaled-integer parsing against the float
//! parser (`str::parse::<f64>`, the usual shortcut that loses exactness),
//! on real venue strings.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tickwire::decimal::{format_scaled, parse_scaled};

const INPUTS: [(&str, u8); 6] = [
    ("61837.63000000", 2),
    ("0.00200000", 8),
    ("9682", 2),
    ("0.00001305", 8),
    ("3.78826000", 8),
    ("2650.17", 2),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decimal_parse");
    g.throughput(Throughput::Elements(INPUTS.len() as u64));
    g.bench_function("parse_scaled_exact", |b| {
        b.iter(|| {
            let mut acc = 0i64;
            for (s, scale) in INPUTS {
                acc = acc.wrapping_add(parse_scaled(black_box(s), scale).unwrap_or(0));
            }
            acc
        })
    });
    g.bench_function("baseline_f64_parse", |b| {
        b.iter(|| {
            let mut acc = 0f64;
            for (s, _) in INPUTS {
                acc += black_box(s).parse::<f64>().unwrap_or(0.0);
            }
            acc
        })
    });
    g.finish();
    let mut g = c.benchmark_group("decimal_format");
    g.throughput(Throughput::Elements(1));
    g.bench_function("format_scaled", |b| {
        b.iter(|| {
            format_scaled(black_box(6_183_763_000_000), 8)
                .as_str()
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
