"""/api/destination-types and /api/destinations: the same forms and the same service as the settings UI."""
from flask import jsonify, request
from sqlalchemy import select

from .. import destination_service as service
from ..destinations import REGISTRY, get_type
from ..extensions import db
from ..json_input import reject_unknown, type_schema
from ..models import Destination
from . import ApiError, bp, get_or_404, json_body

TOP_LEVEL = ("name", "type", "enabled", "options")


def _get(destination_id: int) -> Destination:
    return get_or_404(Destination, destination_id, "destination")


def _type_of(destination: Destination):
    if destination.destination_type is None:  # a type this version no longer has
        raise ApiError(409, f"This version of Herald has no destination type {destination.type!r}.")
    return destination.destination_type


@bp.get("/destination-types")
def destination_types():
    return jsonify([type_schema(t) for t in REGISTRY.values()])


@bp.get("/destinations")
def list_destinations():
    destinations = db.session.scalars(select(Destination).order_by(Destination.name)).all()
    return jsonify([service.as_json(d) for d in destinations])


@bp.post("/destinations")
def create_destination():
    body = json_body()
    reject_unknown(body, TOP_LEVEL)
    dtype = get_type(body.get("type") if isinstance(body.get("type"), str) else None)
    if dtype is None:
        raise ApiError(422, "Unknown or missing destination type.",
                       {"type": [f"Must be one of: {', '.join(REGISTRY)}."]})
    form = service.form_from_json(dtype, body, None)
    return jsonify(service.as_json(service.save(Destination(type=dtype.type), form))), 201


@bp.get("/destinations/<int:destination_id>")
def get_destination(destination_id: int):
    return jsonify(service.as_json(_get(destination_id)))


@bp.patch("/destinations/<int:destination_id>")
def update_destination(destination_id: int):
    destination = _get(destination_id)
    body = json_body()
    reject_unknown(body, TOP_LEVEL)
    if "type" in body and body["type"] != destination.type:
        raise ApiError(422, "A destination's type cannot change; create a new destination.",
                       {"type": ["Cannot change."]})
    form = service.form_from_json(_type_of(destination), body, destination)
    return jsonify(service.as_json(service.save(destination, form))), 200


@bp.delete("/destinations/<int:destination_id>")
def delete_destination(destination_id: int):
    service.delete(_get(destination_id), force=request.args.get("force") == "true")
    return "", 204


@bp.post("/destinations/<int:destination_id>/test")
def test_destination(destination_id: int):
    destination = _get(destination_id)
    outcome, _ = service.send_test(_type_of(destination), destination)
    return jsonify(outcome), 200
