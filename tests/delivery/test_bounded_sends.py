"""Sends are bounded and fenced, the web tier never waits long on a vendor, health tells the truth, and
re-notification runs on its own timer. Real app under waitress, real receivers on loopback."""
import socket
import sqlite3
import threading
import time

import pytest
import requests
from sqlalchemy.engine import make_url

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD
from webapp.delivery.notifier import Notifier
from webapp.delivery.worker import Worker
from webapp.extensions import db
from webapp.models import AlertStateChange

from .conftest import configure_delivery, start_worker, wait_until
from .test_outbox import change, create_alert, create_destination, deliveries

KEY = "0123456789abcdef0123456789abcdef"


class RawReceiver:
    """A TCP server on loopback that reads each HTTP request and then answers as `behaviour` says:
    'trickle' sends a 200 whose body comes a byte every 0.25 s; 'hang' never answers; 'fast-then-trickle' answers
    a connection's first request at once and keeps it open, then trickles the next one on it; 'ok' answers every
    request at once. `reads` holds, per request, how many reads it took to arrive whole."""

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.requests = 0
        self.connections = 0
        self.reads: list[int] = []
        self.release = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        with self._lock:
            self.connections += 1
        with connection:
            served_on_this_connection = 0
            while True:
                data, reads = b"", 0
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                    reads += 1
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += connection.recv(65536)
                    reads += 1
                with self._lock:
                    self.requests += 1
                    self.reads.append(reads)
                served_on_this_connection += 1
                try:
                    if self.behaviour == "ok":
                        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
                        continue
                    if self.behaviour == "hang":
                        self.release.wait(60)
                        return
                    if self.behaviour == "fast-then-trickle" and served_on_this_connection == 1:
                        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
                        continue
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 400\r\n\r\n")
                    for _ in range(400):
                        if self.release.wait(0.25):
                            return
                        connection.sendall(b".")
                    return
                except OSError:
                    return

    def close(self):
        self.release.set()
        self.sock.close()


@pytest.fixture
def raw_receiver():
    made = []

    def make(behaviour):
        receiver = RawReceiver(behaviour)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


def test_a_trickling_vendor_gets_one_request_per_attempt_and_the_log_counts_them(served, raw_receiver):
    """1 s read timeout, 2 s deadline: each attempt ends at the deadline, before its lease, so a second worker
    sharing the database never sends the same notification while the first still is."""
    configure_delivery(served.app, HERALD_HTTP_TIMEOUT=1, HERALD_SEND_DEADLINE=2, HERALD_LEASE_GRACE_SECONDS=0.5,
                       HERALD_RETRY_MAX_ATTEMPTS=3, HERALD_RETRY_BASE_DELAY=0.1, HERALD_RETRY_MAX_DELAY=0.1,
                       HERALD_NOTIFY_WAIT=0)
    trickle = raw_receiver("trickle")
    hook = create_destination(served, "Slow hook", "webhook", {"url": trickle.url})
    alert_id = create_alert(served, "Disk full", [hook])
    start_worker(served.app)
    other = Worker(served.app, Notifier(served.app), interval=0.05).start()  # another process's worker
    try:
        assert change(served, alert_id, "triggered").status_code == 200
        [row] = wait_until(lambda: [r for r in deliveries() if r.status == "failed"], seconds=30,
                           message="the delivery never gave up")
    finally:
        other.stop()
    assert row.attempts == 3 and trickle.requests == 3, (row.attempts, trickle.requests)
    assert "deadline" in row.error and "Gave up after 3 attempts" in row.error


def test_a_kept_alive_connection_is_ruled_by_the_deadline_of_the_send_it_serves(served, raw_receiver):
    """Connections to a vendor are reused across sends; the vendor that answered the trigger at once and then
    trickles the recovery on the same connection is still cut off at the recovery's own deadline."""
    configure_delivery(served.app, HERALD_HTTP_TIMEOUT=1, HERALD_SEND_DEADLINE=2, HERALD_RETRY_MAX_ATTEMPTS=1,
                       HERALD_NOTIFY_WAIT=10)
    vendor = raw_receiver("fast-then-trickle")
    hook = create_destination(served, "Kept-alive hook", "webhook", {"url": vendor.url})
    alert_id = create_alert(served, "Queue stuck", [hook])
    start_worker(served.app)
    assert change(served, alert_id, "triggered").json()["deliveries"][0]["status"] == "sent"
    [recovery] = change(served, alert_id, "ok").json()["deliveries"]  # answered within HERALD_NOTIFY_WAIT
    assert vendor.connections == 1 and vendor.requests == 2, (vendor.connections, vendor.requests)
    assert recovery["status"] == "failed" and "deadline" in recovery["error"], recovery


def test_a_notification_reaches_the_vendor_in_one_write(served, raw_receiver):
    """Header block and body in one TCP segment: urllib3 writes them apart, and each write is a segment, a wake-up
    of the vendor's server and, on a fan-out, CPU taken from the sends still to start."""
    configure_delivery(served.app, HERALD_NOTIFY_WAIT=10)
    vendor = raw_receiver("ok")
    hook = create_destination(served, "Webhook", "webhook", {"url": vendor.url})
    alert_id = create_alert(served, "Disk full", [hook])
    for state in ["triggered", "ok"] * 10:
        assert change(served, alert_id, state).json()["deliveries"][0]["status"] == "sent"
    assert vendor.requests == 20 and vendor.reads == [1] * 20, vendor.reads


def test_32_hanging_destinations_leave_every_page_and_healthz_answering(served, raw_receiver):
    configure_delivery(served.app, HERALD_HTTP_TIMEOUT=20, HERALD_SEND_DEADLINE=20, HERALD_NOTIFY_WAIT=1)
    hanging = raw_receiver("hang")
    ids = [create_destination(served, f"Hanging {i}", "webhook", {"url": hanging.url}) for i in range(32)]
    alert_id = create_alert(served, "Everything is slow", ids)
    start_worker(served.app, poll=0.5)  # /healthz allows three polls; on a busy 2-core machine 0.15 s is too tight

    answer = change(served, alert_id, "triggered")
    assert answer.status_code == 200
    assert {d["status"] for d in answer.json()["deliveries"]} == {"pending"}, "nothing can have been delivered"
    wait_until(lambda: hanging.requests >= 16, message="the senders never reached the hanging receiver")

    browser = requests.Session()
    signed_in = browser.post(served.url + "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                             allow_redirects=False, timeout=5)
    assert signed_in.status_code == 302
    for path in ("/healthz", "/alerts/", f"/alerts/{alert_id}", "/settings/destinations/", "/deliveries/",
                 "/api/alerts", "/metrics"):
        client = served.client() if path.startswith("/api") else browser
        response = client.get(served.url + path, timeout=1)  # the old pool ran dry: 30 s, then a 500
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    page = browser.get(served.url + f"/alerts/{alert_id}", timeout=1).text
    assert "still on their way" in page and 'hx-trigger="every 2s"' in page


@pytest.fixture
def write_lock(database_url):
    """Hold the database's write lock (SQLite) or the worker table's lock (PostgreSQL) from another connection,
    as a long migration or a stuck transaction would."""
    url = make_url(database_url)

    class Lock:
        def take(self):
            if url.get_backend_name() == "sqlite":
                self.connection = sqlite3.connect(url.database, isolation_level=None)
                self.connection.execute("BEGIN IMMEDIATE")
            else:
                import psycopg

                self.connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
                self.connection.execute("LOCK TABLE delivery_worker IN ACCESS EXCLUSIVE MODE")

        def release(self):
            self.connection.rollback() if url.get_backend_name() != "sqlite" else self.connection.execute("ROLLBACK")
            self.connection.close()

    return Lock()


def test_healthz_is_503_while_the_worker_makes_no_progress(served, write_lock):
    start_worker(served.app, poll=0.1)
    health = lambda: requests.get(served.url + "/healthz", timeout=5)  # noqa: E731
    wait_until(lambda: health().status_code == 200, message="the worker never became healthy")

    write_lock.take()
    try:
        stalled = wait_until(lambda: (r := health()).status_code == 503 and r.json(), seconds=10,
                             message="/healthz stayed ok while the worker could not complete a pass")
        assert stalled["delivery_worker"].startswith("stalled") and stalled["database"] == "ok"
    finally:
        write_lock.release()
    wait_until(lambda: health().status_code == 200, message="/healthz did not recover with the worker")


def test_metrics_show_how_many_deliveries_wait_and_the_oldest_ones_age(served, raw_receiver):
    configure_delivery(served.app, HERALD_HTTP_TIMEOUT=20, HERALD_SEND_DEADLINE=20, HERALD_NOTIFY_WAIT=0)
    hanging = raw_receiver("hang")
    ids = [create_destination(served, f"Hanging {i}", "webhook", {"url": hanging.url}) for i in range(3)]
    change(served, create_alert(served, "Slow", ids), "triggered")
    time.sleep(1.1)

    text = requests.get(served.url + "/metrics", timeout=5).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith(("herald_deliveries_waiting ", "herald_oldest_waiting_delivery_age_seconds "))}
    assert values["herald_deliveries_waiting"] == 3
    assert 1 <= values["herald_oldest_waiting_delivery_age_seconds"] < 60


def test_a_rearmed_alert_notifies_again_by_itself_and_stops_when_it_recovers(served, receivers):
    receiver = receivers()
    receiver.expect_request("/v2/enqueue", method="POST").respond_with_json({"status": "success"}, status=202)
    pd = create_destination(served, "PD", "pagerduty", {"integration_key": KEY,
                                                        "api_url": receiver.url_for("/v2/enqueue")})
    alert_id = create_alert(served, "Disk full", [pd], rearm_seconds=1)
    start_worker(served.app, poll=0.1)

    change(served, alert_id, "triggered")
    wait_until(lambda: len(receiver.log) >= 3, seconds=10, message="no re-notification came without a call")
    events = [request.get_json() for request, _ in receiver.log]
    assert {e["event_action"] for e in events} == {"trigger"}
    assert {e["dedup_key"] for e in events} == {f"herald-alert-{alert_id}"}, "PagerDuty must fold them into one"
    db.session.rollback()
    notes = db.session.scalars(db.select(AlertStateChange.note).where(AlertStateChange.alert_id == alert_id)).all()
    assert sum(1 for n in notes if n and n.startswith("Still triggered")) >= 2

    change(served, alert_id, "ok")
    wait_until(lambda: receiver.log[-1][0].get_json()["event_action"] == "resolve")
    count = len(receiver.log)
    time.sleep(1.5)
    assert len(receiver.log) == count, "a recovered alert must not be re-notified"
    assert all(r.status == "sent" for r in deliveries())


def _voluntary_switches(thread: threading.Thread) -> int:
    """How often the thread has blocked (the kernel's count of its voluntary context switches)."""
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))


def test_the_deadline_watchdog_sleeps_through_the_deadlines_of_sends_that_ended(served, receivers):
    """Every send ends long before its deadline; the watchdog woke at each one's expiry all the same, to fire nothing
    (500 times a second at 500 changes a second, taking the CPU from the senders). 150 sends that each ended now
    leave it asleep but for the first expiry, when it drops every closed deadline at once."""
    from webapp.delivery.deadline import WATCHDOG

    configure_delivery(served.app, HERALD_SEND_DEADLINE=3)
    receiver = receivers()
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    alert_id = create_alert(served, "Flapping", [create_destination(served, "Hook", "webhook",
                                                                    {"url": receiver.url_for("/hook")})])
    client = served.client()
    for i in range(150):
        answer = change(served, alert_id, "triggered" if i % 2 == 0 else "ok", client=client).json()
        assert [d["status"] for d in answer["deliveries"]] == ["sent"]
    before = _voluntary_switches(WATCHDOG._thread)  # (on a slow machine some deadlines have passed by now)
    time.sleep(3.3)  # every deadline of the 150 sends has passed
    assert len(receiver.log) == 150
    woke = _voluntary_switches(WATCHDOG._thread) - before
    # Once here; a few more if an earlier test's send (one that hung) still has its deadline open
    assert woke <= 15, f"the watchdog woke {woke} times for 150 deadlines of sends that had ended"
