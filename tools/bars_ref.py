#!/usr/bin/env python3
"""Reference bars from recorded trades, computed independently with pandas.

Reads the trades of a capture directly (not through tickwire), resamples them
into UTC-aligned windows with pandas and prints one JSON object per
non-empty bar, ordered by symbol, window, start:

    {"symbol": "BTCUSDT", "window": "1s", "start": <ns>, "end": <ns>,
     "open": "61837.63", "high": ..., "low": ..., "close": ...,
     "volume": "0.22682", "buy_volume": ..., "sell_volume": ...,
     "trades": 47, "vwap": 61834.37568336126,
     "avg_volume_20": 0.1472525, "session_vwap": 61685.99820592205}

* Prices and sizes are exact: they are read as decimals, held as integers
  scaled by 10^8 (the script checks no digit is lost) and printed back as
  normalized decimal strings.
* `vwap` is sum(price*size)/sum(size) computed exactly (Python integers and
  a Fraction) and rounded once to the nearest float.
* `avg_volume_20` is pandas' rolling 20-bar mean of the bar volumes (as
  floats, absent before 20 bars); `session_vwap` is the exact VWAP of the
  symbol's trades from UTC midnight up to the end of the bar.

Formats:
  hftbacktest  gzip lines "<recv_ns> <Binance combined-stream frame>";
               trades are "trade"/"aggTrade" payloads (event time T, ms;
               side from "m": buyer is maker -> sell)
  tardis-csv   Tardis trades CSV
               exchange,symbol,timestamp,local_timestamp,id,side,price,amount
               (timestamp in microseconds)

Usage: bars_ref.py --format hftbacktest --window 1s --window 1m FILE

Needs `pip install pandas numpy`.
"""

import argparse
import csv
import gzip
import json
import sys
from decimal import Decimal
from fractions import Fraction

import pandas as pd

SCALE = 10**8


def scaled(text):
    d = Decimal(text) * SCALE
    if d != d.to_integral_value():
        raise SystemExit(f"value {text!r} has more than 8 fraction digits")
    return int(d)


def dec(units):
    d = (Decimal(units) / SCALE).normalize()
    # normalize() may give exponent form (1E+1); print plainly.
    return format(d, "f")


def read_hftbacktest(path):
    rows = []
    with gzip.open(path, "rt") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            _, frame = line.split(" ", 1)
            msg = json.loads(frame)
            data = msg.get("data", msg)
            if not isinstance(data, dict) or data.get("e") not in ("trade", "aggTrade"):
                continue
            side = "sell" if data["m"] else "buy"
            rows.append(
                (data["s"].upper(), int(data["T"]) * 1_000_000, scaled(data["p"]), scaled(data["q"]), side)
            )
    return rows


def read_tardis(path):
    rows = []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        for r in csv.DictReader(f):
            rows.append(
                (r["symbol"].upper(), int(r["timestamp"]) * 1000, scaled(r["price"]), scaled(r["amount"]), r["side"])
            )
    return rows


def window_ns(name):
    unit = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}[name[-1]]
    return int(name[:-1]) * unit


def bars_for(df, window):
    wns = window_ns(window)
    freq = pd.Timedelta(wns, unit="ns")
    r = df.resample(freq, label="left", closed="left", origin="epoch")
    ohlc = pd.DataFrame(
        {
            "open": r["price"].first(),
            "high": r["price"].max(),
            "low": r["price"].min(),
            "close": r["price"].last(),
            "volume": r["size"].sum(),
            "buy_volume": r["buy"].sum(),
            "sell_volume": r["sell"].sum(),
            "trades": r["price"].count(),
        }
    )
    ohlc = ohlc[ohlc["trades"] > 0].copy()
    # Exact notional per bar and cumulative per UTC day (Python ints).
    bin_start = (df["ts"] // wns) * wns
    pv_by_bin = {}
    for b, pv in zip(bin_start, df["pv"]):
        pv_by_bin[b] = pv_by_bin.get(b, 0) + pv
    ohlc["avg_volume_20"] = (ohlc["volume"].astype("float64") / SCALE).rolling(20).mean()
    day = 86_400 * 10**9
    out = []
    cum_pv, cum_v, cur_day = 0, 0, None
    for ts, row in ohlc.iterrows():
        start = int(ts.value)
        if start // day != cur_day:
            cur_day, cum_pv, cum_v = start // day, 0, 0
        pv = pv_by_bin[start]
        vol = int(row["volume"])
        cum_pv += pv
        cum_v += vol
        o = {
            "window": window,
            "start": start,
            "end": start + wns,
            "open": dec(int(row["open"])),
            "high": dec(int(row["high"])),
            "low": dec(int(row["low"])),
            "close": dec(int(row["close"])),
            "volume": dec(vol),
            "buy_volume": dec(int(row["buy_volume"])),
            "sell_volume": dec(int(row["sell_volume"])),
            "trades": int(row["trades"]),
        }
        if vol > 0:
            o["vwap"] = float(Fraction(pv, vol * SCALE))
        if cum_v > 0:
            o["session_vwap"] = float(Fraction(cum_pv, cum_v * SCALE))
        if not pd.isna(row["avg_volume_20"]):
            o["avg_volume_20"] = float(row["avg_volume_20"])
        out.append(o)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", required=True, choices=["hftbacktest", "tardis-csv"])
    ap.add_argument("--window", action="append", required=True, help="e.g. 1s, 1m, 15m, 1h (repeatable)")
    ap.add_argument("file")
    a = ap.parse_args()
    rows = read_hftbacktest(a.file) if a.format == "hftbacktest" else read_tardis(a.file)
    if not rows:
        raise SystemExit("no trades found")
    all_df = pd.DataFrame(rows, columns=["symbol", "ts", "price", "size", "side"])
    all_df["buy"] = all_df["size"].where(all_df["side"] == "buy", 0)
    all_df["sell"] = all_df["size"].where(all_df["side"] == "sell", 0)
    all_df["pv"] = [p * s for p, s in zip(all_df["price"], all_df["size"])]
    all_df.index = pd.to_datetime(all_df["ts"], unit="ns", utc=True)
    out = sys.stdout
    for symbol in sorted(all_df["symbol"].unique()):
        df = all_df[all_df["symbol"] == symbol]
        for w in a.window:
            for bar in bars_for(df, w):
                bar = {"symbol": symbol, **bar}
                out.write(json.dumps(bar, allow_nan=False))
                out.write("\n")


if __name__ == "__main__":
    main()
