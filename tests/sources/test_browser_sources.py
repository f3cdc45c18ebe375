"""In a real browser (Debian's chromium): Settings → Alert sources, create an Alertmanager source, see its URL in
full once, and an Alertmanager payload posted to that URL becomes an alert on the alerts page."""
import requests
from playwright.sync_api import expect

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
from test_browser_operator import open_context, sign_in
from webapp.extensions import db
from webapp.models import Destination

from .conftest import recorded


def test_create_a_source_and_see_its_url_then_an_alert_arrives_there(browser, live_server):
    create_user(live_server.app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    with live_server.app.app_context():
        db.session.add(Destination(name="Ops chat", type="webhook", enabled=False,
                                   options={"url": "http://127.0.0.1:9/hook"}))
        db.session.commit()
    context = open_context(browser)
    page = context.new_page()
    sign_in(page, live_server.url)

    page.get_by_text("Settings", exact=True).click()
    page.get_by_role("link", name="Alert sources").click()
    expect(page.get_by_role("heading", name="No alert sources yet")).to_be_visible()
    page.get_by_role("button", name="+ New alert source").first.click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Prometheus")
    expect(page.get_by_text("Heartbeat (heartbeat sources only)")).to_be_hidden()  # only the chosen kind's fields
    page.get_by_label("Ops chat").first.check()  # the default destination
    page.get_by_role("textbox", name="Matchers").fill('severity=~"critical|page"')
    page.get_by_role("group", name="Destinations of route 1").get_by_label("Ops chat").check()
    page.get_by_role("button", name="Create source").click()

    url_field = page.locator("#inbound-url")
    expect(url_field).to_be_visible()
    url = url_field.input_value()
    assert url.startswith("http://127.0.0.1:5000/inbound/") and len(url.rsplit("/", 1)[1]) >= 43
    expect(page.get_by_text("Copy this URL now.")).to_be_visible()
    expect(page.get_by_role("button", name="Copy URL")).to_be_visible()
    expect(page.locator("pre code").first).to_contain_text("webhook_configs")

    # HERALD_BASE_URL names where Herald is reached from outside; here it is served on the test's own port
    inbound = live_server.url + url[len("http://127.0.0.1:5000"):]
    answer = requests.post(inbound, json=recorded("alertmanager-webhook.json"), timeout=10)
    assert answer.status_code == 200 and answer.json()["triggered"] == 1
    page.goto(live_server.url + "/alerts/")
    page.get_by_role("link", name="CPU above 90% (web-01)").click()
    expect(page.get_by_text("From Prometheus Alertmanager")).to_be_visible()
    expect(page.get_by_text("instance=web-01")).to_be_visible()
    expect(page.get_by_role("button", name="Trigger")).to_have_count(0)
    page.goto(live_server.url + "/settings/sources/")
    expect(page.get_by_role("cell", name="Prometheus", exact=False).first).to_be_visible()
    assert url not in page.content()  # shown once, never again
    context.close()
