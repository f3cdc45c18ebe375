"""/healthz for load balancers and /metrics for Prometheus; both answer without signing in."""
from flask import Blueprint, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from ..extensions import db
from ..metrics import RETRIES_PENDING
from ..models import Delivery

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks, healthy = {}, True
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # the answer must say why, not crash
        checks["database"] = f"unreachable: {type(exc).__name__}"
        healthy = False
    worker = current_app.extensions.get("herald_retry_worker")
    if not current_app.config["HERALD_RETRY_WORKER"]:
        checks["retry_worker"] = "disabled (run `herald deliveries retry` from cron)"
    elif worker is not None and worker.is_alive():
        checks["retry_worker"] = "alive"
    else:
        checks["retry_worker"] = "not running"
        healthy = False
    return jsonify(status="ok" if healthy else "failing", **checks), 200 if healthy else 503


@bp.get("/metrics")
def metrics():
    RETRIES_PENDING.set(db.session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.status.in_(("pending", "retrying")))))
    return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}
