"""Each kind's payload read into InboundAlerts: Alertmanager's webhook (version 4), Grafana's (the same plus its
fields), any JSON object through a dot-path mapping, and heartbeats (any request).

Refusals are InvalidInput (status, message naming what is wrong, the field by its path in the payload).
"""
import hashlib
import json
from dataclasses import dataclass, field

from ..json_input import InvalidInput

MAX_KEY = 255
MAX_NAME = 255
MAX_TEXT = 10000
MAX_LABELS = 100  # labels (and annotations) per alert
# One label's name or value is kept to this many characters. Longer ones are cut, never refused: Alertmanager posts a
# group whole and never retries a 4xx, so refusing one long annotation (a pasted runbook) would lose the group
MAX_LABEL_TEXT = 2000
FIRING, RESOLVED = "firing", "resolved"
DEFAULT_FIRING = ("firing", "alerting", "triggered", "problem", "down", "critical")
DEFAULT_RESOLVED = ("resolved", "ok", "normal", "recovered", "up")

# labels.severity → Herald's severity; anything else (or none) is "error", as Alertmanager's PagerDuty
# integration defaults to (PagerDuty's own severities are critical, error, warning, info)
SEVERITY_WORDS = {
    "critical": "critical", "crit": "critical", "page": "critical", "pager": "critical", "fatal": "critical",
    "emergency": "critical", "emerg": "critical", "alert": "critical", "disaster": "critical", "urgent": "critical",
    "p1": "critical", "sev1": "critical", "s1": "critical",
    "error": "error", "err": "error", "high": "error", "major": "error", "p2": "error", "sev2": "error",
    "s2": "error",
    "warning": "warning", "warn": "warning", "medium": "warning", "moderate": "warning", "average": "warning",
    "minor": "warning", "p3": "warning", "sev3": "warning", "s3": "warning",
    "info": "info", "information": "info", "informational": "info", "low": "info", "notice": "info",
    "debug": "info", "none": "info", "ok": "info", "p4": "info", "p5": "info", "sev4": "info", "sev5": "info",
    "s4": "info", "s5": "info",
}
DEFAULT_SEVERITY = "error"
# Labels that say what an alert is, not which one: left out of its name
NAME_NOISE = {"alertname", "severity", "__alert_rule_uid__", "grafana_folder"}


def severity_of(word) -> str:
    return SEVERITY_WORDS.get(str(word or "").strip().lower(), DEFAULT_SEVERITY)


@dataclass
class InboundAlert:
    """One alert of a payload, as Herald stores it."""

    key: str
    state: str  # firing or resolved
    name: str
    severity: str = DEFAULT_SEVERITY
    description: str = ""
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    generator_url: str | None = None
    external_url: str | None = None


def _refuse(message: str, path: str, status: int = 422):
    raise InvalidInput(status, message, {path: [message]})


def _string_map(value, path: str) -> dict:
    """Labels or annotations: an object of strings (numbers and booleans are written as text)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        _refuse(f"{path} must be an object of strings.", path)
    if len(value) > MAX_LABELS:
        _refuse(f"{path} has {len(value)} entries; at most {MAX_LABELS} are accepted.", path)
    result = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, (int, float)):
            item = json.dumps(item)
        elif item is None:
            item = ""
        if not isinstance(item, str):
            _refuse(f"{path}.{key} must be a string.", f"{path}.{key}")
        result[_cut(key)] = _cut(item)
    return result


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LABEL_TEXT else text[:MAX_LABEL_TEXT - 1] + "…"


def _optional_text(value, path: str, limit: int = MAX_TEXT) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        _refuse(f"{path} must be a string.", path)
    return value[:limit]


def alert_name(title: str | None, labels: dict) -> str:
    """annotations.summary or labels.alertname, with the values of the labels that tell it apart:
    "HighCPU (web-01)" as Grafana titles it."""
    base = (title or labels.get("alertname") or "").strip() or "Alert"
    telling = [labels[k] for k in sorted(labels) if k not in NAME_NOISE and not k.startswith("__") and labels[k]]
    name = f"{base} ({', '.join(telling)})" if telling else base
    return " ".join(name.split())[:MAX_NAME]  # one line


def fingerprint(labels: dict) -> str:
    """A key from the labels for a sender that gives none (Alertmanager's fingerprint is also a hash of them)."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def parse_alertmanager(body, grafana: bool = False) -> list[InboundAlert]:
    """Alertmanager's webhook payload (and Grafana's, which adds fields to the same shape)."""
    kind = "Grafana" if grafana else "Alertmanager"
    if not isinstance(body, dict):
        _refuse(f"Not an {kind} webhook payload: the body must be a JSON object.", "(body)")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        _refuse(f"Not an {kind} webhook payload: it has no alerts list (see the webhook receiver's format).",
                "alerts")
    version = body.get("version")
    if not grafana and version not in (None, "4"):
        _refuse(f"Alertmanager webhook version {str(version)[:20]!r} is not supported; Herald reads version \"4\".",
                "version")
    external_url = _optional_text(body.get("externalURL"), "externalURL")
    result = []
    for index, item in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(item, dict):
            _refuse(f"{where} must be an object.", where)
        status = item.get("status")
        if status not in (FIRING, RESOLVED):
            _refuse(f"{where}.status must be \"firing\" or \"resolved\".", f"{where}.status")
        labels = _string_map(item.get("labels"), f"{where}.labels")
        annotations = _string_map(item.get("annotations"), f"{where}.annotations")
        key = item.get("fingerprint")
        if key in (None, ""):
            if not labels:
                _refuse(f"{where} has neither a fingerprint nor labels to tell it apart.", f"{where}.fingerprint")
            key = fingerprint(labels)
        if not isinstance(key, str) or len(key) > MAX_KEY:
            _refuse(f"{where}.fingerprint must be a string of at most {MAX_KEY} characters.", f"{where}.fingerprint")
        generator = _optional_text(item.get("generatorURL"), f"{where}.generatorURL")
        for extra in ("dashboardURL", "panelURL", "silenceURL"):
            _optional_text(item.get(extra), f"{where}.{extra}")
        result.append(InboundAlert(
            key=key, state=status, name=alert_name(annotations.get("summary"), labels),
            severity=severity_of(labels.get("severity")), description=(annotations.get("description") or "")[:MAX_TEXT],
            labels=labels, annotations=annotations, generator_url=generator, external_url=external_url))
    return result


def parse_grafana(body) -> list[InboundAlert]:
    return parse_alertmanager(body, grafana=True)


# -- webhook: dot paths ------------------------------------------------------------------------------------------
MAPPING_PATHS = ("alerts", "key", "name", "state", "severity", "description")
_MISSING = object()


def lookup(data, path: str):
    """The value at a dot path (`alert.id`, `items.0.name`), or _MISSING."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part, _MISSING)
        elif isinstance(data, list) and part.isdigit() and part.isascii() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
        if data is _MISSING:
            return _MISSING
    return data


def as_text(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    return None


def parse_webhook(body, mapping: dict) -> list[InboundAlert]:
    """Any JSON object: the mapping's dot paths say where the key, name, state, severity and description are, and
    (optionally) `alerts` where a list of such objects is."""
    if not isinstance(body, (dict, list)):
        _refuse("The body must be a JSON object (or, with an alerts path, hold a list).", "(body)")
    items, prefix = [body], ""
    if mapping.get("alerts"):
        found = lookup(body, mapping["alerts"])
        if not isinstance(found, list):
            _refuse(f"No list of alerts at {mapping['alerts']} (the source's alerts path).", mapping["alerts"])
        items, prefix = found, mapping["alerts"]
    firing = {v.lower() for v in mapping.get("firing_values") or DEFAULT_FIRING}
    resolved = {v.lower() for v in mapping.get("resolved_values") or DEFAULT_RESOLVED}
    result = []
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]." if prefix else ""

        def text_at(name: str, required: bool = False) -> str | None:
            path = mapping.get(name)
            if not path:
                return None
            value = lookup(item, path)
            text = None if value is _MISSING else as_text(value)
            if value is not _MISSING and value is not None and text is None:
                _refuse(f"{where}{path} ({name}) must be text or a number.", where + path)
            if required and not text:
                _refuse(f"No {name} at {where}{path} (the source's {name} path).", where + path)
            return text

        key = text_at("key", required=True)
        if len(key) > MAX_KEY:
            _refuse(f"The key at {where}{mapping['key']} is longer than {MAX_KEY} characters.", where + mapping["key"])
        state_word = text_at("state", required=True)
        if state_word.lower() in firing:
            state = FIRING
        elif state_word.lower() in resolved:
            state = RESOLVED
        else:
            _refuse(f"The state at {where}{mapping['state']} is {state_word[:40]!r}: neither a firing value "
                    f"({', '.join(sorted(firing))}) nor a resolved one ({', '.join(sorted(resolved))}).",
                    where + mapping["state"])
        name = text_at("name") or key
        result.append(InboundAlert(
            key=key, state=state, name=" ".join(name.split())[:MAX_NAME] or key[:MAX_NAME],
            severity=severity_of(text_at("severity")), description=(text_at("description") or "")[:MAX_TEXT]))
    return result


HEARTBEAT_KEY = "heartbeat"


def parse(kind: str, body, mapping: dict | None) -> list[InboundAlert]:
    if kind == "alertmanager":
        return parse_alertmanager(body)
    if kind == "grafana":
        return parse_grafana(body)
    if kind == "webhook":
        return parse_webhook(body, mapping or {})
    raise ValueError(f"no payload format for kind {kind!r}")
