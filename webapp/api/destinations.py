"""/api/destination-types and /api/destinations: the same forms as the settings UI, on JSON."""
from flask import current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..delivery.notifier import get_notifier
from ..destinations import REGISTRY, get_type
from ..extensions import db
from ..json_input import reject_unknown, type_schema, validated_destination_form
from ..models import Destination
from . import ApiError, bp, json_body

TOP_LEVEL = ("name", "type", "enabled", "options")


def destination_json(destination: Destination) -> dict:
    dtype = destination.destination_type
    secret_names = dtype.secret_fields() if dtype else []
    stored = destination.secrets if secret_names else {}
    return {
        "id": destination.id,
        "name": destination.name,
        "type": destination.type,
        "enabled": destination.enabled,
        "options": dict(destination.options),
        # Write-only: a GET says which secrets are set, never their values (as Grafana's secureFields)
        "secure_fields": {name: bool(stored.get(name)) for name in secret_names},
        "alert_ids": [a.id for a in destination.alerts],
        "created_at": destination.created_at.isoformat(),
        "updated_at": destination.updated_at.isoformat() if destination.updated_at else None,
    }


def _get(destination_id: int) -> Destination:
    destination = db.session.get(Destination, destination_id)
    if destination is None:
        raise ApiError(404, f"No destination with id {destination_id}.")
    return destination


def _save(destination: Destination, form, stored_secrets: dict, status: int):
    db.session.add(form.apply_to(destination, stored_secrets))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, "Another destination already has this name.", {"name": ["Another destination already has this name."]}) from None
    return jsonify(destination_json(destination)), status


@bp.get("/destination-types")
def destination_types():
    return jsonify([type_schema(t) for t in REGISTRY.values()])


@bp.get("/destinations")
def list_destinations():
    destinations = db.session.scalars(select(Destination).order_by(Destination.name)).all()
    return jsonify([destination_json(d) for d in destinations])


@bp.post("/destinations")
def create_destination():
    body = json_body()
    reject_unknown(body, TOP_LEVEL)
    dtype = get_type(body.get("type") if isinstance(body.get("type"), str) else None)
    if dtype is None:
        raise ApiError(422, "Unknown or missing destination type.",
                       {"type": [f"Must be one of: {', '.join(REGISTRY)}."]})
    form, stored = validated_destination_form(dtype, body, None)
    return _save(Destination(type=dtype.type), form, stored, 201)


@bp.get("/destinations/<int:destination_id>")
def get_destination(destination_id: int):
    return jsonify(destination_json(_get(destination_id)))


@bp.patch("/destinations/<int:destination_id>")
def update_destination(destination_id: int):
    destination = _get(destination_id)
    body = json_body()
    reject_unknown(body, TOP_LEVEL)
    if "type" in body and body["type"] != destination.type:
        raise ApiError(422, "A destination's type cannot change; create a new destination.",
                       {"type": ["Cannot change."]})
    form, stored = validated_destination_form(destination.destination_type, body, destination)
    return _save(destination, form, stored, 200)


@bp.delete("/destinations/<int:destination_id>")
def delete_destination(destination_id: int):
    destination = _get(destination_id)
    if destination.alerts and request.args.get("force") != "true":
        names = ", ".join(a.name for a in destination.alerts)
        raise ApiError(409, f"Alerts use this destination: {names}. Delete with ?force=true to unbind them.",
                       {"alert_ids": [str(a.id) for a in destination.alerts]})
    db.session.delete(destination)
    db.session.commit()
    return "", 204


@bp.post("/destinations/<int:destination_id>/test")
def test_destination(destination_id: int):
    destination = _get(destination_id)
    outcome = get_notifier(current_app._get_current_object()).send_test(
        destination.destination_type, destination.config, name=destination.name, destination_id=destination.id)
    return jsonify(outcome), 200
