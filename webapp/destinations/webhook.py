"""Generic Webhook: a JSON POST to any URL, with optional basic auth and field/payload mappers."""
import copy
import logging
import re

from wtforms.validators import ValidationError

from ..delivery.transport import isoformat, post_json
from .base import (
    DestinationForm,
    DestinationType,
    Pattern,
    one_line,
    secret_field,
    text_field,
    url_field,
)

log = logging.getLogger(__name__)

_PATH = r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"
_MOVE = re.compile(rf"\s*({_PATH})\s*:\s*({_PATH})\s*")


def parse_field_mapper(text: str) -> list[tuple[str, str]]:
    """`a.b:c.d, e:f` → [("a.b", "c.d"), ("e", "f")]; ValueError names the first bad pair."""
    moves = []
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        match = _MOVE.fullmatch(pair)
        if not match:
            raise ValueError(f"“{pair.strip()}” is not source:destination, e.g. alert.name:title.")
        moves.append((match.group(1), match.group(2)))
    return moves


_MISSING = object()


def apply_field_mapper(payload: dict, moves: list[tuple[str, str]]) -> dict:
    """A copy of `payload` with each (source, destination) dot path moved, in order (webhook-mappers.md).

    - A move, not a copy: the source key is gone afterwards.
    - Missing intermediate objects of the destination are created.
    - A source that does not exist is skipped with a logged warning.
    - A destination that would have to pass through an existing non-object value is skipped (logged), and the
      source then stays where it was. A destination's last key may replace what was there: that is the move.
    - The source is taken out before the destination is made, so `event:event.type` nests the value under the
      name it came from rather than being refused for passing through the old value.
    """
    if not moves:  # the usual case: nothing moves, and the copy would cost more than building the payload
        return dict(payload)
    result = copy.deepcopy(payload)
    for source, destination in moves:
        trial = copy.deepcopy(result)
        value = _pop(trial, source.split("."))
        if value is _MISSING:
            log.warning("Webhook field mapper: no field %s in the payload; %s:%s skipped.", source, source, destination)
            continue
        if not _put(trial, destination.split("."), value):
            log.warning("Webhook field mapper: %s passes through a value that is not an object; %s:%s skipped.",
                        destination, source, destination)
            continue
        result = trial
    return result


def _pop(data: dict, path: list[str]):
    for key in path[:-1]:
        data = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if data is _MISSING:
            return _MISSING
    if not isinstance(data, dict) or path[-1] not in data:
        return _MISSING
    return data.pop(path[-1])


def _put(data: dict, path: list[str], value) -> bool:
    for key in path[:-1]:
        if key not in data:
            data[key] = {}
        elif not isinstance(data[key], dict):
            return False  # never overwrite a value to make room for an object
        data = data[key]
    data[path[-1]] = value
    return True


def _time(moment) -> str | None:
    return isoformat(moment) if moment else None


def build_payload(n, field_mapper: str = "", payload_mapper: str = "") -> dict:
    """The default payload, moved about by the field mapper, then wrapped under the payload mapper's name.

    Herald's own fields, plus the ones Redash's webhook sends (title, options, created_at, updated_at,
    last_triggered_at, rearm, metadata), so a receiver written for Redash works unchanged.
    """
    occurred_at = isoformat(n.occurred_at)
    # A test (or a notification from before these fields) is its own last triggering
    last_triggered = n.last_triggered_at or (None if n.is_recovery else n.occurred_at)
    payload = {
        "event": "alert_state_change",
        "alert": {
            "id": n.alert_id,
            "name": n.alert_name,
            "state": n.state,
            "previous_state": n.previous_state,
            "severity": n.severity,
            "description": n.description,
            "url": n.alert_url,
            "value": n.value,
            "threshold": n.threshold,
            "occurred_at": occurred_at,
            "test": n.test,
            # Redash's names: its custom subject is the title, its condition lives in options
            "title": one_line(n.title),
            "options": {
                "op": n.condition_op,
                "value": n.threshold,
                "column": "value",
                "muted": False,  # a muted alert notifies nobody
                "custom_subject": one_line(n.title),
                "custom_body": n.description,
            },
            "created_at": _time(n.alert_created_at) or occurred_at,
            "updated_at": occurred_at,  # the change is the alert's last update
            "last_triggered_at": _time(last_triggered),
            "rearm": n.rearm_seconds or None,  # Redash: seconds, or null for "just once"
        },
        "url_base": n.url_base,
        "metadata": {"source": "Herald", "event": n.event, "dedup_key": n.dedup_key, "renotify": n.renotify,
                     "Scheduled": False},
    }
    if n.source_name is not None:  # an alert from a source: what it sent, as it sent it
        payload["alert"].update({"source": n.source_name, "labels": n.labels or {}, "annotations": n.annotations or {},
                                 "generator_url": n.generator_url, "external_url": n.external_url})
    payload = apply_field_mapper(payload, parse_field_mapper(field_mapper or ""))
    wrapper = (payload_mapper or "").strip()
    return {wrapper: payload} if wrapper else payload


class FieldMapper:
    def __call__(self, form, field):
        try:
            parse_field_mapper(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class WebhookForm(DestinationForm):
    url = url_field("URL")
    username = text_field("Username", 255, description="Optional: with a username, requests use HTTP Basic auth.")
    password = secret_field("Password", required=False)
    field_mapper = text_field(
        "Field mapper", 2000, validators=[FieldMapper()],
        description="Optional moves of payload fields, source:destination separated by commas, "
                    "e.g. alert.name:title,alert.severity:notification.level",
    )
    payload_mapper = text_field(
        "Payload mapper", 100,
        validators=[Pattern(r"[A-Za-z0-9_\-]+", "One field name, letters, digits, _ and - only.")],
        description="Optional field name to wrap the whole payload in, e.g. data.",
    )

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        # A blank username is Optional() and skips its own validators; the stored password still needs one
        if ok and not (self.username.data or "").strip() and getattr(self.password, "kept", False):
            self.username.errors = [*self.username.errors, "A password needs a username."]
            return False
        # The other way round too: Basic auth with a username and no password is nearly always a mistake
        has_password = bool((self.password.data or "").strip()) or getattr(self.password, "kept", False)
        if ok and (self.username.data or "").strip() and not has_password:
            self.password.errors = [*self.password.errors, "Enter the password for this username, or clear the username."]
            return False
        return ok

    def validate_password(self, field):
        if field.data and not (self.username.data or "").strip():
            raise ValidationError("A password needs a username.")


class Webhook(DestinationType):
    type = "webhook"
    label = "Generic Webhook"
    summary = "A JSON POST to any URL, shaped by optional field and payload mappers."
    form = WebhookForm
    secrets_sent_to = ("url",)
    target_option = "url"

    @classmethod
    def payload(cls, config, n) -> dict:
        return build_payload(n, config.get("field_mapper") or "", config.get("payload_mapper") or "")

    @classmethod
    def send(cls, config, n, ctx):
        username = (config.get("username") or "").strip()
        # HTTP Basic only with a username; the password may be empty
        auth = (username, config.get("password") or "") if username else None
        return post_json(ctx, config["url"], cls.payload(config, n), auth=auth)
