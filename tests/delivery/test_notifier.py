"""The notifier: parallel fan-out, the delivery log, retries that survive restarts, redaction, test sends."""
import threading
import time

from werkzeug import Response

from webapp import create_app
from webapp.destinations import REGISTRY
from webapp.extensions import db
from webapp.models import Delivery
from webapp.delivery.notifier import Notifier, NotifierSettings, RetryPolicy
from webapp.delivery.worker import Worker

KEY = "0123456789abcdef0123456789abcdef"
FAST_RETRIES = NotifierSettings(timeout=2, policy=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05))


def pagerduty(make_destination, server, name="PD", **extra):
    return make_destination(name, "pagerduty", integration_key=KEY, severity="", api_url=server.url_for("/v2/enqueue"),
                            **extra)


def accept(server, times=1):
    server.expect_ordered_request("/v2/enqueue", method="POST").respond_with_json({"status": "success"}, status=202)


def deliveries():
    db.session.expire_all()
    return db.session.scalars(db.select(Delivery).order_by(Delivery.id)).all()


def drain(notifier, until, seconds=10):
    """Run due retries until `until()` holds, as the worker would."""
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "the retries did not finish"
        notifier.run_due()
        time.sleep(0.02)


def test_fan_out_records_one_sent_delivery_per_destination(delivery_app, make_destination, receivers, trigger):
    servers = [receivers() for _ in range(3)]
    destinations = []
    for i, server in enumerate(servers):
        server.expect_request("/v2/enqueue", method="POST").respond_with_json({"status": "success"}, status=202)
        destinations.append(pagerduty(make_destination, server, name=f"PD {i}"))

    outcomes = Notifier(delivery_app, FAST_RETRIES).notify(destinations, trigger)

    assert [o["status"] for o in outcomes] == ["sent"] * 3
    assert [o["destination_name"] for o in outcomes] == ["PD 0", "PD 1", "PD 2"]
    assert all(len(server.log) == 1 for server in servers)
    rows = deliveries()
    assert [(r.event, r.status, r.status_code, r.attempts, r.alert_id) for r in rows] == [("trigger", "sent", 202, 1, 42)] * 3
    assert all(r.duration_ms is not None and r.sent_at is not None for r in rows)


def test_500_500_200_is_delivered_on_the_third_attempt(delivery_app, make_destination, receivers, trigger):
    server = receivers()
    for status in (500, 500):
        server.expect_ordered_request("/v2/enqueue").respond_with_data("upstream broke", status=status)
    server.expect_ordered_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    destination = pagerduty(make_destination, server)
    notifier = Notifier(delivery_app, FAST_RETRIES)

    [outcome] = notifier.notify([destination], trigger)
    assert outcome["status"] == "retrying" and outcome["status_code"] == 500 and "upstream broke" in outcome["error"]
    drain(notifier, lambda: deliveries()[0].status == "sent")

    [row] = deliveries()
    assert row.attempts == 3 and row.status_code == 202 and len(server.log) == 3
    assert all(req.get_json()["dedup_key"] == "herald-alert-42" for req, _ in server.log)


def test_429_retry_after_is_honoured(delivery_app, make_destination, receivers, trigger):
    server = receivers()
    seen = []

    def handler(request):
        seen.append(time.monotonic())
        if len(seen) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response('{"status":"success"}', status=202, content_type="application/json")

    server.expect_request("/v2/enqueue").respond_with_handler(handler)
    destination = pagerduty(make_destination, server)
    notifier = Notifier(delivery_app, FAST_RETRIES)
    worker = Worker(delivery_app, notifier, interval=0.05).start()
    try:
        [outcome] = notifier.notify([destination], trigger)
        assert outcome["status"] == "retrying" and outcome["status_code"] == 429
        deadline = time.monotonic() + 10
        while deliveries()[0].status != "sent":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        worker.stop()
    gap = seen[1] - seen[0]
    assert 0.95 <= gap < 3, f"the retry came {gap:.2f} s after the 429"


def test_400_is_not_retried_and_says_why(delivery_app, make_destination, receivers, trigger):
    server = receivers()
    server.expect_request("/v2/enqueue").respond_with_json(
        {"status": "invalid event", "message": "Event object is invalid", "errors": ["Invalid routing key"]}, status=400)
    notifier = Notifier(delivery_app, FAST_RETRIES)

    [outcome] = notifier.notify([pagerduty(make_destination, server)], trigger)
    notifier.run_due()

    assert outcome["status"] == "failed" and outcome["status_code"] == 400
    assert "Invalid routing key" in outcome["error"]
    assert deliveries()[0].attempts == 1 and len(server.log) == 1


def test_a_receiver_that_never_answers_costs_the_timeout_and_delays_nobody(delivery_app, make_destination, receivers,
                                                                          trigger):
    hanging, healthy = receivers(), receivers()
    release = threading.Event()
    hanging.expect_request("/v2/enqueue").respond_with_handler(lambda request: release.wait(10) and Response(""))
    healthy.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    slow = pagerduty(make_destination, hanging, name="Hanging")
    fast = pagerduty(make_destination, healthy, name="Healthy")
    settings = NotifierSettings(timeout=0.5, policy=FAST_RETRIES.policy)

    started = time.monotonic()
    outcomes = Notifier(delivery_app, settings).notify([slow, fast], trigger)
    elapsed = time.monotonic() - started
    release.set()

    by_name = {o["destination_name"]: o for o in outcomes}
    assert by_name["Healthy"]["status"] == "sent"
    assert by_name["Hanging"]["status"] == "retrying" and "No answer within 0.5 s" in by_name["Hanging"]["error"]
    assert elapsed < 2.5, f"one notification took {elapsed:.2f} s with a 0.5 s timeout"


def test_a_retry_pending_at_shutdown_is_delivered_after_the_next_start(delivery_app, make_destination, receivers,
                                                                      trigger):
    server = receivers()
    server.expect_ordered_request("/v2/enqueue").respond_with_data("maintenance", status=503)
    server.expect_ordered_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    destination = pagerduty(make_destination, server)
    Notifier(delivery_app, FAST_RETRIES).notify([destination], trigger)
    assert deliveries()[0].status == "retrying"

    # A new process: a new app on the same database file, its worker started as `make run` does
    restarted = create_app({**delivery_app.config, "HERALD_RETRY_POLL_SECONDS": 0.05, "TESTING": False,
                            "HERALD_RETRY_BASE_DELAY": 0.01})
    worker = restarted.extensions["herald_delivery_worker"]
    try:
        deadline = time.monotonic() + 10
        while deliveries()[0].status != "sent":
            assert time.monotonic() < deadline, "the restarted worker did not deliver the pending retry"
            time.sleep(0.05)
    finally:
        worker.stop()
    assert len(server.log) == 2


def test_a_send_whose_sender_died_is_taken_over_when_its_lease_expires(delivery_app, make_destination, receivers,
                                                                       trigger):
    from datetime import timedelta

    from webapp.delivery.notifier import utcnow

    server = receivers()
    accept(server)
    destination = pagerduty(make_destination, server)
    row = Delivery(destination_id=destination.id, destination_name="PD", destination_type="pagerduty", alert_id=42,
                   alert_name=trigger.alert_name, event="trigger", status="pending", notification=trigger.to_json(),
                   next_attempt_at=utcnow(), lease_owner="dead-process", lease_until=utcnow() + timedelta(minutes=5))
    db.session.add(row)
    db.session.commit()
    notifier = Notifier(delivery_app, FAST_RETRIES)

    assert notifier.run_due() == 0, "a live lease must not be taken over"
    row.lease_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert notifier.run_due() == 1
    assert deliveries()[0].status == "sent" and len(server.log) == 1


def test_two_workers_never_send_the_same_retry_twice(delivery_app, make_destination, receivers, trigger):
    server = receivers()
    server.expect_ordered_request("/v2/enqueue").respond_with_data("busy", status=503)
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    destination = pagerduty(make_destination, server)
    Notifier(delivery_app, FAST_RETRIES).notify([destination], trigger)
    time.sleep(0.06)

    workers = [Notifier(delivery_app, FAST_RETRIES) for _ in range(4)]
    barrier = threading.Barrier(len(workers))

    def race(notifier):
        with delivery_app.app_context():
            barrier.wait()
            notifier.run_due()

    threads = [threading.Thread(target=race, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert deliveries()[0].status == "sent"
    assert len(server.log) == 2, "the retry was sent more than once"


def test_errors_are_stored_with_secrets_redacted(delivery_app, make_destination, receivers, trigger):
    server = receivers()
    hook = "/services/T0001/B0001/Zk3SecretPathToken99"
    server.expect_request(hook).respond_with_data(f"no_service for {server.url_for(hook)}", status=404)
    destination = make_destination("Slack", "slack", webhook_url=server.url_for(hook), channel="", username="",
                                   icon_emoji="")

    [outcome] = Notifier(delivery_app, FAST_RETRIES).notify([destination], trigger)

    assert outcome["status"] == "failed" and "no_service" in outcome["error"]
    assert "Zk3SecretPathToken99" not in outcome["error"] and "••••" in outcome["error"]
    assert "Zk3SecretPathToken99" not in (deliveries()[0].error or "")


def test_disabled_destinations_are_skipped_and_the_skip_is_recorded(delivery_app, make_destination, receivers, trigger):
    server = receivers()
    accept(server)
    on = pagerduty(make_destination, server, name="On")
    off = pagerduty(make_destination, server, name="Off", enabled=False)

    outcomes = Notifier(delivery_app, FAST_RETRIES).notify([on, off], trigger)

    assert [(o["destination_name"], o["status"]) for o in outcomes] == [("On", "sent"), ("Off", "skipped")]
    assert len(server.log) == 1


def test_test_send_opens_and_resolves_a_marked_test_incident(delivery_app, receivers):
    server = receivers()
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    config = {"integration_key": KEY, "severity": "", "api_url": server.url_for("/v2/enqueue")}

    outcome = Notifier(delivery_app, FAST_RETRIES).send_test(REGISTRY["pagerduty"], config, name="Unsaved PD")

    assert outcome["status"] == "sent" and outcome["event"] == "test"
    sent, resolved = (req.get_json() for req, _ in server.log)
    assert sent["payload"]["summary"].startswith("[TEST]")
    assert (sent["event_action"], resolved["event_action"]) == ("trigger", "resolve")
    assert sent["dedup_key"] == resolved["dedup_key"] != "herald-alert-42"


def test_test_send_reports_the_vendors_error_and_does_not_retry(delivery_app, receivers):
    server = receivers()
    server.expect_request("/v2/enqueue").respond_with_data("Service Unavailable", status=503)
    config = {"integration_key": KEY, "severity": "", "api_url": server.url_for("/v2/enqueue")}

    outcome = Notifier(delivery_app, FAST_RETRIES).send_test(REGISTRY["pagerduty"], config, name="PD")

    assert outcome["status"] == "failed" and "HTTP 503: Service Unavailable" in outcome["error"]
    assert len(server.log) == 1
