"""In a real browser: a slow destination's delivery shows as pending right after Trigger, then turns into its
result on the alert page by itself (htmx polling), with no reload."""
import re
import threading

import pytest
from playwright.sync_api import expect
from pytest_httpserver import HTTPServer
from werkzeug import Response

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
from test_browser_alerts import add_destination, blocked, sign_in  # noqa: F401  (blocked is a fixture)


@pytest.fixture
def slow_hook():
    release = threading.Event()
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    server.expect_request("/hook", method="POST").respond_with_handler(
        lambda request: (release.wait(2.5), Response("ok"))[1])
    yield server
    release.set()
    server.clear()
    server.stop()


def test_a_pending_delivery_turns_into_its_result_without_a_reload(page, blocked, live_server, slow_hook):  # noqa: F811
    app = live_server.app
    app.config["HERALD_NOTIFY_WAIT"] = 0.3  # the page answers long before the 2.5 s receiver does
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    add_destination(app, "Slow hook", "webhook", {"url": slow_hook.url_for("/hook")}, {})
    sign_in(page, live_server.url)
    page.goto(live_server.url + "/alerts/new")
    page.locator('input[name="name"]').fill("Queue backlog")
    page.get_by_role("checkbox", name="Slow hook").check()
    page.get_by_role("button", name="Create alert").click()
    page.wait_for_url(re.compile(r"/alerts/\d+$"))

    page.evaluate("window.__sameDocument = 'still here'")
    page.get_by_role("button", name="Trigger").click()
    row = page.locator("#alert-live table.deliveries tbody tr").filter(has_text="Slow hook")
    expect(row.locator(".badge")).to_have_text("Pending")
    expect(page.locator("#alert-deliveries-section")).to_contain_text("still on their way")

    expect(row.locator(".badge")).to_have_text("Sent", timeout=15_000)
    expect(page.locator("#alert-deliveries-section")).not_to_contain_text("still on their way")
    assert page.locator("#alert-deliveries-section").get_attribute("hx-trigger") is None, "polling must stop"
    assert page.evaluate("window.__sameDocument") == "still here"
    assert len(slow_hook.log) == 1
