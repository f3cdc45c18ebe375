"""Response headers, proxy trust and sign-in throttling."""
import logging
import threading
import time
from collections import defaultdict, deque

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


def init_app(app, htmx_cdn_url: str):
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
    """Failed sign-ins per email and per client address in a sliding window; past the limit, 429 until it ends.

    Kept in this process's memory: with several worker processes each counts its own failures.
    """

    def __init__(self, max_failures: int, window_seconds: int, clock=time.monotonic):
        self.max_failures, self.window, self.clock = max_failures, window_seconds, clock
        self._failures: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque:
        failures = self._failures[key]
        cutoff = self.clock() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def retry_after(self, *keys: str) -> int:
        """Seconds until a sign-in is allowed again for these keys; 0 when allowed now."""
        with self._lock:
            waits = []
            for key in keys:
                failures = self._recent(key)
                if len(failures) >= self.max_failures:
                    waits.append(int(failures[0] + self.window - self.clock()) + 1)
            return max(waits, default=0)

    def failed(self, *keys: str) -> None:
        with self._lock:
            now = self.clock()
            for key in keys:
                self._recent(key).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
