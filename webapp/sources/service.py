"""Every change to a source (settings UI and API alike), and what arrives at its inbound URL.

Refusals are InvalidInput: the API answers them as JSON, the UI shows them beside the field, the inbound
endpoint answers them as JSON with their 4xx.
"""
import hmac
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from .. import alerts as alert_service
from ..crypto import SecretsUnreadable
from ..delivery.notifier import Target
from ..dbtypes import utcnow
from ..extensions import db
from ..json_input import InvalidInput, reject_unknown
from ..models import Alert, AlertStateChange, DeliveryRef, Destination, alert_destination
from .formats import FIRING, HEARTBEAT_KEY, MAPPING_PATHS, InboundAlert, parse
from .forms import MAX_ROUTES, SourceForm
from .matchers import MatcherError, parse_matcher, route_destinations
from .models import Source

NAME_TAKEN = "Another source already has this name."
API_FIELDS = ("name", "kind", "destination_ids", "routes", "period_seconds", "grace_seconds", "mapping",
              "bearer_token")
ROUTE_FIELDS = ("matchers", "destination_ids", "continue")
MAPPING_FIELDS = (*MAPPING_PATHS, "firing_values", "resolved_values")
# The form's names as the API's
FORM_TO_API = {f"mapping_{name}": f"mapping.{name}" for name in MAPPING_FIELDS}


def inbound_url(token: str) -> str:
    return f"{current_app.config['HERALD_BASE_URL']}/inbound/{token}"


# -- the form, from the settings page or from JSON ---------------------------------------------------------------

def make_form(source: Source | None = None, **kwargs) -> SourceForm:
    return SourceForm(stored_bearer=bool(source and source.encrypted_bearer),
                      stored_kind=source.kind if source is not None else None, **kwargs)


def _api_errors(form) -> dict:
    errors = {}
    for name, messages in form.errors.items():
        if name == "routes" and isinstance(messages, list):
            for index, entry in enumerate(messages):
                for sub, sub_messages in (entry or {}).items() if isinstance(entry, dict) else ():
                    errors[f"routes[{index}].{'continue' if sub == 'continue_matching' else sub}"] = list(sub_messages)
        else:
            errors[FORM_TO_API.get(name, name)] = list(messages)
    return errors


def _ids(value, name: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InvalidInput(422, f"{name} must be a list of destination ids.", {name: ["Must be a list of ids."]})
    return value


def _json_to_formdata(values: dict) -> MultiDict:
    """The API's JSON as the fields a browser would post; a value of the wrong type is refused naming it."""
    data = MultiDict()
    for name in ("name", "kind"):
        value = values.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidInput(422, f"{name} must be a string.", {name: ["Must be a string."]})
            data.add(name, value)
    for value in _ids(values.get("destination_ids", []), "destination_ids"):
        data.add("destination_ids", str(value))
    for name in ("period_seconds", "grace_seconds"):
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(422, f"{name} must be a whole number of seconds.", {name: ["Must be a whole number."]})
        data.add(name, str(value))
    mapping = values.get("mapping")
    if mapping is not None:
        if not isinstance(mapping, dict):
            raise InvalidInput(422, "mapping must be an object of dot paths.", {"mapping": ["Must be an object."]})
        reject_unknown(mapping, MAPPING_FIELDS, prefix="mapping.")
        for name, value in mapping.items():
            if name in ("firing_values", "resolved_values") and isinstance(value, list) and all(
                    isinstance(v, str) and "," not in v for v in value):
                value = ", ".join(value)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidInput(422, f"mapping.{name} must be a string.", {f"mapping.{name}": ["Must be a string."]})
            data.add(f"mapping_{name}", value)
    routes = values.get("routes") or []
    if not isinstance(routes, list):
        raise InvalidInput(422, "routes must be a list.", {"routes": ["Must be a list of routes."]})
    if len(routes) > MAX_ROUTES:
        raise InvalidInput(422, f"At most {MAX_ROUTES} routes.", {"routes": [f"At most {MAX_ROUTES} routes."]})
    for index, route in enumerate(routes):
        where = f"routes[{index}]"
        if not isinstance(route, dict):
            raise InvalidInput(422, f"{where} must be an object.", {where: ["Must be an object."]})
        reject_unknown(route, ROUTE_FIELDS, prefix=f"{where}.")
        matchers = route.get("matchers", [])
        if isinstance(matchers, str):
            matchers = [matchers]
        if not isinstance(matchers, list):
            raise InvalidInput(422, f"{where}.matchers must be a list of strings.",
                               {f"{where}.matchers": ["Must be a list of matchers such as severity=\"critical\"."]})
        canonical = []
        for position, text in enumerate(matchers):
            try:
                canonical.append(str(parse_matcher(text)))
            except MatcherError as exc:
                raise InvalidInput(422, f"{where}.matchers[{position}]: {exc}",
                                   {f"{where}.matchers[{position}]": [str(exc)]}) from None
        ids = _ids(route.get("destination_ids", []), f"{where}.destination_ids")
        if not canonical and not ids:
            raise InvalidInput(422, f"{where} is empty.", {where: ["Give the route matchers and destinations."]})
        cont = route.get("continue", False)
        if not isinstance(cont, bool):
            raise InvalidInput(422, f"{where}.continue must be true or false.",
                               {f"{where}.continue": ["Must be true or false."]})
        data.add(f"routes-{index}-matchers", ", ".join(canonical))
        for value in ids:
            data.add(f"routes-{index}-destination_ids", str(value))
        if cont:
            data.add(f"routes-{index}-continue_matching", "y")
    bearer = values.get("bearer_token", ...)
    if bearer is None:
        data.add("clear_bearer", "y")
    elif bearer is not ...:
        if not isinstance(bearer, str):
            raise InvalidInput(422, "bearer_token must be a string (or null to stop requiring one).",
                               {"bearer_token": ["Must be a string or null."]})
        data.add("bearer_token", bearer)
    return data


def as_api(source: Source) -> dict:
    """The stored source in the API's names, for merging a PATCH over (never the bearer token)."""
    known = {d.id for d in source.destinations} | set(db.session.scalars(select(Destination.id)))
    return {"name": source.name, "kind": source.kind, "destination_ids": [d.id for d in source.destinations],
            "period_seconds": source.period_seconds, "grace_seconds": source.grace_seconds,
            "mapping": source.mapping,
            "routes": [{**route, "destination_ids": [i for i in route.get("destination_ids", []) if i in known]}
                       for route in source.routes or []]}


def form_from_json(body: dict, source: Source | None) -> SourceForm:
    """The form bound to a JSON body (over the stored values for a PATCH), validated; InvalidInput 422 otherwise."""
    reject_unknown(body, API_FIELDS)
    values = as_api(source) if source is not None else {}
    values.update(body)  # a mapping or routes given replace the stored ones whole
    form = make_form(source, formdata=_json_to_formdata(values), meta={"csrf": False})
    if not form.validate():
        raise InvalidInput(422, "The source is not valid.", _api_errors(form))
    return form


def save(source: Source, form: SourceForm) -> Source:
    """Apply and commit; InvalidInput 409 naming `name` when another source has it."""
    form.apply_to(source)
    db.session.add(source)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise InvalidInput(409, NAME_TAKEN, {"name": [NAME_TAKEN]}) from None
    return source


def create(form: SourceForm) -> tuple[Source, str]:
    """A new source and its inbound token (shown once)."""
    source = Source()
    token = source.new_token()
    return save(source, form), token


def rotate(source: Source) -> str:
    token = source.new_token()
    db.session.commit()
    return token


def delete(source: Source) -> None:
    """Delete the source with its alerts (their history, bindings, and the vendor references kept for their
    resolves), one statement each however many alerts it made. Loaded and deleted one by one, 20,000 alerts held
    the database's write lock, and with it every other alert's state change, for 4.1 s."""
    made = select(Alert.id).where(Alert.source_id == source.id).scalar_subquery()
    for statement in (sql_delete(DeliveryRef).where(DeliveryRef.alert_id.in_(made)),
                      sql_delete(AlertStateChange).where(AlertStateChange.alert_id.in_(made)),
                      sql_delete(alert_destination).where(alert_destination.c.alert_id.in_(made)),
                      sql_delete(Alert).where(Alert.source_id == source.id)):
        db.session.execute(statement.execution_options(synchronize_session=False))
    db.session.delete(source)
    db.session.commit()


def alert_count(source: Source) -> int:
    return db.session.scalar(select(func.count()).where(Alert.source_id == source.id))


def newest_alerts(source: Source, limit: int) -> list[Alert]:
    """The alerts the source made last (what a delete page lists: a source's alerts have no bound)."""
    return db.session.scalars(select(Alert).where(Alert.source_id == source.id)
                              .order_by(Alert.id.desc()).limit(limit)).all()


def as_json(source: Source, token: str | None = None) -> dict:
    iso = lambda moment: moment.isoformat() if moment else None  # noqa: E731
    data = {
        "id": source.id,
        "name": source.name,
        "kind": source.kind,
        "destination_ids": [d.id for d in source.destinations],
        "routes": source.routes or [],
        "period_seconds": source.period_seconds,
        "grace_seconds": source.grace_seconds,
        "mapping": source.mapping,
        "bearer_token_set": bool(source.encrypted_bearer),  # write-only: whether one is required, never its value
        "alert_ids": db.session.scalars(select(Alert.id).where(Alert.source_id == source.id)
                                        .order_by(Alert.id)).all(),
        "last_received_at": iso(source.last_received_at),
        "last_ping_at": iso(source.last_ping_at),
        "created_at": iso(source.created_at),
        "updated_at": iso(source.updated_at),
    }
    if token is not None:
        data["url"] = inbound_url(token)
    return data


def webhook_example(mapping: dict | None) -> dict:
    """A body a webhook source with this mapping accepts: one firing alert, for the curl example."""
    values = {"key": "disk-web-01", "name": "Disk almost full on web-01", "severity": "warning",
              "description": "Only 5% left on /var.", "state": ((mapping or {}).get("firing_values") or ["firing"])[0]}
    body: dict = {}
    for name, value in values.items():
        path = (mapping or {}).get(name)
        if not path:
            continue
        target = body
        parts = path.split(".")
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                break
            target = nested
        else:
            target.setdefault(parts[-1], value)
    alerts_path = (mapping or {}).get("alerts")
    if alerts_path:
        wrapped: dict = {}
        target = wrapped
        parts = alerts_path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = [body]
        return wrapped
    return body


# -- inbound ------------------------------------------------------------------------------------------------------

@dataclass
class Received:
    alerts: int
    outcomes: list

    def summary(self) -> dict:
        count = lambda test: sum(1 for o in self.outcomes if test(o))  # noqa: E731
        return {"status": "accepted", "alerts": self.alerts,
                "created": count(lambda o: o.created),
                "triggered": count(lambda o: o.changed and o.state == "triggered"),
                "resolved": count(lambda o: o.changed and o.state == "ok"),
                "unchanged": count(lambda o: not o.changed),
                "ignored": self.alerts - len(self.outcomes)}


def bearer_matches(source: Source, header: str) -> bool:
    """True when the source needs no bearer token or the request presents it. A token that cannot be decrypted
    (the key changed) matches nothing: the source refuses everything until it is set again."""
    if not source.encrypted_bearer:
        return True
    try:
        expected = source.bearer_token or ""
    except SecretsUnreadable:
        return False
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"),
                                                             expected.encode())


def routed_targets(source: Source, alert: Alert, labels: dict, destinations: dict[int, Destination]) -> list[Target]:
    ids = route_destinations(source.routes, [d.id for d in source.destinations], labels)
    ids += [d.id for d in alert.destinations]
    return [Target.of(destinations[i]) for i in dict.fromkeys(ids) if i in destinations]


def notification_details(source: Source, alert: Alert) -> dict:
    return {"source_name": source.name, "labels": alert.labels or {}, "annotations": alert.annotations or {},
            "generator_url": alert.generator_url, "external_url": alert.external_url}


def _batch(source_id: int, incoming: list[InboundAlert], now):
    """The prepare step of alerts.apply_batch: find or create each alert by (source, key), note what it sent."""
    def prepare():
        source = db.session.get(Source, source_id)
        if source is None:
            raise InvalidInput(404, "No source at this address.")
        source.last_received_at = now
        if source.kind == "heartbeat":
            source.last_ping_at = now
        by_key = {item.key: item for item in incoming}  # the last word on an alert in one payload counts
        existing = {a.source_key: a for a in db.session.scalars(
            select(Alert).options(selectinload(Alert.destinations))  # the extra destinations, in one query
            .where(Alert.source_id == source_id, Alert.source_key.in_(list(by_key))))} if by_key else {}
        destinations = {d.id: d for d in db.session.scalars(select(Destination))}
        items = []
        for key, inbound in by_key.items():
            alert = existing.get(key)
            created = alert is None
            if created:
                if inbound.state != FIRING and source.kind != "heartbeat":
                    continue  # a resolve for an alert Herald never saw: nothing to recover
                alert = Alert(name=inbound.name, description=inbound.description, severity=inbound.severity,
                              state="unknown", version=0, rearm_seconds=0, muted=False, source_id=source_id,
                              source_key=key)
                db.session.add(alert)
            alert.labels = inbound.labels or None
            alert.annotations = inbound.annotations or None
            if inbound.generator_url is not None or created:
                alert.generator_url = inbound.generator_url
            if inbound.external_url is not None or created:
                alert.external_url = inbound.external_url
            if inbound.description and inbound.description != alert.description:
                alert.description = inbound.description
            state = "triggered" if inbound.state == FIRING else "ok"
            items.append(alert_service.BatchItem(alert, state, routed_targets(source, alert, inbound.labels,
                                                                                 destinations),
                                                 created=created))
        db.session.flush()
        for item in items:
            item.details = notification_details(source, item.alert)
        return items

    return prepare


def receive(app, source: Source, body) -> Received:
    """Parse a payload of the source's kind and apply it in one transaction. InvalidInput for a payload that
    can never be accepted; alerts.ChangeNotRecorded when the database could not take it (then nothing changed)."""
    incoming = parse(source.kind, body, source.mapping)
    limit = app.config["HERALD_INBOUND_MAX_ALERTS"]
    if len(incoming) > limit:
        raise InvalidInput(413, f"The payload holds {len(incoming)} alerts; at most {limit} are accepted in one "
                                f"request (HERALD_INBOUND_MAX_ALERTS). Lower max_alerts in Alertmanager's webhook_configs.",
                           {"alerts": [f"At most {limit} alerts."]})
    source_id, kind, name = source.id, source.kind, source.name
    outcomes = alert_service.apply_batch(app, _batch(source_id, incoming, utcnow()), source=kind, actor=name)
    return Received(len({i.key for i in incoming}), outcomes)


def ping(app, source: Source) -> Received:
    """A heartbeat: the source's one alert is (created and) resolved; the worker triggers it when pings stop."""
    beat = InboundAlert(key=HEARTBEAT_KEY, state="resolved", name=source.name, severity="critical",
                        description=f"No ping within {source.period_seconds} s (+{source.grace_seconds or 0} s grace).")
    outcomes = alert_service.apply_batch(app, _batch(source.id, [beat], utcnow()), source="heartbeat",
                                         actor=source.name)
    return Received(1, outcomes)
