"""Real processes: the server killed mid-send and restarted, and two retry runners sharing one database."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from werkzeug import Response

ROOT = Path(__file__).resolve().parent.parent.parent
VENV_BIN = Path(sys.executable).parent
KEY = "0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(database_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "FLASK_"))}
    env.update(SECRET_KEY="process-tests", DATABASE_URL=database_url, HERALD_BASE_URL="http://herald.test",
               HERALD_HTMX_CDN="0", **{k: str(v) for k, v in extra.items()})
    return env


def flask(env: dict, *args: str) -> str:
    result = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


class Server:
    """`waitress-serve wsgi:app`, as `make run` starts it."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(VENV_BIN / "waitress-serve"), "--host", "127.0.0.1", "--port", str(self.port), "--threads", "8", "wsgi:app"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return
            except requests.ConnectionError:
                assert time.monotonic() < deadline and self.process.poll() is None, "the server did not start"
                time.sleep(0.1)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def admin_token(env: dict) -> str:
    """An admin and their API token, made with the real CLI."""
    flask(env, "create-user", "admin@example.com", "--password", "long-password", "--admin")
    return flask(env, "create-token", "admin@example.com").strip().splitlines()[-1]


def api(server: Server, token: str, method: str, path: str, **kwargs):
    response = requests.request(method, server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                **kwargs)
    assert response.status_code < 400, response.text
    return response.json() if response.content else None


def test_a_server_killed_mid_send_delivers_everything_after_restart(database_url, receivers):
    receiver = receivers()
    arrived = []
    lock = threading.Lock()

    def slow_pagerduty(request):
        with lock:
            arrived.append((request.path, request.get_json()["dedup_key"], time.monotonic()))
        time.sleep(1.5)  # still answering when the server is killed
        return Response('{"status":"success"}', status=202, content_type="application/json")

    receiver.expect_request("/v2/enqueue", method="POST").respond_with_handler(slow_pagerduty)
    env = environment(database_url, HERALD_HTTP_TIMEOUT=2, HERALD_SEND_DEADLINE=3, HERALD_LEASE_GRACE_SECONDS=1,
                      HERALD_RETRY_POLL_SECONDS=0.2,
                      HERALD_RETRY_BASE_DELAY=0.2)
    flask(env, "db", "upgrade")
    token = admin_token(env)
    server = Server(env)
    try:
        ids = [api(server, token, "POST", "/api/destinations", json={
            "name": f"PD {i}", "type": "pagerduty",
            "options": {"integration_key": KEY, "api_url": receiver.url_for("/v2/enqueue")}})["id"] for i in range(4)]
        alert = api(server, token, "POST", "/api/alerts", json={"name": "Disk full", "destination_ids": ids})
        def trigger():
            try:
                requests.post(server.url + f"/api/alerts/{alert['id']}/state", json={"state": "triggered"},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
            except requests.ConnectionError:
                pass  # the server is killed before it can answer: that is the point

        caller = threading.Thread(target=trigger, daemon=True)
        caller.start()
        deadline = time.monotonic() + 20
        while len(arrived) < 4:
            assert time.monotonic() < deadline, "the sends never reached the receiver"
            time.sleep(0.02)
        server.kill()  # SIGKILL while all four receivers are still answering
        caller.join(10)
    finally:
        server.stop()
    killed_at = time.monotonic()

    restarted = Server(env)
    try:
        deadline = time.monotonic() + 60
        while True:
            page = api(restarted, token, "GET", f"/api/deliveries?alert_id={alert['id']}")
            statuses = [d["status"] for d in page["items"]]
            if statuses == ["sent"] * 4:
                break
            assert time.monotonic() < deadline, f"not every delivery ended sent: {statuses}"
            time.sleep(0.2)
    finally:
        restarted.stop()
    resent = [a for a in arrived if a[2] > killed_at]
    assert sorted(key for _, key, _ in resent) == ["herald-alert-1"] * 4, "each interrupted send is sent again"


def test_two_retry_runners_on_one_database_send_each_retry_once(database_url, receivers):
    """Two `flask deliveries retry` processes at once: every due retry goes out exactly once."""
    receiver = receivers()
    receiver.expect_request("/v2/enqueue", method="POST").respond_with_handler(
        lambda request: (time.sleep(0.05), Response('{"status":"success"}', status=202))[1])
    env = environment(database_url, HERALD_RETRY_WORKER=0)
    flask(env, "db", "upgrade")
    seed_retries(env, receiver.url_for("/v2/enqueue"), count=30)

    runners = [subprocess.Popen([str(VENV_BIN / "flask"), "--app", "wsgi", "deliveries", "retry"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [runner.communicate(timeout=120) for runner in runners]
    assert all(runner.returncode == 0 for runner in runners), outputs

    keys = [request.get_json()["dedup_key"] for request, _ in receiver.log]
    assert sorted(keys) == sorted(f"herald-alert-{i}" for i in range(1, 31)), "a retry was sent twice or not at all"
    tried = [int(out.split()[1]) for out, _ in outputs]
    assert sum(tried) == 30


def seed_retries(env: dict, url: str, count: int) -> None:
    """`count` deliveries due for retry, each for its own alert, written by a small script in a real process."""
    script = f"""
from datetime import datetime, timezone
from webapp import create_app
from webapp.extensions import db
from webapp.models import Delivery, Destination
from webapp.delivery.notification import Notification
app = create_app()
with app.app_context():
    d = Destination(name="PD", type="pagerduty", options={{"api_url": {url!r}, "severity": ""}})
    d.secrets = {{"integration_key": {KEY!r}}}
    db.session.add(d)
    db.session.flush()
    now = datetime.now(timezone.utc)
    for i in range(1, {count} + 1):
        n = Notification(alert_id=i, alert_name=f"alert {{i}}", state="triggered")
        db.session.add(Delivery(destination_id=d.id, destination_name="PD", destination_type="pagerduty", alert_id=i,
                                alert_name=n.alert_name, event="trigger", status="retrying", attempts=1,
                                notification=n.to_json(), next_attempt_at=now))
    db.session.commit()
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**env, "HERALD_RETRY_WORKER": "0"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
