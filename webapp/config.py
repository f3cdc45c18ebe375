"""Configuration from environment variables (documented in the README)."""
import os
import secrets
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def _bool(value: str | None, default: bool = False) -> bool:
    return default if value is None else value.strip().lower() in _TRUE


def persistent_secret_key(instance_path: str) -> str:
    """The SECRET_KEY kept under instance/, made on first run, so sessions and stored secrets survive restarts."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must not both write a key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


MAX_RETENTION_DAYS = 36500


def retention_days(raw: str | None) -> float:
    """HERALD_DELIVERY_RETENTION_DAYS, HERALD_HISTORY_RETENTION_DAYS: 90 unset, 0 keeps everything. Refused outside
    0 to 100 years: a negative number would silently keep everything, and inf, nan or a huge one made every pruning
    pass raise."""
    days = float(raw or 90)
    if not 0 <= days <= MAX_RETENTION_DAYS:  # also false for nan
        raise ValueError(f"must be a number of days from 0 (keep everything) to {MAX_RETENTION_DAYS}")
    return days


def default_sender(base_url: str | None) -> str:
    """Herald <herald@host> for the host Herald is reached at; a bare IP or a dotless name uses herald.localdomain."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(base_url or "").hostname or "").rstrip(".")
    try:
        ipaddress.ip_address(host)
        host = ""
    except ValueError:
        pass
    if "." not in host:
        host = "herald.localdomain"
    return f"Herald <herald@{host}>"


def from_environment(instance_path: str, env=os.environ) -> dict:
    """Build the config mapping from the environment."""
    db_url = env.get("DATABASE_URL") or "sqlite:///" + str(Path(instance_path) / "herald.sqlite3")
    return {
        "SECRET_KEY": env.get("SECRET_KEY") or None,  # create_app falls back to persistent_secret_key()
        "HERALD_ENCRYPTION_KEY": env.get("HERALD_ENCRYPTION_KEY") or None,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "HERALD_BASE_URL": (env.get("HERALD_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "HERALD_HTMX_CDN": _bool(env.get("HERALD_HTMX_CDN"), True),
        "MAIL_SERVER": env.get("MAIL_SERVER") or "",
        "MAIL_PORT": int(env.get("MAIL_PORT") or 25),
        "MAIL_USE_TLS": _bool(env.get("MAIL_USE_TLS")),
        "MAIL_USE_SSL": _bool(env.get("MAIL_USE_SSL")),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        # Mail needs a From: without MAIL_DEFAULT_SENDER, Herald writes as herald@ the host of HERALD_BASE_URL
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER") or default_sender(env.get("HERALD_BASE_URL")),
        # Check the SMTP server's certificate on TLS/SSL (set 0 for an intranet server with its own CA)
        "HERALD_SMTP_VERIFY_TLS": _bool(env.get("HERALD_SMTP_VERIFY_TLS"), True),
        # Delivery: per-connect/read timeout, one deadline per send, parallel sends, how long a state change
        # waits for its first attempts, retries (see the README's configuration table)
        "HERALD_HTTP_TIMEOUT": float(env.get("HERALD_HTTP_TIMEOUT") or 10),
        "HERALD_SEND_DEADLINE": float(env.get("HERALD_SEND_DEADLINE") or 30),
        "HERALD_NOTIFY_WORKERS": int(env.get("HERALD_NOTIFY_WORKERS") or 16),
        "HERALD_NOTIFY_WAIT": float(env.get("HERALD_NOTIFY_WAIT") or 3),
        # waitress threads (make run passes the same number); with the senders it sizes the database pool
        "HERALD_WEB_THREADS": int(env.get("HERALD_WEB_THREADS") or 8),
        # The CPUs `herald serve` keeps its threads on: one, all or a list (webapp/serving.py, chosen_cpus)
        "HERALD_CPUS": env.get("HERALD_CPUS") or "one",
        "HERALD_RETRY_MAX_ATTEMPTS": int(env.get("HERALD_RETRY_MAX_ATTEMPTS") or 6),
        "HERALD_RETRY_MAX_AGE": float(env.get("HERALD_RETRY_MAX_AGE") or 3600),
        "HERALD_RETRY_BASE_DELAY": float(env.get("HERALD_RETRY_BASE_DELAY") or 2),
        "HERALD_RETRY_MAX_DELAY": float(env.get("HERALD_RETRY_MAX_DELAY") or 300),
        "HERALD_RETRY_POLL_SECONDS": float(env.get("HERALD_RETRY_POLL_SECONDS") or 5),
        "HERALD_RETRY_WORKER": _bool(env.get("HERALD_RETRY_WORKER"), True),
        # Finished deliveries older than this leave the log (the worker prunes them); 0 keeps them all
        "HERALD_DELIVERY_RETENTION_DAYS": retention_days(env.get("HERALD_DELIVERY_RETENTION_DAYS")),
        # Alert history entries older than this go too, each alert's newest excepted; 0 keeps them all
        "HERALD_HISTORY_RETENTION_DAYS": retention_days(env.get("HERALD_HISTORY_RETENTION_DAYS")),
        # A send in progress is another process's for HERALD_SEND_DEADLINE + this; after that it is orphaned
        "HERALD_LEASE_GRACE_SECONDS": float(env.get("HERALD_LEASE_GRACE_SECONDS") or 30),
        "HERALD_BLOCK_PRIVATE_DESTINATIONS": _bool(env.get("HERALD_BLOCK_PRIVATE_DESTINATIONS")),
        # A PEM file of the CAs HTTPS destinations are checked against (e.g. the system's, with an internal CA);
        # empty: the bundle requests ships (certifi)
        "HERALD_CA_BUNDLE": env.get("HERALD_CA_BUNDLE") or "",
        # How many reverse proxies in front set X-Forwarded-For/-Proto (0: none, trust no such header)
        "HERALD_PROXY_COUNT": int(env.get("HERALD_PROXY_COUNT") or 0),
        # The proxy's address, whose X-Forwarded-* headers waitress trusts ("*": any peer; see webapp/serving.py)
        "HERALD_TRUSTED_PROXY": env.get("HERALD_TRUSTED_PROXY") or "*",
        "HERALD_LOGIN_MAX_FAILURES": int(env.get("HERALD_LOGIN_MAX_FAILURES") or 5),
        "HERALD_LOGIN_LOCKOUT_SECONDS": int(env.get("HERALD_LOGIN_LOCKOUT_SECONDS") or 900),
        # Upgrade the schema at start; set 0 to run `herald db upgrade` yourself
        "HERALD_AUTO_MIGRATE": _bool(env.get("HERALD_AUTO_MIGRATE"), True),
        "SESSION_COOKIE_SECURE": (env.get("HERALD_BASE_URL") or "").startswith("https://"),
        "REMEMBER_COOKIE_SECURE": (env.get("HERALD_BASE_URL") or "").startswith("https://"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # The largest request body accepted (413 beyond): Herald's biggest form is well under 100 kB
        "MAX_CONTENT_LENGTH": int(env.get("HERALD_MAX_CONTENT_LENGTH") or 1024 * 1024),
        # Alert sources (/inbound/<token>): the largest payload, and the most alerts in one, accepted (4xx beyond)
        "HERALD_INBOUND_MAX_BYTES": int(env.get("HERALD_INBOUND_MAX_BYTES") or 1024 * 1024),
        "HERALD_INBOUND_MAX_ALERTS": int(env.get("HERALD_INBOUND_MAX_ALERTS") or 1000),
        # CSRF tokens live as long as the session: an operator editing a long form must not lose it
        "WTF_CSRF_TIME_LIMIT": None,
    }


def engine_options(config) -> dict:
    """A connection for every web thread, every sender and the worker, so none waits on another's."""
    from sqlalchemy.engine import make_url

    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {}  # one shared in-memory connection (StaticPool): nothing to size
    size = int(config["HERALD_WEB_THREADS"]) + int(config["HERALD_NOTIFY_WORKERS"]) + 2
    # LIFO: the connection returned last is the one handed out next. On SQLite it is then usually the connection
    # that made the last write, whose page cache is current: a connection that finds the file written by another
    # since its last transaction drops its whole cache and reads every page again (about 20 reads per state
    # change with the pool's connections taken in turn, none with this; README, Benchmarks)
    return {"pool_size": size, "max_overflow": 4, "pool_timeout": 10, "pool_pre_ping": False, "pool_use_lifo": True}
