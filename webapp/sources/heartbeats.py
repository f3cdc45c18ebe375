"""The dead man's switch: a heartbeat source's alert triggers once no ping came within period + grace.

Run by the delivery worker on every pass (beside alerts.renotify_due). Herald starts watching at a source's
first ping, as Healthchecks.io does: a new heartbeat that never pinged is not yet late.
"""
from datetime import timedelta

from sqlalchemy import select

from .. import alerts as alert_service
from ..dbtypes import utcnow
from ..extensions import db
from ..models import Alert, Destination
from .formats import HEARTBEAT_KEY
from .models import Source


def _overdue(source: Source, now) -> bool:
    limit = timedelta(seconds=(source.period_seconds or 0) + (source.grace_seconds or 0))
    return source.last_ping_at is not None and now - source.last_ping_at > limit


def check_heartbeats(app) -> int:
    """Trigger every heartbeat whose pings stopped; how many were triggered."""
    now = utcnow()
    candidates = db.session.execute(
        select(Source.id, Source.period_seconds, Source.grace_seconds, Source.last_ping_at)
        .join(Alert, (Alert.source_id == Source.id) & (Alert.source_key == HEARTBEAT_KEY))
        .where(Source.kind == "heartbeat", Source.last_ping_at.is_not(None), Alert.state != "triggered")).all()
    db.session.commit()
    triggered = 0
    for row in candidates:
        if not _overdue(row, now):
            continue
        try:
            outcomes = alert_service.apply_batch(app, _late(row.id), source="heartbeat")
        except alert_service.ChangeNotRecorded:
            continue  # the next pass tries again
        triggered += sum(1 for o in outcomes if o.changed)
    return triggered


def _late(source_id: int):
    def prepare():
        from .service import notification_details, routed_targets

        source = db.session.get(Source, source_id)
        now = utcnow()
        if source is None or not _overdue(source, now):
            return []  # deleted, or a ping came in meanwhile
        alert = db.session.scalar(select(Alert).where(Alert.source_id == source_id, Alert.source_key == HEARTBEAT_KEY))
        if alert is None:
            return []
        destinations = {d.id: d for d in db.session.scalars(select(Destination))}
        late = int((now - source.last_ping_at).total_seconds())
        alert.description = (f"No ping for {late} s: expected every {source.period_seconds} s "
                             f"(+{source.grace_seconds or 0} s grace).")
        return [alert_service.BatchItem(alert, "triggered", routed_targets(source, alert, {}, destinations),
                                        details=notification_details(source, alert))]
    return prepare
