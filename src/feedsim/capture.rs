//! A minimal reader of recorded captures for the simulator: just the
//! received frames and their receive times. (The engine's full capture
//! readers live in the feed module; this one only feeds the simulator.)
//!
//! Formats (gzip is detected by its magic bytes and decompressed):
//! - `hftbacktest`: `<recv_epoch_ns> <frame>` per line;
//! - `cryptofeed`: `*.ws.N.0` text, header line, `<url> <- ...` sent
//!   lines (skipped), `<epoch_s>: <frame>` received lines;
//! - `cryptofeed-jsonl`: JSON lines; `t = "recv"` lines carry the frame as
//!   a JSON string in `data` and `ts` in float seconds;
//! - `frames`: one frame per line, no time (served back to back).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Capture file layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// hftbacktest collector lines.
    Hftbacktest,
    /// cryptofeed `.ws` text capture.
    Cryptofeed,
    /// cryptofeed v2 JSON lines.
    CryptofeedJsonl,
    /// One raw frame per line.
    Frames,
}

impl std::str::FromStr for CaptureFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hftbacktest" => Ok(Self::Hftbacktest),
            "cryptofeed" => Ok(Self::Cryptofeed),
            "cryptofeed-jsonl" => Ok(Self::CryptofeedJsonl),
            "frames" => Ok(Self::Frames),
            _ => Err(format!(
                "unknown capture format '{s}'; use hftbacktest, cryptofeed, cryptofeed-jsonl or frames"
            )),
        }
    }
}

/// One recorded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedFrame {
    /// Receive time, ns since the epoch (0 when the format has none).
    pub ts_ns: i64,
    /// The frame text.
    pub text: String,
}

fn secs_to_ns(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: i64 = int.parse().ok()?;
    let mut f = 0i64;
    let mut scale = 100_000_000i64;
    for c in frac.bytes().take(9) {
        if !c.is_ascii_digit() {
            return None;
        }
        f += i64::from(c - b'0') * scale;
        scale /= 10;
    }
    Some(int * 1_000_000_000 + f)
}

/// Reads every received frame of a capture.
///
/// # Errors
/// An unreadable file or a line that does not fit the format (with its
/// line number).
pub fn read_capture(path: &Path, format: CaptureFormat) -> Result<Vec<CapturedFrame>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut r = BufReader::new(file);
    let gz = r
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .unwrap_or(false);
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut out = Vec::new();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: line {}: {e}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "{}: line {} does not look like {format:?}",
                path.display(),
                n + 1
            )
        };
        match format {
            CaptureFormat::Hftbacktest => {
                let (ts, frame) = line.split_once(' ').ok_or_else(bad)?;
                out.push(CapturedFrame {
                    ts_ns: ts.parse().map_err(|_| bad())?,
                    text: frame.to_string(),
                });
            }
            CaptureFormat::Cryptofeed => {
                if n == 0 || line.contains(" <- ") {
                    continue;
                }
                let (ts, frame) = line.split_once(": ").ok_or_else(bad)?;
                out.push(CapturedFrame {
                    ts_ns: secs_to_ns(ts).ok_or_else(bad)?,
                    text: frame.to_string(),
                });
            }
            CaptureFormat::CryptofeedJsonl => {
                let v: serde_json::Value = serde_json::from_str(&line).map_err(|_| bad())?;
                if v.get("t").and_then(|t| t.as_str()) != Some("recv") {
                    continue;
                }
                let text = v.get("data").and_then(|d| d.as_str()).ok_or_else(bad)?;
                let ts = v.get("ts").and_then(|t| t.as_f64()).unwrap_or(0.0);
                out.push(CapturedFrame {
                    ts_ns: (ts * 1e9) as i64,
                    text: text.to_string(),
                });
            }
            CaptureFormat::Frames => out.push(CapturedFrame {
                ts_ns: 0,
                text: line,
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_exactly() {
        assert_eq!(secs_to_ns("1628939270.12"), Some(1_628_939_270_120_000_000));
        assert_eq!(secs_to_ns("5"), Some(5_000_000_000));
        assert_eq!(secs_to_ns("1.1234567891"), Some(1_123_456_789));
        assert_eq!(secs_to_ns("x"), None);
    }

    #[test]
    fn reads_small_files_of_each_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(
            &p,
            "wss://x <-> 1\nwss://x <- 1.5: {\"sub\":1}\n2.25: {\"a\":1}\n\n",
        )
        .unwrap();
        let f = read_capture(&p, CaptureFormat::Cryptofeed).unwrap();
        assert_eq!(
            f,
            vec![CapturedFrame {
                ts_ns: 2_250_000_000,
                text: "{\"a\":1}".into()
            }]
        );
        std::fs::write(&p, "{\"t\":\"send\",\"data\":\"x\"}\n{\"t\":\"recv\",\"ts\":1.5,\"data\":\"{\\\"b\\\":2}\"}\n").unwrap();
        let f = read_capture(&p, CaptureFormat::CryptofeedJsonl).unwrap();
        assert_eq!(f[0].text, "{\"b\":2}");
        std::fs::write(&p, "17 {\"c\":3}\n").unwrap();
        let f = read_capture(&p, CaptureFormat::Hftbacktest).unwrap();
        assert_eq!(f[0].ts_ns, 17);
        assert!(
            read_capture(&p, CaptureFormat::Cryptofeed)
                .unwrap()
                .is_empty()
        );
        std::fs::write(&p, "nonsense\n").unwrap();
        assert!(
            read_capture(&p, CaptureFormat::Hftbacktest)
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn reads_the_real_binance_capture_when_present() {
        let p = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/real/binance-spot/btcusdt_20240808.gz"
        ));
        if !p.exists() {
            eprintln!("SKIPPED: ../shared/data/real not found");
            return;
        }
        let f = read_capture(&p, CaptureFormat::Hftbacktest).unwrap();
        assert_eq!(f.len(), 41_249);
        assert!(f.iter().filter(|x| x.text.contains("@trade")).count() == 9_757);
    }
}
