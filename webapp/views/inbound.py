"""/inbound/<token>: where Alertmanager, Grafana, webhooks and heartbeat pings arrive. JSON answers only.

200 only once the whole payload is committed (Alertmanager retries on 5xx and network errors, never on 4xx); a
payload that can never be accepted gets its 4xx naming what is wrong; a database failure 503, nothing changed.
"""
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from .. import alerts as alert_service
from ..extensions import csrf, db
from ..json_input import InvalidInput, parse_json
from ..sources import service
from ..sources.models import Source

log = logging.getLogger(__name__)

bp = Blueprint("inbound", __name__, url_prefix="/inbound")
csrf.exempt(bp)  # machines post here with the token in the URL, never with a browser's cookies

MAX_TOKEN = 200


def error(status: int, message: str, fields: dict | None = None):
    response = jsonify({"status": "refused", "error": {"message": message, "fields": fields or {}}})
    return response, status


@bp.errorhandler(InvalidInput)
def refused(exc: InvalidInput):
    db.session.rollback()
    return error(exc.status, exc.message, exc.fields)


@bp.errorhandler(alert_service.ChangeNotRecorded)
def not_recorded(exc):
    response, status = error(503, str(exc))
    response.headers["Retry-After"] = "5"
    return response, status


@bp.errorhandler(SQLAlchemyError)
def database_failed(exc):
    # Alertmanager retries a 5xx: the payload is taken again once the database is back
    db.session.rollback()
    log.error("inbound: the database failed: %s", type(exc).__name__)
    response, status = error(503, "The database is unavailable; nothing was recorded. Try again.")
    response.headers["Retry-After"] = "5"
    return response, status


@bp.route("/<path:token>", methods=["GET", "HEAD", "POST", "PUT"])
def receive(token: str):
    app = current_app._get_current_object()
    source = Source.by_token(token) if len(token) <= MAX_TOKEN else None
    if source is None:
        db.session.rollback()
        return error(404, "No source has this address: the token is wrong, or was rotated.")
    if not service.bearer_matches(source, request.headers.get("Authorization", "")):
        db.session.rollback()
        response, status = error(401, "This source requires Authorization: Bearer <its token>.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="herald-inbound"'
        return response, status
    limit = app.config["HERALD_INBOUND_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return error(413, f"The payload is larger than {limit} bytes (HERALD_INBOUND_MAX_BYTES).")
    if source.kind == "heartbeat":
        request.get_data(cache=False)  # a ping's body means nothing; read it so the connection stays usable
        result = service.ping(app, source)
        return jsonify({**result.summary(), "ping": True}), 200
    if request.method not in ("POST", "PUT"):
        return error(405, f"A {source.kind_label} source takes its alerts by POST with a JSON body.")
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        return error(413, f"The payload is larger than {limit} bytes (HERALD_INBOUND_MAX_BYTES).")
    body = parse_json(raw, nul=True, what="The payload")
    result = service.receive(app, source, body)
    return jsonify(result.summary()), 200
