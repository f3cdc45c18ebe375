"""Response headers, proxy trust and sign-in throttling."""
import ipaddress
import logging
import threading
import time
from collections import OrderedDict, deque

from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix


def content_security_policy(htmx_cdn_url: str | None) -> str:
    # Scripts: our own files and, when enabled, exactly the pinned htmx file on the CDN (loaded with SRI)
    scripts = "'self'" + (f" {htmx_cdn_url}" if htmx_cdn_url else "")
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie session, which builds its signer on every request to read a cookie; a request without
    cookies (every API call, which signs in with a token) gets the empty session straight away, as it would anyway."""

    def open_session(self, app, request):
        if "HTTP_COOKIE" not in request.environ and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app, htmx_cdn_url: str):
    app.session_interface = SessionCookies()
    if app.config["HERALD_PROXY_COUNT"]:
        n = app.config["HERALD_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    policy = content_security_policy(htmx_cdn_url if app.config["HERALD_HTMX_CDN"] else None)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    # urllib3 logs request paths at DEBUG, and a Slack or Mattermost path is the secret itself
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger("urllib3").level))
    app.extensions["herald_login_throttle"] = LoginThrottle(
        app.config["HERALD_LOGIN_MAX_FAILURES"], app.config["HERALD_LOGIN_LOCKOUT_SECONDS"])


class LoginThrottle:
    """Failed sign-ins in a sliding window; past a limit, 429 until the window has moved on.

    Counted per (client, email) pair, so an attacker's guesses lock out only the attacker's own attempts at that
    account, and a correct password from a client that has not failed always gets its try. Backstops:
    - one client, over every email: CLIENT_FACTOR × the limit (one address spraying many accounts);
    - one email, and everything together, over clients that have failed: EMAIL_FACTOR and GLOBAL_FACTOR × the
      limit (many addresses guessing one account, or all of them). A client with no failure in the window is
      never held back by these, so a distributed guesser gets one try per address and no more.
    A client is its IPv4 address or its IPv6 /64 (one host usually holds a whole /64).

    Memory is bounded: each table keeps at most `max_keys` keys (the least recently failed go first) and each key
    at most its limit's timestamps. Kept per process: with several worker processes each counts its own.
    """

    CLIENT_FACTOR, EMAIL_FACTOR, GLOBAL_FACTOR = 4, 10, 100

    def __init__(self, max_failures: int, window_seconds: int, clock=time.monotonic, max_keys: int = 5000):
        self.max_failures, self.window, self.clock, self.max_keys = max_failures, window_seconds, clock, max_keys
        self._pairs: OrderedDict = OrderedDict()
        self._clients: OrderedDict = OrderedDict()
        self._emails: OrderedDict = OrderedDict()
        self._everything: deque = deque(maxlen=max(1, max_failures * self.GLOBAL_FACTOR))
        self._lock = threading.Lock()

    @staticmethod
    def client_key(address: str | None) -> str:
        try:
            ip = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return (address or "?")[:64]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped:
                return str(ip.ipv4_mapped)
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    @staticmethod
    def email_key(email: str | None) -> str:
        return (email or "").strip().lower()[:254]

    def _recent(self, table: OrderedDict, key, limit: int) -> list:
        cutoff = self.clock() - self.window
        failures = [t for t in table.get(key, ()) if t >= cutoff]
        if failures:
            table[key] = failures[-limit:]
        else:
            table.pop(key, None)
        return failures

    def _wait(self, failures, limit: int) -> float:
        if len(failures) < limit:
            return 0
        return failures[-limit] + self.window - self.clock()

    def retry_after(self, address: str | None, email: str | None) -> int:
        """Seconds until this client may try this email again; 0 when it may now."""
        client, email = self.client_key(address), self.email_key(email)
        m = self.max_failures
        with self._lock:
            client_failures = self._recent(self._clients, client, m * self.CLIENT_FACTOR)
            waits = [self._wait(self._recent(self._pairs, (client, email), m), m),
                     self._wait(client_failures, m * self.CLIENT_FACTOR)]
            if client_failures:  # the backstops hold back only clients that have failed
                waits.append(self._wait(self._recent(self._emails, email, m * self.EMAIL_FACTOR), m * self.EMAIL_FACTOR))
                cutoff = self.clock() - self.window
                while self._everything and self._everything[0] < cutoff:
                    self._everything.popleft()
                waits.append(self._wait(list(self._everything), self._everything.maxlen))
            wait = max(waits)
            return int(wait) + 1 if wait > 0 else 0

    def _add(self, table: OrderedDict, key, limit: int, now: float) -> None:
        failures = table.pop(key, [])
        failures.append(now)
        table[key] = failures[-limit:]  # re-inserted: the most recently failed key is last
        cutoff = now - self.window
        while len(table) > self.max_keys or (table and next(iter(table.values()))[-1] < cutoff):
            table.popitem(last=False)

    def failed(self, address: str | None, email: str | None) -> None:
        client, email = self.client_key(address), self.email_key(email)
        m = self.max_failures
        with self._lock:
            now = self.clock()
            self._add(self._pairs, (client, email), m, now)
            self._add(self._clients, client, m * self.CLIENT_FACTOR, now)
            self._add(self._emails, email, m * self.EMAIL_FACTOR, now)
            self._everything.append(now)

    def succeeded(self, address: str | None, email: str | None) -> None:
        """The right password: this client's count for this email starts again."""
        with self._lock:
            self._pairs.pop((self.client_key(address), self.email_key(email)), None)

    def size(self) -> int:
        """How many keys are held (for the memory bound's test)."""
        with self._lock:
            return len(self._pairs) + len(self._clients) + len(self._emails)
