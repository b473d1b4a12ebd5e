//! `tickwire journal {inspect, verify, export, tail}`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use tickwire::decimal::format_scaled;
use tickwire::journal::events::EventReader;
use tickwire::journal::ticks::TickReader;
use tickwire::json::{JsonContext, write_tick};
use tickwire::tick::{Tick, TickKind};

#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Decode a recorded capture (hftbacktest, cryptofeed, Tardis CSV, raw
    /// frames) with the venue adapters; counts go to stderr.
    Import(super::import::ImportArgs),
    /// Segments, record counts, time range, instruments, gaps.
    Inspect(InspectArgs),
    /// Check every checksum and the index order; exit 1 with the first bad
    /// segment and byte offset on corruption.
    Verify {
        /// Journal directory.
        dir: PathBuf,
    },
    /// Export ticks as CSV or JSON lines with exact decimal strings.
    Export(ExportArgs),
    /// Print the last records, then follow a journal another process is
    /// writing (JSON lines).
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Journal directory.
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One EVENTS.md JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Journal directory.
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Only ticks with event time ≥ T (ns since the Unix epoch, or RFC 3339
    /// such as 2024-08-08T23:55:00Z).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Only ticks with event time < T (same forms as --from).
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Only these instruments (comma-separated VENUE:SYMBOL).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub symbols: Option<Vec<String>>,
    /// Only these kinds (comma list of trade, quote, book_level, bar, gap,
    /// feed_status).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub kinds: Option<Vec<String>>,
    /// Write here instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Journal directory.
    pub dir: PathBuf,
    /// Print this many of the latest records first.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: u64,
    /// Stop when caught up instead of following.
    #[arg(long)]
    pub no_follow: bool,
    /// Stop after this many seconds (0 = follow until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub duration: u64,
}

pub fn cmd_journal(cmd: JournalCmd) -> Result<i32> {
    match cmd {
        JournalCmd::Import(a) => super::import::cmd_import(a),
        JournalCmd::Inspect(a) => inspect(a),
        JournalCmd::Verify { dir } => verify(dir),
        JournalCmd::Export(a) => export(a),
        JournalCmd::Tail(a) => tail(a),
    }
}

fn verify(dir: PathBuf) -> Result<i32> {
    match tickwire::journal::verify(&dir) {
        Ok(r) => {
            println!(
                "ok: {} segment(s), records {}..{} ({} checked), record size {}, {} valid uncommitted, {} unused preallocated segment(s)",
                r.segments,
                r.first_index,
                r.next_index,
                r.records,
                r.record_size.map_or("-".into(), |s| s.to_string()),
                r.uncommitted_valid,
                r.unused_segments
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("corrupt: {e}");
            if let (Some(seg), Some(off)) = (e.segment(), e.offset()) {
                eprintln!("first bad record: {} at byte offset {off}", seg.display());
            }
            Ok(1)
        }
    }
}

#[derive(Debug, Default, serde::Serialize)]
struct InstStats {
    ticks: u64,
    trades: u64,
    quotes: u64,
    book_levels: u64,
    gaps: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

fn inspect(a: InspectArgs) -> Result<i32> {
    let rep = tickwire::journal::inspect(&a.dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    if EventReader::is_event_journal(&a.dir) {
        let mut rd = EventReader::open(&a.dir).map_err(anyhow::Error::msg)?;
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut total = 0u64;
        while let Some(json) = rd.next_json().map_err(anyhow::Error::msg)? {
            total += 1;
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
            *by_type
                .entry(v["type"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        if a.json {
            let v = serde_json::json!({"dir": a.dir.display().to_string(), "kind": "events",
                "events": total, "segments": rep.segments.len(), "by_type": by_type});
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!(
                "event journal {}: {total} events in {} segment(s)",
                a.dir.display(),
                rep.segments.len()
            );
            for (t, n) in &by_type {
                println!("  {t:<18} {n:>9}");
            }
        }
        return Ok(0);
    }
    let mut rd = TickReader::open(&a.dir).map_err(anyhow::Error::msg)?;
    let mut per: BTreeMap<String, InstStats> = BTreeMap::new();
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    let mut total = 0u64;
    while let Some((_, t)) = rd.next_tick().map_err(anyhow::Error::msg)? {
        total += 1;
        let name = rd
            .registry
            .get(t.instrument)
            .map_or_else(|| format!("?:{}", t.instrument.0), |i| i.key.clone());
        let s = per.entry(name).or_default();
        s.ticks += 1;
        match t.kind() {
            Some(TickKind::Trade) => s.trades += 1,
            Some(TickKind::Quote) => s.quotes += 1,
            Some(TickKind::BookLevel) => s.book_levels += 1,
            Some(TickKind::Gap) => s.gaps += 1,
            _ => {}
        }
        s.first_ts = Some(s.first_ts.map_or(t.ts_event_ns, |v| v.min(t.ts_event_ns)));
        s.last_ts = Some(s.last_ts.map_or(t.ts_event_ns, |v| v.max(t.ts_event_ns)));
        min_ts = min_ts.min(t.ts_event_ns);
        max_ts = max_ts.max(t.ts_event_ns);
    }
    if a.json {
        let segs: Vec<_> = rep
            .segments
            .iter()
            .map(|s| {
                serde_json::json!({
                    "file": s.path.display().to_string(),
                    "first_index": s.first_index,
                    "committed": s.committed,
                    "capacity": s.capacity,
                    "record_size": s.record_size,
                })
            })
            .collect();
        let v = serde_json::json!({
            "dir": a.dir.display().to_string(),
            "records": total,
            "first_index": rep.first_index,
            "next_index": rep.next_index,
            "segments": segs,
            "ts_event_min": (total > 0).then_some(min_ts),
            "ts_event_max": (total > 0).then_some(max_ts),
            "instruments": per,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("journal {}", a.dir.display());
    println!(
        "  records {} (index {}..{}), {} segment(s)",
        total,
        rep.first_index.unwrap_or(0),
        rep.next_index.unwrap_or(0),
        rep.segments.len()
    );
    for s in &rep.segments {
        println!(
            "  {}  first {}  committed {}/{}  record {} B",
            s.path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            s.first_index,
            s.committed,
            s.capacity,
            s.record_size
        );
    }
    if total > 0 {
        println!(
            "  event time {} .. {} ({:.1} s)",
            fmt_time(min_ts),
            fmt_time(max_ts),
            (max_ts - min_ts) as f64 / 1e9
        );
    }
    println!("  instrument                ticks     trades     quotes   book lvls   gaps");
    for (k, s) in &per {
        println!(
            "  {:<22} {:>9} {:>10} {:>10} {:>11} {:>6}",
            k, s.ticks, s.trades, s.quotes, s.book_levels, s.gaps
        );
    }
    Ok(0)
}

/// Formats ns since the epoch as RFC 3339 UTC (`2024-08-08T23:55:01.123456789Z`).
pub fn fmt_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses ns since the epoch, or RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SS[.f]Z`).
pub fn parse_time(s: &str) -> Result<i64> {
    let s = s.trim();
    if let Ok(ns) = s.parse::<i64>() {
        return Ok(ns);
    }
    let bad = || {
        anyhow::anyhow!(
            "time '{s}' must be ns since the epoch or RFC 3339 UTC like 2024-08-08T23:55:00Z"
        )
    };
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64> {
        s.get(r).and_then(|x| x.parse().ok()).ok_or_else(bad)
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let rest = &s[19..];
    let (frac, tz) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            let digits = &r[..end.min(9)];
            let mut f: i64 = if digits.is_empty() {
                0
            } else {
                digits.parse().map_err(|_| bad())?
            };
            for _ in digits.len()..9 {
                f *= 10;
            }
            (f, &r[end..])
        }
        None => (0, rest),
    };
    if tz != "Z" && tz != "+00:00" {
        return Err(bad());
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000_000 + frac)
}

fn kind_of(name: &str) -> Option<TickKind> {
    [
        TickKind::Trade,
        TickKind::Quote,
        TickKind::BookLevel,
        TickKind::Bar,
        TickKind::Gap,
        TickKind::FeedStatus,
    ]
    .into_iter()
    .find(|k| k.as_str() == name || format!("{}s", k.as_str()) == name)
}

fn export(a: ExportArgs) -> Result<i32> {
    if EventReader::is_event_journal(&a.dir) {
        return export_events(a);
    }
    let mut rd = TickReader::open(&a.dir).map_err(anyhow::Error::msg)?;
    let from = a.from.as_deref().map(parse_time).transpose()?;
    let to = a.to.as_deref().map(parse_time).transpose()?;
    let mut wanted_inst = None;
    if let Some(list) = &a.symbols {
        let mut ids = Vec::new();
        for s in list {
            match rd.registry.lookup_key(s) {
                Some(id) => ids.push(id),
                None => {
                    let known: Vec<_> = rd.registry.iter().map(|i| i.key.clone()).collect();
                    bail!(
                        "symbol '{s}' is not in this journal; it has: {}",
                        known.join(", ")
                    );
                }
            }
        }
        wanted_inst = Some(ids);
    }
    let mut wanted_kinds = None;
    if let Some(list) = &a.kinds {
        let mut ks = Vec::new();
        for k in list {
            ks.push(kind_of(k).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown kind '{k}'; known: trade, quote, book_level, bar, gap, feed_status"
                )
            })?);
        }
        wanted_kinds = Some(ks);
    }
    let total = tickwire::journal::inspect(&a.dir)
        .map(|r| {
            r.next_index
                .unwrap_or(0)
                .saturating_sub(r.first_index.unwrap_or(0))
        })
        .unwrap_or(0);
    let sink: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, sink);
    let ctx = JsonContext::new(rd.registry.clone(), &[]);
    let pb = (std::io::stderr().is_terminal() && total > 100_000).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        if let Ok(st) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records ({eta})")
        {
            pb.set_style(st);
        }
        pb
    });
    if a.format == ExportFormat::Csv {
        writeln!(
            out,
            "type,symbol,ts_event,ts_recv,price,size,price2,size2,side,id,flags"
        )?;
    }
    let mut buf = Vec::with_capacity(512);
    let mut n = 0u64;
    let mut seen = 0u64;
    while let Some((_, t)) = rd.next_tick().map_err(anyhow::Error::msg)? {
        seen += 1;
        if let Some(pb) = &pb
            && seen % 65_536 == 0
        {
            pb.set_position(seen);
        }
        if from.is_some_and(|f| t.ts_event_ns < f) || to.is_some_and(|x| t.ts_event_ns >= x) {
            continue;
        }
        if wanted_inst
            .as_ref()
            .is_some_and(|ids| !ids.contains(&t.instrument))
        {
            continue;
        }
        if wanted_kinds
            .as_ref()
            .is_some_and(|ks| !t.kind().is_some_and(|k| ks.contains(&k)))
        {
            continue;
        }
        buf.clear();
        match a.format {
            ExportFormat::Jsonl => write_tick(&mut buf, &ctx, &t),
            ExportFormat::Csv => write_csv(&mut buf, &ctx, &t),
        }
        buf.push(b'\n');
        if let Err(e) = out.write_all(&buf) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
        n += 1;
    }
    if let Err(e) = out.flush()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    eprintln!("exported {n} of {seen} records");
    Ok(0)
}

fn write_csv(buf: &mut Vec<u8>, ctx: &JsonContext, t: &Tick) {
    let inst = ctx.registry().get(t.instrument);
    let (pp, sp) = inst.map_or((0, 0), |i| (i.price_precision, i.size_precision));
    let name = inst.map_or_else(|| format!("?:{}", t.instrument.0), |i| i.key.clone());
    let kind = t.kind().map_or("unknown", TickKind::as_str);
    let _ = write!(
        buf,
        "{kind},{name},{},{},{},{},{},{},{},{},{}",
        t.ts_event_ns,
        t.ts_recv_ns,
        format_scaled(t.price, pp),
        format_scaled(t.size, sp),
        format_scaled(t.price2, pp),
        format_scaled(
            t.size2,
            if t.kind() == Some(TickKind::Bar) {
                pp
            } else {
                sp
            }
        ),
        t.side().as_str(),
        t.id,
        t.flags
    );
}

/// Event journals hold JSON objects: export writes them as JSON lines,
/// filtered by `--symbols` and `--kinds` (the objects' `type`).
fn export_events(a: ExportArgs) -> Result<i32> {
    if a.format == ExportFormat::Csv {
        bail!(
            "{} is an event journal: export it with --format jsonl",
            a.dir.display()
        );
    }
    if a.from.is_some() || a.to.is_some() {
        bail!("--from/--to apply to tick journals; filter event journals with jq on ts_event");
    }
    let mut rd = EventReader::open(&a.dir).map_err(anyhow::Error::msg)?;
    let sink: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(sink);
    let (mut n, mut seen) = (0u64, 0u64);
    while let Some(json) = rd.next_json().map_err(anyhow::Error::msg)? {
        seen += 1;
        if a.symbols.is_some() || a.kinds.is_some() {
            let v: serde_json::Value = serde_json::from_slice(&json)?;
            if let Some(syms) = &a.symbols
                && !v["symbol"]
                    .as_str()
                    .is_some_and(|s| syms.iter().any(|x| x.eq_ignore_ascii_case(s)))
            {
                continue;
            }
            if let Some(kinds) = &a.kinds
                && !v["type"]
                    .as_str()
                    .is_some_and(|t| kinds.iter().any(|k| k == t))
            {
                continue;
            }
        }
        out.write_all(&json)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    eprintln!("exported {n} of {seen} events");
    Ok(0)
}

fn tail(a: TailArgs) -> Result<i32> {
    if EventReader::is_event_journal(&a.dir) {
        return tail_events(a);
    }
    // Wait for the journal to appear (tail may start before the writer).
    let deadline =
        (a.duration > 0).then(|| std::time::Instant::now() + Duration::from_secs(a.duration));
    let mut rd = loop {
        match TickReader::open(&a.dir) {
            Ok(r) => break r,
            Err(e) => {
                if a.no_follow || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    bail!("{e}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    if let Ok(rep) = tickwire::journal::inspect(&a.dir) {
        let first = rep.first_index.unwrap_or(0);
        let start = rep
            .next_index
            .unwrap_or(0)
            .saturating_sub(a.lines)
            .max(first);
        rd.seek(start).map_err(anyhow::Error::msg)?;
    }
    let ctx = JsonContext::new(rd.registry.clone(), &[]);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut any = false;
        while let Some((_, t)) = rd.next_tick().map_err(anyhow::Error::msg)? {
            any = true;
            buf.clear();
            write_tick(&mut buf, &ctx, &t);
            buf.push(b'\n');
            if out.write_all(&buf).is_err() {
                return Ok(0); // reader went away (e.g. `| head`)
            }
        }
        if out.flush().is_err() {
            return Ok(0);
        }
        if a.no_follow || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(0);
        }
        if !any {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn tail_events(a: TailArgs) -> Result<i32> {
    let deadline =
        (a.duration > 0).then(|| std::time::Instant::now() + Duration::from_secs(a.duration));
    let mut rd = EventReader::open(&a.dir).map_err(anyhow::Error::msg)?;
    if let Ok(rep) = tickwire::journal::inspect(&a.dir) {
        // Records, not events: a split object is a few records. Start a bit
        // early and skip a leading partial object.
        let first = rep.first_index.unwrap_or(0);
        let start = rep
            .next_index
            .unwrap_or(0)
            .saturating_sub(a.lines)
            .max(first);
        rd.seek(start).map_err(anyhow::Error::msg)?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let mut any = false;
        while let Some(json) = rd.next_json().map_err(anyhow::Error::msg)? {
            any = true;
            if out
                .write_all(&json)
                .and_then(|_| out.write_all(b"\n"))
                .is_err()
            {
                return Ok(0);
            }
        }
        if out.flush().is_err() {
            return Ok(0);
        }
        if a.no_follow || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(0);
        }
        if !any {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ns = 1_723_161_255_342_000_001;
        let s = fmt_time(ns);
        assert_eq!(s, "2024-08-08T23:54:15.342000001Z");
        assert_eq!(parse_time(&s).unwrap(), ns);
        assert_eq!(
            parse_time("2024-08-08T23:54:15Z").unwrap(),
            1_723_161_255_000_000_000
        );
        assert_eq!(
            parse_time("1723161255000000000").unwrap(),
            1_723_161_255_000_000_000
        );
        assert_eq!(parse_time("1970-01-01T00:00:00.5Z").unwrap(), 500_000_000);
        assert_eq!(
            parse_time("2000-02-29T12:00:00+00:00").unwrap(),
            951_825_600_000_000_000
        );
        assert!(parse_time("2024-13-01T00:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-08-08T23:54:15+02:00").is_err());
        assert_eq!(fmt_time(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(kind_of("trade"), Some(TickKind::Trade));
        assert_eq!(kind_of("trades"), Some(TickKind::Trade));
        assert_eq!(kind_of("book_level"), Some(TickKind::BookLevel));
        assert_eq!(kind_of("nope"), None);
    }
}
