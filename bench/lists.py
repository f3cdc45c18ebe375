"""List-page benchmark: 1,000 destinations, 300 alerts and 10,000 deliveries on SQLite, served by waitress.

Measures server time (from the WSGI call to the last byte of the body, timed by a middleware in this process)
for each list page, with its search, filters, sort and paging, and each page's weight. The baseline in the
same run is /healthz (one SELECT 1). Not a test: run `make bench`.
"""
import html
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from waitress.server import create_server  # noqa: E402

DESTINATIONS = 1_000
ALERTS = 300
DELIVERIES = 10_000
RUNS = 30
EMAIL, PASSWORD = "bench@example.com", "bench password 1"
TARGET_MS = 50.0


class ServerTimer:
    """WSGI middleware: wall time of each request inside the server, body iteration included."""

    def __init__(self, app):
        self.app = app
        self.times: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}  # this request's thread CPU time: what other processes cannot inflate
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        started, started_cpu = time.perf_counter(), time.thread_time()
        key = environ.get("PATH_INFO", "") + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
        body = self.app(environ, start_response)
        try:
            chunks = list(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        with self.lock:
            self.times.setdefault(key, []).append((time.perf_counter() - started) * 1000)
            self.cpu.setdefault(key, []).append((time.thread_time() - started_cpu) * 1000)
        return chunks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(app):
    """Bulk rows as the app would have made them (secrets encrypted), in a few statements."""
    from webapp.destinations import REGISTRY
    from webapp.extensions import db
    from webapp.models import Alert, Delivery, Destination, User, alert_destination

    rng = random.Random(12)
    now = datetime.now(timezone.utc)
    types = list(REGISTRY)
    with app.app_context():
        user = User(email=EMAIL, role="admin")
        user.set_password(PASSWORD)
        db.session.add(user)
        destinations = []
        for i in range(DESTINATIONS):
            kind = types[i % len(types)]
            d = Destination(name=f"{kind}-team-{i:04d}", type=kind, enabled=i % 17 != 0,
                            options={"url": f"https://hooks.example.com/{i}", "channel": f"#ops-{i}",
                                     "addresses": f"team{i}@example.com", "instance_url": f"https://acme{i}.example.com"},
                            created_at=now - timedelta(minutes=i))
            d.secrets = {"api_token": f"token-{i:04d}"}
            destinations.append(d)
        db.session.add_all(destinations)
        db.session.flush()
        alerts = [Alert(name=f"alert {i:03d} on host-{i % 40}", severity=Alert.SEVERITIES[i % 4],
                        state=("triggered", "ok", "unknown")[i % 3], muted=i % 11 == 0,
                        last_state_change_at=now - timedelta(minutes=i)) for i in range(ALERTS)]
        db.session.add_all(alerts)
        db.session.flush()
        db.session.execute(alert_destination.insert(), [
            {"alert_id": a.id, "destination_id": destinations[(k * 7 + j * 131) % DESTINATIONS].id}
            for k, a in enumerate(alerts) for j in range(3)])
        rows = []
        for i in range(DELIVERIES):
            d = destinations[rng.randrange(DESTINATIONS)]
            a = alerts[rng.randrange(ALERTS)]
            failed = d.id % 9 == 0 or rng.random() < 0.05
            rows.append(dict(
                destination_id=d.id, destination_name=d.name, destination_type=d.type, alert_id=a.id,
                alert_name=a.name, event=rng.choice(("trigger", "resolve")), status="failed" if failed else "sent",
                attempts=1, status_code=500 if failed else 202,
                error='HTTP 500: {"message": "Internal error", "errors": ["upstream down"]}' if failed else None,
                detail=None if failed else '{"status": "success", "message": "Event processed"}', duration_ms=40,
                notification={}, created_at=now - timedelta(seconds=DELIVERIES - i),
                updated_at=now - timedelta(seconds=DELIVERIES - i)))
        db.session.execute(Delivery.__table__.insert(), rows)
        db.session.commit()
        # A destination to find by part of its name, and an alert name to filter deliveries by
        return destinations[417].name, alerts[123].name


def login(base: str) -> requests.Session:
    session = requests.Session()
    form = session.get(base + "/login").text
    token = html.unescape(re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1))
    answer = session.post(base + "/login", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
    answer.raise_for_status()
    assert "Sign out" in answer.text, "bench login failed"
    return session


def main():
    from webapp import create_app

    workdir = Path(tempfile.mkdtemp(prefix="herald-bench-lists-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.sqlite3'}",
                      "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789", "HERALD_RETRY_WORKER": False,
                      "HERALD_HTMX_CDN": False})
    started = time.perf_counter()
    destination_name, alert_name = seed(app)
    print(f"seeded {DESTINATIONS} destinations, {ALERTS} alerts, {DELIVERIES} deliveries in "
          f"{time.perf_counter() - started:.1f} s")

    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    session = login(base)

    part = destination_name.split("-")[-1]  # "0417": part of the name, not all of it
    pages = [
        ("baseline /healthz", "/healthz"),
        ("destinations", "/settings/destinations/"),
        (f"destinations ?q={part}", f"/settings/destinations/?q={part}"),
        ("destinations failing first", "/settings/destinations/?sort=health"),
        ("destinations ?state=failing", "/settings/destinations/?state=failing"),
        ("destinations page 20", "/settings/destinations/?page=20"),
        ("alerts", "/alerts/"),
        ("alerts ?state=failing", "/alerts/?state=failing"),
        ("deliveries", "/deliveries/"),
        ("deliveries ?alert=name", "/deliveries/?alert=" + requests.utils.quote(alert_name)),
        ("deliveries page 150", "/deliveries/?page=150"),
        ("deliveries ?status=failed", "/deliveries/?status=failed"),
    ]
    found = session.get(base + f"/settings/destinations/?q={part}").text
    assert destination_name in found, "the search did not find the destination"
    print(f"search {part!r} finds {destination_name!r}: yes")

    results = []
    for label, path in pages:
        for _ in range(3):  # warm-up: template compilation, SQLite page cache
            session.get(base + path)
        timer.times.pop(path, None)
        timer.cpu.pop(path, None)
        sizes = []
        for _ in range(RUNS):
            response = session.get(base + path)
            response.raise_for_status()
            sizes.append(len(response.content))
        times = sorted(timer.times[path])
        results.append((label, statistics.median(times), times[int(len(times) * 0.95) - 1],
                        statistics.median(timer.cpu[path]), max(sizes)))
    # The server thread is a daemon: it ends with this process (closing it under a live channel races)

    baseline = results[0][1]
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; server time of {RUNS} requests each")
    print(f"{'page':34} {'median ms':>9} {'p95 ms':>7} {'CPU ms':>7} {'× base':>7} {'KiB':>6}")
    for label, median, p95, cpu, size in results:
        flag = "" if label.startswith("baseline") or median < TARGET_MS else "  over 50 ms"
        print(f"{label:34} {median:9.1f} {p95:7.1f} {cpu:7.1f} {median / baseline:7.1f} {size / 1024:6.0f}{flag}")
    worst = max(median for label, median, *_ in results[1:])
    worst_cpu = max(cpu for label, _, _, cpu, _ in results[1:])
    print(f"\nslowest list page: median {worst:.1f} ms server time, {worst_cpu:.1f} ms CPU (target < {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
