"""/api/sources: alert sources, through the same form and service as Settings → Alert sources."""
from flask import jsonify
from sqlalchemy import select

from ..extensions import db
from ..sources import service
from ..sources.models import Source
from . import ApiError, bp, get_or_404, json_body


def _get(source_id: int) -> Source:
    return get_or_404(Source, source_id, "source")


@bp.get("/sources")
def list_sources():
    return jsonify([service.as_json(s) for s in db.session.scalars(select(Source).order_by(Source.name))])


@bp.post("/sources")
def create_source():
    source, token = service.create(service.form_from_json(json_body(), None))
    return jsonify(service.as_json(source, token=token)), 201


@bp.get("/sources/<int:source_id>")
def get_source(source_id: int):
    return jsonify(service.as_json(_get(source_id)))


@bp.patch("/sources/<int:source_id>")
def update_source(source_id: int):
    source = _get(source_id)
    form = service.form_from_json(json_body(), source)
    return jsonify(service.as_json(service.save(source, form)))


@bp.delete("/sources/<int:source_id>")
def delete_source(source_id: int):
    service.delete(_get(source_id))
    return "", 204


@bp.post("/sources/<int:source_id>/rotate")
def rotate_source(source_id: int):
    """A new inbound URL, answered this once; the old one stops working at once."""
    source = _get(source_id)
    token = service.rotate(source)
    return jsonify(service.as_json(source, token=token))
