"""/healthz for load balancers and /metrics for Prometheus; both answer without signing in."""
from flask import Blueprint, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from ..dbtypes import utcnow
from ..delivery.notifier import ACTIVE
from ..extensions import db
from ..metrics import DELIVERIES_WAITING, OLDEST_WAITING_AGE, RETRIES_PENDING
from ..models import Delivery

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks, healthy = {}, True
    try:
        db.session.execute(text("SELECT 1"))
        db.session.commit()  # give the connection back at once
        checks["database"] = "ok"
    except Exception as exc:  # the answer must say why, not crash
        db.session.rollback()
        checks["database"] = f"unreachable: {type(exc).__name__}"
        healthy = False
    worker = current_app.extensions.get("herald_delivery_worker")
    if not current_app.config["HERALD_RETRY_WORKER"]:
        checks["delivery_worker"] = "disabled (run `herald deliveries retry` from cron)"
    elif worker is None or not worker.is_alive():
        checks["delivery_worker"] = "not running"
        healthy = False
    elif worker.is_stalled():
        since = worker.seconds_since_last_pass()
        checks["delivery_worker"] = ("stalled: no pass has completed since it started" if since is None
                                     else f"stalled: the last pass completed {since:.0f} s ago")
        healthy = False
    else:
        checks["delivery_worker"] = "ok"
    return jsonify(status="ok" if healthy else "failing", **checks), 200 if healthy else 503


@bp.get("/metrics")
def metrics():
    waiting, oldest = db.session.execute(
        select(func.count(), func.min(Delivery.created_at)).where(Delivery.status.in_(ACTIVE))).one()
    db.session.commit()
    RETRIES_PENDING.set(waiting)
    DELIVERIES_WAITING.set(waiting)
    OLDEST_WAITING_AGE.set((utcnow() - oldest).total_seconds() if oldest is not None else 0)
    return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}
