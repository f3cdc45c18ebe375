"""What a destination is told when an alert changes state (plain data, no Flask)."""
import copy
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Notification:
    alert_id: int
    alert_name: str
    state: str  # "triggered" or "ok"
    previous_state: str = "unknown"
    severity: str = "critical"  # critical, error, warning, info
    description: str = ""
    alert_url: str = ""
    url_base: str = ""
    value: float | None = None
    threshold: float | None = None
    occurred_at: datetime = field(default_factory=_now)
    test: bool = False
    # A reminder while the alert stays triggered (rearm_seconds): vendors add to what the trigger opened
    renotify: bool = False
    # The alert as it stood at the change, for receivers that want more (Redash's webhook fields): read
    # when the change is recorded, so a send never goes back to the database
    condition_op: str | None = None
    rearm_seconds: int = 0
    alert_created_at: datetime | None = None
    last_triggered_at: datetime | None = None
    # An alert from a source (Alertmanager, Grafana, a webhook, a heartbeat): what it sent, for vendors with room
    source_name: str | None = None
    labels: dict | None = None
    annotations: dict | None = None
    generator_url: str | None = None
    external_url: str | None = None

    @property
    def event(self) -> str:
        """trigger, resolve or test: what the delivery log calls this notification."""
        if self.test:
            return "test"
        return "resolve" if self.is_recovery else "trigger"

    @property
    def is_recovery(self) -> bool:
        return self.state == "ok"

    @property
    def dedup_key(self) -> str:
        """The key that ties a trigger to its resolve at vendors that de-duplicate."""
        return f"herald-test-{self.alert_id}" if self.test else f"herald-alert-{self.alert_id}"

    @property
    def title(self) -> str:
        prefix = "[TEST] " if self.test else ""
        word = "RESOLVED" if self.is_recovery else "TRIGGERED"
        return f"{prefix}{word}: {self.alert_name}"

    def template_values(self) -> dict:
        """The values behind the template placeholders of webapp.templating."""
        return {
            "alert_name": self.alert_name,
            "state": self.state,
            "previous_state": self.previous_state,
            "severity": self.severity,
            "description": self.description,
            "alert_url": self.alert_url,
            "value": "" if self.value is None else format_number(self.value),
            "threshold": "" if self.threshold is None else format_number(self.threshold),
        }

    def facts(self) -> list[tuple[str, str]]:
        """(label, value) pairs that chat and mail messages list under the title."""
        facts = [("Severity", self.severity), ("State", f"{self.previous_state} → {self.state}")]
        if self.value is not None:
            facts.append(("Value", format_number(self.value)))
        if self.threshold is not None:
            facts.append(("Threshold", format_number(self.threshold)))
        facts.append(("Time", self.occurred_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")))
        return facts + self.source_facts()

    def source_facts(self) -> list[tuple[str, str]]:
        """What a source sent, as facts: the source, the labels, annotations beyond summary and description."""
        facts = []
        if self.source_name:
            facts.append(("Source", self.source_name))
        if self.labels:
            facts.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))))
        for key, value in sorted((self.annotations or {}).items()):
            if key not in ("summary", "description") and value:
                facts.append((key, value))
        if self.generator_url:
            facts.append(("Generator", self.generator_url))
        return facts

    def to_json(self) -> dict:
        # Not dataclasses.asdict: its deep copy of every value costs more than the rest of staging a delivery
        data = {f.name: getattr(self, f.name) for f in _FIELDS}
        for name, value in data.items():
            if isinstance(value, (dict, list)):
                data[name] = copy.deepcopy(value)
        for name in _MOMENTS:
            if data.get(name) is not None:
                data[name] = data[name].isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Notification":
        values = {k: v for k, v in data.items() if k in _NAMES}  # rows from an older Herald lack newer fields
        for name in _MOMENTS:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


_MOMENTS = ("occurred_at", "alert_created_at", "last_triggered_at")
_FIELDS = fields(Notification)
_NAMES = frozenset(f.name for f in _FIELDS)


def format_number(value: float) -> str:
    """90.0 → "90", 0.5 → "0.5": exact, without float noise or exponents for ordinary values."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def make_test_notification(url_base: str, alert_url: str = "") -> Notification:
    """A clearly marked synthetic alert for 'Send test notification'."""
    return Notification(
        alert_id=0,
        alert_name="Herald test notification",
        state="triggered",
        previous_state="ok",
        severity="info",
        description="This is a test sent from Herald to check this destination. No action is needed.",
        alert_url=alert_url or url_base,
        url_base=url_base,
        test=True,
    )
