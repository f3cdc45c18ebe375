"""Configuration as code: export destinations, alerts and bindings as JSON, and import them again.

Imports go through the same forms as the UI and the API, in one transaction: all of a file or nothing.
"""
from datetime import datetime, timezone

from sqlalchemy import select

from . import destination_service as service
from .destinations import get_type
from .extensions import db
from .json_input import InvalidInput, unstorable, validated_alert_form
from .models import Alert, Destination

FORMAT_VERSION = 1


def export_config(with_secrets: bool = False, warnings: list[str] | None = None) -> dict:
    """The export; `warnings` collects what could not be exported (secrets the current key cannot decrypt)."""
    destinations = db.session.scalars(select(Destination).order_by(Destination.name)).all()
    alerts = db.session.scalars(select(Alert).order_by(Alert.name, Alert.id)).all()
    exported = []
    for d in destinations:
        options, warning = service.export_options(d, with_secrets)
        if warning and warnings is not None:
            warnings.append(warning)
        exported.append({"name": d.name, "type": d.type, "enabled": d.enabled, "options": options})
    return {
        "herald_export": FORMAT_VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "with_secrets": with_secrets,
        "destinations": exported,
        "alerts": [
            {"name": a.name, "description": a.description, "severity": a.severity, "muted": a.muted,
             "rearm_seconds": a.rearm_seconds, "condition": a.condition,
             "destinations": [d.name for d in a.destinations]}
            for a in alerts
        ],
    }


class ImportFailed(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def import_config(data) -> dict:
    """Create or update (matched by name) every destination and alert in `data`; return counts."""
    if not isinstance(data, dict) or data.get("herald_export") != FORMAT_VERSION:
        raise ImportFailed([f"herald_export: not a Herald export of format version {FORMAT_VERSION}."])
    # Names are looked up before any form sees them: text a database cannot store is refused first
    found = unstorable(data, nul=True)
    if found:
        raise ImportFailed([f"{found[0]}: {found[1]}"])
    problems: list[str] = []
    counts = {"destinations_created": 0, "destinations_updated": 0, "alerts_created": 0, "alerts_updated": 0}
    try:
        for index, item in enumerate(_list(data, "destinations", problems)):
            _import_destination(index, item, counts, problems)
        db.session.flush()
        for index, item in enumerate(_list(data, "alerts", problems)):
            _import_alert(index, item, counts, problems)
        if problems:
            raise ImportFailed(problems)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return counts


def _list(data: dict, key: str, problems: list[str]) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        problems.append(f"{key} must be a list.")
        return []
    return value


def _describe(prefix: str, error: InvalidInput) -> list[str]:
    if not error.fields:
        return [f"{prefix}: {error.message}"]
    return [f"{prefix}.{field}: {' '.join(messages)}" for field, messages in error.fields.items()]


def _import_destination(index: int, item, counts: dict, problems: list[str]) -> None:
    where = f"destinations[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        problems.append(f"{where}: needs a name.")
        return
    where = f"destinations[{index}] “{item['name']}”"
    dtype = get_type(item.get("type") if isinstance(item.get("type"), str) else None)
    if dtype is None:
        problems.append(f"{where}.type: unknown type {item.get('type')!r}.")
        return
    existing = db.session.scalar(select(Destination).where(Destination.name == item["name"].strip()))
    if existing is not None and existing.type != dtype.type:
        problems.append(f"{where}.type: a destination of this name exists with type {existing.type}.")
        return
    body = {k: item[k] for k in ("name", "enabled", "options") if k in item}
    try:
        form = service.form_from_json(dtype, body, existing)
    except InvalidInput as error:
        problems.extend(_describe(where, error))
        return
    service.apply(existing or Destination(type=dtype.type), form)
    db.session.flush()
    counts["destinations_updated" if existing else "destinations_created"] += 1


def _import_alert(index: int, item, counts: dict, problems: list[str]) -> None:
    where = f"alerts[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        problems.append(f"{where}: needs a name.")
        return
    where = f"alerts[{index}] “{item['name']}”"
    names = item.get("destinations", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        problems.append(f"{where}.destinations: must be a list of destination names.")
        return
    ids = []
    for name in names:
        destination_id = db.session.scalar(select(Destination.id).where(Destination.name == name))
        if destination_id is None:
            problems.append(f"{where}.destinations: no destination named “{name}”.")
            return
        ids.append(destination_id)
    body = {k: item[k] for k in ("name", "description", "severity", "muted", "rearm_seconds", "condition") if k in item}
    body["destination_ids"] = ids
    existing = db.session.scalar(select(Alert).where(Alert.name == item["name"].strip()).order_by(Alert.id))
    try:
        form = validated_alert_form(body, existing)
    except InvalidInput as error:
        problems.extend(_describe(where, error))
        return
    db.session.add(form.apply_to(existing or Alert()))
    db.session.flush()
    counts["alerts_updated" if existing else "alerts_created"] += 1
