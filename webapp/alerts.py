"""Alert state changes and who hears about them. Plain Python: views and the API call in here.

The rules follow Redash: notify on unknown→triggered, ok→triggered and triggered→ok (the recovery), not on
unknown→ok; while triggered, notify again once `rearm_seconds` have passed since the last notification; a
muted alert records its changes and notifies nobody.
"""
import functools
import logging
import operator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value

from .delivery.notification import Notification
from .delivery.notifier import Target, get_notifier, target_columns
from .extensions import core, db
from .metrics import STATE_CHANGES
from .models import Alert, AlertStateChange, DeliveryRef, Destination, alert_destination

log = logging.getLogger(__name__)

NOTIFYING_TRANSITIONS = {("unknown", "triggered"), ("ok", "triggered"), ("triggered", "ok")}
OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
             "!=": operator.ne}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class AlertSnapshot:
    """An alert's columns as one Core read found them: all a state change decides on and answers with.

    The API's state and value endpoints change an alert they do not otherwise touch; loading it through the ORM
    cost a tenth of such a request. Every column is an attribute of the same name, as on Alert."""

    COLUMNS = tuple(Alert.__table__.c.keys())
    __slots__ = COLUMNS + ("_target_rows",)
    from_source = Alert.from_source
    condition = Alert.condition

    @classmethod
    def load(cls, alert_id: int) -> "AlertSnapshot | None":
        """The alert and its bound destinations in one statement: a change that notifies needs both, and on
        PostgreSQL each statement is a round trip."""
        rows = core(_ALERT_WITH_TARGETS, {"alert": alert_id}).all()
        if not rows:
            return None
        snapshot = cls.__new__(cls)
        width = len(cls.COLUMNS)
        for key, value in zip(cls.COLUMNS, rows[0]):
            setattr(snapshot, key, value)
        snapshot._target_rows = [row[width:] for row in rows if row[width] is not None]
        return snapshot

    @property
    def targets(self) -> list[Target]:
        """The bound destinations as the read found them, as Target.bound_to gives them (secrets decrypted now)."""
        return [Target.of_columns(*row) for row in self._target_rows]

    @property
    def destinations(self) -> list[Destination]:
        """Bound destinations in the order Alert.destinations has (read when a change did not read them)."""
        return db.session.scalars(select(Destination).join(alert_destination).where(
            alert_destination.c.alert_id == self.id).order_by(Destination.name)).all()


@dataclass
class StateChangeResult:
    alert: "Alert | AlertSnapshot"
    previous_state: str
    changed: bool
    notified: bool
    message: str
    deliveries: list[dict] = field(default_factory=list)
    # The alert's destinations as the change read them (None when it did not need them), so that an answer
    # built from the result need not read them again
    destination_ids: list[int] | None = None


def condition_holds(op: str, threshold: float, value: float) -> bool:
    return OPERATORS[op](value, threshold)


def alert_url(base_url: str, alert: Alert) -> str:
    return f"{base_url}/alerts/{alert.id}"


def notification_for(alert: Alert, plan: "_Plan", new_state: str, base_url: str, value: float | None) -> Notification:
    return Notification(
        alert_id=alert.id, alert_name=alert.name, state=new_state, previous_state=plan.previous,
        severity=alert.severity, description=alert.description or "", alert_url=alert_url(base_url, alert),
        url_base=base_url, value=value, threshold=alert.condition_threshold, renotify=plan.rearm,
        condition_op=alert.condition_op, rearm_seconds=alert.rearm_seconds or 0, alert_created_at=alert.created_at,
        last_triggered_at=plan.values.get("last_triggered_at", alert.last_triggered_at),
        occurred_at=plan.values["updated_at"],
    )


def submit_value(app, alert: Alert, value: float, actor: str | None = None, source: str = "value") -> StateChangeResult:
    """Check `value` against the alert's condition and move the alert to triggered or ok accordingly."""
    if alert.condition is None:
        raise ValueError("This alert has no condition to check a value against.")
    state = "triggered" if condition_holds(alert.condition_op, alert.condition_threshold, value) else "ok"
    return set_state(app, alert, state, source=source, actor=actor, value=value)


@dataclass
class _Plan:
    """What one change does to the alert, decided against the state the change before it left."""

    previous: str
    rearm: bool
    notify: bool
    values: dict
    note: str | None


def _plan(alert: Alert, new_state: str, now: datetime, value: float | None) -> _Plan | None:
    previous = alert.state
    rearm = previous == new_state == "triggered" and _rearm_due(alert, now)
    if previous == new_state and not rearm:
        return None
    values = {"state": new_state, "updated_at": now, "version": alert.version + 1}
    if value is not None:
        values["last_value"] = value
    if not rearm:
        values["last_state_change_at"] = now
    if new_state == "triggered" and not rearm:
        values["last_triggered_at"] = now
    notify = rearm or (previous, new_state) in NOTIFYING_TRANSITIONS
    if notify and not alert.muted:
        values["last_notified_at"] = now
    note = None
    if rearm:
        note = f"Still triggered after {alert.rearm_seconds} s: notified again."
    elif not notify:
        note = "No notification for this change."
    elif alert.muted:
        note = "Muted: nobody was notified."
    return _Plan(previous, rearm, notify and not alert.muted, values, note)


MAX_CONFLICTS = 200  # concurrent changes to one alert retry this often before the caller is told to try again


class ChangeNotRecorded(Exception):
    """The change could not be written (the alert kept changing, or the database failed); nothing was."""


def set_state(app, alert: Alert, new_state: str, source: str, actor: str | None = None,
              value: float | None = None, wait: float | None = None) -> StateChangeResult:
    """Apply a state to the alert, record it and stage its deliveries in one transaction, then send them.

    Concurrent changes to one alert are applied one after another: a compare-and-set on the alert's
    version that loses is retried against the state the winner left, never dropped. The caller waits for
    the first attempts at most `wait` seconds (HERALD_NOTIFY_WAIT); the rest go on in the background.
    Raises ChangeNotRecorded when nothing could be written; then nothing was.
    """
    if new_state not in ("triggered", "ok"):
        raise ValueError("The state must be triggered or ok.")
    notifier = get_notifier(app)
    alert_id = alert.id
    # The first try decides on the alert as the caller loaded it: if it is stale, the compare-and-set loses
    # and the next try reads it again, the same kind of object
    snapshot = isinstance(alert, AlertSnapshot)
    loaded = alert if snapshot or (alert in db.session and not db.session.is_modified(alert)) else None
    for _ in range(MAX_CONFLICTS):
        try:
            applied = _apply(app, notifier, alert_id, new_state, source, actor, value, loaded, snapshot)
            loaded = None
        except SQLAlchemyError as exc:
            db.session.rollback()
            log.error("alert %s: the change to %s could not be recorded: %s", alert_id, new_state, exc)
            raise ChangeNotRecorded("The change could not be recorded (the database refused the write); the "
                                    "alert is unchanged and nobody was notified. Try again.") from None
        if applied is None:
            continue  # another change won the compare-and-set: decide again against the state it left
        if isinstance(applied, StateChangeResult):
            return applied
        plan, alert, note, rows = applied
        outcomes = notifier.first_outcomes(rows, app.config["HERALD_NOTIFY_WAIT"] if wait is None else wait)
        return StateChangeResult(alert, plan.previous, changed=not plan.rearm, notified=bool(outcomes),
                                 deliveries=outcomes, message=_summary(outcomes) if rows else note,
                                 destination_ids=[row.destination_id for row in rows] if plan.notify else None)
    db.session.rollback()
    raise ChangeNotRecorded("The alert is changing too fast; nothing was recorded. Try again.")


def _apply(app, notifier, alert_id: int, new_state: str, source: str, actor: str | None, value: float | None,
           alert: "Alert | AlertSnapshot | None" = None, snapshot: bool = False):
    """One try: a StateChangeResult when there is nothing to change, None when another change won the
    compare-and-set, else (plan, alert as written, history note, staged rows) of the committed transaction."""
    if alert is None:
        db.session.rollback()  # decide on what is committed now, not on what this session read earlier
        alert = (AlertSnapshot.load(alert_id) if snapshot
                 else db.session.get(Alert, alert_id, populate_existing=True))
    if alert is None:
        raise LookupError(f"No alert with id {alert_id}.")
    now = utcnow()
    plan = _plan(alert, new_state, now, value)
    if plan is None:
        if value is not None:
            db.session.execute(update(Alert).where(Alert.id == alert_id).values(last_value=value))
            db.session.commit()
            _set_written(alert, {"last_value": value})
        return StateChangeResult(alert, alert.state, changed=False, notified=False,
                                 message=f"No change: the alert is already {new_state}.")
    if not plan.notify:
        targets = []
    else:
        targets = alert.targets if isinstance(alert, AlertSnapshot) else Target.bound_to(alert_id)
    written = _write_change(notifier, alert, plan, new_state, targets, source, actor, value, now,
                            app.config["HERALD_BASE_URL"])
    if written is None:
        db.session.rollback()
        return None
    note, rows = written
    session = db.session()
    session.expire_on_commit = False  # the caller's answer is built from what was just written, not read again
    try:
        db.session.commit()  # the change, its history and its deliveries, together or not at all
    finally:
        session.expire_on_commit = True
    _set_written(alert, plan.values)
    STATE_CHANGES.labels(plan.previous, new_state, source).inc()
    return plan, alert, note, rows


def _set_written(alert: "Alert | AlertSnapshot", values: dict) -> None:
    """Show on the caller's alert what a statement wrote past the ORM, without reading it back."""
    for key, written in values.items():
        if isinstance(alert, AlertSnapshot):
            setattr(alert, key, written)
        else:
            set_committed_value(alert, key, written)


def _write_change(notifier, alert: Alert, plan: _Plan, new_state: str, targets: list[Target], source: str,
                  actor: str | None, value: float | None, now: datetime, base_url: str,
                  details: dict | None = None) -> tuple[str | None, list] | None:
    """Inside the caller's transaction: the compare-and-set, the history entry and the staged deliveries of one
    change; (history note, staged rows), or None when another change won the compare-and-set. `details`: extra
    Notification fields (what an alert source sent)."""
    won = core(_compare_and_set(tuple(plan.values)), {
        "alert": alert.id, "version": alert.version, **{f"new_{k}": v for k, v in plan.values.items()}}).rowcount
    if won != 1:
        return None
    note = "No destinations are bound to this alert." if plan.notify and not targets else plan.note
    entry_id = core(_INSERT_HISTORY, dict(
        alert_id=alert.id, from_state=plan.previous, to_state=new_state, source=source, actor=actor, value=value,
        created_at=now, note=note, notified=sum(1 for t in targets if t.enabled))).scalar()
    rows = []
    if targets:
        notification = notification_for(alert, plan, new_state, base_url, value)
        if details:
            notification = replace(notification, **details)
        rows = notifier.stage(targets, notification, state_change_id=entry_id, now=now)
    return note, rows


# Core statements built once: a change runs them on every call, and building one costs about as much as running it
_ALERT = Alert.__table__
_HISTORY = AlertStateChange.__table__
_INSERT_HISTORY = insert(_HISTORY).returning(_HISTORY.c.id)
_ALERT_WITH_TARGETS = (
    select(*_ALERT.c, *(column.label(f"target_{column.key}") for column in target_columns(_ALERT.c.id)))
    .select_from(_ALERT.outerjoin(alert_destination, alert_destination.c.alert_id == _ALERT.c.id)
                 .outerjoin(Destination.__table__, Destination.id == alert_destination.c.destination_id))
    .where(_ALERT.c.id == bindparam("alert")).order_by(Destination.name))


@functools.cache
def _compare_and_set(columns: tuple[str, ...]):
    """UPDATE alert SET <columns> WHERE id = :alert AND version = :version (one per set of columns)."""
    return (update(_ALERT).where(_ALERT.c.id == bindparam("alert"), _ALERT.c.version == bindparam("version"))
            .values({name: bindparam(f"new_{name}") for name in columns}))


def renotify_due(app) -> int:
    """Notify again every triggered alert whose rearm interval has passed (run by the delivery worker)."""
    now = utcnow()
    candidates = db.session.execute(
        select(Alert.id, Alert.rearm_seconds, Alert.last_notified_at, Alert.last_triggered_at)
        .where(Alert.state == "triggered", Alert.rearm_seconds > 0, Alert.muted.is_(False))).all()
    db.session.commit()
    due = [row.id for row in candidates
           if (row.last_notified_at or row.last_triggered_at) is None
           or now - (row.last_notified_at or row.last_triggered_at) >= timedelta(seconds=row.rearm_seconds)]
    for alert_id in due:
        alert = db.session.get(Alert, alert_id)
        if alert is not None:
            set_state(app, alert, "triggered", source="rearm", wait=0)
    return len(due)


def delete_alert(alert: Alert) -> None:
    """Delete the alert with its history and the vendor references kept for its resolves; its deliveries stay."""
    db.session.execute(delete(DeliveryRef).where(DeliveryRef.alert_id == alert.id))
    db.session.delete(alert)
    db.session.commit()


def _rearm_due(alert: Alert, now: datetime) -> bool:
    if alert.rearm_seconds <= 0 or alert.muted:
        return False
    last = alert.last_notified_at or alert.last_triggered_at
    return last is None or now - last >= timedelta(seconds=alert.rearm_seconds)


def _summary(outcomes: list[dict]) -> str:
    if not outcomes:
        return "No destinations are bound to this alert."
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
    return "Deliveries: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + "."


# --- batches: many alerts changed in one transaction (alert sources) ---------------------------------------------

@dataclass
class BatchItem:
    """One alert of a batch and the state it is to have. `targets`: who hears of the change (for alerts from a
    source, its routes' destinations and the alert's extra ones); `details`: the Notification's extra fields."""

    alert: Alert
    new_state: str
    targets: list[Target]
    details: dict = field(default_factory=dict)
    created: bool = False


@dataclass
class BatchOutcome:
    alert_id: int
    created: bool
    previous_state: str
    state: str
    changed: bool
    notified: int


class BatchConflict(Exception):
    """Another writer got in first (a compare-and-set lost, or the same new alert was inserted meanwhile)."""


def apply_batch(app, prepare, source: str, actor: str | None = None) -> list[BatchOutcome]:
    """Apply every change `prepare()` returns in ONE transaction, by the same state rules, history and outbox as
    set_state, then hand the staged deliveries to the senders (not waiting for them).

    `prepare()` runs inside the transaction (again after a conflict, against what the winner committed); it may add
    new alerts to the session and must be repeatable. The batch is committed whole or not at all: ChangeNotRecorded
    when it could not be, and then nothing was.
    """
    from sqlalchemy.exc import IntegrityError

    notifier = get_notifier(app)
    base_url = app.config["HERALD_BASE_URL"]
    for _ in range(MAX_CONFLICTS):
        db.session.rollback()  # decide on what is committed now
        try:
            outcomes, rows, written = _apply_batch_once(notifier, prepare(), source, actor, base_url)
            session = db.session()
            session.expire_on_commit = False
            try:
                db.session.commit()  # every change, its history and its deliveries, together or not at all
            finally:
                session.expire_on_commit = True
        except (BatchConflict, IntegrityError):
            db.session.rollback()
            continue
        except SQLAlchemyError as exc:
            db.session.rollback()
            log.error("a batch from %s could not be recorded: %s", actor or source, exc)
            raise ChangeNotRecorded("The alerts could not be recorded (the database refused the write); nothing "
                                    "was changed and nobody was notified. Try again.") from None
        for alert, values in written:
            for key, value in values.items():
                set_committed_value(alert, key, value)
        for outcome in outcomes:
            if outcome.changed:
                STATE_CHANGES.labels(outcome.previous_state, outcome.state, source).inc()
        notifier.dispatch(rows)
        return outcomes
    db.session.rollback()
    raise ChangeNotRecorded("The alerts are changing too fast; nothing was recorded. Try again.")


def _apply_batch_once(notifier, items: list[BatchItem], source: str, actor: str | None, base_url: str):
    """Each item planned and written by the same steps as a single change (_plan, _write_change), in the
    caller's transaction; BatchConflict when a compare-and-set loses."""
    db.session.flush()  # new alerts get their ids (a duplicate insert raises IntegrityError: a conflict)
    now = utcnow()
    outcomes, rows, written = [], [], []
    for item in items:
        alert = item.alert
        plan = _plan(alert, item.new_state, now, None)
        if plan is None:
            outcomes.append(BatchOutcome(alert.id, item.created, alert.state, alert.state, False, 0))
            continue
        targets = item.targets if plan.notify else []
        change = _write_change(notifier, alert, plan, item.new_state, targets, source, actor, None, now, base_url,
                               item.details)
        if change is None:
            raise BatchConflict()
        rows += change[1]
        written.append((alert, plan.values))
        outcomes.append(BatchOutcome(alert.id, item.created, plan.previous, item.new_state, not plan.rearm,
                                     sum(1 for t in targets if t.enabled)))
    return outcomes, rows, written
