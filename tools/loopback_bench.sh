#!/usr/bin/env bash
# Loopback throughput bench: Binance trades for 10 symbols from
# `tickwire feedsim --max` (a separate process) over ws:// on 127.0.0.1 into
# `tickwire run` (full pipeline: WebSocket read → decode → kernel → signal →
# fan-out), then prints msgs/s, drops and the latency summary.
#
# Usage: tools/loopback_bench.sh [SECONDS] [--tls] [--inproc] [--no-journal]
#   SECONDS       run length (default 10)
#   --tls         wss:// with feedsim's self-signed certificate
#   --inproc      feedsim in the engine process (feedsim:// URL, live
#                 generator) instead of a separate process serving a
#                 prebuilt frame pool
#   --no-journal  skip the tick journal (default: journaled to a temp dir)
# Env: TICKWIRE (binary; default target/release/tickwire, built if missing),
#      CARGO_TARGET_DIR (where cargo builds).
set -euo pipefail

secs=10
tls=0
inproc=0
journal=1
for a in "$@"; do
  case "$a" in
    --tls) tls=1 ;;
    --inproc) inproc=1 ;;
    --no-journal) journal=0 ;;
    [0-9]*) secs="$a" ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${TICKWIRE:-$target/release/tickwire}"
if [[ ! -x "$bin" ]]; then
  (cd "$root" && cargo build --release)
fi

work="$(mktemp -d)"
sim_pid=""
cleanup() {
  if [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

syms=(BTCUSDT:2:5:61837.63 ETHUSDT:2:4:2650.17 BNBUSDT:2:3:520.40 SOLUSDT:2:2:151.22
      XRPUSDT:4:0:0.5731 DOGEUSDT:5:0:0.10321 ADAUSDT:4:1:0.3512 AVAXUSDT:2:2:25.17
      LINKUSDT:3:2:10.412 DOTUSDT:3:2:4.611)

cfg="$work/bench.toml"
{
  echo '[engine]'
  echo 'log_level = "warn"'
  echo '[telemetry]'
  echo 'stats_interval_secs = 0'
  for s in "${syms[@]}"; do
    IFS=: read -r sym pp sp px <<<"$s"
    printf '[[instruments]]\nsymbol = "BINANCE:%s"\nprice_precision = %s\nsize_precision = %s\nsim_price = "%s"\n' \
      "$sym" "$pp" "$sp" "$px"
  done
} >"$cfg"

if [[ $inproc == 1 ]]; then
  scheme=feedsim; [[ $tls == 1 ]] && scheme=feedsims
  url="$scheme://127.0.0.1:0"
  extra=''
else
  tlsflag=(); [[ $tls == 1 ]] && tlsflag=(--tls --cert-out "$work/ca.pem")
  "$bin" feedsim --venue binance --listen 127.0.0.1:0 --max --pool "${POOL:-262144}" --trade-ratio 1.0 \
    --symbols "$(IFS=,; echo "${syms[*]}")" "${tlsflag[@]}" --log-level warn \
    >"$work/feedsim.out" 2>"$work/feedsim.err" &
  sim_pid=$!
  for _ in $(seq 100); do grep -q listening "$work/feedsim.out" 2>/dev/null && break; sleep 0.1; done
  url="$(sed -n 's/^feedsim listening on \([^ ]*\).*/\1/p' "$work/feedsim.out")"
  [[ -n "$url" ]] || { echo "feedsim did not start:" >&2; cat "$work/feedsim.err" >&2; exit 1; }
  extra=''
  [[ $tls == 1 ]] && extra="ca_file = \"$work/ca.pem\""
fi

cat >>"$cfg" <<EOF
[[feeds]]
name = "bench"
adapter = "binance"
venue = "BINANCE"
url = "$url"
channels = ["trade"]
stale_after_ms = 0
$extra
[feeds.sim]
rate = 0.0
paced = false
trade_ratio = 1.0
EOF

echo "loopback bench: $url, 10 symbols, Binance trades, ${secs}s, journal=$journal, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
jflag=(--no-journal); [[ $journal == 1 ]] && jflag=(--journal-dir "$work/journal")
out="$("$bin" run --config "$cfg" --duration "$secs" "${jflag[@]}" 2>&1 >/dev/null)"
echo "$out" | grep -v '^20' || true
if [[ -n "$sim_pid" ]]; then
  kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
  cat "$work/feedsim.err" | grep 'feedsim summary' || true
fi
