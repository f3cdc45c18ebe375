"""Sign-in throttling behind a proxy (issue 11, finding 5), through real waitress servers as `make run` runs them.

Before: waitress dropped X-Forwarded-* (it trusts no proxy unless told), so behind nginx every client was the proxy,
and five wrong passwords from anyone locked out every user; five failures for an email locked its owner out from
every address; the failure table grew without bound. Now waitress is given the proxy settings
(webapp.serving.waitress_options), failures count per (client, email) with backstops that spare clients that
have not failed, and the table is bounded.
"""
import pytest
import requests

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, waitress_server
from webapp.security import LoginThrottle
from webapp.serving import waitress_options

LIMIT = 3


@pytest.fixture
def behind_proxy(make_app):
    """The app as deployed behind one reverse proxy (HERALD_PROXY_COUNT=1), served by waitress on loopback."""
    from contextlib import ExitStack

    app = make_app(HERALD_PROXY_COUNT=1, HERALD_LOGIN_MAX_FAILURES=LIMIT, HERALD_LOGIN_LOCKOUT_SECONDS=600)
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    with ExitStack() as servers:
        yield app, lambda options: servers.enter_context(waitress_server(app, **options))


def sign_in(base, client_address, password, email=ADMIN_EMAIL):
    """A sign-in as the proxy forwards it (nginx: X-Forwarded-For $proxy_add_x_forwarded_for)."""
    return requests.post(f"{base}/login", data={"email": email, "password": password}, allow_redirects=False,
                         headers={"X-Forwarded-For": client_address, "X-Forwarded-Proto": "https"}, timeout=10)


def test_behind_the_proxy_an_attackers_failures_do_not_lock_out_the_owner(behind_proxy):
    app, serve = behind_proxy
    base = serve(waitress_options(app.config))
    for _ in range(LIMIT):
        assert sign_in(base, "198.51.100.66", "guess").status_code == 422
    assert sign_in(base, "198.51.100.66", ADMIN_PASSWORD).status_code == 429, "the attacker is held back"

    owner = sign_in(base, "203.0.113.5", ADMIN_PASSWORD)

    assert owner.status_code == 302, "the owner, from an address that has not failed, signs in"
    assert owner.headers["Location"].endswith("/") and "session" in owner.cookies


def test_without_the_proxy_settings_waitress_hides_the_clients_and_one_attacker_locks_everyone_out(behind_proxy):
    """What `waitress-serve wsgi:app` did: the same requests, and the owner is refused. The options above matter."""
    app, serve = behind_proxy
    base = serve({})
    for _ in range(LIMIT):
        sign_in(base, "198.51.100.66", "guess")

    assert sign_in(base, "203.0.113.5", ADMIN_PASSWORD).status_code == 429


def test_the_options_trust_only_the_configured_proxy_address(make_app):
    options = waitress_options(make_app(HERALD_PROXY_COUNT=2, HERALD_TRUSTED_PROXY="10.0.0.5").config)
    assert options["trusted_proxy"] == "10.0.0.5" and options["trusted_proxy_count"] == 2
    assert {"x-forwarded-for", "x-forwarded-proto"} <= options["trusted_proxy_headers"]
    assert "trusted_proxy" not in waitress_options(make_app(HERALD_PROXY_COUNT=0).config)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_many_addresses_guessing_one_account_meet_the_backstop_but_a_clean_address_does_not(behind_proxy):
    app, serve = behind_proxy
    base = serve(waitress_options(app.config))
    for n in range(LIMIT * LoginThrottle.EMAIL_FACTOR):  # one guess from each of many addresses
        assert sign_in(base, f"198.51.100.{n + 1}", "guess").status_code == 422

    assert sign_in(base, "198.51.100.1", "another guess").status_code == 429, "a guessing address is held back"
    assert sign_in(base, "203.0.113.9", ADMIN_PASSWORD).status_code == 302, "a clean address is not"


def test_one_address_spraying_accounts_is_held_back():
    throttle = LoginThrottle(LIMIT, 600, clock=Clock())
    for n in range(LIMIT * LoginThrottle.CLIENT_FACTOR):
        assert throttle.retry_after("192.0.2.7", f"user{n}@example.com") == 0
        throttle.failed("192.0.2.7", f"user{n}@example.com")
    assert throttle.retry_after("192.0.2.7", "fresh@example.com") > 0
    assert throttle.retry_after("192.0.2.8", "fresh@example.com") == 0


def test_the_global_backstop_holds_back_failed_clients_only():
    clock = Clock()
    throttle = LoginThrottle(LIMIT, 600, clock=clock)
    for n in range(LIMIT * LoginThrottle.GLOBAL_FACTOR):
        throttle.failed(f"10.{n // 250}.{n % 250}.1", f"u{n}@example.com")
    assert throttle.retry_after("10.0.0.1", "other@example.com") > 0
    assert throttle.retry_after("192.0.2.99", ADMIN_EMAIL) == 0
    clock.now += 601
    assert throttle.retry_after("10.0.0.1", "other@example.com") == 0


def test_ipv6_clients_count_per_64():
    throttle = LoginThrottle(LIMIT, 600, clock=Clock())
    for n in range(LIMIT):
        throttle.failed(f"2001:db8:1:2::{n + 1:x}", ADMIN_EMAIL)
    assert throttle.retry_after("2001:db8:1:2::ffff", ADMIN_EMAIL) > 0
    assert throttle.retry_after("2001:db8:1:3::1", ADMIN_EMAIL) == 0


def test_the_throttle_stays_bounded_under_a_flood_and_frees_what_expires():
    """Before: +7 MB per 10,000 refused sign-ins, never freed. Now at most max_keys keys per table."""
    import tracemalloc

    clock = Clock()
    throttle = LoginThrottle(LIMIT, 600, clock=clock, max_keys=1000)
    tracemalloc.start()
    for n in range(30_000):
        throttle.failed(f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}", f"victim{n}@example.com")
        clock.now += 0.001
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert throttle.size() <= 3 * 1000
    assert held < 3_000_000, f"{held} bytes held for the failures"
    clock.now += 601
    throttle.failed("192.0.2.1", "last@example.com")
    assert throttle.size() == 3, "expired entries are freed"
