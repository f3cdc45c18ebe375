"""Message preview: run a destination type's own send path with a transport that records and never connects.

HTTP types build their requests exactly as for a real send (payload builders, truncation, escaping, auth);
the recording adapter keeps each prepared request and answers 2xx itself, so nothing leaves the process.
Email builds its Flask-Mail message, which is shown instead of being handed to the SMTP server.
"""
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from .delivery.transport import DeliveryError, SendContext, redact
from .delivery.notification import Notification, make_test_notification

log = logging.getLogger(__name__)

# A reply that satisfies the types which read back an id (ServiceNow sys_id, Zendesk ticket, Zenduty trace),
# so the recovery preview shows the follow-up request a real trigger would lead to
_RECORDED_REPLY = {"result": {"sys_id": "preview-sys-id", "number": "INC-PREVIEW"}, "ticket": {"id": 1},
                   "message_id": "preview", "trace_id": "preview", "status": "success"}


def _recorded_reply(request) -> dict:
    """A Table API query (ServiceNow's assignment-group lookup) gets one matching record, anything else the reply
    above: the preview shows the request that follows a successful lookup."""
    if request.method == "GET" and "sysparm_query=" in (request.url or ""):
        return {"result": [{"sys_id": "preview-lookup-sys-id", "number": "INC-PREVIEW"}]}
    return _RECORDED_REPLY


class RecordingAdapter(BaseAdapter):
    """A requests transport that keeps every prepared request and answers 200 without opening a socket."""

    def __init__(self):
        super().__init__()
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.requests.append(request)
        response = requests.Response()
        response.status_code = 200
        response.reason = "OK (preview: not sent)"
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response._content = json.dumps(_recorded_reply(request)).encode()
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


@dataclass
class RecordedRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: str
    json: object = None

    @property
    def message_text(self) -> str | None:
        """The chat message as a person reads it, when the body carries one."""
        data = self.json
        if isinstance(data, dict):
            for key in ("text", "message", "body", "content", "summary"):
                if isinstance(data.get(key), str):
                    return data[key]
            payload = data.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("summary"), str):
                return payload["summary"]
        return None


@dataclass
class RecordedMail:
    sender: str
    recipients: list[str]
    subject: str
    text: str
    html: str
    headers: dict


@dataclass
class PreviewEvent:
    """What one notification (test, trigger or recovery) turns into, or why it cannot be sent."""

    title: str
    requests: list[RecordedRequest] = field(default_factory=list)
    mail: RecordedMail | None = None
    error: str | None = None


def sample_notifications(base_url: str, name: str = "") -> list[tuple[str, Notification]]:
    """The test that Send test delivers, and an example trigger and its recovery."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    trigger = Notification(
        alert_id=42, alert_name="CPU high on db-1", state="triggered", previous_state="ok", severity="critical",
        description="Load average above 8 for 5 minutes.", alert_url=f"{base_url}/alerts/42", url_base=base_url,
        value=9.5, threshold=8, occurred_at=now)
    recovery = replace(trigger, state="ok", previous_state="triggered", value=2.5)
    test = make_test_notification(base_url)
    return [("Send test", test), ("Example trigger", trigger), ("Example recovery", recovery)]


def preview(destination_type, config: dict, base_url: str, block_private: bool = False) -> list[PreviewEvent]:
    """Every sample notification as this destination would receive it; secrets shown as ••••."""
    secrets = [config[name] for name in destination_type.secret_fields() if config.get(name)]
    events, refs = [], {}
    for title, notification in sample_notifications(base_url):
        adapter = RecordingAdapter()
        # The example recovery follows the example trigger, with what the trigger's reply gave back
        ctx = SendContext(timeout=1.0, refs=dict(refs) if notification.is_recovery else {}, block_private=block_private)
        ctx.adapter = adapter  # in place of the guarded one: the recording adapter never opens a connection
        event = PreviewEvent(title)
        try:
            if hasattr(destination_type, "message"):
                event.mail = _mail(destination_type.message(config, notification, ctx), secrets)
            else:
                result = destination_type.send(config, notification, ctx)
                if title == "Example trigger":
                    refs = result.remember
        except DeliveryError as exc:
            event.error = redact(exc.message, secrets)
        except Exception:  # a fault in a type's builder must show here, not as an error page
            log.exception("preview of a %s destination failed", destination_type.type)
            event.error = "Herald could not build this message; the server log has the details."
        event.requests = [_recorded(r, secrets) for r in adapter.requests]
        events.append(event)
    return events


def _recorded(request: requests.PreparedRequest, secrets) -> RecordedRequest:
    body = request.body or b""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    headers = []
    for name, value in request.headers.items():
        if name.lower() in ("authorization", "x-api-key", "x-chatworktoken", "api-key"):
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} ••••".strip()
        headers.append((name, redact(value, secrets)))
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return RecordedRequest(request.method, _redact_url(request.url, secrets), headers, redact(text, secrets), parsed)


def _redact_url(url: str, secrets) -> str:
    """The URL with its secret parts as ••••, keeping scheme and host so the reader sees where it goes."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    rest = url[len(f"{parts.scheme}://{parts.netloc}"):]
    secret_paths = []
    for secret in secrets:
        if isinstance(secret, str) and secret.startswith(("http://", "https://")):
            secret_parts = urlsplit(secret)
            secret_paths.append(secret[len(f"{secret_parts.scheme}://{secret_parts.netloc}"):])
    return origin + redact(rest, [*secret_paths, *secrets])


def _mail(message, secrets) -> RecordedMail:
    return RecordedMail(
        sender=str(message.sender), recipients=[str(r) for r in message.recipients], subject=message.subject,
        text=redact(message.body or "", secrets), html=redact(message.html or "", secrets),
        headers=dict(message.extra_headers or {}))
