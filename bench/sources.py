"""Inbound benchmark: one Alertmanager webhook request with 200 firing alerts, fanned out to 3 destinations.

Herald runs as bench/delivery.py runs it (`herald serve --threads 8`, waitress as `make run` serves, in its own
process on a fresh database: SQLite, then PostgreSQL when installed). One `alertmanager` source, with a bearer token, is bound to 3 fast destinations (PagerDuty, Slack and
a generic webhook, each on its own local receiver at the vendor's path). Each run posts ONE request in
Alertmanager's version 4 shape holding 200 new firing alerts to the source's inbound URL and measures:
- accepted: until Herald answers 200 (the batch is committed: 200 alerts and 600 delivery rows);
- all sent: until every one of the 600 deliveries has ended `sent` (each one checked: 200 alerts x 3
  destinations, each pair exactly once, nothing else).
Baseline from the same run: 600 raw `requests.post` to the same receivers from 16 threads, which is the
sending alone with no database, no outbox and no vendor payloads.

Not a test: run `make bench`. Numbers depend on the machine; the README quotes them with it.
"""
import importlib.util
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path

BENCH = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_delivery", BENCH / "delivery.py")  # tests/delivery shares the name
bench_delivery = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_delivery)
Herald, receiver, free_port, timed, logging_quiet = (bench_delivery.Herald, bench_delivery.receiver,
                                                     bench_delivery.free_port, bench_delivery.timed,
                                                     bench_delivery.logging_quiet)

import requests  # noqa: E402

ALERTS = 200
DESTINATIONS = 3
RUNS = 3
BASELINE_THREADS = 16
BEARER = "bench-bearer-0123456789abcdefghijklmnop"
ZERO_TIME = "0001-01-01T00:00:00Z"


def firing_batch(run: int, count: int = ALERTS) -> dict:
    """Alertmanager 0.25's webhook payload (see reference/inbound-formats.md) with `count` new firing alerts."""
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    alerts = []
    for i in range(count):
        labels = {"alertname": "HostDown", "instance": f"host-{run:02d}-{i:03d}:9100", "job": "node",
                  "severity": "critical"}
        alerts.append({
            "status": "firing", "labels": labels,
            "annotations": {"summary": f"host-{run:02d}-{i:03d} is down",
                            "description": f"host-{run:02d}-{i:03d}:9100 has not answered a scrape for 1 minute."},
            "startsAt": now, "endsAt": ZERO_TIME,
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
            "fingerprint": sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16],
        })
    return {
        "receiver": "herald", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "HostDown"}, "commonLabels": {"alertname": "HostDown", "job": "node",
                                                                   "severity": "critical"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example.com:9093", "version": "4",
        "groupKey": '{}:{alertname="HostDown"}', "truncatedAlerts": 0,
    }


def all_deliveries(herald: Herald) -> list[dict]:
    rows, page = [], 1
    while True:
        answer = herald.deliveries(page=page, per_page=200)
        rows += answer["items"]
        if page >= answer["pages"]:
            return rows
        page += 1


def check_every_delivery(herald: Herald, destination_ids: list[int], alert_ids: set[int]):
    """Every (alert, destination) pair of the batch has exactly one delivery, a trigger, and it was sent."""
    rows = [row for row in all_deliveries(herald) if row["alert_id"] in alert_ids]
    pairs = sorted((row["alert_id"], row["destination_id"]) for row in rows)
    expected = sorted((a, d) for a in alert_ids for d in destination_ids)
    if pairs != expected:
        raise SystemExit(f"{len(rows)} deliveries for {len(alert_ids)} alerts x {len(destination_ids)} destinations")
    bad = [row for row in rows if (row["event"], row["status"]) != ("trigger", "sent")]
    if bad:
        raise SystemExit(f"{len(bad)} deliveries did not end sent: {bad[:3]}")


def source_alert_ids(herald: Herald, source_id: int) -> set[int]:
    response = requests.get(herald.url + "/api/alerts", timeout=60, headers={"Authorization": f"Bearer {herald.token}"})
    return {alert["id"] for alert in response.json() if alert.get("source_id") == source_id}


def inbound_batch(herald: Herald, source: dict, destination_ids: list[int], run: int) -> tuple[float, float]:
    """(seconds until the 200 answer, seconds until all 600 deliveries were sent), both from before the POST."""
    batch = firing_batch(run)
    expected_sent = (run + 1) * ALERTS * DESTINATIONS  # earlier runs' deliveries stay in the log
    before = source_alert_ids(herald, source["id"])
    started = time.perf_counter()
    response = requests.post(source["url"], json=batch, timeout=120, headers={
        "Authorization": f"Bearer {BEARER}", "User-Agent": "Alertmanager/0.25.0"})
    accepted = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"inbound batch: {response.status_code} {response.text[:500]}")
    deadline = time.monotonic() + 300
    while herald.deliveries(status="sent", per_page=1)["total"] < expected_sent:
        if time.monotonic() > deadline:
            raise SystemExit("the batch's deliveries were not all sent within 5 minutes")
        time.sleep(0.05)  # a light poll: each one is a count query on the server being measured
    done = time.perf_counter() - started
    new_alerts = source_alert_ids(herald, source["id"]) - before
    if len(new_alerts) != ALERTS:
        raise SystemExit(f"the batch of {ALERTS} alerts made {len(new_alerts)} Herald alerts")
    check_every_delivery(herald, destination_ids, new_alerts)
    return accepted, done


def raw_posts(urls: list[str], count: int) -> float:
    """`count` raw requests.post spread over `urls` from BASELINE_THREADS threads: the sends alone."""
    body = {"event": "alert_state_change", "alert": {"name": "host is down", "state": "triggered"}}
    failures = []

    def post(i):
        if requests.post(urls[i % len(urls)], json=body, timeout=30).status_code >= 300:
            failures.append(i)

    with ThreadPoolExecutor(BASELINE_THREADS) as pool:
        elapsed = timed(lambda: list(pool.map(post, range(count))))
    if failures:
        raise SystemExit(f"{len(failures)} baseline posts failed")
    return elapsed


def run_database(label: str, database_url: str, servers: list):
    herald = Herald(database_url, free_port())  # no mail here: the SMTP port is never used
    pagerduty, slack, webhook = (server.url_for for server in servers)
    urls = [pagerduty("/v2/enqueue"), slack("/services/T0/B0/XYZ"), webhook("/webhook")]
    try:
        destination_ids = [
            herald.destination("PagerDuty", "pagerduty", {"integration_key": bench_delivery.KEY, "api_url": urls[0]}),
            herald.destination("Slack", "slack", {"webhook_url": urls[1]}),
            herald.destination("Webhook", "webhook", {"url": urls[2]}),
        ]
        source = herald.post("/api/sources", {"name": "Alertmanager (bench)", "kind": "alertmanager",
                                              "destination_ids": destination_ids, "bearer_token": BEARER})
        accepted, done, baseline = [], [], []
        for run in range(RUNS):
            a, d = inbound_batch(herald, source, destination_ids, run)
            accepted.append(a)
            done.append(d)
            baseline.append(raw_posts(urls, ALERTS * DESTINATIONS))
            print(f"  [{label}] run {run + 1}: accepted {a * 1000:.0f} ms, all {ALERTS * DESTINATIONS} sent "
                  f"{d * 1000:.0f} ms, baseline {baseline[-1] * 1000:.0f} ms")
    finally:
        herald.stop()
    accepted_ms, done_ms, baseline_ms = (statistics.median(x) * 1000 for x in (accepted, done, baseline))
    print(f"[{label}] one Alertmanager request with {ALERTS} firing alerts, {DESTINATIONS} destinations "
          f"(median of {RUNS}): accepted (committed) in {accepted_ms:.0f} ms; all {ALERTS * DESTINATIONS} "
          f"deliveries sent after {done_ms:.0f} ms = {done_ms / baseline_ms:.2f}x {ALERTS * DESTINATIONS} raw "
          f"requests.post from {BASELINE_THREADS} threads to the same receivers ({baseline_ms:.0f} ms)")


def main():
    logging_quiet()
    servers = [receiver(0) for _ in range(DESTINATIONS)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        bench_delivery.each_database(lambda label, url: run_database(label, url, servers))
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
