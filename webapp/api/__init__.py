"""The JSON API under /api, authenticated by `Authorization: Bearer TOKEN`."""
from datetime import datetime, timedelta, timezone

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..extensions import csrf, db
from ..json_input import InvalidInput, parse_json
from ..models import ApiToken

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)  # bearer tokens, not cookies: no cross-site request can carry one

WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
PUBLIC = {"api.openapi"}


# Answered as {"error": {"message": ..., "fields": {...}}} with its HTTP status
ApiError = InvalidInput


def error_response(status: int, message: str, fields: dict | None = None):
    body = {"error": {"message": message, "fields": fields or {}}}
    return jsonify(body), status


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    return error_response(error.status, error.message, error.fields)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    return error_response(error.code or 500, error.description or error.name)


@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Send an API token: Authorization: Bearer TOKEN (Settings → API tokens).")
    caller = ApiToken.caller(token.strip())
    if caller is None:
        raise ApiError(401, "This API token is not valid or was revoked.")
    if request.method in WRITE_METHODS and not caller.is_admin:
        raise ApiError(403, "This token belongs to a viewer and may only read.")
    g.api_user = caller  # id, email, is_admin
    now = datetime.now(timezone.utc)
    # One write a minute at most: a busy script must not turn every read into a write
    if caller.last_used_at is None or now - caller.last_used_at > timedelta(minutes=1):
        ApiToken.mark_used(caller.token_id, now)
        db.session.commit()
    return None


def get_or_404(model, row_id: int, what: str):
    """The row with this id, or the API's 404 naming what was looked for."""
    row = db.session.get(model, row_id)
    if row is None:
        raise ApiError(404, f"No {what} with id {row_id}.")
    return row


NOT_AN_OBJECT = "The body must be a JSON object (Content-Type: application/json)."


def json_body() -> dict:
    """The request's JSON object, parsed strictly (json_input.parse_json); its size is capped by MAX_CONTENT_LENGTH."""
    if not request.is_json:
        raise ApiError(400, NOT_AN_OBJECT)
    data = parse_json(request.get_data(cache=True), hint=" " + NOT_AN_OBJECT)
    if not isinstance(data, dict):
        raise ApiError(400, NOT_AN_OBJECT)
    return data


from . import alerts, destinations, meta, sources  # noqa: E402,F401  (routes register on bp)
