"""The delivery log: every attempt to notify a destination, filterable by destination, alert and status."""
from flask import Blueprint
from sqlalchemy import select

from ..extensions import db
from ..htmx import render
from ..models import Alert, Delivery, Destination
from .listing import choice_arg, contains, int_arg, search_arg

bp = Blueprint("deliveries", __name__, url_prefix="/deliveries")
PER_PAGE = 50


def recent_deliveries(destination_id: int, limit: int = 20) -> list[Delivery]:
    query = select(Delivery).where(Delivery.destination_id == destination_id).order_by(Delivery.id.desc()).limit(limit)
    return db.session.scalars(query).all()


@bp.get("/")
def index():
    """Filters by destination and alert name (or the exact id a link gives), status and event."""
    filters = {
        "destination": search_arg("destination"),
        "alert": search_arg("alert"),
        "destination_id": int_arg("destination_id"),
        "alert_id": int_arg("alert_id"),
        "status": choice_arg("status", Delivery.STATUSES),
        "event": choice_arg("event", Delivery.EVENTS),
    }
    query = select(Delivery).order_by(Delivery.id.desc())
    for column in ("destination_id", "alert_id", "status", "event"):
        if filters[column] is not None:
            query = query.where(getattr(Delivery, column) == filters[column])
    if filters["destination"]:
        query = query.where(contains(Delivery.destination_name, filters["destination"]))
    if filters["alert"]:
        query = query.where(contains(Delivery.alert_name, filters["alert"]))
    page = db.paginate(query, page=int_arg("page") or 1, per_page=PER_PAGE, error_out=False)
    # What an id filter stands for, named in the form
    named = {
        "destination_id": db.session.scalar(select(Destination.name).where(Destination.id == filters["destination_id"]))
        if filters["destination_id"] else None,
        "alert_id": db.session.scalar(select(Alert.name).where(Alert.id == filters["alert_id"]))
        if filters["alert_id"] else None,
    }
    return render("deliveries/index.html", "deliveries/_results.html", page=page, filters=filters, named=named,
                  statuses={s: s.capitalize() for s in Delivery.STATUSES},
                  events={e: e.capitalize() for e in Delivery.EVENTS})
