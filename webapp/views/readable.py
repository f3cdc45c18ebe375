"""Delivery outcomes in words an operator reads at a glance; the vendor's raw answer stays behind a toggle."""
import json
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

# urllib3: HTTPConnectionPool(host='127.0.0.1', port=5699): Max retries exceeded ... [Errno 111] Connection refused
_POOL = re.compile(r"host='(?P<host>[^']*)', port=(?P<port>\d+)")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
_HTTP = re.compile(r"^HTTP (?P<code>\d{3}): (?P<rest>.*)$", re.S)
_SMTP_WHERE = re.compile(r"SMTP server (?P<where>\S+)")
_CONNECT = re.compile(r"Could not connect to (?P<host>[^\s:]+|\[[^\]]+\]):")

# Fields vendors put their human message in, most telling first
_MESSAGE_KEYS = ("message", "error_message", "errorMessage", "error", "errors", "description", "detail", "result",
                 "status", "title")


def human_error(text: str | None, url: str | None = None) -> str:
    """A network error as a sentence ("Nothing is listening on 127.0.0.1:5699"), anything else unchanged.

    `url`, when known (the form's), gives the port that the transport's message leaves out.
    """
    if not text:
        return ""
    pool = _POOL.search(text)
    where = f"{pool['host']}:{pool['port']}" if pool else None
    if where is None:
        smtp = _SMTP_WHERE.search(text)
        where = smtp["where"].rstrip(":.,") if smtp else None
    if where is None:
        connect = _CONNECT.search(text)
        where = connect["host"] if connect else None
        if url:
            try:
                parts = urlsplit(url)
                if parts.hostname and (where is None or where == parts.hostname):
                    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
            except ValueError:
                pass
    lowered = text.lower()
    if "connection refused" in lowered:
        return f"Nothing is listening on {where}: the connection was refused." if where else \
            "Nothing is listening there: the connection was refused."
    if any(s in lowered for s in ("name or service not known", "nodename nor servname", "failed to resolve",
                                  "temporary failure in name resolution", "no address associated")):
        host = where.rsplit(":", 1)[0] if where else "the host"
        return f"The name {host} does not resolve (DNS): check the spelling, or the server's DNS."
    if "network is unreachable" in lowered or "no route to host" in lowered:
        return f"No network route to {where or 'the host'}."
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return f"The TLS certificate of {where or 'the server'} is not trusted by this server."
    if "connection reset" in lowered:
        return f"{where or 'The server'} closed the connection while Herald was sending."
    return _ERRNO.sub("", text)


def vendor_message(raw: str) -> str | None:
    """The human part of a vendor's JSON answer (its message or errors), or None when there is none."""
    start = raw.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(raw[start:raw.rfind("}") + 1])
    except ValueError:
        return None
    return _message_in(data)


def _message_in(data) -> str | None:
    if isinstance(data, str):
        return data.strip() or None
    if isinstance(data, list):
        parts = [m for m in (_message_in(item) for item in data[:5]) if m]
        return "; ".join(parts) or None
    if isinstance(data, dict):
        found = next((m for m in (_message_in(data[key]) for key in _MESSAGE_KEYS if key in data) if m), None)
        # PagerDuty and others: a message, and the errors that explain it
        errors = _message_in(data.get("errors"))
        return f"{found}: {errors}" if found and errors and errors != found else found
    return None


def outcome_summary(delivery) -> str:
    """One line for the delivery log: the error in words, or what the vendor said, without its raw JSON."""
    if delivery.error:
        text = human_error(delivery.error)
        match = _HTTP.match(text)
        if match:
            found = vendor_message(match["rest"])
            return f"HTTP {match['code']}: {found}" if found else text
        return text
    if delivery.detail:
        found = vendor_message(delivery.detail)
        if found:
            return found
        if delivery.detail.lstrip().startswith(("{", "[")):
            return "Accepted."
        return delivery.detail
    return ""


def has_raw(delivery) -> bool:
    """Whether the summary left something out that the Details toggle should show."""
    raw = delivery.error or delivery.detail or ""
    return bool(raw) and raw != outcome_summary(delivery)


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """"just now", "5 min ago", "3 h ago", "2 d ago"."""
    if moment is None:
        return ""
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - moment).total_seconds()))
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


# A test sent from a form that was never saved, and from Settings → Email server, have no destination row
UNSAVED_FORM = "(unsaved form)"
EMAIL_SERVER_TEST = "Settings → Email server"


def test_origin(delivery) -> str | None:
    """Where a test delivery without a destination row came from, or None for a deleted destination."""
    if delivery.event != "test" or delivery.destination_id is not None:
        return None
    if delivery.destination_name == EMAIL_SERVER_TEST:
        return "email server"
    if delivery.destination_name.endswith(UNSAVED_FORM) or delivery.destination_name == "(unsaved)":
        return "unsaved form"
    return None


def init_app(app):
    app.add_template_filter(age)
    app.add_template_filter(human_error)
    app.add_template_global(outcome_summary)
    app.add_template_global(has_raw)
    app.add_template_global(test_origin)
