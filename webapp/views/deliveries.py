"""The delivery log: every attempt to notify a destination, filterable by destination, alert and status."""
from flask import Blueprint, request
from sqlalchemy import select

from .. import MAX_ID
from ..extensions import db
from ..htmx import render
from ..models import Delivery, Destination

bp = Blueprint("deliveries", __name__, url_prefix="/deliveries")
PER_PAGE = 50


def _int_arg(name: str) -> int | None:
    """A filter's id or page; anything else (letters, ², a 5000-digit number) is ignored, not an error page."""
    value = request.args.get(name, "")
    if value.isascii() and value.isdigit() and len(value) <= 10 and 1 <= int(value) <= MAX_ID:
        return int(value)
    return None


def recent_deliveries(destination_id: int, limit: int = 20) -> list[Delivery]:
    query = select(Delivery).where(Delivery.destination_id == destination_id).order_by(Delivery.id.desc()).limit(limit)
    return db.session.scalars(query).all()


@bp.get("/")
def index():
    filters = {
        "destination_id": _int_arg("destination_id"),
        "alert_id": _int_arg("alert_id"),
        "status": request.args.get("status") if request.args.get("status") in Delivery.STATUSES else None,
        "event": request.args.get("event") if request.args.get("event") in Delivery.EVENTS else None,
    }
    query = select(Delivery).order_by(Delivery.id.desc())
    for column, value in filters.items():
        if value is not None:
            query = query.where(getattr(Delivery, column) == value)
    page = db.paginate(query, page=_int_arg("page") or 1, per_page=PER_PAGE, error_out=False)
    destinations = db.session.scalars(select(Destination).order_by(Destination.name)).all()
    return render("deliveries/index.html", "deliveries/_results.html", page=page, filters=filters,
                  destinations=destinations, statuses=Delivery.STATUSES, events=Delivery.EVENTS)
