"""Finished deliveries leave the log once they are HERALD_DELIVERY_RETENTION_DAYS old; the worker prunes them.

Only finished rows go (sent, failed, skipped): a pending or retrying delivery stays however old it is, and so do
the references vendors gave back (DeliveryRef), which a later resolve needs.
"""
import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..dbtypes import utcnow
from ..extensions import db
from .models import Delivery

log = logging.getLogger(__name__)

FINISHED = ("sent", "failed", "skipped")
BATCH = 1000  # rows per DELETE, each its own short write transaction: a state change never waits long behind one
BATCHES_PER_PASS = 20  # bounds a worker pass; a bigger backlog goes at the following passes
INTERVAL_SECONDS = 600  # how often a process looks, once nothing is left over


class DeliveryPruner:
    """A periodic job of the delivery worker (called with the app at every pass)."""

    def __init__(self, interval: float = INTERVAL_SECONDS):
        self.interval = interval
        self._next_at = 0.0

    def __call__(self, app) -> int:
        days = float(app.config["HERALD_DELIVERY_RETENTION_DAYS"])
        now = time.monotonic()
        if days <= 0 or now < self._next_at:
            return 0
        removed = prune(utcnow() - timedelta(days=days))
        self._next_at = now if removed >= BATCH * BATCHES_PER_PASS else now + self.interval
        return removed


def prune(cutoff: datetime, batch: int = BATCH, batches: int = BATCHES_PER_PASS) -> int:
    """Delete finished deliveries created before `cutoff`, oldest first; return how many went."""
    total = 0
    for _ in range(batches):
        # Oldest first along the created_at index: with nothing to prune the range is empty, no table scan
        oldest = (select(Delivery.id).where(Delivery.created_at < cutoff, Delivery.status.in_(FINISHED))
                  .order_by(Delivery.created_at, Delivery.id).limit(batch))
        removed = db.session.execute(delete(Delivery).where(Delivery.id.in_(oldest.scalar_subquery()))
                                     .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        total += removed
        if removed < batch:
            break
    if total:
        log.info("pruned %d finished deliveries created before %s", total, cutoff.isoformat(timespec="seconds"))
    return total
