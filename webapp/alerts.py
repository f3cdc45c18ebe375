"""Alert state changes and who hears about them. Plain Python: views and the API call in here.

The rules follow Redash: notify on unknown→triggered, ok→triggered and triggered→ok (the recovery), not on
unknown→ok; while triggered, notify again once `rearm_seconds` have passed since the last notification; a
muted alert records its changes and notifies nobody.
"""
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, update

from .delivery.notification import Notification
from .delivery.notifier import Notifier
from .extensions import db
from .metrics import STATE_CHANGES
from .models import Alert, AlertStateChange, DeliveryRef

NOTIFYING_TRANSITIONS = {("unknown", "triggered"), ("ok", "triggered"), ("triggered", "ok")}
OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
             "!=": operator.ne}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StateChangeResult:
    alert: Alert
    previous_state: str
    changed: bool
    notified: bool
    message: str
    deliveries: list[dict] = field(default_factory=list)


def condition_holds(op: str, threshold: float, value: float) -> bool:
    return OPERATORS[op](value, threshold)


def alert_url(base_url: str, alert: Alert) -> str:
    return f"{base_url}/alerts/{alert.id}"


def notification_for(alert: Alert, previous_state: str, base_url: str, value: float | None) -> Notification:
    return Notification(
        alert_id=alert.id, alert_name=alert.name, state=alert.state, previous_state=previous_state,
        severity=alert.severity, description=alert.description or "", alert_url=alert_url(base_url, alert),
        url_base=base_url, value=value, threshold=alert.condition_threshold,
    )


def submit_value(app, alert: Alert, value: float, actor: str | None = None, source: str = "value") -> StateChangeResult:
    """Check `value` against the alert's condition and move the alert to triggered or ok accordingly."""
    if alert.condition is None:
        raise ValueError("This alert has no condition to check a value against.")
    state = "triggered" if condition_holds(alert.condition_op, alert.condition_threshold, value) else "ok"
    alert.last_value = value
    return set_state(app, alert, state, source=source, actor=actor, value=value)


def set_state(app, alert: Alert, new_state: str, source: str, actor: str | None = None,
              value: float | None = None) -> StateChangeResult:
    """Apply a state to the alert, record it, and notify its destinations when the rules say so."""
    if new_state not in ("triggered", "ok"):
        raise ValueError("The state must be triggered or ok.")
    now = utcnow()
    previous = alert.state
    rearm = previous == new_state == "triggered" and _rearm_due(alert, now)
    if previous == new_state and not rearm:
        db.session.commit()  # keeps last_value
        return StateChangeResult(alert, previous, changed=False, notified=False,
                                 message=f"No change: the alert is already {new_state}.")

    # Compare-and-set, so two concurrent changes cannot both notify for the same transition
    values = {"state": new_state, "updated_at": now}
    if not rearm:
        values["last_state_change_at"] = now
    if new_state == "triggered" and not rearm:
        values["last_triggered_at"] = now
    should_notify = rearm or (previous, new_state) in NOTIFYING_TRANSITIONS
    if should_notify and not alert.muted:
        values["last_notified_at"] = now
    claim = update(Alert).where(Alert.id == alert.id, Alert.state == previous)
    if rearm:
        claim = claim.where(Alert.last_notified_at == alert.last_notified_at if alert.last_notified_at
                            else Alert.last_notified_at.is_(None))
    if db.session.execute(claim.values(**values)).rowcount != 1:
        db.session.rollback()
        db.session.refresh(alert)
        return StateChangeResult(alert, previous, changed=False, notified=False,
                                 message="Another change to this alert happened at the same moment; nothing was sent.")
    entry = AlertStateChange(alert_id=alert.id, from_state=previous, to_state=new_state, source=source, actor=actor,
                             value=value, created_at=now)
    if rearm:
        entry.note = f"Still triggered after {alert.rearm_seconds} s: notified again."
    elif not should_notify:
        entry.note = "No notification for this change."
    elif alert.muted:
        entry.note = "Muted: nobody was notified."
    db.session.add(entry)
    db.session.commit()  # the change is on record before anything is sent
    STATE_CHANGES.labels(previous, new_state, source).inc()
    db.session.refresh(alert)

    if not should_notify or alert.muted:
        return StateChangeResult(alert, previous, changed=not rearm, notified=False, message=entry.note)
    outcomes = Notifier(app).notify(list(alert.destinations), notification_for(alert, previous, app.config["HERALD_BASE_URL"], value))
    entry.notified = sum(1 for o in outcomes if o["status"] != "skipped")
    if not alert.destinations:
        entry.note = "No destinations are bound to this alert."
    db.session.commit()
    return StateChangeResult(alert, previous, changed=not rearm, notified=bool(outcomes), deliveries=outcomes,
                             message=_summary(outcomes))


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
