"""The outbox: a state change and its deliveries commit together, and each destination hears an alert's changes
in order, with the alert's current state as the last word; concurrent changes are applied one after another.

Every test goes through the real app served by waitress and real local receivers at the vendors' paths.
"""
import random
import threading
from collections import defaultdict

import pytest
from sqlalchemy import text
from werkzeug import Response

from .conftest import configure_delivery, start_worker, wait_until
from webapp.extensions import db
from webapp.models import Alert, AlertStateChange, Delivery

KEY = "0123456789abcdef0123456789abcdef"
FAST = dict(HERALD_RETRY_BASE_DELAY=0.3, HERALD_RETRY_MAX_DELAY=0.3, HERALD_HTTP_TIMEOUT=2, HERALD_SEND_DEADLINE=3)


def create_alert(served, name, destination_ids, **extra):
    response = served.api("POST", "/api/alerts", json={"name": name, "destination_ids": destination_ids, **extra})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_destination(served, name, type_key, options):
    response = served.api("POST", "/api/destinations", json={"name": name, "type": type_key, "options": options})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def change(served, alert_id, state, client=None):
    return served.api("POST", f"/api/alerts/{alert_id}/state", client=client, json={"state": state})


def deliveries() -> list[Delivery]:
    db.session.rollback()  # see what the server committed, not this session's earlier reads
    return db.session.scalars(db.select(Delivery).order_by(Delivery.id)).all()


def nothing_waiting():
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count()).select_from(Delivery)
                             .where(Delivery.status.in_(("pending", "retrying")))) == 0


def test_a_recovery_never_overtakes_a_trigger_that_pagerduty_refused(served, receivers):
    """503 on the trigger, recovery a moment later: PagerDuty's last event is the resolve, no trigger after it."""
    configure_delivery(served.app, **FAST)
    receiver = receivers()
    events = []

    def pagerduty(request):
        body = request.get_json()
        events.append(body["event_action"])
        if len(events) == 1:
            return Response("Service Unavailable", status=503)
        return Response('{"status":"success"}', status=202, content_type="application/json")

    receiver.expect_request("/v2/enqueue", method="POST").respond_with_handler(pagerduty)
    pd = create_destination(served, "PD", "pagerduty", {"integration_key": KEY, "api_url": receiver.url_for("/v2/enqueue")})
    alert_id = create_alert(served, "Disk full", [pd])
    start_worker(served.app)

    trigger = change(served, alert_id, "triggered").json()
    assert trigger["deliveries"][0]["status"] == "retrying"
    recovery = change(served, alert_id, "ok").json()
    assert recovery["changed"] is True
    wait_until(nothing_waiting, message="deliveries were still waiting")
    wait_until(lambda: len(events) >= 2)

    assert events[-1] == "resolve", f"PagerDuty saw {events}"
    assert "trigger" not in events[events.index("resolve"):], f"a trigger came after the resolve: {events}"
    rows = deliveries()
    assert [(r.event, r.status) for r in rows] == [("trigger", "skipped"), ("resolve", "sent")]
    assert "Superseded" in rows[0].detail


def test_chat_gets_the_trigger_and_then_the_recovery_in_order(served, receivers):
    """Slack refuses the trigger once; the recovery waits behind its retry, so the channel reads in order."""
    configure_delivery(served.app, **FAST)
    receiver = receivers()
    texts = []

    def slack(request):
        texts.append(request.get_json()["text"])
        if len(texts) == 1:
            return Response("rate limited", status=429, headers={"Retry-After": "1"})
        return Response("ok")

    receiver.expect_request("/services/T1/B1/x", method="POST").respond_with_handler(slack)
    slack_id = create_destination(served, "Slack", "slack", {"webhook_url": receiver.url_for("/services/T1/B1/x")})
    alert_id = create_alert(served, "Queue backlog", [slack_id])
    start_worker(served.app)

    change(served, alert_id, "triggered")
    change(served, alert_id, "ok")
    wait_until(nothing_waiting)

    assert len(texts) == 3, texts
    assert "TRIGGERED" in texts[1] and "RESOLVED" in texts[2], f"the channel read {texts}"


def test_a_trigger_never_attempted_and_its_recovery_send_nothing_to_an_incident_vendor(served, receivers):
    """The trigger is still waiting behind an earlier delivery when the alert recovers: an incident vendor
    needs neither, and gets neither."""
    configure_delivery(served.app, **{**FAST, "HERALD_RETRY_BASE_DELAY": 30, "HERALD_RETRY_MAX_DELAY": 30})
    receiver = receivers()
    events = []

    def pagerduty(request):
        events.append(request.get_json()["event_action"])
        return Response("Service Unavailable", status=503)  # the first trigger keeps retrying, far in the future

    receiver.expect_request("/v2/enqueue", method="POST").respond_with_handler(pagerduty)
    pd = create_destination(served, "PD", "pagerduty", {"integration_key": KEY, "api_url": receiver.url_for("/v2/enqueue")})
    alert_id = create_alert(served, "Flapping", [pd])

    change(served, alert_id, "triggered")  # attempted once, refused, retrying in 30 s
    change(served, alert_id, "ok")  # supersedes it; the resolve is sent since the trigger may have reached PD
    change(served, alert_id, "triggered")  # the resolve was refused too: this trigger waits behind its retry
    before = list(events)
    wait_until(lambda: db.session.scalar(db.select(db.func.count()).select_from(Delivery)
                                         .where(Delivery.status == "retrying")) == 1)
    rows = deliveries()
    assert [(r.event, r.status) for r in rows] == [("trigger", "skipped"), ("resolve", "retrying"),
                                                    ("trigger", "pending")], before
    # The resolve is refused and retrying; the new trigger waits behind it. Now the alert recovers again:
    # the waiting trigger was never attempted, so neither it nor this recovery goes to PagerDuty
    change(served, alert_id, "ok")
    rows = deliveries()
    assert [(r.event, r.status) for r in rows][2:] == [("trigger", "skipped"), ("resolve", "skipped")]
    assert "nothing was opened" in rows[3].detail
    assert events == before, "nothing more may reach PagerDuty"


@pytest.fixture
def fail_delivery_inserts():
    """Make the database refuse every new delivery row, as a full disk would; undo() lets them through again."""
    dialect = db.engine.dialect.name

    class Switch:
        def on(self):
            with db.engine.begin() as connection:
                if dialect == "sqlite":
                    connection.execute(text("CREATE TRIGGER refuse_deliveries BEFORE INSERT ON delivery "
                                            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"))
                else:
                    connection.execute(text("CREATE FUNCTION refuse_deliveries() RETURNS trigger AS $$ BEGIN "
                                            "RAISE EXCEPTION 'could not extend file: No space left on device'; END "
                                            "$$ LANGUAGE plpgsql"))
                    connection.execute(text("CREATE TRIGGER refuse_deliveries BEFORE INSERT ON delivery FOR EACH ROW "
                                            "EXECUTE FUNCTION refuse_deliveries()"))

        def off(self):
            with db.engine.begin() as connection:
                if dialect == "sqlite":
                    connection.execute(text("DROP TRIGGER refuse_deliveries"))
                else:
                    connection.execute(text("DROP TRIGGER refuse_deliveries ON delivery"))
                    connection.execute(text("DROP FUNCTION refuse_deliveries()"))

    return Switch()


def test_a_failed_delivery_insert_leaves_the_alert_unchanged_and_the_retry_notifies(served, receivers,
                                                                                  fail_delivery_inserts):
    receiver = receivers()
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    hook = create_destination(served, "Hook", "webhook", {"url": receiver.url_for("/hook")})
    alert_id = create_alert(served, "Disk full", [hook])

    fail_delivery_inserts.on()
    refused = change(served, alert_id, "triggered")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert "unchanged" in refused.json()["error"]["message"]
    db.session.rollback()
    assert db.session.get(Alert, alert_id).state == "unknown"
    assert db.session.scalar(db.select(db.func.count()).select_from(AlertStateChange)) == 0
    assert receiver.log == []

    fail_delivery_inserts.off()
    retried = change(served, alert_id, "triggered")
    assert retried.status_code == 200 and retried.json()["changed"] is True
    assert [d["status"] for d in retried.json()["deliveries"]] == ["sent"]
    assert len(receiver.log) == 1 and receiver.log[0][0].get_json()["alert"]["state"] == "triggered"


def test_concurrent_changes_are_applied_in_turn_and_each_destination_ends_on_the_alerts_state(served, receivers):
    """300 changes from 16 clients on 4 alerts with 3 destinations each: none is dropped, every destination
    hears its alert's notifying changes in the order they were applied, and ends on the final state."""
    receiver = receivers()
    heard = defaultdict(list)  # (destination path, alert id) → states in arrival order
    lock = threading.Lock()

    def record(request):
        body = request.get_json()
        with lock:
            heard[(request.path, body["alert"]["id"])].append(body["alert"]["state"])
        return Response("ok")

    for i in range(3):
        receiver.expect_request(f"/hook/{i}", method="POST").respond_with_handler(record)
    hooks = [create_destination(served, f"Hook {i}", "webhook", {"url": receiver.url_for(f"/hook/{i}")})
             for i in range(3)]
    alerts = [create_alert(served, f"Alert {a}", hooks) for a in range(4)]
    start_worker(served.app)

    plan = [(random.choice(alerts), random.choice(("triggered", "ok"))) for _ in range(300)]
    answers, errors = [], []

    def client(part):
        session = served.client()
        for alert_id, state in part:
            response = change(served, alert_id, state, client=session)
            (answers if response.status_code == 200 else errors).append(response)

    threads = [threading.Thread(target=client, args=(plan[i::16],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and len(answers) == 300
    assert not any("same moment" in a.json()["message"] for a in answers)
    wait_until(nothing_waiting, seconds=60)

    db.session.rollback()
    for alert_id in alerts:
        history = db.session.scalars(db.select(AlertStateChange).where(AlertStateChange.alert_id == alert_id)
                                     .order_by(AlertStateChange.id)).all()
        changed = sum(1 for a in answers if a.json()["alert"]["id"] == alert_id and a.json()["changed"])
        assert changed == len(history), "every change that answered changed:true is in the history, once"
        for previous, entry in zip(history, history[1:]):
            assert entry.from_state == previous.to_state, "each change starts from the state the one before left"
        notified = [h.to_state for h in history if h.notified]
        final = db.session.get(Alert, alert_id).state
        for i in range(3):
            got = heard[(f"/hook/{i}", alert_id)]
            rows = db.session.execute(db.select(Delivery.id, Delivery.state_change_id, Delivery.event, Delivery.status,
                                                Delivery.attempts).where(Delivery.alert_id == alert_id,
                                                                         Delivery.destination_id == hooks[i])
                                      .order_by(Delivery.id)).all()
            assert got == notified, (f"alert {alert_id} at hook {i}: heard {got}, changes were {notified}; "
                                     f"deliveries {rows}")
            if got:
                assert got[-1] == final


def test_every_answer_is_already_recorded_when_it_arrives(served, receivers):
    """An answer is sent only once the first results it reports are written: a client that reads its deliveries
    back at once sees what it was told, under concurrent clients too (one webhook that accepts, one that refuses).
    Answering before the results were written failed this test every time."""
    receiver = receivers()
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    receiver.expect_request("/broken", method="POST").respond_with_data("no", status=400)
    hook = create_destination(served, "Hook", "webhook", {"url": receiver.url_for("/hook")})
    broken = create_destination(served, "Broken hook", "webhook", {"url": receiver.url_for("/broken")})
    alerts = [create_alert(served, f"Queue {i}", [hook, broken]) for i in range(4)]
    start_worker(served.app)
    mismatches, told = [], []

    def client(alert_id):
        import requests

        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {served.token}"
            for i in range(12):
                answer = session.post(f"{served.url}/api/alerts/{alert_id}/state", timeout=30,
                                      json={"state": "triggered" if i % 2 == 0 else "ok"}).json()
                stored = {d["delivery_id"]: d for d in session.get(
                    f"{served.url}/api/deliveries", params={"alert_id": alert_id, "per_page": 2}, timeout=30,
                ).json()["items"]}
                for said in answer["deliveries"]:
                    told.append(said["status"])
                    row = stored.get(said["delivery_id"], {})
                    if {k: row.get(k) for k in said} != said:
                        mismatches.append((said, row))

    threads = [threading.Thread(target=client, args=(alert_id,)) for alert_id in alerts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(set(told)) == ["failed", "sent"] and len(told) == 4 * 12 * 2
    assert not mismatches, mismatches[:3]


def test_a_change_to_many_destinations_records_each_answer_on_its_own_row(served, receivers):
    """55 webhooks, more than one INSERT's worth of delivery rows (the rows of a change are written 50 at a time),
    every third one refusing: each destination's delivery holds its own vendor's answer, in the API's answer
    and in the log, and the answer lists them by destination name."""
    import re

    receiver = receivers()
    receiver.expect_request(re.compile(r"/hook/\d+"), method="POST").respond_with_handler(
        lambda request: Response("no" if int(request.path.rsplit("/", 1)[1]) % 3 == 0 else "ok",
                                 status=400 if int(request.path.rsplit("/", 1)[1]) % 3 == 0 else 200))
    configure_delivery(served.app, HERALD_NOTIFY_WAIT=30)
    names = {create_destination(served, f"Hook {i:02}", "webhook", {"url": receiver.url_for(f"/hook/{i}")}): i
             for i in reversed(range(55))}  # created in the reverse of their names' order
    alert_id = create_alert(served, "Fan-out", list(names))
    answer = change(served, alert_id, "triggered").json()["deliveries"]

    def expected(index):
        return ("failed", 400) if index % 3 == 0 else ("sent", 200)

    assert [d["destination_name"] for d in answer] == [f"Hook {i:02}" for i in range(55)]
    assert [(d["status"], d["status_code"]) for d in answer] == [expected(names[d["destination_id"]]) for d in answer]
    rows = deliveries()
    assert len(rows) == 55 and len({row.destination_id for row in rows}) == 55
    assert all((row.status, row.status_code) == expected(names[row.destination_id]) for row in rows), \
        [(row.destination_name, row.status, row.status_code) for row in rows]
    assert {d["delivery_id"]: d["destination_id"] for d in answer} == {row.id: row.destination_id for row in rows}
