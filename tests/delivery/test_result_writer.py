"""Results are written as a group commit, and the lease still fences each one: a sender that lost its lease
writes nothing, while every other result that went into the same transaction is written."""
import threading
import uuid
from datetime import timedelta

from webapp.dbtypes import utcnow
from webapp.delivery.notification import Notification
from webapp.delivery.notifier import Job, Outcome, get_notifier
from webapp.destinations import REGISTRY
from webapp.extensions import db
from webapp.models import Delivery


def leased_rows(destination, count: int) -> list[Delivery]:
    now = utcnow()
    rows = [Delivery(destination_id=destination.id, destination_name=destination.name, destination_type="webhook",
                     alert_id=1000 + i, alert_name=f"Alert {i}", event="trigger", status="pending", attempts=1,
                     notification={}, created_at=now, updated_at=now, next_attempt_at=now, last_attempt_at=now,
                     lease_owner="test", lease_token=uuid.uuid4().hex, lease_until=now + timedelta(minutes=5))
            for i in range(count)]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def job_for(row: Delivery, token: str) -> Job:
    return Job(delivery_id=row.id, token=token, attempt=1, event="trigger", alert_id=row.alert_id,
               destination_id=row.destination_id, destination_name=row.destination_name, dtype=REGISTRY["webhook"],
               config={}, notification=Notification(alert_id=row.alert_id, alert_name=row.alert_name,
                                                    state="triggered"), refs={}, created_at=row.created_at)


def test_concurrent_results_are_all_written_and_a_lost_lease_writes_nothing(delivery_app, make_destination):
    hook = make_destination("Hook", "webhook", url="http://127.0.0.1:9/hook")
    rows = leased_rows(hook, 24)
    stale = {rows[5].id, rows[17].id}  # another worker took these over: their senders hold old tokens
    original = {row.id: row.lease_token for row in rows}
    tokens = {row_id: (uuid.uuid4().hex if row_id in stale else token) for row_id, token in original.items()}
    notifier = get_notifier(delivery_app)
    written, start = {}, threading.Barrier(len(rows))  # all at once, so results share transactions

    def sender(row_id):
        with delivery_app.app_context():
            row = db.session.get(Delivery, row_id)
            job = job_for(row, tokens[row_id])
            db.session.commit()
            start.wait()
            written[row_id] = notifier._record(job, Outcome("sent", status_code=202, detail=f"ok {row_id}",
                                                            duration_ms=3))

    threads = [threading.Thread(target=sender, args=(row.id,)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert written == {row.id: row.id not in stale for row in rows}
    db.session.rollback()
    for row in db.session.scalars(db.select(Delivery).order_by(Delivery.id)):
        if row.id in stale:  # untouched: still the other worker's, with its lease
            assert (row.status, row.lease_token, row.detail, row.sent_at) == ("pending", original[row.id], None, None)
        else:
            assert (row.status, row.status_code, row.detail, row.lease_token) == ("sent", 202, f"ok {row.id}", None)
            assert row.sent_at is not None
