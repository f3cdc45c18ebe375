"""How destination types talk to vendors: one HTTP helper, one error type, one result type."""
import email.utils
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

import requests

from .outbound import OutboundBlocked, check_url

USER_AGENT = "Herald/0.1 (+self-hosted alert router)"
ERROR_TEXT_LIMIT = 500


class DeliveryError(Exception):
    """A send that did not succeed: why, the vendor's status, and whether trying again can help."""

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class SendResult:
    status_code: int | None = None  # HTTP status, or the SMTP reply code for mail
    detail: str = ""  # what the vendor said, short
    remember: dict = field(default_factory=dict)  # references for later events (ticket ids, Message-ID)


@dataclass
class SendContext:
    """What a send may use: a timeout, an HTTP session, and what earlier sends for this alert remembered."""

    timeout: float = 10.0
    refs: dict = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)
    block_private: bool = False  # HERALD_BLOCK_PRIVATE_DESTINATIONS
    # 1 for a delivery's first attempt; a later attempt may follow one whose outcome is unknown (a timeout), so
    # vendors that create things look for what an earlier attempt may have created before creating it again
    attempt: int = 1


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx other than 501 (Not Implemented: e.g. Mattermost webhooks switched off)."""
    return status in (408, 429) or (500 <= status <= 599 and status != 501)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def vendor_text(response: requests.Response) -> str:
    """The vendor's answer, on one line and short enough for a log row."""
    text = re.sub(r"\s+", " ", response.text or "").strip()
    return text[:ERROR_TEXT_LIMIT] + ("…" if len(text) > ERROR_TEXT_LIMIT else "")


def request(ctx: SendContext, method: str, url: str, **kwargs) -> requests.Response:
    """One HTTP request with the context's timeout, never following redirects; network faults are retryable."""
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    try:
        check_url(url, ctx.block_private)
    except OutboundBlocked as exc:
        raise DeliveryError(str(exc)) from None
    try:
        return ctx.session.request(method, url, headers=headers, timeout=ctx.timeout, allow_redirects=False, **kwargs)
    except requests.Timeout:
        raise DeliveryError(f"No answer within {ctx.timeout:g} s.", retryable=True) from None
    except requests.ConnectionError as exc:
        raise DeliveryError(f"Could not connect to {urlsplit(url).hostname}: {_root_cause(exc)}", retryable=True) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"The request failed: {_root_cause(exc)}") from None


def check(response: requests.Response, *, success=range(200, 300), retryable=is_retryable_status) -> requests.Response:
    """Return the response when its status is a success, else raise DeliveryError with the vendor's text."""
    if response.status_code in success:
        return response
    if 300 <= response.status_code < 400:
        where = response.headers.get("Location", "")
        raise DeliveryError(f"HTTP {response.status_code}: redirected to {where}; Herald does not follow redirects "
                            "of notifications. Use the final URL.", status_code=response.status_code)
    raise DeliveryError(
        f"HTTP {response.status_code}: {vendor_text(response) or response.reason}",
        status_code=response.status_code,
        retryable=retryable(response.status_code),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def post_json(ctx: SendContext, url: str, payload: dict, **kwargs) -> SendResult:
    """POST `payload` as JSON: a 2xx is the result, anything else a DeliveryError."""
    response = check(request(ctx, "POST", url, json=payload, **kwargs))
    return SendResult(response.status_code, vendor_text(response))


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    text = str(exc)
    # urllib3 puts the whole URL (with its secret path) in its messages; the notifier redacts, and we trim
    return re.sub(r"\s+", " ", text)[:ERROR_TEXT_LIMIT]


def redact(text: str, secrets) -> str:
    """Replace every secret (and, for secret URLs, their paths, queries and long segments) with ••••."""
    needles = set()
    for secret in secrets:
        if not secret or not isinstance(secret, str):
            continue
        needles.add(secret)
        needles.add(unquote(secret))
        parts = urlsplit(secret)
        if parts.scheme in ("http", "https"):
            for piece in (parts.path, parts.query, *parts.path.split("/"), *re.split(r"[&=]", parts.query)):
                if len(piece) >= 8:
                    needles.add(piece)
    for needle in sorted((n for n in needles if len(n) >= 4), key=len, reverse=True):
        text = text.replace(needle, "••••")
    return text


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def isoformat(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
