"""Prometheus metrics (prometheus_client), served at /metrics."""
from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "herald_deliveries", "Delivery attempts by destination type, outcome and failure reason",
    ["type", "status", "reason"])
DELIVERY_LATENCY = Histogram(
    "herald_delivery_latency_seconds", "Time one delivery attempt took, by destination type", ["type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RETRIES_PENDING = Gauge("herald_retries_pending", "Deliveries waiting for a retry or a first attempt (kept for old "
                        "dashboards; the same as herald_deliveries_waiting)")
DELIVERIES_WAITING = Gauge("herald_deliveries_waiting", "Deliveries pending or retrying")
OLDEST_WAITING_AGE = Gauge("herald_oldest_waiting_delivery_age_seconds",
                           "Age of the oldest delivery still pending or retrying (0 when none is)")
STATE_CHANGES = Counter("herald_alert_state_changes", "Alert state changes", ["from_state", "to_state", "source"])


def failure_reason(type_key: str, status_code: int | None, retryable: bool) -> str:
    """A short, low-cardinality reason: http_429, smtp_550, network, invalid."""
    if status_code:
        from .destinations import get_type  # late: the destination modules import the delivery code, which imports us

        dtype = get_type(type_key)
        return f"{dtype.status_kind if dtype else 'http'}_{status_code}"
    return "network" if retryable else "invalid"
