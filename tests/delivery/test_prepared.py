"""The hot path's statements run on the DBAPI cursor (webapp/prepared.py) and must give what
Connection.execute gives, on SQLite and PostgreSQL: the same rows with the same Python values (aware UTC
datetimes, booleans, decoded JSON), the same row counts, SQLAlchemy's errors, and writes that commit."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import exc, select

from webapp import alerts, prepared
from webapp.delivery import notifier
from webapp.extensions import db
from webapp.models import Alert, AlertStateChange, alert_destination

MOMENT = datetime(2026, 12, 2, 6, 30, 15, 123456, tzinfo=timezone.utc)


@pytest.fixture
def bound_alert(delivery_app, make_destination):
    hook = make_destination("Hook", "webhook", url="http://127.0.0.1:9/hook")
    off = make_destination("Off", "webhook", enabled=False, url="http://127.0.0.1:9/off")
    alert = Alert(name="CPU", state="triggered", muted=False, last_triggered_at=MOMENT, labels={"team": "ops"})
    db.session.add(alert)
    db.session.flush()
    db.session.execute(alert_destination.insert(), [{"alert_id": alert.id, "destination_id": d.id} for d in (hook, off)])
    db.session.commit()
    return alert.id


def both_ways(statement, parameters):
    """(rows through the prepared path, rows through Connection.execute), each read in its own transaction."""
    results = []
    for run in (prepared.execute, lambda conn, st, params: conn.execute(st, params)):
        with db.engine.connect() as conn:
            results.append([tuple(row) for row in run(conn, statement, parameters)])
    return results


def test_reads_give_the_same_rows_and_values_as_connection_execute(bound_alert):
    for statement, parameters in ((alerts._ALERT_WITH_TARGETS, {"alert": bound_alert}),
                                  (notifier._BOUND_DESTINATIONS, {"alert_id": bound_alert})):
        fast, reference = both_ways(statement, parameters)
        assert fast == reference and fast
        entry = prepared._CACHE[(statement, db.engine.dialect.name, tuple(sorted(parameters)))]
        assert isinstance(entry, prepared.PreparedStatement)  # it did take the prepared path

    with db.engine.connect() as conn:
        alert, *others = prepared.execute(conn, alerts._ALERT_WITH_TARGETS, {"alert": bound_alert}).all()
        destinations = prepared.execute(conn, notifier._BOUND_DESTINATIONS, {"alert_id": bound_alert}).all()
    assert alert.last_triggered_at == MOMENT and alert.last_triggered_at.tzinfo is not None
    assert alert.muted is False and alert.labels == {"team": "ops"}
    expected = [("Hook", True, False, {"url": "http://127.0.0.1:9/hook"}),
                ("Off", False, False, {"url": "http://127.0.0.1:9/off"})]
    assert [(d.name, d.enabled, d.waiting, d.options) for d in destinations] == expected
    # The alert's row once per bound destination, each with that destination's columns
    assert [(r.target_name, r.target_enabled, r.target_waiting, r.target_options) for r in (alert, *others)] == expected
    assert {r.id for r in others} == {alert.id}


def test_writes_count_their_rows_return_what_they_insert_and_commit(bound_alert):
    version = db.session.get(Alert, bound_alert).version
    db.session.rollback()
    compare_and_set = alerts._compare_and_set(("state", "updated_at", "version"))
    with db.engine.connect() as conn:  # a connection with no transaction yet: the cursor's writes must commit
        lost = prepared.execute(conn, compare_and_set, {"alert": bound_alert, "version": version + 7,
                                                        "new_state": "ok", "new_updated_at": MOMENT,
                                                        "new_version": version + 8})
        won = prepared.execute(conn, compare_and_set, {"alert": bound_alert, "version": version, "new_state": "ok",
                                                       "new_updated_at": MOMENT, "new_version": version + 1})
        entry_id = prepared.execute(conn, alerts._INSERT_HISTORY, dict(
            alert_id=bound_alert, from_state="triggered", to_state="ok", source="api", actor=None, value=None,
            created_at=MOMENT, note="prepared", notified=1)).scalar()
        conn.commit()
    assert (lost.rowcount, won.rowcount) == (0, 1)

    alert = db.session.get(Alert, bound_alert)  # read back by the ORM, on another connection
    assert (alert.state, alert.version, alert.updated_at) == ("ok", version + 1, MOMENT)
    entry = db.session.scalars(select(AlertStateChange).where(AlertStateChange.alert_id == bound_alert)).one()
    assert (entry.id, entry.note, entry.created_at) == (entry_id, "prepared", MOMENT)


def test_a_refused_write_raises_sqlalchemys_error_and_writes_nothing(bound_alert):
    with db.engine.connect() as conn:
        with pytest.raises(exc.IntegrityError):  # no such alert: the foreign key refuses it
            prepared.execute(conn, alerts._INSERT_HISTORY, dict(
                alert_id=bound_alert + 1000, from_state="ok", to_state="triggered", source="api", actor=None,
                value=None, created_at=MOMENT, note="refused", notified=0))
        conn.rollback()
        assert prepared.execute(conn, alerts._ALERT_WITH_TARGETS, {"alert": bound_alert}).first().name == "CPU"
    assert db.session.scalars(select(AlertStateChange)).all() == []
