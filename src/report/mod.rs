//! `tickwire report`: turns bench output into tables and plots.
//!
//! Inputs are bench output directories (`summary.json` + `latency.hlog`) or
//! bare `.hlog` files. For every run the interval histograms of each stage
//! are merged (HdrHistogram merging is exact: bucket counts add), so the
//! percentiles in the report equal those in the run's `summary.json`.
//! Outputs, in the report directory:
//! - `report.md` and `report.html`: percentile tables per run and stage;
//!   with two runs, a comparison table with the ratio B/A per percentile;
//! - `percentiles.svg`: the classic HdrHistogram percentile distribution
//!   (x: percentile on a log scale of 1/(1−p); y: latency) of e2e per run;
//! - `latency_over_time.svg`: e2e p50/p99/max per interval, per run;
//! - `throughput.svg`: achieved vs offered rate (runs with an offered rate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use plotters::prelude::*;

use crate::bench::{BenchSummary, read_summary};
use crate::telemetry::{Percentiles, fmt_ns, new_histogram};

/// One interval of one stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalPoint {
    /// Start, seconds from the log's base time.
    pub start_s: f64,
    /// Length, s.
    pub duration_s: f64,
    /// Percentiles of the interval.
    pub p: Percentiles,
}

/// A run loaded from disk.
#[derive(Debug)]
pub struct Run {
    /// Label (directory or file name).
    pub label: String,
    /// `summary.json`, when present.
    pub summary: Option<BenchSummary>,
    /// Merged histogram per stage tag.
    pub merged: BTreeMap<String, Histogram<u64>>,
    /// Intervals per stage tag.
    pub intervals: BTreeMap<String, Vec<IntervalPoint>>,
}

/// Loads one input: a bench directory or an `.hlog` file.
///
/// # Errors
/// Unreadable or malformed files, named in the message.
pub fn load_run(path: &Path) -> Result<Run, String> {
    let (hlog, summary) = if path.is_dir() {
        (path.join("latency.hlog"), read_summary(path).ok())
    } else {
        (path.to_path_buf(), None)
    };
    let bytes = std::fs::read(&hlog).map_err(|e| format!("cannot read {}: {e}", hlog.display()))?;
    let mut merged: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut intervals: BTreeMap<String, Vec<IntervalPoint>> = BTreeMap::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry =
            entry.map_err(|e| format!("{}: malformed interval log ({e:?})", hlog.display()))?;
        let LogEntry::Interval(ih) = entry else {
            continue;
        };
        let tag = ih
            .tag()
            .map_or("untagged".to_string(), |t| t.as_str().to_string());
        let raw = base64::engine::general_purpose::STANDARD
            .decode(ih.encoded_histogram())
            .map_err(|e| format!("{}: bad base64 in interval: {e}", hlog.display()))?;
        let h: Histogram<u64> = de
            .deserialize(&mut raw.as_slice())
            .map_err(|e| format!("{}: bad histogram: {e:?}", hlog.display()))?;
        let m = merged.entry(tag.clone()).or_insert_with(new_histogram);
        m.add(&h)
            .map_err(|e| format!("{}: cannot merge histogram: {e:?}", hlog.display()))?;
        intervals.entry(tag).or_default().push(IntervalPoint {
            start_s: ih.start_timestamp().as_secs_f64(),
            duration_s: ih.duration().as_secs_f64(),
            p: Percentiles::of(&h),
        });
    }
    let label = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Run {
        label,
        summary,
        merged,
        intervals,
    })
}

const STAGE_ORDER: [&str; 7] = [
    "decode", "journal", "kernel", "signal", "fanout", "e2e", "deliver",
];

fn stages_of(run: &Run) -> Vec<&str> {
    let mut v: Vec<&str> = STAGE_ORDER
        .iter()
        .copied()
        .filter(|s| run.merged.contains_key(*s))
        .collect();
    for k in run.merged.keys() {
        if !v.contains(&k.as_str()) {
            v.push(k);
        }
    }
    v
}

/// Percentiles of a run's stage from the merged interval log.
pub fn run_percentiles(run: &Run, stage: &str) -> Option<Percentiles> {
    run.merged.get(stage).map(Percentiles::of)
}

/// Renders the Markdown report.
pub fn render_markdown(runs: &[Run]) -> String {
    let mut s = String::from("# tickwire latency report\n\n");
    for run in runs {
        let _ = writeln!(s, "## {}\n", run.label);
        if let Some(sum) = &run.summary {
            let _ = writeln!(
                s,
                "mode {:?}, source {}, offered {:.0} msg/s, achieved {:.0} msg/s over {:.1} s, {} messages, ring-full {}, drops {}, errors {}  \nmachine: {} ({} cores), kernel {}\n",
                sum.mode,
                sum.source,
                sum.offered_rate,
                sum.achieved_rate,
                sum.elapsed_s,
                sum.messages,
                sum.ring_full,
                sum.drops,
                sum.errors,
                sum.machine.cpu_model,
                sum.machine.cores,
                sum.machine.kernel
            );
        }
        s.push_str("| stage | count | p50 | p90 | p99 | p99.9 | p99.99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for st in stages_of(run) {
            if let Some(p) = run_percentiles(run, st) {
                let _ = writeln!(
                    s,
                    "| {st} | {} | {} | {} | {} | {} | {} | {} |",
                    p.count,
                    fmt_ns(p.p50),
                    fmt_ns(p.p90),
                    fmt_ns(p.p99),
                    fmt_ns(p.p999),
                    fmt_ns(p.p9999),
                    fmt_ns(p.max)
                );
            }
        }
        s.push('\n');
    }
    if runs.len() == 2 {
        let (a, b) = (&runs[0], &runs[1]);
        let _ = writeln!(
            s,
            "## Comparison: {} (B) / {} (A)\n\nRatio B/A per percentile; below 1.00 means B is faster.\n",
            b.label, a.label
        );
        s.push_str("| stage | p50 | p90 | p99 | p99.9 | p99.99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for st in stages_of(a) {
            if let (Some(pa), Some(pb)) = (run_percentiles(a, st), run_percentiles(b, st)) {
                let r = |x: u64, y: u64| {
                    if x == 0 {
                        "n/a".to_string()
                    } else {
                        format!("{:.2}", y as f64 / x as f64)
                    }
                };
                let _ = writeln!(
                    s,
                    "| {st} | {} | {} | {} | {} | {} | {} |",
                    r(pa.p50, pb.p50),
                    r(pa.p90, pb.p90),
                    r(pa.p99, pb.p99),
                    r(pa.p999, pb.p999),
                    r(pa.p9999, pb.p9999),
                    r(pa.max, pb.max)
                );
            }
        }
        s.push('\n');
    }
    s.push_str("Plots: [percentiles.svg](percentiles.svg), [latency_over_time.svg](latency_over_time.svg), [throughput.svg](throughput.svg)\n");
    s
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders a self-contained HTML page (tables + inlined SVG plots).
pub fn render_html(md: &str, svgs: &[(String, String)]) -> String {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>tickwire latency report</title>\
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}</style></head><body>\n",
    );
    let mut in_table = false;
    for line in md.lines() {
        if let Some(t) = line.strip_prefix("## ") {
            let _ = writeln!(h, "<h2>{}</h2>", html_escape(t));
        } else if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(h, "<h1>{}</h1>", html_escape(t));
        } else if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                h.push_str("<table>");
                in_table = true;
            }
            h.push_str("<tr>");
            for c in cells {
                let _ = write!(h, "<{tag}>{}</{tag}>", html_escape(c));
            }
            h.push_str("</tr>\n");
        } else {
            if in_table {
                h.push_str("</table>\n");
                in_table = false;
            }
            if !line.trim().is_empty() && !line.starts_with("Plots:") {
                let _ = writeln!(h, "<p>{}</p>", html_escape(line));
            }
        }
    }
    if in_table {
        h.push_str("</table>\n");
    }
    for (name, svg) in svgs {
        let _ = writeln!(h, "<h2>{}</h2>\n{}", html_escape(name), svg);
    }
    h.push_str("</body></html>\n");
    h
}

const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

fn plot_err<E: std::fmt::Debug>(e: E) -> String {
    format!("plotting failed: {e:?}")
}

/// The percentile distribution plot of e2e latency for every run.
///
/// # Errors
/// Plotting errors.
pub fn plot_percentiles(runs: &[Run]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut max_us = 1.0f64;
        let mut series = Vec::new();
        for run in runs {
            let Some(h) = run.merged.get("e2e") else {
                continue;
            };
            let mut pts = Vec::new();
            // 1/(1-p) from 1 (p=0) to 1e5 (p=0.99999), log-spaced.
            let mut x = 1.0f64;
            while x <= 1e5 {
                let q = 1.0 - 1.0 / x;
                let v = h.value_at_quantile(q) as f64 / 1e3;
                max_us = max_us.max(v);
                pts.push((x, v));
                x *= 1.12;
            }
            series.push((run.label.clone(), pts));
        }
        let mut chart = ChartBuilder::on(&root)
            .caption("end-to-end latency by percentile", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((1.0f64..1e5f64).log_scale(), 0.0f64..max_us * 1.1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (µs)")
            .x_label_formatter(&|x| {
                let p = 100.0 * (1.0 - 1.0 / x);
                format!("{p:.3}%")
            })
            .draw()
            .map_err(plot_err)?;
        for (i, (label, pts)) in series.into_iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// e2e p50/p99/max per interval over time, per run.
///
/// # Errors
/// Plotting errors.
pub fn plot_over_time(runs: &[Run]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut t_max = 1.0f64;
        let mut y_max = 1.0f64;
        for run in runs {
            for p in run.intervals.get("e2e").into_iter().flatten() {
                t_max = t_max.max(p.start_s + p.duration_s);
                y_max = y_max.max(p.p.p99 as f64 / 1e3);
            }
        }
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "end-to-end latency over time (p50 solid, p99 dashed-thin)",
                ("sans-serif", 20),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0f64..t_max, 0.0f64..y_max * 1.2)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("latency (µs)")
            .draw()
            .map_err(plot_err)?;
        for (i, run) in runs.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<&IntervalPoint> = run.intervals.get("e2e").into_iter().flatten().collect();
            chart
                .draw_series(LineSeries::new(
                    pts.iter()
                        .map(|p| (p.start_s + p.duration_s, p.p.p50 as f64 / 1e3)),
                    c.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("{} p50", run.label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
            chart
                .draw_series(LineSeries::new(
                    pts.iter()
                        .map(|p| (p.start_s + p.duration_s, p.p.p99 as f64 / 1e3)),
                    c.stroke_width(1),
                ))
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Achieved vs offered rate for runs that have an offered rate.
///
/// # Errors
/// Plotting errors.
pub fn plot_throughput(runs: &[Run]) -> Result<String, String> {
    let mut pts: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|r| r.summary.as_ref())
        .filter(|s| s.offered_rate > 0.0)
        .map(|s| (s.offered_rate, s.achieved_rate))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let max = pts.iter().map(|p| p.0.max(p.1)).fold(1.0f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption("achieved vs offered rate (msg/s)", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0f64..max, 0.0f64..max)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("offered")
            .y_desc("achieved")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (max, max)],
                BLACK.mix(0.3),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))
            .map_err(plot_err)?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Expands inputs: a directory without `summary.json` but with bench
/// subdirectories (a sweep) becomes its subdirectories, in name order.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() && !p.join("latency.hlog").exists() {
            let mut subs: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|s| s.join("latency.hlog").exists())
                .collect();
            subs.sort();
            if subs.is_empty() {
                out.push(p.clone());
            } else {
                out.extend(subs);
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Writes the full report for `inputs` into `out`. Returns the runs.
///
/// # Errors
/// Unreadable inputs, unwritable output, plotting errors.
pub fn write_report(inputs: &[PathBuf], out: &Path) -> Result<Vec<Run>, String> {
    let paths = expand_inputs(inputs);
    if paths.is_empty() {
        return Err("no inputs: give bench output directories or .hlog files".into());
    }
    let runs: Vec<Run> = paths
        .iter()
        .map(|p| load_run(p))
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let md = render_markdown(&runs);
    let svgs = vec![
        ("percentiles.svg".to_string(), plot_percentiles(&runs)?),
        ("latency_over_time.svg".to_string(), plot_over_time(&runs)?),
        ("throughput.svg".to_string(), plot_throughput(&runs)?),
    ];
    let write = |name: &str, body: &str| {
        let p = out.join(name);
        std::fs::write(&p, body).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write("report.md", &md)?;
    for (n, s) in &svgs {
        write(n, s)?;
    }
    write("report.html", &render_html(&md, &svgs))?;
    Ok(runs)
}
