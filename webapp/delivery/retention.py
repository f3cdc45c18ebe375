"""What the log keeps: finished deliveries for HERALD_DELIVERY_RETENTION_DAYS, alert history entries for
HERALD_HISTORY_RETENTION_DAYS; the worker prunes both.

Only finished deliveries go (sent, failed, skipped): a pending or retrying one stays however old it is, and so
do the references vendors gave back (DeliveryRef), which a later resolve needs. Each alert keeps its newest
history entry however old, so its page still says how it came to its state; a re-armed alert adds an entry at
every re-notification, so without pruning its history grows as long as it stays triggered.
"""
import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import aliased

from ..dbtypes import utcnow
from ..extensions import db
from ..models import AlertStateChange
from .models import Delivery

log = logging.getLogger(__name__)

FINISHED = ("sent", "failed", "skipped")
BATCH = 1000  # rows per DELETE, each its own short write transaction: a state change never waits long behind one
BATCHES_PER_PASS = 20  # bounds a worker pass; a bigger backlog goes at the following passes
INTERVAL_SECONDS = 600  # how often a process looks, once nothing is left over


def _prunable_deliveries(cutoff: datetime):
    return (select(Delivery.id).where(Delivery.created_at < cutoff, Delivery.status.in_(FINISHED))
            .order_by(Delivery.created_at, Delivery.id))


def _prunable_history(cutoff: datetime):
    newer = aliased(AlertStateChange)
    return (select(AlertStateChange.id)
            .where(AlertStateChange.created_at < cutoff,
                   exists().where(newer.alert_id == AlertStateChange.alert_id, newer.id > AlertStateChange.id))
            .order_by(AlertStateChange.created_at, AlertStateChange.id))


def _prune(model, prunable, cutoff: datetime, batch: int, batches: int, what: str) -> int:
    total = 0
    for _ in range(batches):
        # Oldest first along the created_at index: with nothing to prune the range is empty, no table scan
        oldest = prunable(cutoff).limit(batch).scalar_subquery()
        removed = db.session.execute(delete(model).where(model.id.in_(oldest))
                                     .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        total += removed
        if removed < batch:
            break
    if total:
        log.info("pruned %d %s created before %s", total, what, cutoff.isoformat(timespec="seconds"))
    return total


def prune(cutoff: datetime, batch: int = BATCH, batches: int = BATCHES_PER_PASS) -> int:
    """Delete finished deliveries created before `cutoff`, oldest first; return how many went."""
    return _prune(Delivery, _prunable_deliveries, cutoff, batch, batches, "finished deliveries")


def prune_history(cutoff: datetime, batch: int = BATCH, batches: int = BATCHES_PER_PASS) -> int:
    """Delete alert history entries made before `cutoff`, oldest first, each alert's newest excepted; return how
    many went. Deliveries of a removed entry stay in the log, no longer grouped under it."""
    return _prune(AlertStateChange, _prunable_history, cutoff, batch, batches, "alert history entries")


class Pruner:
    """A periodic job of the delivery worker (called with the app at every pass): removes what `prune` removes
    once it is older than the days in the `setting` config key; 0 days keeps everything."""

    setting: str

    def __init__(self, interval: float = INTERVAL_SECONDS):
        self.interval = interval
        self._next_at = 0.0

    def __call__(self, app) -> int:
        days = float(app.config[self.setting])
        now = time.monotonic()
        if days <= 0 or now < self._next_at:
            return 0
        removed = self.prune(utcnow() - timedelta(days=days))
        self._next_at = now if removed >= BATCH * BATCHES_PER_PASS else now + self.interval
        return removed


class DeliveryPruner(Pruner):
    setting = "HERALD_DELIVERY_RETENTION_DAYS"
    prune = staticmethod(prune)


class HistoryPruner(Pruner):
    setting = "HERALD_HISTORY_RETENTION_DAYS"
    prune = staticmethod(prune_history)
