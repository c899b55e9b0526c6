#!/usr/bin/env python3
"""Propagation latency: PATCH a link's destination through the control plane's
API, then poll an engine until it serves the new Location; report percentiles
over N edits (time from the API's 2xx to the first redirect with the new target).

Usage: edit-latency.py API_PORT ENGINE_PORT API_KEY EDITS
"""
import http.client
import json
import sys
import time

api_port, engine_port, key, edits = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
api = http.client.HTTPConnection("127.0.0.1", api_port)
engine = http.client.HTTPConnection("127.0.0.1", engine_port)
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
code = f"edit{int(time.time())}"
api.request("POST", "/api/v1/links", json.dumps({"url": "https://example.com/0", "code": code}), headers)
response = api.getresponse()
link = json.loads(response.read())
assert response.status == 201, link
time.sleep(0.5)
latencies = []
for i in range(1, edits + 1):
    target = f"https://example.com/{i}"
    api.request("PATCH", f"/api/v1/links/{link['id']}", json.dumps({"url": target}), headers)
    response = api.getresponse()
    response.read()
    assert response.status == 200, response.status
    started = time.perf_counter()
    while True:
        engine.request("GET", "/" + code, headers={"Host": "localhost"})
        answer = engine.getresponse()
        answer.read()
        if answer.getheader("Location") == target:
            break
    latencies.append((time.perf_counter() - started) * 1000)
    if i % 1000 == 0:
        print(f"  {i} edits", file=sys.stderr)
latencies.sort()


def percentile(p):
    return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]


print(
    f"edits={edits} p50={percentile(50):.3f}ms p90={percentile(90):.3f}ms "
    f"p99={percentile(99):.3f}ms p99.9={percentile(99.9):.3f}ms max={latencies[-1]:.3f}ms"
)
