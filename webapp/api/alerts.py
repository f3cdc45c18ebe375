"""/api/alerts: alerts, their bindings, state changes and values; /api/deliveries: the log."""
from flask import current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import MAX_ID
from .. import alerts as alert_service
from ..extensions import db
from ..json_input import reject_unknown, validated_alert_form
from ..models import Alert, Delivery
from ..sources.alerts import BY_HAND, validated_source_alert_form
from . import ApiError, bp, error_response, get_or_404, json_body

MAX_PER_PAGE = 200


def alert_json(alert: Alert, destination_ids: list[int] | None = None) -> dict:
    iso = lambda moment: moment.isoformat() if moment else None  # noqa: E731
    return {
        "id": alert.id,
        "name": alert.name,
        "description": alert.description,
        "severity": alert.severity,
        "state": alert.state,
        "muted": alert.muted,
        "rearm_seconds": alert.rearm_seconds,
        "condition": alert.condition,
        "destination_ids": [d.id for d in alert.destinations] if destination_ids is None else destination_ids,
        "last_value": alert.last_value,
        "created_at": iso(alert.created_at),
        "last_triggered_at": iso(alert.last_triggered_at),
        "last_state_change_at": iso(alert.last_state_change_at),
        # From an alert source: set by what it sends (null for alerts made in Herald)
        "source_id": alert.source_id,
        "labels": alert.labels or {},
        "annotations": alert.annotations or {},
        "generator_url": alert.generator_url,
        "external_url": alert.external_url,
    }


def _get(alert_id: int) -> Alert:
    return get_or_404(Alert, alert_id, "alert")


def _snapshot(alert_id: int) -> alert_service.AlertSnapshot:
    """The alert as a state change needs it (no ORM load), or the API's 404."""
    alert = alert_service.AlertSnapshot.load(alert_id)
    if alert is None:
        raise ApiError(404, f"No alert with id {alert_id}.")
    return alert


@bp.get("/alerts")
def list_alerts():
    alerts = db.session.scalars(select(Alert).options(selectinload(Alert.destinations)).order_by(Alert.name)).all()
    return jsonify([alert_json(a) for a in alerts])


@bp.post("/alerts")
def create_alert():
    form = validated_alert_form(json_body(), None)
    alert = form.apply_to(Alert())
    db.session.add(alert)
    db.session.commit()
    return jsonify(alert_json(alert)), 201


@bp.get("/alerts/<int:alert_id>")
def get_alert(alert_id: int):
    return jsonify(alert_json(_get(alert_id)))


@bp.patch("/alerts/<int:alert_id>")
def update_alert(alert_id: int):
    alert = _get(alert_id)
    if alert.from_source:
        validated_source_alert_form(json_body(), alert).apply_to(alert)
        db.session.commit()
        return jsonify(alert_json(alert))
    form = validated_alert_form(json_body(), alert)
    form.apply_to(alert)
    db.session.commit()
    return jsonify(alert_json(alert))


@bp.delete("/alerts/<int:alert_id>")
def delete_alert(alert_id: int):
    alert_service.delete_alert(_get(alert_id))
    return "", 204


def _refuse_by_hand(alert: Alert) -> None:
    if alert.from_source:
        raise ApiError(409, BY_HAND, {"state": [BY_HAND]})


def _change_response(change):
    """Run the change; 503 (nothing written, safe to retry) when it could not be recorded."""
    try:
        result = change(current_app._get_current_object())
    except alert_service.ChangeNotRecorded as exc:
        response, status = error_response(503, str(exc))
        response.headers["Retry-After"] = "1"
        return response, status
    return jsonify({
        "alert": alert_json(result.alert, result.destination_ids),
        "previous_state": result.previous_state,
        "changed": result.changed,
        "notified": result.notified,
        "message": result.message,
        "deliveries": result.deliveries,
    })


@bp.post("/alerts/<int:alert_id>/state")
def set_alert_state(alert_id: int):
    alert = _snapshot(alert_id)
    _refuse_by_hand(alert)
    body = json_body()
    reject_unknown(body, ("state",))
    state = body.get("state")
    if state not in ("triggered", "ok"):
        raise ApiError(422, "state must be \"triggered\" or \"ok\".", {"state": ["Must be \"triggered\" or \"ok\"."]})
    return _change_response(lambda app: alert_service.set_state(app, alert, state, source="api",
                                                                actor=g.api_user.email))


@bp.post("/alerts/<int:alert_id>/value")
def submit_alert_value(alert_id: int):
    alert = _snapshot(alert_id)
    _refuse_by_hand(alert)
    body = json_body()
    reject_unknown(body, ("value",))
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise ApiError(422, "value must be a finite number.", {"value": ["Must be a finite number."]})
    if alert.condition is None:
        raise ApiError(409, "This alert has no condition to check a value against.",
                       {"value": ["The alert has no condition."]})
    return _change_response(lambda app: alert_service.submit_value(app, alert, float(value), actor=g.api_user.email,
                                                                   source="api"))


def _positive_int_arg(name: str, default: int | None = None, maximum: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= MAX_ID):
        raise ApiError(422, f"{name} must be a whole number from 1 to {MAX_ID}.", {name: [f"A whole number from 1 to {MAX_ID}."]})
    value = int(raw)
    if maximum and value > maximum:
        raise ApiError(422, f"{name} may be at most {maximum}.", {name: [f"At most {maximum}."]})
    return value


@bp.get("/deliveries")
def list_deliveries():
    reject_unknown(request.args, ("alert_id", "destination_id", "status", "event", "page", "per_page"))
    query = select(Delivery).order_by(Delivery.id.desc())
    for name in ("alert_id", "destination_id"):
        value = _positive_int_arg(name)
        if value is not None:
            query = query.where(getattr(Delivery, name) == value)
    for name, allowed in (("status", Delivery.STATUSES), ("event", Delivery.EVENTS)):
        value = request.args.get(name)
        if value:
            if value not in allowed:
                raise ApiError(422, f"{name} must be one of {', '.join(allowed)}.", {name: [f"One of: {', '.join(allowed)}."]})
            query = query.where(getattr(Delivery, name) == value)
    page = db.paginate(query, page=_positive_int_arg("page", 1), per_page=_positive_int_arg("per_page", 50, MAX_PER_PAGE),
                       error_out=False)
    return jsonify({
        "items": [_delivery_json(d) for d in page.items],
        "page": page.page, "per_page": page.per_page, "total": page.total, "pages": page.pages,
    })


def _delivery_json(delivery: Delivery) -> dict:
    return {
        **delivery.to_outcome(),
        "alert_id": delivery.alert_id,
        "alert_name": delivery.alert_name,
        "duration_ms": delivery.duration_ms,
        "created_at": delivery.created_at.isoformat(),
        "last_attempt_at": delivery.last_attempt_at.isoformat() if delivery.last_attempt_at else None,
        "sent_at": delivery.sent_at.isoformat() if delivery.sent_at else None,
    }
