"""The operator's day in a real browser, by keyboard and without JavaScript, at 1280×800 and 390×844: row actions
on screen and tappable, focus where the eye is after each swap and action, the skip link, search as you type,
Preview and Send test, copy buttons, and a refused form that keeps the typed password."""
import pytest
from playwright.sync_api import expect

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, stored
from test_a11y import VIEWPORTS, seed

PASSWORD = "S3CR3Tbrowser-typed-7c41"


def sign_in(page, base):
    page.goto(base + "/login")
    page.get_by_role("textbox", name="Email").fill(ADMIN_EMAIL)
    page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture
def herald(live_server):
    create_user(live_server.app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    create_user(live_server.app, "second.admin@example.com", ADMIN_PASSWORD, "admin")
    live_server.ids = seed(live_server.app)
    return live_server


def open_context(browser, viewport="desktop", **options):
    context = browser.new_context(viewport=VIEWPORTS[viewport], **options)
    context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())  # nothing leaves loopback
    return context


def focused(page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement;
        return {tag: e.tagName, id: e.id, name: e.getAttribute('name'), text: (e.textContent || '').trim().slice(0, 80)}; }""")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_row_action_is_on_screen_and_big_enough_to_tap(browser, herald, viewport):
    context = open_context(browser, viewport)
    page = context.new_page()
    sign_in(page, herald.url)
    for path in ("/settings/destinations/", "/settings/users", "/settings/tokens"):
        page.goto(herald.url + path)
        actions = page.locator("td.actions button, td.actions [role=button]")
        assert actions.count() > 0, path
        width = VIEWPORTS[viewport]["width"]
        for i in range(actions.count()):
            box = actions.nth(i).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{path}: action {i} is off-screen: {box}"
            if viewport == "phone":
                assert box["height"] >= 44 and box["width"] >= 44, f"{path}: action {i} is too small: {box}"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    context.close()


def test_keyboard_skip_link_type_swap_and_focus_after_actions(browser, herald):
    context = open_context(browser)
    page = context.new_page()
    sign_in(page, herald.url)

    page.goto(herald.url + "/settings/destinations/new")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to content"
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"

    # The type swap puts focus on the first field, Name, not on <body>
    page.locator('a.type-card[data-type="webhook"]').focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="URL", exact=True)).to_be_visible()
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'name'")
    page.keyboard.type("Keyboard hook")
    page.keyboard.press("Tab")
    page.keyboard.type("http://127.0.0.1:9/hook")
    assert focused(page)["id"] == "url"

    # A secondary button shows a solid 3 px focus ring, not Pico's faint grey shadow
    for _ in range(15):
        page.keyboard.press("Tab")
        if focused(page)["text"] == "Send test notification":
            break
    ring = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return {width: s.outlineWidth, style: s.outlineStyle, color: s.outlineColor}; }""")
    assert ring["width"] == "3px" and ring["style"] == "solid" and ring["color"] == "rgb(11, 92, 173)", ring

    # Send test: focus moves to the result, which says what went wrong in words; the URL field is marked
    page.keyboard.press("Enter")
    expect(page.locator("#test-result")).to_contain_text("Nothing is listening on 127.0.0.1:9")
    page.wait_for_function("() => document.activeElement.id === 'test-result'")
    expect(page.locator("#url")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#url")).to_have_value("http://127.0.0.1:9/hook")

    # Preview: focus on the preview, which shows the webhook's JSON body
    page.get_by_role("button", name="Preview").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#preview pre.preview-body").first).to_contain_text('"name": "Herald test notification"')
    page.wait_for_function("() => document.activeElement.id === 'preview'")

    # Disable on the list: focus stays on the (new) Enable button of that row
    page.goto(herald.url + "/settings/destinations/?q=Primary")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    row = page.locator("tbody tr", has_text="Primary pager")
    row.get_by_role("button", name="Disable").focus()
    page.keyboard.press("Enter")
    expect(row.get_by_role("button", name="Enable")).to_be_visible()
    page.wait_for_function("() => document.activeElement.textContent.trim().startsWith('Enable')")

    # Resolve on the alert page: focus on the outcome
    page.goto(herald.url + f"/alerts/{herald.ids['alert']}")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    page.get_by_role("button", name="Resolve").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.classList.contains('flash')")
    context.close()


def test_search_as_you_type_narrows_the_list_without_a_reload(browser, herald):
    context = open_context(browser)
    page = context.new_page()
    sign_in(page, herald.url)
    page.goto(herald.url + "/settings/destinations/")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    page.evaluate("window.__marker = 1")
    page.get_by_role("searchbox", name="Search").fill("pag")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("Primary pager")
    assert page.evaluate("window.__marker") == 1
    assert page.url.endswith("q=pag&type=&state=&sort=name") or "q=pag" in page.url
    page.get_by_label("Status").select_option("disabled")
    expect(page.get_by_text("No destination matches")).to_be_visible()
    context.close()


def test_copy_buttons_copy_the_new_token_and_the_inbound_url(browser, herald):
    context = open_context(browser, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_in(page, herald.url)
    page.goto(herald.url + "/settings/tokens")
    page.get_by_role("textbox", name="Token name").fill("cron")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text().strip()
    page.get_by_role("button", name="Copy token").click()
    expect(page.locator("#new-token-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == token

    page.goto(herald.url + f"/alerts/{herald.ids['alert']}")
    page.get_by_role("button", name="Copy URL").click()
    expect(page.locator("#inbound-url-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()").endswith(f"/api/alerts/{herald.ids['alert']}/state")
    context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_without_javascript_a_refused_webhook_keeps_the_password_and_saves(browser, herald, viewport):
    context = open_context(browser, viewport, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, herald.url)
    page.goto(herald.url + "/settings/destinations/new?type=webhook")
    page.get_by_role("textbox", name="Name", exact=True).fill("No-JS hook")
    page.get_by_role("textbox", name="URL", exact=True).fill("not a url")
    page.get_by_role("textbox", name="Username").fill("herald")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create destination").click()

    expect(page.locator("#url-error")).to_be_visible()
    expect(page.get_by_text("The value you typed is kept")).to_be_visible()
    assert PASSWORD not in page.content()
    # Send test without JavaScript: the whole page again, the password still kept
    page.get_by_role("textbox", name="URL", exact=True).fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Send test notification").click()
    expect(page.locator("#test-result")).to_contain_text("Nothing is listening on 127.0.0.1:9")
    expect(page.get_by_text("The value you typed is kept")).to_be_visible()
    # Preview without JavaScript too
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview pre.preview-body").first).to_contain_text("Herald test notification")

    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_text("Created “No-JS hook”.")).to_be_visible()
    assert stored(herald.app, "No-JS hook")["secrets"] == {"password": PASSWORD}
    context.close()
