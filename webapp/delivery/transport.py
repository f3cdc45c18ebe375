"""How destination types talk to vendors: one HTTP helper, one error type, one result type.

Every HTTP request of a send goes through a session whose connections resolve the host once, check the
addresses against the outbound policy, connect to one of those addresses and stay inside the send's Deadline.
"""
import base64
import binascii
import email.utils
import functools
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .deadline import Deadline, shutdown_socket
from .outbound import OutboundBlocked, open_connection

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


class GuardedConnectionMixin:
    """urllib3 connections that connect through outbound.open_connection and are shut down at the deadline.

    Connections are pooled across sends (keep-alive: a vendor's TLS handshake is paid once, not per message), so
    the send a connection serves is the one running on this thread, not the one that opened it."""

    def _new_conn(self):
        ctx = current_send()
        try:
            sock = open_connection(self._dns_host, self.port, deadline=ctx.deadline, timeout=ctx.timeout,
                                   block_private=ctx.block_private, source_address=self.source_address,
                                   socket_options=self.socket_options)
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
        except OSError as exc:
            if isinstance(exc, socket.gaierror):
                raise NameResolutionError(self.host, self, exc) from exc
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        self._watch(ctx, sock)
        return sock

    def request(self, *args, **kwargs):
        self._watch(current_send())  # a kept-alive connection serves a new send: its deadline rules it now
        # urllib3 writes the header block and then the body, two writes and so two TCP segments (and two wake-ups
        # of the vendor's server) for a few hundred bytes. Gathered, a notification is one write
        self._gathered: list[bytes] | None = []
        try:
            super().request(*args, **kwargs)
            gathered, self._gathered = self._gathered, None
            if gathered:
                super().send(b"".join(gathered))
        finally:
            self._gathered = None

    def send(self, data):
        gathered = getattr(self, "_gathered", None)
        if gathered is None:
            super().send(data)
        elif isinstance(data, bytes):
            gathered.append(data)
        else:  # a file or an iterable: what was gathered goes first, the rest as it comes
            self._gathered = None
            if gathered:
                super().send(b"".join(gathered))
            super().send(data)

    def _watch(self, ctx: "SendContext", opened: socket.socket | None = None) -> None:
        deadline = ctx.deadline
        if getattr(self, "_watched_by", None) is not deadline:
            self._watched_by = deadline
            # After a TLS wrap self.sock is the TLS socket; shutting that down ends a read blocked inside it (the
            # socket just opened stands in until urllib3 has set self.sock). Once a later send has taken the
            # connection over, this deadline no longer touches it
            deadline.watch(shutdown_socket(
                lambda: (getattr(self, "sock", None) or opened) if self._watched_by is deadline else None))


class GuardedHTTPConnection(GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedPoolManager(urllib3.PoolManager):
    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = GuardedHTTPSConnection if scheme == "https" else GuardedHTTPConnection
        return pool


class GuardedAdapter(HTTPAdapter):
    """The one adapter (per outbound policy) that every send's requests go through, keeping connections alive.

    A connection is checked against the policy when it opens, to the address it connects to; one policy's pool
    never serves the other. A pooled connection the vendor has closed meanwhile is noticed (urllib3 checks it on
    checkout) and replaced."""

    def __init__(self, pool_maxsize: int):
        super().__init__(max_retries=0, pool_connections=64, pool_maxsize=pool_maxsize)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        self.poolmanager = GuardedPoolManager(num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # a proxy would connect where the policy cannot see
        raise OutboundBlocked("Herald does not send notifications through an HTTP proxy.")


# Enough kept-alive connections per vendor host for every sender thread (HERALD_NOTIFY_WORKERS is 16 by default);
# beyond it a connection is closed after use instead of pooled
POOL_MAXSIZE = 32
_ADAPTERS = {False: GuardedAdapter(POOL_MAXSIZE), True: GuardedAdapter(POOL_MAXSIZE)}
_CURRENT = threading.local()


def current_send() -> "SendContext":
    """The send running on this thread, which a pooled connection serves."""
    return _CURRENT.ctx


@dataclass
class SendContext:
    """What one send may use: timeouts, a guarded HTTP session, and what earlier sends for this alert remembered.

    `timeout` bounds each connect and read; `deadline` (seconds) bounds the whole send, every request in it.
    """

    timeout: float = 10.0
    refs: dict = field(default_factory=dict)
    block_private: bool = False  # HERALD_BLOCK_PRIVATE_DESTINATIONS
    # HERALD_CA_BUNDLE: the PEM file HTTPS vendors' certificates are checked against; None, requests' own (certifi)
    ca_bundle: str | None = None
    # 1 for a delivery's first attempt; a later attempt may follow one whose outcome is unknown (a timeout), so
    # vendors that create things look for what an earlier attempt may have created before creating it again
    attempt: int = 1
    deadline_seconds: float | None = None  # None: three times the timeout
    # Every credential this send put on the wire (Authorization values and what they encode), for redaction
    sent_credentials: set = field(default_factory=set)

    def __post_init__(self):
        self.deadline = Deadline(self.deadline_seconds or self.timeout * 3)
        self._adapter: BaseAdapter | None = None

    @property
    def adapter(self) -> BaseAdapter:
        """The adapter every request of this send goes through: the shared guarded one for its policy."""
        return self._adapter or _ADAPTERS[bool(self.block_private)]

    @adapter.setter
    def adapter(self, adapter: BaseAdapter) -> None:  # the preview records requests instead of sending them
        self._adapter = adapter

    def close(self) -> None:
        """The send is over: its deadline no longer shuts down the (pooled) connections it used."""
        self.deadline.close()

    def remember_credentials(self, prepared: requests.PreparedRequest) -> None:
        value = prepared.headers.get("Authorization")
        if not value:
            return
        self.sent_credentials.add(value)
        scheme, _, token = value.partition(" ")
        if token:
            self.sent_credentials.add(token)
            if scheme.lower() == "basic":
                try:
                    self.sent_credentials.add(base64.b64decode(token, validate=True).decode("utf-8", "replace"))
                except (binascii.Error, ValueError):
                    pass


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


# The headers a requests.Session would add. No Session is used: a send needs none of its cookies, hooks, proxies or
# redirects, and merging them into every request cost more than a local send
DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": "*/*",
                   "Connection": "keep-alive"}


def request(ctx: SendContext, method: str, url: str, **kwargs) -> requests.Response:
    """One HTTP request inside the send's deadline, never following redirects; network faults are retryable."""
    headers = {**DEFAULT_HEADERS, **kwargs.pop("headers", {})}
    try:
        prepared = _prepare(method, url, headers, **kwargs)
        if urlsplit(prepared.url).scheme not in ("http", "https"):
            raise requests.exceptions.InvalidSchema(f"No connection adapters were found for {prepared.url!r}")
        ctx.remember_credentials(prepared)
        _CURRENT.ctx = ctx
        try:
            response = ctx.adapter.send(prepared, timeout=ctx.deadline.timeout(ctx.timeout), verify=ctx.ca_bundle or True)
            response.content  # noqa: B018  (the whole body, read inside the deadline as Session.send would)
        finally:
            _CURRENT.ctx = None
    except OutboundBlocked as exc:
        raise DeliveryError(str(exc)) from None
    except (requests.RequestException, TimeoutError) as exc:
        if ctx.deadline.expired:
            raise DeliveryError(f"No complete answer within the {ctx.deadline.seconds:g} s deadline.",
                                retryable=True) from None
        if isinstance(exc, (requests.Timeout, TimeoutError)):
            raise DeliveryError(f"No answer within {ctx.timeout:g} s.", retryable=True) from None
        if isinstance(exc, requests.ConnectionError):
            raise DeliveryError(f"Could not connect to {urlsplit(url).hostname}: {_root_cause(exc)}",
                                retryable=True) from None
        raise DeliveryError(f"The request failed: {_root_cause(exc)}") from None
    except ValueError as exc:  # an URL requests cannot prepare
        raise DeliveryError(f"The request failed: {_root_cause(exc)}") from None
    except OSError as exc:  # what requests raises itself, not through urllib3: an unreadable CA bundle
        raise DeliveryError(f"The request failed: {exc}") from None
    return response


def _prepare(method: str, url: str, headers: dict, *, params=None, data=None, json=None,
             auth=None) -> requests.PreparedRequest:
    """What requests.Request(...).prepare() makes, without its cookie jar (a send has no cookies) and with each
    destination URL's preparation (IDNA, quoting) done once: together they cost half of preparing a request."""
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    if params:
        prepared.prepare_url(url, params)
    else:
        prepared.url = _prepared_url(url)
    prepared.prepare_headers(headers)
    prepared.prepare_body(data, None, json)
    prepared.prepare_auth(auth, url)
    return prepared


@functools.lru_cache(maxsize=1024)
def _prepared_url(url: str) -> str:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


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
