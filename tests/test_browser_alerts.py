"""In a real browser: create an alert bound to two destinations, press Trigger, and watch both deliveries appear
on the alert page without a reload, while two local receivers get the notifications."""
import re

import pytest
from playwright.sync_api import expect
from pytest_httpserver import HTTPServer

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
from webapp.extensions import db
from webapp.models import Destination

PAGERDUTY_KEY = "0123456789abcdef0123456789abcdef"
SLACK_PATH = "/services/T0BROWSER/B0BROWSER/browserhook"


@pytest.fixture
def pagerduty_receiver():
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    server.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": "x"}, status=202)
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def slack_receiver():
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    server.expect_request(SLACK_PATH, method="POST").respond_with_data("ok", content_type="text/plain")
    yield server
    server.clear()
    server.stop()


def add_destination(app, name, type_key, options, secrets):
    with app.app_context():
        destination = Destination(name=name, type=type_key, options=options)
        destination.secrets = secrets
        db.session.add(destination)
        db.session.commit()


@pytest.fixture
def herald(live_server, pagerduty_receiver, slack_receiver):
    """The live app with an admin and two destinations whose vendors are the local receivers."""
    app = live_server.app
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    add_destination(app, "On-call pager", "pagerduty", {"severity": "", "api_url": pagerduty_receiver.url_for("/v2/enqueue")},
                    {"integration_key": PAGERDUTY_KEY})
    add_destination(app, "Ops channel", "slack", {"channel": "", "username": "", "icon_emoji": ""},
                    {"webhook_url": slack_receiver.url_for(SLACK_PATH)})
    return live_server


@pytest.fixture
def blocked(page):
    """Nothing leaves loopback: the htmx CDN is refused, so htmx comes from Herald's own static copy."""
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    page.route("https://cdn.jsdelivr.net/**", refuse)
    page.set_default_timeout(10_000)
    return refused


def sign_in(page, base_url):
    page.goto(base_url + "/login")
    page.locator('input[name="email"]').fill(ADMIN_EMAIL)
    page.locator('input[name="password"]').fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/alerts/")


def test_trigger_shows_both_deliveries_without_a_reload(page, blocked, herald, pagerduty_receiver, slack_receiver):
    sign_in(page, herald.url)

    page.goto(herald.url + "/alerts/new")
    page.locator('input[name="name"]').fill("CPU on web-01")
    page.get_by_role("checkbox", name="On-call pager").check()
    page.get_by_role("checkbox", name="Ops channel").check()
    page.get_by_role("button", name="Create alert").click()
    page.wait_for_url(re.compile(r"/alerts/\d+$"))
    alert_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", name="CPU on web-01", level=1)).to_be_visible()
    expect(page.locator("#alert-live")).to_contain_text("No notifications yet for this alert.")
    assert any("htmx.org" in url for url in blocked)  # the CDN copy was asked for and refused...
    assert page.evaluate("typeof window.htmx") == "object"  # ...and the local fallback runs

    page.evaluate("window.__sameDocument = 'still here'")  # a full page load would wipe this
    page.get_by_role("button", name="Trigger").click()

    rows = page.locator("#alert-live table.deliveries tbody tr")
    expect(rows).to_have_count(2)
    for name in ("On-call pager", "Ops channel"):
        row = rows.filter(has_text=name)
        expect(row).to_have_count(1)
        expect(row.locator(".badge")).to_have_text("Sent")
        expect(row).to_contain_text("trigger")
    expect(page.locator("#alert-live .alert-status")).to_contain_text("Triggered")
    expect(page.locator("#alert-live").get_by_role("status")).to_have_text("Deliveries: 2 sent.")
    assert page.evaluate("window.__sameDocument") == "still here"
    assert page.url == f"{herald.url}/alerts/{alert_id}"

    [(pd_request, _)] = pagerduty_receiver.log
    event = pd_request.get_json()
    assert event["event_action"] == "trigger" and event["dedup_key"] == f"herald-alert-{alert_id}"
    assert event["routing_key"] == PAGERDUTY_KEY and event["payload"]["summary"] == "TRIGGERED: CPU on web-01"
    [(slack_request, _)] = slack_receiver.log
    assert slack_request.get_json()["text"] == ":red_circle: TRIGGERED: CPU on web-01"
