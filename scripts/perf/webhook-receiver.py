#!/usr/bin/env python3
"""A webhook receiver for load tests: answers every POST 200 at once and
counts deliveries, bytes, event types and distinct event ids, with the lag
from each event's created_at to its arrival. GET /stats answers the counts as
JSON; GET /reset clears them. Misbehaving endpoints for soaks: a POST to
/slow/... answers 200 after 3 s, /fail/... answers 500 at once, /hang/...
answers after 15 s (past the sender's time limit); their POSTs are counted
apart (`slow`, `failed`, `hung`), not as deliveries.

    python3 scripts/perf/webhook-receiver.py 127.0.0.1:9100
"""

import json
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def empty():
    return {"deliveries": 0, "bytes": 0, "types": {}, "ids": set(), "lags_ms": [], "links": 0,
            "slow": 0, "failed": 0, "hung": 0}


STATS = empty()


def summary():
    with LOCK:
        lags = sorted(STATS["lags_ms"])
        pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] if lags else None
        return {
            "deliveries": STATS["deliveries"],
            "bytes": STATS["bytes"],
            "types": STATS["types"],
            "distinct_events": len(STATS["ids"]),
            "link_entries": STATS["links"],
            "lag_ms_p50": pick(0.50),
            "lag_ms_p99": pick(0.99),
            "lag_ms_max": lags[-1] if lags else None,
            "slow": STATS["slow"],
            "failed": STATS["failed"],
            "hung": STATS["hung"],
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        for prefix, key, delay, status in (("/slow/", "slow", 3, 200), ("/fail/", "failed", 0, 500),
                                           ("/hang/", "hung", 15, 200)):
            if self.path.startswith(prefix):
                with LOCK:
                    STATS[key] += 1
                time.sleep(delay)
                self.answer(status)
                return
        arrived = time.time()
        try:
            event = json.loads(body)
            created = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00")).timestamp()
            links = len(event.get("data", {}).get("links", []))
        except (ValueError, KeyError, TypeError):
            self.answer(400)
            return
        with LOCK:
            STATS["deliveries"] += 1
            STATS["bytes"] += length
            STATS["types"][event["type"]] = STATS["types"].get(event["type"], 0) + 1
            STATS["ids"].add(event["id"])
            STATS["lags_ms"].append((arrived - created) * 1000.0)
            STATS["links"] += links
        self.answer(200)

    def do_GET(self):
        global STATS
        if self.path == "/stats":
            self.answer(200, json.dumps(summary()).encode())
        elif self.path == "/reset":
            with LOCK:
                STATS = empty()
            self.answer(200, b"{}")
        else:
            self.answer(404)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
