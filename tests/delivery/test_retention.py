"""Finished deliveries leave the log after HERALD_DELIVERY_RETENTION_DAYS, alert history entries after
HERALD_HISTORY_RETENTION_DAYS; nothing waiting ever does, and each alert keeps its newest entry.

The real app on a real database (SQLite, and PostgreSQL when installed): a pass of the jobs the app's own worker
runs prunes, and the log is read back through the JSON API and the alert page, as an operator would."""
from datetime import timedelta

import requests
from sqlalchemy import insert, select

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD
from webapp import worker_jobs
from webapp.dbtypes import utcnow
from webapp.delivery.models import Delivery
from webapp.delivery.notifier import Notifier
from webapp.delivery.retention import Pruner
from webapp.delivery.worker import Worker
from webapp.extensions import db
from webapp.models import AlertStateChange

from .conftest import configure_delivery
from .test_outbox import create_alert, create_destination


def add_deliveries(rows: list[tuple[str, int]]) -> None:
    """(status, age in days) per row, in one INSERT."""
    now = utcnow()
    db.session.execute(insert(Delivery), [
        dict(destination_id=None, destination_name=f"Hook {i}", destination_type="webhook", alert_id=None,
             alert_name=f"{status}, {days} days old", event="trigger", status=status, attempts=1,
             notification={}, created_at=now - timedelta(days=days), updated_at=now - timedelta(days=days),
             next_attempt_at=now if status in ("pending", "retrying") else None)
        for i, (status, days) in enumerate(rows)])
    db.session.commit()


def logged(served) -> list[str]:
    """The delivery log as the API lists it: each row's alert name, which says its status and age."""
    items, page = [], 1
    while True:
        answer = served.api("GET", "/api/deliveries", params={"per_page": 200, "page": page}).json()
        items += answer["items"]
        if len(items) >= answer["total"] or not answer["items"]:
            return sorted(item["alert_name"] for item in items)
        page += 1


def worker_pass(app) -> None:
    """One pass of the retention jobs the app's delivery worker runs."""
    jobs = tuple(job for job in worker_jobs() if isinstance(job, Pruner))
    Worker(app, Notifier(app), interval=5, periodic=jobs).run_pass()


def test_the_worker_prunes_finished_deliveries_past_retention_and_keeps_everything_waiting(served):
    configure_delivery(served.app, HERALD_DELIVERY_RETENTION_DAYS=30)
    add_deliveries([("sent", 40), ("failed", 31), ("skipped", 365), ("pending", 40), ("retrying", 45),
                    ("sent", 29), ("failed", 1)])
    worker_pass(served.app)
    assert logged(served) == ["failed, 1 days old", "pending, 40 days old", "retrying, 45 days old",
                              "sent, 29 days old"]


def test_a_backlog_bigger_than_one_delete_goes_in_one_pass(served):
    configure_delivery(served.app, HERALD_DELIVERY_RETENTION_DAYS=7)
    add_deliveries([("sent", 8)] * 2500 + [("sent", 6)] * 3)
    worker_pass(served.app)
    assert logged(served) == ["sent, 6 days old"] * 3


def test_retention_zero_keeps_every_delivery(served):
    configure_delivery(served.app, HERALD_DELIVERY_RETENTION_DAYS=0)
    add_deliveries([("sent", 4000), ("failed", 400)])
    worker_pass(served.app)
    assert logged(served) == ["failed, 400 days old", "sent, 4000 days old"]


def test_deliveries_prune_from_cron_says_how_many_went(served):
    configure_delivery(served.app, HERALD_DELIVERY_RETENTION_DAYS=10)
    add_deliveries([("sent", 11), ("failed", 12), ("sent", 9)])
    result = served.app.test_cli_runner().invoke(args=["deliveries", "prune"])
    assert result.exit_code == 0 and "Removed 2 finished deliveries older than 10 days." in result.output
    assert logged(served) == ["sent, 9 days old"]


def add_history(alert_id: int, ages: list[float]) -> None:
    """History entries of the alert, `ages` in days, oldest first; each entry's note says its age."""
    now = utcnow()
    db.session.execute(insert(AlertStateChange), [
        dict(alert_id=alert_id, from_state="triggered", to_state="triggered", source="rearm", notified=1,
             note=f"{days:g} days old", created_at=now - timedelta(days=days)) for days in ages])
    db.session.commit()


def history(alert_id: int) -> list[str]:
    notes = db.session.scalars(select(AlertStateChange.note).where(AlertStateChange.alert_id == alert_id)
                               .order_by(AlertStateChange.id)).all()
    db.session.commit()
    return notes


def test_the_worker_prunes_alert_history_past_retention_and_keeps_each_alerts_newest_entry(served):
    """A re-armed alert adds an entry at every re-notification: without pruning, its history (and the database
    file) grew as long as it stayed triggered."""
    configure_delivery(served.app, HERALD_HISTORY_RETENTION_DAYS=30, HERALD_DELIVERY_RETENTION_DAYS=0)
    hook = create_destination(served, "Hook", "webhook", {"url": "http://127.0.0.1:9/hook"})
    rearmed, quiet = create_alert(served, "Re-armed", [hook]), create_alert(served, "Quiet", [hook])
    add_history(rearmed, [45, 40, 31, 29, 1])
    add_history(quiet, [400, 200])
    # A delivery of an entry that goes stays in the log (deliveries have their own retention)
    entry = db.session.scalar(select(AlertStateChange.id).where(AlertStateChange.note == "40 days old"))
    now = utcnow()
    db.session.execute(insert(Delivery), [dict(
        destination_id=None, destination_name="Hook", destination_type="webhook", alert_id=rearmed,
        alert_name="Re-armed", event="trigger", status="sent", attempts=1, notification={}, state_change_id=entry,
        created_at=now - timedelta(days=40), updated_at=now - timedelta(days=40))])
    db.session.commit()
    worker_pass(served.app)
    assert history(rearmed) == ["29 days old", "1 days old"]
    assert history(quiet) == ["200 days old"]  # the alert's newest entry, however old
    assert logged(served) == ["Re-armed"]
    browser = requests.Session()
    browser.post(served.url + "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=30)
    page = browser.get(served.url + f"/alerts/{quiet}", timeout=30)
    assert page.status_code == 200 and "200 days old" in page.text


def test_a_history_backlog_bigger_than_one_delete_goes_in_one_pass(served):
    configure_delivery(served.app, HERALD_HISTORY_RETENTION_DAYS=7)
    alert = create_alert(served, "Re-armed", [create_destination(served, "Hook", "webhook",
                                                                 {"url": "http://127.0.0.1:9/hook"})])
    add_history(alert, [8] * 2500 + [6] * 3)
    worker_pass(served.app)
    assert history(alert) == ["6 days old"] * 3


def test_history_retention_zero_keeps_every_entry(served):
    configure_delivery(served.app, HERALD_HISTORY_RETENTION_DAYS=0)
    alert = create_alert(served, "Re-armed", [create_destination(served, "Hook", "webhook",
                                                                 {"url": "http://127.0.0.1:9/hook"})])
    add_history(alert, [4000, 400, 40])
    worker_pass(served.app)
    assert history(alert) == ["4000 days old", "400 days old", "40 days old"]


def test_prune_from_cron_also_prunes_history_and_says_how_much_went(served):
    configure_delivery(served.app, HERALD_HISTORY_RETENTION_DAYS=10, HERALD_DELIVERY_RETENTION_DAYS=0)
    alert = create_alert(served, "Re-armed", [create_destination(served, "Hook", "webhook",
                                                                 {"url": "http://127.0.0.1:9/hook"})])
    add_history(alert, [12, 11, 9])
    result = served.app.test_cli_runner().invoke(args=["deliveries", "prune"])
    assert result.exit_code == 0, result.output
    assert "HERALD_DELIVERY_RETENTION_DAYS is 0: every delivery is kept." in result.output
    assert "Removed 2 alert history entries older than 10 days." in result.output
    assert history(alert) == ["9 days old"]
