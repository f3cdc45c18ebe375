"""Fan-out benchmark: one notification to twelve destinations whose receivers each take 300 ms to answer.

Herald sends to all twelve types (one of each, mail included) through their real senders, in parallel.
For comparison, Apprise sends the same notification to twelve `json://` targets on the same receiver.
Results are ratios to the 300 ms a single receiver takes, measured in the same run. Not a test: run
`make bench`.
"""
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402
from werkzeug import Response  # noqa: E402

DELAY = 0.3
RUNS = 5
KEY = "0123456789abcdef0123456789abcdef"

# What each vendor answers on success, by path prefix (see tests/delivery for the same paths)
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


def slow_handler(request):
    time.sleep(DELAY)
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


def destinations_config(url):
    return {
        "email": dict(addresses="Ops <ops@example.com>, oncall@example.com",
                      subject_template="Alert {alert_name} changed status to {state}", body_template=""),
        "chatwork": dict(api_token="a" * 32, room_id="123456", message_template="", api_url=url("/v2")),
        "webhook": dict(url=url("/webhook"), username="", password="", field_mapper="", payload_mapper=""),
        "hipchat": dict(url=url("/v2/room/Ops/notification?auth_token=abcdefgh"), color="red", notify=True),
        "ilert": dict(integration_key="il1api0123456789", priority="HIGH", api_url=url("/api/events")),
        "mattermost": dict(webhook_url=url("/hooks/abc123"), channel="", username="", icon_url=""),
        "opsgenie": dict(api_key="0a1b2c3d-0000-1111-2222-333344445555", priority="P3", tags="", responders="",
                         api_url=url("").rstrip("/")),
        "pagerduty": dict(integration_key=KEY, severity="", api_url=url("/v2/enqueue")),
        "servicenow": dict(instance_url=url("").rstrip("/"), username="herald", password="pw", urgency="2", impact="2",
                           assignment_group="", close_code="Solution provided"),
        "slack": dict(webhook_url=url("/services/T0/B0/XYZ"), channel="", username="", icon_emoji=""),
        "zendesk": dict(zendesk_url=url("").rstrip("/"), email="agent@example.com", api_token="tok", priority="high",
                        ticket_type="incident", tags=""),
        "zenduty": dict(integration_url=url("/integration/ab12c/generic/0f1e2d3c/")),
    }


def main():
    from webapp import create_app
    from webapp.destinations import REGISTRY
    from webapp.extensions import db
    from webapp.models import Destination
    from webapp.delivery.notification import Notification
    from webapp.delivery.notifier import Notifier

    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request("").respond_with_handler(slow_handler)
    server.start()
    smtp = Controller(SlowSMTP(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    workdir = tempfile.mkdtemp(prefix="herald-bench-")
    app = create_app({
        "TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/bench.sqlite3",
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port, "MAIL_DEFAULT_SENDER": "herald@example.com",
        "MAIL_SUPPRESS_SEND": False, "HERALD_BASE_URL": "http://herald.example.com",
    })
    try:
        baseline = statistics.median(_time(lambda: requests.post(server.url_for("/webhook"), json={})) for _ in range(RUNS))
        with app.app_context():
            destinations = []
            for type_key, config in destinations_config(server.url_for).items():
                secret_names = set(REGISTRY[type_key].secret_fields())
                d = Destination(name=type_key, type=type_key, options={k: v for k, v in config.items() if k not in secret_names})
                d.secrets = {k: v for k, v in config.items() if k in secret_names}
                db.session.add(d)
                destinations.append(d)
            db.session.commit()
            notifier = Notifier(app)
            herald_runs = []
            for run in range(RUNS):
                n = Notification(alert_id=run + 1, alert_name="CPU > 90% on web-01", state="triggered",
                                 previous_state="ok", alert_url="http://herald.example.com/alerts/1",
                                 url_base="http://herald.example.com")
                herald_runs.append(_time(lambda: _check(notifier.notify(destinations, n))))
        apprise_runs = _apprise_runs(server)
    finally:
        server.stop()
        smtp.stop()

    herald, apprise_time = statistics.median(herald_runs), statistics.median(apprise_runs)
    print(f"receiver delay: {DELAY * 1000:.0f} ms; one request alone (baseline): {baseline * 1000:.0f} ms")
    print(f"Herald, 12 destinations of 12 types: median {herald * 1000:.0f} ms over {RUNS} runs = "
          f"{herald / DELAY:.2f}x the 300 ms (target < 1.5), {herald / baseline:.2f}x the baseline")
    print(f"Apprise {_apprise_version()}, 12 json:// targets:  median {apprise_time * 1000:.0f} ms over {RUNS} runs = "
          f"{apprise_time / DELAY:.2f}x the 300 ms, {apprise_time / baseline:.2f}x the baseline")


def _check(outcomes):
    failed = [o for o in outcomes if o["status"] != "sent"]
    if failed:
        raise SystemExit(f"bench deliveries failed: {failed}")


def _apprise_runs(server):
    import apprise

    runs = []
    for _ in range(RUNS):
        apobj = apprise.Apprise()
        for i in range(12):
            apobj.add(f"json://127.0.0.1:{server.port}/apprise/{i}")
        runs.append(_time(lambda: apobj.notify(title="CPU > 90% on web-01", body="Alert triggered") or _fail()))
    return runs


def _fail():
    raise SystemExit("Apprise reported a failed notification")


def _apprise_version():
    import apprise

    return getattr(apprise, "__version__", "")


def _time(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request drowns the result
    os.environ.setdefault("SECRET_KEY", "bench")
    main()
