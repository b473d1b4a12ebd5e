#!/usr/bin/env python3
"""Reference values from the real TA-Lib, for comparing tickwire's indicators.

Reads closes as CSV on stdin: either a header row naming a `close` column
(case-insensitive; otherwise the first column is used) or no header at all,
then one row per bar. Prints one JSON object per input row:

    {"i": 0, "sma_20": ..., "sma_50": ..., "sma_200": ..., "ema_12": ...,
     "ema_26": ..., "rsi_14": ..., "macd": ..., "macd_signal": ...,
     "macd_hist": ..., "bb_upper": ..., "bb_middle": ..., "bb_lower": ...}

A key is absent where TA-Lib returns NaN (before the indicator's lookback).
Floats are printed with Python's repr, which round-trips exactly.

Needs `pip install TA-Lib numpy`.
"""

import csv
import json
import math
import sys

import numpy as np
import talib


def read_closes(stream):
    rows = [row for row in csv.reader(stream) if row and any(c.strip() for c in row)]
    if not rows:
        return np.array([], dtype=np.float64)
    col = 0
    try:
        float(rows[0][0])
    except ValueError:
        header = [c.strip().lower() for c in rows[0]]
        col = header.index("close") if "close" in header else 0
        rows = rows[1:]
    return np.array([float(r[col]) for r in rows], dtype=np.float64)


def main():
    close = read_closes(sys.stdin)
    series = {}
    if len(close):
        for n in (20, 50, 200):
            series[f"sma_{n}"] = talib.SMA(close, timeperiod=n)
        for n in (12, 26):
            series[f"ema_{n}"] = talib.EMA(close, timeperiod=n)
        series["rsi_14"] = talib.RSI(close, timeperiod=14)
        macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
        series["macd"], series["macd_signal"], series["macd_hist"] = macd, signal, hist
        upper, middle, lower = talib.BBANDS(
            close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA
        )
        series["bb_upper"], series["bb_middle"], series["bb_lower"] = upper, middle, lower

    out = sys.stdout
    for i in range(len(close)):
        row = {"i": i}
        for key, values in series.items():
            v = float(values[i])
            if not math.isnan(v):
                row[key] = v
        out.write(json.dumps(row, allow_nan=False))
        out.write("\n")


if __name__ == "__main__":
    main()
