#!/usr/bin/env python3
"""Steady edit load on the control plane: PATCH the destination of links at a
fixed rate, for the engine's "throughput while applying edits" figure.

Usage: edit-load.py API_PORT API_KEY IDS_FILE RATE SECONDS [THREADS]

IDS_FILE holds one link id per line. Edits are scheduled at fixed times
(start + i / RATE) and spread over THREADS keep-alive connections (default 4),
each link edited in turn. Runs until SECONDS have passed or SIGTERM arrives,
then prints one line: edits sent, achieved rate, errors, API latency p50/p99.
"""
import http.client
import json
import signal
import sys
import threading
import time

api_port, key, ids_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rate, seconds = float(sys.argv[4]), float(sys.argv[5])
threads = int(sys.argv[6]) if len(sys.argv) > 6 else 4
ids = [line.strip() for line in open(ids_file) if line.strip()]
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
lock = threading.Lock()
state = {"next": 0, "errors": 0, "done": 0}
latencies = []
started = time.monotonic()


def worker():
    api = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
    while not stop.is_set():
        with lock:
            i = state["next"]
            state["next"] += 1
        due = started + i / rate
        if due - started >= seconds:
            return
        delay = due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        body = json.dumps({"url": f"https://www.example.com/edited/{i}?n={i}"})
        sent = time.monotonic()
        try:
            api.request("PATCH", f"/api/v1/links/{ids[i % len(ids)]}", body, headers)
            response = api.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
            api.close()
            api = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
        with lock:
            state["done"] += 1
            state["errors"] += 0 if ok else 1
            latencies.append(time.monotonic() - sent)


pool = [threading.Thread(target=worker) for _ in range(threads)]
for thread in pool:
    thread.start()
for thread in pool:
    thread.join()
elapsed = time.monotonic() - started
latencies.sort()
p = lambda q: 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0
print(f"edits={state['done']} seconds={elapsed:.1f} rate={state['done'] / elapsed:.0f}/s "
      f"errors={state['errors']} api_p50={p(0.5):.2f}ms api_p99={p(0.99):.2f}ms", flush=True)
