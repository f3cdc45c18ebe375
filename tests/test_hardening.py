"""Production hardening as a browser, an attacker, a receiving system and a monitoring system see it: response
headers, cookies, sign-in throttling, where notifications may go, escaped vendor text, /healthz and /metrics."""
import base64
import hashlib
import re
import sys
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, HTMX, TYPES, VIEWER_EMAIL, VIEWER_PASSWORD, count_destinations,
                     create_user, edit_url, form_data, login, new_url, page, stored)
from webapp import HTMX_CDN_URL, HTMX_SRI, HTMX_VERSION, ROOT, start_delivery_worker
from webapp.destinations import REGISTRY
from webapp.destinations.base import HttpUrl
from webapp.extensions import db
from webapp.models import Delivery, Destination, utcnow
from webapp.security import LoginThrottle
from webapp.delivery.notification import Notification
from webapp.delivery.notifier import Notifier

SAFE_REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def html(response) -> str:
    return response.get_data(as_text=True)


def api_token(app, email) -> str:
    result = app.test_cli_runner().invoke(args=["create-token", email, "--name", "hardening"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def csp(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request.path}"
    directives = {}
    for directive in header.split(";"):
        name, *sources = directive.split()
        directives[name] = sources
    return directives


# -- security headers ------------------------------------------------------------------------------------------
@pytest.fixture
def cdn_app(make_app):
    """As deployed by default: htmx from the pinned CDN file (with SRI), the local copy as a fallback."""
    app = make_app(HERALD_HTMX_CDN=True, HERALD_RETRY_WORKER=False)  # /healthz answers 200 without a worker
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    return app


def responses_of_every_kind(app):
    client = app.test_client()
    anonymous = {"login page (HTML)": client.get("/login"),
                 "health (JSON)": client.get("/healthz"),
                 "metrics (text)": client.get("/metrics"),
                 "API without token (JSON 401)": client.get("/api/alerts"),
                 "OpenAPI (JSON)": client.get("/api/openapi.json"),
                 "stylesheet (static)": client.get("/static/herald.css"),
                 "htmx copy (static)": client.get(f"/static/vendor/htmx-{HTMX_VERSION}.min.js"),
                 "icon (static)": client.get("/static/icons/slack.svg")}
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = api_token(app, ADMIN_EMAIL)
    signed_in = {"alerts page (HTML)": client.get("/alerts/"),
                 "htmx fragment (HTML)": client.get(new_url("slack"), headers=HTMX),
                 "refused form (HTML 422)": client.post(new_url("slack"), data={"name": ""}),
                 "not found page (HTML 404)": client.get("/no/such/page"),
                 "API list (JSON)": client.get("/api/alerts", headers={"Authorization": f"Bearer {token}"}),
                 "API 422 (JSON)": client.post("/api/alerts", json={"name": 5},
                                               headers={"Authorization": f"Bearer {token}"})}
    return {**anonymous, **signed_in}


def test_every_kind_of_response_carries_the_security_headers(cdn_app):
    responses = responses_of_every_kind(cdn_app)
    expected_status = {"API without token (JSON 401)": 401, "refused form (HTML 422)": 422,
                       "not found page (HTML 404)": 404, "API 422 (JSON)": 422}
    for name, response in responses.items():
        assert response.status_code == expected_status.get(name, 200), name
        policy = csp(response)
        assert policy["script-src"] == ["'self'", HTMX_CDN_URL], f"{name}: {policy['script-src']}"
        assert policy["frame-ancestors"] == ["'none'"], name
        assert policy["object-src"] == ["'none'"], name
        assert not any("unsafe" in source for sources in policy.values() for source in sources), name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] in SAFE_REFERRER_POLICIES, name


def test_the_page_loads_exactly_the_pinned_htmx_file_with_a_matching_integrity_hash(cdn_app):
    client = cdn_app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    text = html(client.get("/alerts/"))

    scripts = re.findall(r"<script\b[^>]*>", text)
    external = [tag for tag in scripts if "https://" in tag]
    assert external == [f'<script src="{HTMX_CDN_URL}" integrity="{HTMX_SRI}" crossorigin="anonymous">']
    # Every other script is served by Herald itself (allowed by 'self'); no inline scripts at all
    assert all(re.search(r'src="/static/', tag) for tag in scripts if tag not in external)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "an inline script would be refused by the CSP"
    # The integrity hash is the hash of the bytes the CDN serves, i.e. of the vendored copy
    local = (ROOT / "static" / "vendor" / f"htmx-{HTMX_VERSION}.min.js").read_bytes()
    assert HTMX_SRI == "sha384-" + base64.b64encode(hashlib.sha384(local).digest()).decode()


def test_without_the_cdn_scripts_come_only_from_herald(make_app):
    app = make_app(HERALD_HTMX_CDN=False)
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    client = app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = client.get("/alerts/")

    assert csp(response)["script-src"] == ["'self'"]
    assert "cdn.jsdelivr.net" not in html(response)
    assert f"/static/vendor/htmx-{HTMX_VERSION}.min.js" in html(response)


# -- cookies -----------------------------------------------------------------------------------------------------
def set_cookie(response, name: str) -> dict:
    """The attributes of the Set-Cookie header for `name` ({attribute lowercased: value or True})."""
    for header in response.headers.getlist("Set-Cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        if first.split("=", 1)[0] == name:
            parsed = {"value": first.split("=", 1)[1]}
            for attribute in attributes:
                key, _, value = attribute.partition("=")
                parsed[key.lower()] = value or True
            return parsed
    raise AssertionError(f"no {name} cookie set: {response.headers.getlist('Set-Cookie')}")


def sign_in_with_remember(app):
    client = app.test_client()
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": "y"})
    assert response.status_code == 302
    return response


@pytest.mark.parametrize("base_url, secure", [("http://herald.internal:5000", False),
                                              ("https://herald.example.com", True)])
def test_session_and_remember_cookies_are_httponly_samesite_lax_and_secure_behind_https(
        make_app, monkeypatch, base_url, secure):
    monkeypatch.setenv("HERALD_BASE_URL", base_url)  # read from the environment by create_app
    app = make_app()
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")

    response = sign_in_with_remember(app)

    for name in ("session", "remember_token"):
        cookie = set_cookie(response, name)
        assert cookie.get("httponly") is True, name
        assert cookie.get("samesite") == "Lax", name
        assert (cookie.get("secure") is True) is secure, f"{name}: Secure must be {'set' if secure else 'absent'}"


# -- sign-in throttling ------------------------------------------------------------------------------------------
@pytest.fixture
def throttled_app(make_app):
    app = make_app(HERALD_LOGIN_MAX_FAILURES=3, HERALD_LOGIN_LOCKOUT_SECONDS=600)
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    create_user(app, VIEWER_EMAIL, VIEWER_PASSWORD, "viewer")
    return app


def sign_in(client, email, password, address):
    return client.post("/login", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address})


def signed_in(client) -> bool:
    return client.get("/alerts/").status_code == 200


def test_after_too_many_wrong_passwords_even_the_right_one_is_refused_for_a_while(throttled_app):
    attacker = throttled_app.test_client()
    for _ in range(3):
        response = sign_in(attacker, ADMIN_EMAIL, "guess", "192.0.2.10")
        assert response.status_code == 422
        assert page(response).error("password") == "Wrong email or password."

    response = sign_in(attacker, ADMIN_EMAIL, ADMIN_PASSWORD, "192.0.2.10")

    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 600
    assert page(response).error("password") == "Too many failed sign-ins. Try again in about 10 minutes."
    assert page(response).value("email") == ADMIN_EMAIL, "the form is shown again, filled in"
    assert not signed_in(attacker)

    # The account's owner, from an address that has not failed, is not locked out by the guesser
    # (tests/test_security_signin.py has the backstops)
    elsewhere = throttled_app.test_client()
    assert sign_in(elsewhere, ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.7").status_code == 302
    assert signed_in(elsewhere)

    # Someone else, elsewhere, is unaffected
    colleague = throttled_app.test_client()
    assert sign_in(colleague, VIEWER_EMAIL, VIEWER_PASSWORD, "203.0.113.5").status_code == 302
    assert signed_in(colleague)


def test_fewer_failures_than_the_limit_do_not_lock_and_a_success_starts_the_count_again(throttled_app):
    client = throttled_app.test_client()
    for _ in range(2):
        assert sign_in(client, ADMIN_EMAIL, "guess", "192.0.2.11").status_code == 422
    assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, "192.0.2.11").status_code == 302
    client.post("/logout")
    # The account's count was reset by the success: two more failures still leave it open
    other = throttled_app.test_client()
    for _ in range(2):
        assert sign_in(other, ADMIN_EMAIL, "guess", "198.51.100.8").status_code == 422
    assert sign_in(other, ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.8").status_code == 302


def test_a_forged_x_forwarded_for_does_not_dodge_the_per_address_limit(throttled_app):
    """Without HERALD_PROXY_COUNT no proxy is trusted: a guesser cannot pose as a new address per request."""
    guesser = throttled_app.test_client()
    for n in range(3 * LoginThrottle.CLIENT_FACTOR):  # one try per account: only the address's count reaches a limit
        response = guesser.post("/login", data={"email": f"user{n}@example.com", "password": "guess"},
                                environ_base={"REMOTE_ADDR": "192.0.2.66"},
                                headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
        assert response.status_code == 422

    response = guesser.post("/login", data={"email": VIEWER_EMAIL, "password": VIEWER_PASSWORD},
                            environ_base={"REMOTE_ADDR": "192.0.2.66"}, headers={"X-Forwarded-For": "203.0.113.99"})

    assert response.status_code == 429


def test_the_lock_ends_when_its_window_has_passed(make_app):
    # A 3 s window: with 1 s, three password checks on a loaded CI machine outlasted it (the first failure had
    # left the window before the third sign-in, which then got in: a flake of the test, not of the lock)
    app = make_app(HERALD_LOGIN_MAX_FAILURES=2, HERALD_LOGIN_LOCKOUT_SECONDS=3)
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    client = app.test_client()
    for _ in range(2):
        assert sign_in(client, ADMIN_EMAIL, "guess", "192.0.2.12").status_code == 422
    locked = sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, "192.0.2.12")
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) <= 4

    time.sleep(3.2)

    assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD, "192.0.2.12").status_code == 302


# -- where notifications may go: at save -------------------------------------------------------------------------
def url_fields() -> list[tuple[str, str]]:
    """Every URL field of every destination type, read from the forms: a new type is covered by its module alone."""
    import flask

    with flask.Flask(__name__).app_context():  # Flask-WTF reads its settings from an app; any app will do
        return sorted((key, field.name) for key, dtype in REGISTRY.items()
                      for field in dtype.form(formdata=None, meta={"csrf": False})
                      if any(isinstance(v, HttpUrl) for v in field.validators))


URL_FIELDS = url_fields()
METADATA_HOSTS = ["169.254.169.254", "[fe80::1]", "[::ffff:169.254.169.254]"]


def test_the_url_field_list_covers_every_url_field():
    # The list is read from the forms; that it holds the known fields shows the reading works
    assert {("slack", "webhook_url"), ("mattermost", "icon_url"), ("zendesk", "zendesk_url"),
            ("teams", "webhook_url"), ("ntfy", "topic_url")} <= set(URL_FIELDS)
    assert all(key in TYPES for key, _ in URL_FIELDS), "every type with a URL field has an example in helpers.TYPES"


def url_on(type_key: str, field: str, host: str) -> str:
    """The type's valid example URL for `field` with its host replaced (so only the host can be wrong)."""
    spec = TYPES[type_key]
    example = spec["options"].get(field) or spec["secrets"].get(field) or "https://example.com/herald.png"
    return urlsplit(example)._replace(netloc=host).geturl()


def api_body(type_key: str, name: str, **changes) -> dict:
    spec = TYPES[type_key]
    options = {**spec["options"], **spec["secrets"], **changes}
    return {"name": name, "type": type_key, "options": options}


@pytest.fixture
def admin_api(app, admin):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_token(app, ADMIN_EMAIL)}"}
    return lambda method, path, body=None: client.open(path, method=method, json=body, headers=headers)


@pytest.mark.parametrize("type_key, field", URL_FIELDS)
def test_a_metadata_or_link_local_url_is_refused_at_save(app, admin_client, admin_api, type_key, field):
    for host in METADATA_HOSTS:
        url = url_on(type_key, field, host)
        address = host.strip("[]")

        response = admin_client.post(new_url(type_key), data=form_data(type_key, **{field: url}))

        assert response.status_code == 422, url
        message = page(response).error(field)
        assert message and address in message and "link-local or cloud-metadata" in message, page(response).errors()
        assert "Herald does not send there" in message

        response = admin_api("POST", "/api/destinations", api_body(type_key, "Via API", **{field: url}))

        assert response.status_code == 422, url
        fields = response.get_json()["error"]["fields"]
        assert field in fields and "Herald does not send there" in " ".join(fields[field]), fields
    assert count_destinations(app) == 0


# Other spellings of link-local and metadata addresses that an HTTP client would still connect to
OTHER_SPELLINGS = [
    pytest.param("2852039166", id="decimal"), pytest.param("0xa9fea9fe", id="hex"),
    pytest.param("0251.0376.0251.0376", id="octal"), pytest.param("169.254.43518", id="short form"),
    pytest.param("[::ffff:a9fe:a9fe]", id="ipv4-mapped in hex"), pytest.param("[fd00:ec2::254]", id="aws ipv6"),
    pytest.param("[0:0:0:0:0:ffff:169.254.169.254]", id="ipv4-mapped long"),
    # urllib3 turns %25 into the zone separator and connects to fe80::1 on that interface
    pytest.param("[fe80::1%25lo]", id="link-local with a zone id"),
]


@pytest.mark.parametrize("host", OTHER_SPELLINGS)
def test_other_spellings_of_forbidden_addresses_are_refused_at_save(app, admin_client, admin_api, host):
    url = f"http://{host}/latest/meta-data/"

    response = admin_client.post(new_url("webhook"), data=form_data("webhook", url=url))

    assert response.status_code == 422 and "Herald does not send there" in (page(response).error("url") or ""), \
        page(response).errors()
    response = admin_api("POST", "/api/destinations", api_body("webhook", "Via API", url=url))
    assert response.status_code == 422 and "url" in response.get_json()["error"]["fields"]
    assert count_destinations(app) == 0


def test_editing_a_destination_to_a_metadata_url_is_refused_and_keeps_the_stored_url(app, admin_client, admin_api):
    assert admin_client.post(new_url("webhook"), data=form_data("webhook")).status_code == 302
    row = stored(app, form_data("webhook")["name"])
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"

    response = admin_client.post(edit_url(row["id"]), data=form_data("webhook", password="", url=metadata))
    assert response.status_code == 422 and "169.254.169.254" in page(response).error("url")

    response = admin_api("PATCH", f"/api/destinations/{row['id']}", {"options": {"url": metadata}})
    assert response.status_code == 422 and "url" in response.get_json()["error"]["fields"]

    assert stored(app, destination_id=row["id"]) == row


@pytest.fixture
def app_with_blocking(make_app, tmp_path):
    def make(block: bool):
        app = make_app(HERALD_BLOCK_PRIVATE_DESTINATIONS=block,
                       SQLALCHEMY_DATABASE_URI="sqlite:///" + str(tmp_path / f"block-{block}.sqlite3"))
        create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
        client = app.test_client()
        login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        token = api_token(app, ADMIN_EMAIL)
        api = lambda body: client.post("/api/destinations", json=body,  # noqa: E731
                                       headers={"Authorization": f"Bearer {token}"})
        return app, client, api
    return make


PRIVATE_URLS = ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.20.30.40/hook",
                "http://[::1]:9000/hook", "http://192.168.1.5/hook"]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_and_loopback_urls_are_refused_when_blocking_is_on(app_with_blocking, url):
    app, client, api = app_with_blocking(True)

    response = client.post(new_url("webhook"), data=form_data("webhook", url=url))

    assert response.status_code == 422
    assert "private or loopback" in (page(response).error("url") or ""), page(response).errors()
    response = api(api_body("webhook", "Via API", url=url))
    assert response.status_code == 422
    assert "private or loopback" in " ".join(response.get_json()["error"]["fields"]["url"])
    assert count_destinations(app) == 0


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_and_loopback_urls_are_allowed_when_blocking_is_off(app_with_blocking, url):
    app, client, api = app_with_blocking(False)

    response = client.post(new_url("webhook"), data=form_data("webhook", url=url))

    assert response.status_code == 302, page(response).errors()
    response = api(api_body("webhook", "Via API", url=url))
    assert response.status_code == 201, response.get_json()
    saved = [stored(app, form_data("webhook")["name"]), stored(app, "Via API")]
    assert [row["options"]["url"] for row in saved] == [url, url]


# -- where notifications may go: at send -------------------------------------------------------------------------
def notification(alert_id=7, name="Disk full on db-01") -> Notification:
    return Notification(alert_id=alert_id, alert_name=name, state="triggered", previous_state="ok",
                        severity="critical", alert_url=f"https://herald.example.com/alerts/{alert_id}",
                        url_base="https://herald.example.com", occurred_at=datetime.now(timezone.utc))


def store_destination(app, name, type_key, enabled=True, **config) -> int:
    """Write a destination straight to the database, as an old version or a hand edit could have left it."""
    with app.app_context():
        secret_names = set(REGISTRY[type_key].secret_fields())
        destination = Destination(name=name, type=type_key, enabled=enabled,
                                  options={k: v for k, v in config.items() if k not in secret_names})
        destination.secrets = {k: v for k, v in config.items() if k in secret_names}
        db.session.add(destination)
        db.session.commit()
        return destination.id


def notify(app, *destination_ids) -> list[dict]:
    with app.app_context():
        destinations = [db.session.get(Destination, i) for i in destination_ids]
        return Notifier(app).notify(destinations, notification())


_CONNECTS: list | None = None


def _record_connects(event, args):
    if event == "socket.connect" and _CONNECTS is not None:
        _CONNECTS.append(args[1])


sys.addaudithook(_record_connects)  # audit hooks cannot be removed; it records only while a test asks


@pytest.fixture
def no_network():
    """Every address a socket of this process connects to during the test (Python's socket.connect audit
    event): the real connections, seen without replacing any of Herald's code."""
    global _CONNECTS
    _CONNECTS = []
    yield _CONNECTS
    _CONNECTS = None


@pytest.mark.parametrize("type_key, config", [
    ("webhook", {"url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}),
    ("webhook", {"url": "http://[fe80::1]/hook"}),
    ("webhook", {"url": "http://[fe80::1%25lo]/hook"}),
    ("slack", {"webhook_url": "https://[::ffff:169.254.169.254]/services/T000/B000/XXXX"}),
    ("pagerduty", {"integration_key": "A" * 32, "api_url": "http://169.254.169.254/v2/enqueue"}),
])
def test_a_stored_forbidden_url_fails_permanently_at_send_and_nothing_is_sent(app, admin_client, no_network,
                                                                            type_key, config):
    destination_id = store_destination(app, "Tampered", type_key, **config)

    [outcome] = notify(app, destination_id)

    assert no_network == [], "nothing may be sent to a forbidden address"
    assert outcome["status"] == "failed" and outcome["attempts"] == 1 and outcome["next_attempt_at"] is None
    assert "link-local or cloud-metadata" in outcome["error"] and "Herald does not send there" in outcome["error"]
    with app.app_context():  # not queued for a retry either
        assert Notifier(app).run_due() == 0
    assert "Herald does not send there" in html(admin_client.get("/deliveries/"))


@pytest.mark.parametrize("block", [True, False])
def test_with_blocking_on_a_stored_loopback_url_is_not_sent_to(make_app, httpserver, block):
    app = make_app(HERALD_BLOCK_PRIVATE_DESTINATIONS=block)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    destination_id = store_destination(app, "Loopback hook", "webhook", url=httpserver.url_for("/hook"))

    [outcome] = notify(app, destination_id)

    if block:
        assert httpserver.log == [] and outcome["status"] == "failed" and outcome["next_attempt_at"] is None
        assert "private or loopback" in outcome["error"]
    else:  # the same destination is delivered when blocking is off: the check above is about the setting
        assert len(httpserver.log) == 1 and outcome["status"] == "sent"


# -- vendor text is shown as text --------------------------------------------------------------------------------
HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)><b>bold</b>'


def test_vendor_error_text_with_markup_is_shown_escaped(app, admin_client, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data(HOSTILE, status=400,
                                                                       content_type="text/html")
    response = admin_client.post(new_url("webhook"), data=form_data("webhook", name="Hostile vendor",
                                                                     url=httpserver.url_for("/hook")))
    assert response.status_code == 302
    destination = stored(app, "Hostile vendor")
    response = admin_client.post("/alerts/new", data={"name": "Hostile alert", "severity": "critical",
                                                      "destination_ids": [str(destination["id"])]})
    alert_path = urlsplit(response.headers["Location"]).path
    assert admin_client.post(f"{alert_path}/state", data={"state": "triggered"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(Delivery.error)).startswith("HTTP 400: <script>alert(")

    pages = {"deliveries": admin_client.get("/deliveries/"),
             "deliveries fragment": admin_client.get("/deliveries/", headers=HTMX),
             "destination page": admin_client.get(edit_url(destination["id"])),
             "alert page": admin_client.get(alert_path),
             "test result": admin_client.post(f"/settings/destinations/{destination['id']}/test", headers=HTMX)}
    for name, shown in pages.items():
        text = html(shown)
        assert shown.status_code == 200, name
        assert "&lt;script&gt;alert(" in text, f"the vendor's words are missing from the {name}"
        assert "<script>alert(" not in text and "<img src=x" not in text and "<b>bold" not in text, name


# -- /healthz and /metrics ---------------------------------------------------------------------------------------
def test_healthz_is_ok_with_a_running_worker_and_503_when_it_is_not_running(make_app, httpserver):
    app = make_app(HERALD_RETRY_WORKER=True, HERALD_RETRY_POLL_SECONDS=0.1)  # tests start no worker on their own
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")  # health answers without signing in all the same
    client = app.test_client()

    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "failing", "database": "ok", "delivery_worker": "not running"}

    # A retry is due: a running worker sends it
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    destination_id = store_destination(app, "Retried hook", "webhook", url=httpserver.url_for("/hook"))
    with app.app_context():
        db.session.add(Delivery(destination_id=destination_id, destination_name="Retried hook",
                                destination_type="webhook", alert_id=7, alert_name="Disk full", event="trigger",
                                status="retrying", attempts=1, notification=notification().to_json(),
                                next_attempt_at=utcnow()))
        db.session.commit()
    worker = start_delivery_worker(app)
    try:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "database": "ok", "delivery_worker": "ok"}
        deadline = time.monotonic() + 10
        while not httpserver.log and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(httpserver.log) == 1, "the worker that /healthz calls alive must be sending retries"
    finally:
        worker.stop()

    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["delivery_worker"] == "not running"


def test_healthz_with_the_worker_disabled_is_ok_and_says_so(make_app):
    response = make_app(HERALD_RETRY_WORKER=False).test_client().get("/healthz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["delivery_worker"].startswith("disabled")


def test_healthz_is_503_when_the_database_is_unreachable(make_app, tmp_path):
    app = make_app(HERALD_RETRY_WORKER=False, HERALD_AUTO_MIGRATE=False,
                   SQLALCHEMY_DATABASE_URI="sqlite:///" + str(tmp_path / "missing-dir" / "herald.sqlite3"))

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.get_json()["status"] == "failing"
    assert response.get_json()["database"].startswith("unreachable")


def metric_samples(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_sent_failed_skipped_and_retrying_deliveries(app, admin_client, httpserver):
    httpserver.expect_request("/ok", method="POST").respond_with_data("accepted")
    httpserver.expect_request("/bad", method="POST").respond_with_data("no such channel", status=400)
    httpserver.expect_request("/busy", method="POST").respond_with_data("try later", status=503)
    ids = [store_destination(app, "Works", "webhook", url=httpserver.url_for("/ok")),
           store_destination(app, "Refuses", "webhook", url=httpserver.url_for("/bad")),
           store_destination(app, "Disabled", "webhook", enabled=False, url=httpserver.url_for("/ok")),
           store_destination(app, "Busy", "webhook", url=httpserver.url_for("/busy"))]
    anonymous = app.test_client()  # Prometheus does not sign in
    before = metric_samples(anonymous)

    outcomes = notify(app, *ids)

    assert [o["status"] for o in outcomes] == ["sent", "failed", "skipped", "retrying"]
    after = metric_samples(anonymous)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("herald_deliveries_total", type="webhook", status="sent", reason="") == 1
    assert delta("herald_deliveries_total", type="webhook", status="failed", reason="http_400") == 1
    assert delta("herald_deliveries_total", type="webhook", status="skipped", reason="disabled") == 1
    assert delta("herald_deliveries_total", type="webhook", status="retrying", reason="http_503") == 1
    # Three attempts were timed (a skipped delivery makes none)
    assert delta("herald_delivery_latency_seconds_count", type="webhook") == 3
    assert delta("herald_delivery_latency_seconds_bucket", type="webhook", le="+Inf") == 3
    assert delta("herald_delivery_latency_seconds_sum", type="webhook") > 0
    with app.app_context():
        waiting = db.session.scalar(db.select(db.func.count()).select_from(Delivery)
                                    .where(Delivery.status.in_(("pending", "retrying"))))
    assert waiting == 1
    assert after[("herald_retries_pending", ())] == waiting

    # The gauge follows the database: once the retry is given up, nothing is pending
    with app.app_context():
        db.session.execute(db.update(Delivery).where(Delivery.status == "retrying").values(status="failed"))
        db.session.commit()
    assert metric_samples(anonymous)[("herald_retries_pending", ())] == 0
