"""Delivery benchmarks, through the JSON API of Herald served by waitress in its own process, as `make run` serves.

Three figures, each a ratio to a baseline measured in the same run:
1. fan-out: one state change of an alert bound to one destination of each of the 12 types, whose receivers
   each take 300 ms to answer; the API call returns when every delivery is done. Baseline: the 300 ms.
   Apprise sends to 12 `json://` targets on the same receiver for comparison.
2. latency: one state change with one fast destination, against two raw `requests.post` round trips to the
   same receiver (the API call plus Herald's own call to the vendor).
3. throughput: state changes per second from 16 concurrent API clients, each alert with one fast
   destination, every change producing exactly one delivery (checked), on SQLite, and on PostgreSQL when its
   server binaries are installed.

Not a test: run `make bench`. Numbers depend on the machine; the README quotes them with it.
"""
import asyncio
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402
from werkzeug import Response  # noqa: E402

DELAY = 0.3
RUNS = 7
KEY = "0123456789abcdef0123456789abcdef"
BIN = Path(sys.executable).parent

# What each vendor answers on success, by path prefix (the same paths as tests/delivery)
ANSWERS = [
    ("/api/now/table/incident", 201, '{"result": {"sys_id": "6816f79cc0a8016401c5a33be04be441", "number": "INC0010001"}}'),
    ("/api/v2/tickets", 201, '{"ticket": {"id": 35436}}'),
    ("/v2/rooms/", 200, '{"message_id": "1234"}'),
    ("/v2/room/", 204, ""),
    ("/v2/alerts", 202, '{"result": "Request will be processed", "requestId": "r1"}'),
    ("/v2/enqueue", 202, '{"status": "success", "dedup_key": "herald-alert-42"}'),
    ("/api/events", 202, '{"alertKey": "herald-alert-42"}'),
    ("/services/", 200, "ok"),
    ("/hooks/", 200, "ok"),
    ("/integration/", 200, '{"message": "success", "trace_id": "t1"}'),
]


def vendor_answer(request, delay: float):
    if delay:
        time.sleep(delay)
    for prefix, status, body in ANSWERS:
        if request.path.startswith(prefix):
            return Response(body, status=status, content_type="application/json")
    return Response('{"ok": true}', status=200, content_type="application/json")


class SlowSMTP:
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(DELAY)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receiver(delay: float) -> HTTPServer:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request("").respond_with_handler(lambda request: vendor_answer(request, delay))
    server.start()
    return server


def destinations(url) -> dict:
    return {
        "email": dict(addresses="Ops <ops@example.com>, oncall@example.com"),
        "chatwork": dict(api_token="a" * 32, room_id="123456", api_url=url("/v2")),
        "webhook": dict(url=url("/webhook")),
        "hipchat": dict(url=url("/v2/room/Ops/notification?auth_token=abcdefgh")),
        "ilert": dict(integration_key="il1api0123456789", api_url=url("/api/events")),
        "mattermost": dict(webhook_url=url("/hooks/abc123")),
        "opsgenie": dict(api_key="0a1b2c3d-0000-1111-2222-333344445555", api_url=url("").rstrip("/")),
        "pagerduty": dict(integration_key=KEY, api_url=url("/v2/enqueue")),
        "servicenow": dict(instance_url=url("").rstrip("/"), username="herald", password="pw"),
        "slack": dict(webhook_url=url("/services/T0/B0/XYZ")),
        "zendesk": dict(zendesk_url=url("").rstrip("/"), email="agent@example.com", api_token="tok"),
        "zenduty": dict(integration_url=url("/integration/ab12c/generic/0f1e2d3c/")),
    }


class Herald:
    """`herald serve --threads 8` (waitress, as `make run` serves) in its own process on a fresh database, with an
    admin's token."""

    def __init__(self, database_url: str, smtp_port: int, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "FLASK_"))}
        self.env.update(SECRET_KEY="bench", DATABASE_URL=database_url, HERALD_BASE_URL=self.url, HERALD_HTMX_CDN="0",
                        MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port), MAIL_DEFAULT_SENDER="herald@example.com",
                        HERALD_NOTIFY_WAIT="10", **{k: str(v) for k, v in env.items()})
        self._cli("db", "upgrade")
        self._cli("create-user", "bench@example.com", "--password", "bench-password", "--admin")
        self.token = self._cli("create-token", "bench@example.com").strip().splitlines()[-1]
        self.process = subprocess.Popen(
            [str(BIN / "herald"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", "8"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.url + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("Herald did not start")
                time.sleep(0.1)

    def _cli(self, *args) -> str:
        result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise SystemExit(result.stderr)
        return result.stdout

    def client(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def post(self, path, json, client=None):
        response = (client or requests).post(self.url + path, json=json, timeout=60,
                                             headers={"Authorization": f"Bearer {self.token}"})
        if response.status_code >= 400:
            raise SystemExit(f"{path}: {response.status_code} {response.text}")
        return response.json()

    def alert(self, name, destination_ids):
        return self.post("/api/alerts", {"name": name, "destination_ids": destination_ids})["id"]

    def destination(self, name, type_key, options):
        return self.post("/api/destinations", {"name": name, "type": type_key, "options": options})["id"]

    def deliveries(self, **query):
        response = requests.get(self.url + "/api/deliveries", params={"per_page": 200, **query}, timeout=60,
                                headers={"Authorization": f"Bearer {self.token}"})
        return response.json()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def sent_all(outcomes, expected: int):
    statuses = [o["status"] for o in outcomes]
    if statuses != ["sent"] * expected:
        raise SystemExit(f"bench deliveries did not all succeed: {outcomes}")


def fan_out(herald: Herald, slow: HTTPServer) -> float:
    ids = [herald.destination(type_key, type_key, options) for type_key, options in destinations(slow.url_for).items()]
    alert_id = herald.alert("Fan-out", ids)
    runs = []
    for run in range(RUNS):
        state = "triggered" if run % 2 == 0 else "ok"
        result = {}
        runs.append(timed(lambda: result.update(herald.post(f"/api/alerts/{alert_id}/state", {"state": state}))))
        sent_all(result["deliveries"], 12)
    return statistics.median(runs)


def apprise_fan_out(slow: HTTPServer) -> float:
    import apprise

    runs = []
    for _ in range(RUNS):
        apobj = apprise.Apprise()
        for i in range(12):
            apobj.add(f"json://127.0.0.1:{slow.port}/apprise/{i}")
        runs.append(timed(lambda: apobj.notify(title="CPU > 90% on web-01", body="Alert triggered")
                          or (_ for _ in ()).throw(SystemExit("Apprise reported a failed notification"))))
    return statistics.median(runs)


def latency(herald: Herald, fast: HTTPServer) -> tuple[float, float]:
    hook = herald.destination("Fast hook", "webhook", {"url": fast.url_for("/webhook")})
    alert_id = herald.alert("Latency", [hook])
    samples, baseline = [], []
    for run in range(60):
        state = "triggered" if run % 2 == 0 else "ok"
        result = {}
        samples.append(timed(lambda: result.update(herald.post(f"/api/alerts/{alert_id}/state", {"state": state}))))
        sent_all(result["deliveries"], 1)
        baseline.append(timed(lambda: (requests.post(fast.url_for("/webhook"), json={"n": run}, timeout=10),
                                       requests.post(fast.url_for("/webhook"), json={"n": run}, timeout=10))))
    return statistics.median(samples[10:]), statistics.median(baseline[10:])  # the first ten warm up


def throughput(herald: Herald, fast: HTTPServer, clients: int = 16, per_client: int = 125) -> tuple[float, int]:
    hook = herald.destination("Throughput hook", "webhook", {"url": fast.url_for("/webhook")})
    alerts = [herald.alert(f"Throughput {i}", [hook]) for i in range(clients)]
    errors, barrier = [], threading.Barrier(clients + 1)

    def client(alert_id):
        session = herald.client()
        barrier.wait()
        for i in range(per_client):
            state = "triggered" if i % 2 == 0 else "ok"  # every change notifies
            response = session.post(herald.url + f"/api/alerts/{alert_id}/state", json={"state": state}, timeout=60)
            if response.status_code != 200 or not response.json()["changed"]:
                errors.append(response.text)

    threads = [threading.Thread(target=client, args=(a,)) for a in alerts]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} state changes failed: {errors[:3]}")
    changes = clients * per_client
    deadline = time.monotonic() + 120
    while True:  # every change produced exactly one delivery, and each one was sent
        page = herald.deliveries(destination_id=hook)
        sent = herald.deliveries(destination_id=hook, status="sent")["total"]
        if page["total"] == changes and sent == changes:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{changes} changes made {page['total']} deliveries, {sent} sent")
        time.sleep(0.2)
    return changes / elapsed, changes


def run_database(label: str, database_url: str, smtp_port: int, slow: HTTPServer, fast: HTTPServer) -> dict:
    herald = Herald(database_url, smtp_port)
    try:
        figures = {"fan_out": fan_out(herald, slow)}
        figures["latency"], figures["two_posts"] = latency(herald, fast)
        figures["throughput"], figures["changes"] = throughput(herald, fast)
    finally:
        herald.stop()
    print(f"[{label}] fan-out to 12 types at 300 ms each: {figures['fan_out'] * 1000:.0f} ms = "
          f"{figures['fan_out'] / DELAY:.2f}x the 300 ms (target <= 1.1)")
    print(f"[{label}] one state change, one fast destination: {figures['latency'] * 1000:.1f} ms = "
          f"{figures['latency'] / figures['two_posts']:.2f}x two raw requests.post round trips "
          f"({figures['two_posts'] * 1000:.1f} ms; target <= 1.5)")
    print(f"[{label}] {figures['throughput']:.0f} state changes/s from 16 API clients "
          f"({figures['changes']} changes, each exactly one delivery, all sent; target >= 200)")
    return figures


def main():
    logging_quiet()
    slow, fast = receiver(DELAY), receiver(0)
    smtp = Controller(SlowSMTP(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    try:
        workdir = tempfile.mkdtemp(prefix="herald-bench-")
        run_database("SQLite", f"sqlite:///{workdir}/bench.sqlite3", smtp.port, slow, fast)
        postgres = None
        try:
            from postgres import PostgresServer

            postgres = PostgresServer()  # the tests' throwaway cluster (fsync off): a ceiling, said so below
        except Exception as exc:  # no PostgreSQL here: the SQLite figures stand alone
            print(f"[PostgreSQL] not measured: {exc}")
        if postgres is not None:
            try:
                run_database("PostgreSQL, fsync off", postgres.new_database(), smtp.port, slow, fast)
            finally:
                postgres.stop()
        apprise_time = apprise_fan_out(slow)
        print(f"[Apprise] 12 json:// targets at 300 ms each: {apprise_time * 1000:.0f} ms = "
              f"{apprise_time / DELAY:.2f}x the 300 ms")
    finally:
        slow.stop()
        fast.stop()
        smtp.stop()


def logging_quiet():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request drowns the result


if __name__ == "__main__":
    main()
