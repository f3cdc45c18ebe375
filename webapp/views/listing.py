"""What the list pages share: reading search/filter/sort/page arguments, and each destination's health."""
from dataclasses import dataclass

from flask import request
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from .. import MAX_ID
from ..extensions import db
from ..models import Delivery, Destination, alert_destination

# A delivery that was attempted: pending rows have not been tried yet and skipped ones were never meant to be
ATTEMPTED = ("sent", "failed", "retrying")
FAILING = ("failed", "retrying")
MAX_SEARCH = 100


def int_arg(name: str) -> int | None:
    """A filter's id or page; anything else (letters, ², a 5000-digit number) is ignored, not an error page."""
    value = request.args.get(name, "")
    if value.isascii() and value.isdigit() and len(value) <= 10 and 1 <= int(value) <= MAX_ID:
        return int(value)
    return None


def choice_arg(name: str, choices, default=None):
    value = request.args.get(name)
    return value if value in choices else default


def search_arg(name: str = "q") -> str:
    """The search text, trimmed and bounded; NUL and other control characters dropped."""
    value = "".join(c for c in request.args.get(name, "") if c.isprintable())
    return " ".join(value.split())[:MAX_SEARCH]


def contains(column, text: str):
    """A case-insensitive "contains" that treats % and _ as the characters they are."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def last_attempt_id():
    """Correlated subquery: the id of the enclosing Destination's newest attempted delivery.

    A walk down ix_delivery_destination_id from the newest row, per destination: cheaper than grouping every
    delivery, and the same on SQLite and PostgreSQL.
    """
    return (select(Delivery.id)
            .where(Delivery.destination_id == Destination.id, Delivery.status.in_(ATTEMPTED))
            .order_by(Delivery.id.desc()).limit(1)
            .correlate(Destination).scalar_subquery())


@dataclass(frozen=True)
class Health:
    """What a list row shows of a destination: its newest attempted delivery and how many alerts use it."""

    last: Delivery | None
    alert_count: int

    @property
    def failing(self) -> bool:
        return self.last is not None and self.last.status in FAILING


NO_HEALTH = Health(None, 0)


def health_of(destination_ids) -> dict[int, Health]:
    """Health for these destinations in two queries, however many there are."""
    ids = list(set(destination_ids))
    if not ids:
        return {}
    last_delivery = aliased(Delivery)
    rows = db.session.execute(
        select(Destination.id, last_delivery).join(last_delivery, last_delivery.id == last_attempt_id())
        .where(Destination.id.in_(ids))).all()
    last = {destination_id: delivery for destination_id, delivery in rows}
    counts = dict(db.session.execute(
        select(alert_destination.c.destination_id, func.count())
        .where(alert_destination.c.destination_id.in_(ids))
        .group_by(alert_destination.c.destination_id)).all())
    return {i: Health(last.get(i), counts.get(i, 0)) for i in ids}


def page_args(**changes) -> dict:
    """The current query string with `changes` applied (None removes), for pager and sort links."""
    args = request.args.to_dict()
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return args
