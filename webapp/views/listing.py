"""What the list pages share: reading search/filter/sort/page arguments, and each destination's health."""
from dataclasses import dataclass

from flask import request
from sqlalchemy import func, select

from .. import MAX_ID
from ..extensions import db
from ..models import Delivery, alert_destination

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


def last_attempt_ids(destination_ids=None):
    """Subquery: (destination_id, last_id) of each destination's newest attempted delivery."""
    query = select(Delivery.destination_id, func.max(Delivery.id).label("last_id")).where(
        Delivery.destination_id.is_not(None), Delivery.status.in_(ATTEMPTED))
    if destination_ids is not None:
        query = query.where(Delivery.destination_id.in_(destination_ids))
    return query.group_by(Delivery.destination_id).subquery()


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
    last_ids = last_attempt_ids(ids)
    rows = db.session.execute(
        select(last_ids.c.destination_id, Delivery).join(Delivery, Delivery.id == last_ids.c.last_id)).all()
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
