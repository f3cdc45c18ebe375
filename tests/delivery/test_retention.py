"""Finished deliveries leave the log after HERALD_DELIVERY_RETENTION_DAYS; nothing waiting ever does.

The real app on a real database (SQLite, and PostgreSQL when installed): the worker's own pass prunes, and the
log is read back through the JSON API, as an operator would."""
from datetime import timedelta

from sqlalchemy import insert

from webapp.dbtypes import utcnow
from webapp.delivery.models import Delivery
from webapp.delivery.notifier import Notifier
from webapp.delivery.retention import DeliveryPruner
from webapp.delivery.worker import Worker
from webapp.extensions import db

from .conftest import configure_delivery


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
    Worker(app, Notifier(app), interval=5, periodic=(DeliveryPruner(),)).run_pass()


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
