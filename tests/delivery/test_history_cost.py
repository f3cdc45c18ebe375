"""A state change, the worker's pass over due retries, and the alert's page cost the same work on an alert with a
long history as on a new one: the outbox's queries find a pair's waiting deliveries by index, never by reading the
pair's whole history, and the page reads the newest entries it shows, not every entry ever made. The same for the
alert sources' list counts a source's alerts (one per label set it ever sent) without reading them.

The work is counted, not timed: SQLite calls a progress handler every 10 virtual-machine instructions, on every
connection of the served app. A query that reads every earlier delivery of the pair runs thousands more of them.
(SQLite only: PostgreSQL has no such counter, and its planner reads a small table whole whatever the indexes.)
"""
import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select

from .test_outbox import change, create_alert, create_destination
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.models import Alert, AlertStateChange, Delivery

HISTORY = 5000  # earlier deliveries of the old alert to the same destination, all of them long done


@pytest.fixture
def database_url(tmp_path):
    return "sqlite:///" + str(tmp_path / "herald.sqlite3")


@pytest.fixture
def work(served):
    """work() → SQLite VM instructions (in hundreds) run since the last call, on every connection of the app."""
    steps = itertools.count()

    @event.listens_for(db.engine, "connect")
    def count_steps(dbapi_connection, _record):
        dbapi_connection.set_progress_handler(lambda: next(steps) and 0, 10)

    db.session.remove()
    db.engine.dispose()  # the connections opened so far have no handler
    last = [0]

    def since_last_call() -> int:
        now = next(steps) - 1  # this call's own step taken back out
        spent, last[0] = now - last[0], now
        return spent

    yield since_last_call
    event.remove(db.engine, "connect", count_steps)


def add_history(alert_id: int, destination_id: int, count: int, type_key: str = "webhook") -> None:
    now = utcnow() - timedelta(days=30)
    db.session.execute(insert(Delivery), [
        dict(destination_id=destination_id, destination_name="Hook", destination_type=type_key, alert_id=alert_id,
             alert_name="Old", event="trigger" if i % 2 == 0 else "resolve", status="sent", attempts=1,
             notification={}, created_at=now, updated_at=now, sent_at=now)
        for i in range(count)])
    db.session.commit()


# A chat-like vendor, and an incident vendor, whose recovery also looks for the episode's undelivered triggers
VENDORS = {
    "webhook": ("/hook", {"url": "{url}"}, 200, "ok"),
    "pagerduty": ("/v2/enqueue", {"integration_key": "0123456789abcdef0123456789abcdef", "api_url": "{url}"}, 202,
                  '{"status": "success", "dedup_key": "herald-alert-1"}'),
}


@pytest.mark.parametrize("type_key", list(VENDORS))
def test_a_state_change_costs_the_same_on_an_alert_with_a_long_history(served, receivers, work, type_key):
    path, options, status, body = VENDORS[type_key]
    receiver = receivers()
    receiver.expect_request(path, method="POST").respond_with_data(body, status=status,
                                                                    content_type="application/json")
    options = {k: v.format(url=receiver.url_for(path)) for k, v in options.items()}
    hook = create_destination(served, "Hook", type_key, options)
    new, old = create_alert(served, "New", [hook]), create_alert(served, "Old", [hook])
    add_history(old, hook, HISTORY, type_key)

    def cost(alert_id: int) -> int:
        work()
        for state in ("triggered", "ok", "triggered", "ok"):
            answer = change(served, alert_id, state).json()
            # "sent" in the answer: the result is recorded (nothing here reads the pair's history to find out)
            assert answer["deliveries"][0]["status"] == "sent", answer
        return work()

    cost(new), cost(old)  # the first changes also compile and cache statements
    on_new, on_old = cost(new), cost(old)
    assert len(receiver.log) == 16
    assert on_old < on_new * 1.3, (f"four changes on an alert with {HISTORY} earlier deliveries ran {on_old}0 SQLite "
                                   f"instructions, against {on_new}0 on a new alert")


def test_the_workers_pass_costs_the_same_on_an_alert_with_a_long_history(served, work):
    """A due row behind one still leased: finding what is ahead of it reads only the pair's waiting rows."""
    from webapp.delivery.notifier import get_notifier

    hook = create_destination(served, "Hook", "webhook", {"url": "http://127.0.0.1:9/hook"})
    new, old = create_alert(served, "New", [hook]), create_alert(served, "Old", [hook])
    add_history(old, hook, HISTORY)
    notifier = get_notifier(served.app)

    def cost(alert_id: int) -> int:
        now = utcnow()
        row = dict(destination_id=hook, destination_name="Hook", destination_type="webhook", alert_id=alert_id,
                   alert_name="x", notification={}, created_at=now, updated_at=now, next_attempt_at=now)
        # Nothing is sent: the retry is leased by a live sender, and the pending row waits behind it
        db.session.execute(insert(Delivery), [
            dict(row, event="trigger", status="retrying", attempts=1, lease_owner="elsewhere",
                 lease_token="t" * 32, lease_until=now + timedelta(hours=1)),
            dict(row, event="resolve", status="pending", attempts=0)])
        db.session.commit()
        work()
        for _ in range(5):
            assert notifier.run_due(wait_for_them=False) == 0
        spent = work()
        db.session.execute(db.delete(Delivery).where(Delivery.alert_id == alert_id,
                                                     Delivery.status.in_(("pending", "retrying"))))
        db.session.commit()
        return spent

    cost(new), cost(old)
    on_new, on_old = cost(new), cost(old)
    assert on_old < on_new * 1.3 + 5, (f"five passes over a row waiting on an alert with {HISTORY} earlier "
                                       f"deliveries ran {on_old}0 SQLite instructions, against {on_new}0 on a new alert")


def add_state_history(alert_id: int, count: int) -> None:
    """`count` old entries of the alert's history (a re-armed alert makes one at every re-notification)."""
    now = utcnow() - timedelta(days=30)
    db.session.execute(insert(AlertStateChange), [
        dict(alert_id=alert_id, from_state="triggered", to_state="triggered", source="rearm", notified=1,
             note=f"Re-notification {i}", created_at=now + timedelta(seconds=i)) for i in range(count)])
    db.session.commit()


def test_the_alert_page_costs_the_same_on_an_alert_with_a_long_history(served, work):
    """The page and the deliveries fragment its htmx polling fetches show the newest 50 entries of the history."""
    import requests

    from helpers import ADMIN_EMAIL, ADMIN_PASSWORD

    hook = create_destination(served, "Hook", "webhook", {"url": "http://127.0.0.1:9/hook"})
    new, old = create_alert(served, "New", [hook]), create_alert(served, "Old", [hook])
    add_state_history(old, HISTORY)
    add_state_history(new, 60)  # both pages show 50 entries; one alert has made 60, the other 5000
    browser = requests.Session()
    signed_in = browser.post(served.url + "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                             allow_redirects=False, timeout=30)
    assert signed_in.status_code == 302, signed_in.text

    def cost(alert_id: int) -> int:
        work()
        for path in (f"/alerts/{alert_id}", f"/alerts/{alert_id}/deliveries"):
            response = browser.get(served.url + path, timeout=30)
            assert response.status_code == 200, response.text
        return work()

    cost(new), cost(old)
    on_new, on_old = cost(new), cost(old)
    shown = browser.get(served.url + f"/alerts/{old}", timeout=30).text
    assert f"Re-notification {HISTORY - 1}<" in shown and f"Re-notification {HISTORY - 50}<" in shown
    assert f"Re-notification {HISTORY - 51}<" not in shown
    assert on_old < on_new * 1.3 + 5, (f"the page and its fragment of an alert with {HISTORY} history entries ran "
                                       f"{on_old}0 SQLite instructions, against {on_new}0 for one with 60")


def sign_in(served):
    import requests

    from helpers import ADMIN_EMAIL, ADMIN_PASSWORD

    browser = requests.Session()
    signed_in = browser.post(served.url + "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                             allow_redirects=False, timeout=30)
    assert signed_in.status_code == 302, signed_in.text
    return browser


def test_the_sources_list_counts_a_sources_alerts_without_reading_them(served, work):
    hook = create_destination(served, "Hook", "webhook", {"url": "http://127.0.0.1:9/hook"})
    ids = {}
    for name in ("Few", "Many"):
        created = served.api("POST", "/api/sources", json={"name": name, "kind": "alertmanager",
                                                           "destination_ids": [hook]})
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    now = utcnow()
    db.session.execute(insert(Alert), [
        dict(name=f"KubePodCrashLooping {i}", source_id=ids["Few"], source_key=f"few-{i}", created_at=now)
        for i in range(3)])
    db.session.commit()
    browser = sign_in(served)

    def cost() -> int:
        work()
        response = browser.get(served.url + "/settings/sources/", timeout=30)
        assert response.status_code == 200, response.text
        return work(), response.text

    cost()
    on_few, _ = cost()
    db.session.execute(insert(Alert), [
        dict(name=f"KubePodCrashLooping {i}", source_id=ids["Many"], source_key=f"many-{i}", created_at=now)
        for i in range(HISTORY)])
    db.session.commit()
    on_many, shown = cost()
    # What the list says: each source's number of alerts, linked to them
    assert re.search(rf'source_id={ids["Many"]}">{HISTORY}<', shown) and re.search(rf'source_id={ids["Few"]}">3<', shown)
    # Counting walks the source's index entries (about 7 instructions each); reading the alerts took 54 each
    assert (on_many - on_few) * 10 < HISTORY * 20, (f"the sources list with a source of {HISTORY} alerts ran "
                                                    f"{on_many}0 SQLite instructions, against {on_few}0 with 3")


def test_deleting_a_source_runs_the_same_statements_whatever_number_of_alerts_it_made(served):
    """Loaded and deleted one by one, a source's 20,000 alerts held the database's write lock, and with it every
    other alert's state change, for 4.1 s; now a handful of statements delete them, their history, their bindings
    and their vendor references, and another source's alerts stay."""
    from webapp.models import DeliveryRef, alert_destination

    hook = create_destination(served, "Hook", "webhook", {"url": "http://127.0.0.1:9/hook"})
    extra = create_destination(served, "Extra", "webhook", {"url": "http://127.0.0.1:9/extra"})
    ids, made = {}, {"Few": 1, "Many": 2000, "Kept": 5}
    now = utcnow()
    for name, count in made.items():
        created = served.api("POST", "/api/sources", json={"name": name, "kind": "alertmanager",
                                                           "destination_ids": [hook]})
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
        db.session.execute(insert(Alert), [
            dict(name=f"{name} {i}", source_id=ids[name], source_key=f"{name}-{i}", created_at=now)
            for i in range(count)])
        alert_ids = db.session.scalars(select(Alert.id).where(Alert.source_id == ids[name])).all()
        db.session.execute(insert(AlertStateChange), [
            dict(alert_id=a, from_state="unknown", to_state="triggered", source="alertmanager", notified=1,
                 created_at=now) for a in alert_ids])
        db.session.execute(insert(alert_destination), [dict(alert_id=a, destination_id=extra) for a in alert_ids])
        db.session.execute(insert(DeliveryRef), [dict(alert_id=a, destination_id=extra, data={"ticket_id": a})
                                                 for a in alert_ids])
        db.session.commit()
    browser = sign_in(served)
    shown = browser.get(served.url + f"/settings/sources/{ids['Many']}/delete", timeout=30).text
    assert "Its 2000 alerts will be deleted too" in shown and "and 1980 more" in shown and "Many 1999<" in shown

    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        costs = {}
        for name in ("Few", "Many"):
            statements.clear()
            assert served.api("DELETE", f"/api/sources/{ids[name]}").status_code == 204
            costs[name] = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert costs["Many"] <= costs["Few"], (f"deleting a source of 2000 alerts ran {costs['Many']} statements, "
                                           f"against {costs['Few']} for one of 1")
    left = db.session.scalars(select(Alert.source_id).distinct()).all()
    histories = db.session.scalar(select(func.count()).select_from(AlertStateChange))
    bindings = db.session.scalar(select(func.count()).select_from(alert_destination))
    refs = db.session.scalar(select(func.count()).select_from(DeliveryRef))
    db.session.commit()
    assert left == [ids["Kept"]] and histories == bindings == refs == made["Kept"]
    assert served.api("GET", f"/api/sources/{ids['Kept']}").json()["alert_ids"] == sorted(
        db.session.scalars(select(Alert.id)).all())
