#!/usr/bin/env python3
"""WebSocket client scenarios for tickwire's server tests.

A third-party client (the `websockets` library) talks to a running engine.
Each scenario prints ONE JSON object (its report) on stdout; the Rust test
asserts on it. Every wait is bounded; a scenario never runs longer than
about a minute.

Usage: ws_scenarios.py SCENARIO HOST:PORT [ARGS...]
Scenarios: flow, errors, oversize, auth TOKEN, max_clients N, slow, bars,
shutdown.
"""

import asyncio
import json
import socket
import sys
import time
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

T = 15  # seconds: longest wait for any single message


async def recv(ws, timeout=T):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, pred, limit=100_000, timeout=T):
    """Reads until pred(msg); returns (match, skipped messages)."""
    skipped = []
    deadline = time.monotonic() + timeout
    while len(skipped) < limit:
        m = await recv(ws, max(0.1, deadline - time.monotonic()))
        if pred(m):
            return m, skipped
        skipped.append(m)
    raise RuntimeError("no matching message")


def consecutive(ids):
    return all(b == a + 1 for a, b in zip(ids, ids[1:]))


async def flow(addr):
    """Subscribe, snapshot, live trades in order, ping, unsubscribe."""
    rep = {}
    async with websockets.connect(f"ws://{addr}/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["trades", "quotes"],
                                  "symbols": ["SIM:BTCUSDT"]}))
        rep["ack"] = await recv(ws)
        msgs = []
        while sum(1 for m in msgs if m["type"] == "trade") < 60:
            msgs.append(await recv(ws))
        rep["first_two_types"] = [m["type"] for m in msgs[:2]]
        rep["trade_ids"] = [int(m["trade_id"]) for m in msgs if m["type"] == "trade"]
        rep["trade_ids_consecutive"] = consecutive(rep["trade_ids"])
        rep["quotes"] = sum(1 for m in msgs if m["type"] == "quote")
        rep["symbols"] = sorted({m.get("symbol", "") for m in msgs})
        rep["types"] = sorted({m["type"] for m in msgs})
        await ws.send('{"op":"ping"}')
        pong, _ = await recv_until(ws, lambda m: m["type"] == "pong")
        rep["pong"] = pong
        await ws.send(json.dumps({"op": "unsubscribe", "channels": ["trades"],
                                  "symbols": ["SIM:BTCUSDT"]}))
        ack, _ = await recv_until(ws, lambda m: m["type"] == "unsubscribed")
        rep["unsub_ack"] = ack
        after = []
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end and len(after) < 500:
            try:
                after.append(await recv(ws, max(0.05, t_end - time.monotonic())))
            except asyncio.TimeoutError:
                break
        rep["after_unsub_trades"] = sum(1 for m in after if m["type"] == "trade")
        rep["after_unsub_quotes"] = sum(1 for m in after if m["type"] == "quote")
        # Subscribing again to all symbols, then everything off.
        await ws.send(json.dumps({"op": "subscribe", "channels": ["trades"], "symbols": ["*"]}))
        ack, _ = await recv_until(ws, lambda m: m["type"] == "subscribed")
        rep["star_ack"] = ack
        seen = set()
        t_end = time.monotonic() + T
        while len(seen) < 2 and time.monotonic() < t_end:
            m = await recv(ws)
            if m["type"] == "trade":
                seen.add(m["symbol"])
        rep["star_symbols"] = sorted(seen)
    return rep


async def errors(addr):
    """Every bad request gets its error code; the connection stays usable."""
    rep = {"codes": {}}
    cases = {
        "malformed": "{nope",
        "not_object": "[1,2,3]",
        "missing_op": '{"channels":["trades"]}',
        "unknown_op": '{"op":"dance"}',
        "unknown_channel": '{"op":"subscribe","channels":["nope"],"symbols":["*"]}',
        "unknown_symbol": '{"op":"subscribe","channels":["trades"],"symbols":["SIM:NOPE"]}',
        "no_symbols": '{"op":"subscribe","channels":["trades"]}',
        "too_many": '{"op":"subscribe","channels":["trades","quotes","book","anomalies"],"symbols":["*"]}',
        "binary": b'\x00\x01',
    }
    async with websockets.connect(f"ws://{addr}/ws") as ws:
        for name, payload in cases.items():
            await ws.send(payload)
            m, _ = await recv_until(ws, lambda m: m["type"] == "error")
            rep["codes"][name] = m["code"]
            if name == "unknown_channel":
                rep["unknown_channel_message"] = m["message"]
        await ws.send('{"op":"ping"}')
        m, _ = await recv_until(ws, lambda m: m["type"] == "pong")
        rep["still_alive"] = m["type"] == "pong"
    return rep


async def oversize(addr, size):
    """A message above server.max_message_bytes: error, then close 1009."""
    rep = {}
    async with websockets.connect(f"ws://{addr}/ws", max_size=None) as ws:
        await ws.send("x" * int(size))
        try:
            while True:
                m = await recv(ws)
                if m["type"] == "error":
                    rep["error_code"] = m["code"]
        except ConnectionClosed as e:
            rep["close_code"] = e.rcvd.code if e.rcvd else None
            rep["close_reason"] = e.rcvd.reason if e.rcvd else None
    # The server keeps serving others.
    async with websockets.connect(f"ws://{addr}/ws") as ws:
        await ws.send('{"op":"ping"}')
        rep["other_client_pong"] = (await recv(ws))["type"]
    return rep


async def auth(addr, token):
    rep = {}
    for name, url, headers in [
        ("none", f"ws://{addr}/ws", {}),
        ("wrong", f"ws://{addr}/ws", {"Authorization": "Bearer wrong"}),
        ("wrong_query", f"ws://{addr}/ws?token=wrong", {}),
        ("header", f"ws://{addr}/ws", {"Authorization": f"Bearer {token}"}),
        ("query", f"ws://{addr}/ws?token={token}", {}),
    ]:
        try:
            async with websockets.connect(url, additional_headers=headers) as ws:
                await ws.send('{"op":"ping"}')
                rep[name] = (await recv(ws))["type"]
        except InvalidStatus as e:
            rep[name] = e.response.status_code
    return rep


async def max_clients(addr, n):
    """n clients connect; one more is refused with 503; a slot frees on close."""
    rep = {}
    conns = []
    try:
        for _ in range(int(n)):
            conns.append(await websockets.connect(f"ws://{addr}/ws"))
        rep["connected"] = len(conns)
        try:
            extra = await websockets.connect(f"ws://{addr}/ws")
            rep["extra"] = "accepted"
            await extra.close()
        except InvalidStatus as e:
            rep["extra"] = e.response.status_code
            rep["extra_body"] = e.response.body.decode(errors="replace")
        await conns.pop().close()
        # Bounded retry: the server notices the close on its next pass.
        for _ in range(100):
            try:
                c = await websockets.connect(f"ws://{addr}/ws")
                conns.append(c)
                rep["after_close"] = "accepted"
                break
            except InvalidStatus as e:
                rep["after_close"] = e.response.status_code
                await asyncio.sleep(0.05)
    finally:
        for c in conns:
            await c.close()
    return rep


def metric(addr, name, labels):
    body = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def slow(addr):
    """A never-reading client is closed with 4008 while a normal client keeps
    receiving every trade, in order."""
    rep = {}
    host, port = addr.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    # max_queue=1: the library stops reading the socket once a frame waits;
    # no client keepalive pings (their pongs would wait behind the backlog).
    slow_ws = await websockets.connect(f"ws://{addr}/ws", sock=sock, max_queue=1,
                                       ping_interval=None)
    await slow_ws.send(json.dumps({"op": "subscribe", "channels": ["trades", "quotes"], "symbols": ["*"]}))
    async with websockets.connect(f"ws://{addr}/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["trades"], "symbols": ["SIM:BTCUSDT"]}))
        await recv(ws)  # ack
        ids = []
        closed_at = None
        t_end = time.monotonic() + 60
        last_poll = 0.0
        # Read normally until the server reports the slow close, then 200 more.
        while time.monotonic() < t_end:
            m = await recv(ws)
            if m["type"] == "trade":
                ids.append(int(m["trade_id"]))
                if closed_at is not None and len(ids) >= closed_at + 200:
                    break
            if closed_at is None and time.monotonic() - last_poll > 0.25:
                last_poll = time.monotonic()
                if metric(addr, "tickwire_subscriber_closes_total", 'reason="slow_consumer"') >= 1:
                    closed_at = len(ids)
        rep["normal_trades"] = len(ids)
        rep["normal_trades_after_slow_close"] = len(ids) - (closed_at or len(ids))
        rep["normal_consecutive"] = consecutive(ids)
        rep["slow_closed_seen_by_server"] = closed_at is not None
    # Now the slow client reads what was buffered; the last thing is the close.
    n = 0
    try:
        while True:
            await asyncio.wait_for(slow_ws.recv(), T)
            n += 1
    except ConnectionClosed as e:
        rep["slow_close_code"] = e.rcvd.code if e.rcvd else None
        rep["slow_close_reason"] = e.rcvd.reason if e.rcvd else None
    except asyncio.TimeoutError:
        rep["slow_close_code"] = "timeout"
    rep["slow_read_before_close"] = n
    return rep


async def bars(addr):
    """bars.1s: snapshot of the last final bar, then live final bars."""
    rep = {}
    async with websockets.connect(f"ws://{addr}/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["bars.1s"], "symbols": ["SIM:BTCUSDT"]}))
        rep["ack"] = await recv(ws)
        got = []
        while len(got) < 3:
            got.append(await recv(ws, 20))
        rep["types"] = [m["type"] for m in got]
        rep["windows"] = [m.get("window") for m in got]
        rep["final"] = [m.get("final") for m in got]
        rep["starts"] = [m.get("start") for m in got]
    return rep


async def shutdown(addr):
    """The engine stops by itself (duration); subscribers get close 1001."""
    rep = {}
    async with websockets.connect(f"ws://{addr}/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["stats"]}))
        rep["ack"] = await recv(ws)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except ConnectionClosed as e:
            rep["close_code"] = e.rcvd.code if e.rcvd else None
        except asyncio.TimeoutError:
            rep["close_code"] = "timeout"
    return rep


def main():
    scenario, addr, *args = sys.argv[1:]
    fn = {
        "flow": flow, "errors": errors, "oversize": oversize, "auth": auth,
        "max_clients": max_clients, "slow": slow, "bars": bars, "shutdown": shutdown,
    }[scenario]
    rep = asyncio.run(fn(addr, *args))
    print(json.dumps(rep))


if __name__ == "__main__":
    main()
