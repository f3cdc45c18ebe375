"""The settings UI in a real browser: htmx (from the local fallback) swaps type fields in without a reload."""
import re

import pytest
from playwright.sync_api import expect

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, LIST_URL, NEW_URL, create_user, new_url, stored

CDN = "https://cdn.jsdelivr.net/**"


@pytest.fixture
def blocked_requests(page):
    """Nothing leaves loopback: the htmx CDN is refused, so the local fallback copy is what loads."""
    blocked = []

    def refuse(route):
        blocked.append(route.request.url)
        route.abort()

    page.route(CDN, refuse)
    return blocked


@pytest.fixture
def admin_page(page, live_server, blocked_requests):
    create_user(live_server.app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    page.goto(live_server.url + "/login")
    page.get_by_role("textbox", name="Email").fill(ADMIN_EMAIL)
    page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # Settings → Alert Destinations, through the menu
    page.get_by_text("Settings", exact=True).click()
    page.get_by_role("link", name="Alert Destinations").click()
    expect(page).to_have_url(live_server.url + LIST_URL)
    return page


def wait_for_htmx(page):
    """After a full page load: htmx (the fallback copy, the CDN being refused) is running."""
    page.wait_for_function("() => typeof window.htmx === 'object'", timeout=10_000)


def name_input(page):
    return page.get_by_role("textbox", name="Name", exact=True)


def test_create_a_slack_destination_without_a_page_reload(admin_page, live_server, blocked_requests):
    page = admin_page
    page.get_by_role("button", name="+ New Alert Destination").first.click()  # a link styled role=button
    expect(page).to_have_url(live_server.url + NEW_URL)
    # The CDN copy was asked for and refused; htmx runs anyway, from our static folder
    wait_for_htmx(page)
    assert any("htmx.org" in url for url in blocked_requests)
    expect(page.get_by_text("Choose a type to see its settings.")).to_be_visible()

    page.evaluate("window.__marker = 1")
    page.get_by_role("link", name="Slack", exact=True).click()

    webhook_url = page.get_by_role("textbox", name="Webhook URL")
    expect(webhook_url).to_be_visible()
    assert page.evaluate("window.__marker") == 1, "the page was reloaded instead of swapping the fields in"
    # hx-push-url: the address bar names the chosen type, so reload and back work
    expect(page).to_have_url(re.compile(re.escape(live_server.url + new_url("slack")) + r"(&|$)"))
    expect(page.locator('a.type-card[data-type="slack"]')).to_have_attribute("aria-current", "true")

    name_input(page).fill("Ops channel")
    webhook_url.fill("https://hooks.slack.com/services/T000/B000/browser-test")
    page.get_by_role("button", name="Create destination").click()

    expect(page).to_have_url(live_server.url + LIST_URL)
    expect(page.get_by_text("Created “Ops channel”.")).to_be_visible()
    row = page.locator("tbody tr", has_text="Ops channel")
    expect(row).to_contain_text("Slack")
    expect(row).to_contain_text("Enabled")
    assert stored(live_server.app, "Ops channel")["secrets"] == {
        "webhook_url": "https://hooks.slack.com/services/T000/B000/browser-test"}


def test_switch_type_keeping_the_name_then_disable_and_delete(admin_page, live_server):
    page = admin_page
    page.goto(live_server.url + NEW_URL)
    wait_for_htmx(page)
    page.evaluate("window.__marker = 1")
    page.get_by_role("link", name="Slack", exact=True).click()
    expect(page.get_by_role("textbox", name="Webhook URL")).to_be_visible()
    name_input(page).fill("Database on-call")

    page.get_by_role("link", name="PagerDuty", exact=True).click()

    key = page.get_by_label("Integration key")
    expect(key).to_be_visible()
    expect(page.get_by_role("textbox", name="Webhook URL")).to_have_count(0)
    expect(name_input(page)).to_have_value("Database on-call")
    expect(page).to_have_url(re.compile(r"/settings/destinations/new\?type=pagerduty(&|$)"))
    assert page.evaluate("window.__marker") == 1

    key.fill("0123456789abcdef0123456789ABCDEF")
    page.get_by_role("button", name="Create destination").click()
    row = page.locator("tbody tr", has_text="Database on-call")
    expect(row).to_contain_text("PagerDuty")
    destination_id = stored(live_server.app, "Database on-call")["id"]
    wait_for_htmx(page)

    # Disable in place (htmx swaps the row)
    page.evaluate("window.__marker = 2")
    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text("Disabled")
    expect(row.get_by_role("button", name="Enable")).to_be_visible()
    assert page.evaluate("window.__marker") == 2
    assert stored(live_server.app, "Database on-call")["enabled"] is False

    # Delete asks first: saying no keeps the destination
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(300)
    expect(row).to_have_count(1)
    assert messages and "Database on-call" in messages[0]
    assert stored(live_server.app, "Database on-call") is not None

    # Saying yes removes the row, without a reload
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()

    expect(page.locator(f"#destination-{destination_id}")).to_have_count(0)
    expect(page.get_by_text("Deleted “Database on-call”.")).to_be_visible()
    expect(page.get_by_text("No alert destinations yet")).to_be_visible()
    assert page.evaluate("window.__marker") == 2
    assert stored(live_server.app, "Database on-call") is None
