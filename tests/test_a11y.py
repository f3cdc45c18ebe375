"""axe-core on every page and the states users reach (errors, preview, results), at 1280×800 and 390×844, in
light and dark: no serious or critical violation, and nothing scrolls sideways.

axe-core 4.14.1 is vendored under tests/vendor (MPL-2.0, licence beside it). The browser context bypasses the
Content-Security-Policy only so the test can inject axe; the pages' own scripts run under the policy as usual.
"""
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
from webapp.destinations import REGISTRY
from webapp.extensions import db
from webapp.models import Alert, ApiToken, Delivery, Destination, User

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
BLOCKING = ("serious", "critical")


def seed_source(app, destination_id: int) -> tuple[int, int]:
    """An Alertmanager source with a route, and an alert it sent (labels, annotations, a generator link)."""
    from webapp.sources.models import Source

    with app.app_context():
        source = Source(name="Prometheus (production)", kind="alertmanager", routes=[
            {"matchers": ['severity=~"critical|page"'], "destination_ids": [destination_id], "continue": False}])
        source.new_token()
        source.destinations = [db.session.get(Destination, destination_id)]
        db.session.add(source)
        db.session.flush()
        alert = Alert(name="CPU above 90% (web-01)", state="triggered", severity="critical", source_id=source.id,
                      source_key="8907c632687e21f5", labels={"alertname": "HighCPU", "instance": "web-01",
                                                             "severity": "critical"},
                      annotations={"summary": "CPU above 90%", "description": "web-01 CPU at 93%",
                                   "runbook_url": "https://runbooks.example.com/cpu"},
                      generator_url="http://prometheus.example.com/graph?g0.expr=cpu", external_url="http://am:9093",
                      description="web-01 CPU at 93%")
        db.session.add(alert)
        db.session.commit()
        return source.id, alert.id


def seed(app) -> dict:
    """Destinations of several types (one failing), alerts in every state, deliveries, a token."""
    now = datetime.now(timezone.utc)
    with app.app_context():
        made = {}
        for name, kind, options, secrets in [
            ("Ops channel with a rather long name for the phone layout", "slack",
             {"channel": "#ops", "username": "", "icon_emoji": ""}, {"webhook_url": "http://127.0.0.1:9/services/T/B/x"}),
            ("Primary pager", "pagerduty", {"severity": "", "api_url": "http://127.0.0.1:9/v2/enqueue"},
             {"integration_key": "0123456789abcdef0123456789abcdef"}),
            ("Ops mail", "email", {"addresses": "ops@example.com", "subject_template": "", "body_template": ""}, {}),
            ("Audit hook", "webhook", {"url": "http://127.0.0.1:9/audit", "username": "", "field_mapper": "",
                                       "payload_mapper": ""}, {}),
        ]:
            d = Destination(name=name, type=kind, options=options)
            d.secrets = secrets
            db.session.add(d)
            made[kind] = d
        made["webhook"].enabled = False
        db.session.flush()
        alerts = []
        for name, state, severity, muted, bound in [
            ("Disk full on db-1", "triggered", "critical", False, ["pagerduty", "slack"]),
            ("CPU high on web-2", "ok", "warning", True, ["slack"]),
            ("Backup job", "unknown", "info", False, ["email", "webhook"]),
        ]:
            alert = Alert(name=name, state=state, severity=severity, muted=muted, last_state_change_at=now,
                          description="Seeded for the accessibility checks.")
            alert.destinations = [made[k] for k in bound]
            db.session.add(alert)
            alerts.append(alert)
        db.session.flush()
        rows = [
            (made["pagerduty"], alerts[0], "trigger", "failed", 400,
             'HTTP 400: {"status":"invalid event","message":"Event object is invalid","errors":["Length of \'routing_key\' is incorrect"]}', None),
            (made["slack"], alerts[0], "trigger", "sent", 200, None, "ok"),
            (made["slack"], alerts[1], "resolve", "retrying", 503, "HTTP 503: Service Unavailable", None),
            (made["email"], None, "test", "sent", 250, None, "Accepted by the SMTP server for 1 recipient."),
        ]
        for destination, alert, event, status, code, error, detail in rows:
            db.session.add(Delivery(
                destination_id=destination.id, destination_name=destination.name, destination_type=destination.type,
                alert_id=alert.id if alert else None, alert_name=alert.name if alert else "Herald test notification",
                event=event, status=status, attempts=2 if status == "retrying" else 1, status_code=code, error=error,
                detail=detail, duration_ms=12, notification={}, created_at=now - timedelta(minutes=3),
                next_attempt_at=now + timedelta(minutes=1) if status == "retrying" else None))
        db.session.add(Delivery(destination_id=None, destination_name="Settings → Email server", destination_type="email",
                                alert_id=None, alert_name="Herald test notification", event="test", status="failed",
                                attempts=1, error="No SMTP server is configured: set MAIL_SERVER (and MAIL_PORT) for Herald.",
                                notification={}, created_at=now))
        user = db.session.scalar(db.select(User).where(User.email == ADMIN_EMAIL))
        token, _ = ApiToken.issue(user, "nightly backup script")
        db.session.add(token)
        db.session.commit()
        return {"alert": alerts[0].id, "destination": made["pagerduty"].id, "webhook": made["webhook"].id}


def axe_serious(page) -> list[str]:
    """The serious and critical violations on the page as it is now, one line per rule with its nodes."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    lines = []
    for violation in results:
        if violation["impact"] in BLOCKING:
            targets = [" ".join(map(str, node["target"])) + " " + node.get("failureSummary", "").split("\n")[-1].strip()
                       for node in violation["nodes"][:4]]
            lines.append(f"{violation['id']} ({violation['impact']}, {len(violation['nodes'])} nodes): "
                         f"{violation['help']} — {json.dumps(targets)}")
    return lines


def sideways_overflow(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


class Audit:
    def __init__(self, page, base):
        self.page, self.base, self.problems, self.count = page, base, {}, 0

    def check(self, state: str):
        self.count += 1
        found = axe_serious(self.page)
        overflow = sideways_overflow(self.page)
        if overflow > 0:
            found.append(f"the page scrolls sideways by {overflow} px")
        if found:
            self.problems[state] = found

    def visit(self, path: str, state: str | None = None):
        response = self.page.goto(self.base + path)
        assert response.status < 500, f"{path} answered {response.status}"
        self.page.wait_for_function("() => typeof window.htmx === 'object'")
        self.check(state or path)

    def report(self) -> str:
        return "\n".join(f"{state}:\n  " + "\n  ".join(lines) for state, lines in self.problems.items())


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_page_has_no_serious_axe_violation(browser, live_server, viewport, scheme):
    context = browser.new_context(viewport=VIEWPORTS[viewport], color_scheme=scheme, bypass_csp=True)
    context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())  # nothing leaves loopback
    page = context.new_page()
    audit = Audit(page, live_server.url)
    try:
        audit.visit("/setup", "first-run setup")
        create_user(live_server.app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
        ids = seed(live_server.app)
        audit.visit("/login", "sign in")
        page.get_by_role("textbox", name="Email").fill(ADMIN_EMAIL)
        page.get_by_role("button", name="Sign in").click()
        audit.check("sign in, refused (no password)")
        page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()

        alert, destination, webhook = ids["alert"], ids["destination"], ids["webhook"]
        audit.visit("/settings/sources/", "alert sources, none yet")
        source, source_alert = seed_source(live_server.app, destination)
        for path in ["/settings/sources/", "/settings/sources/new", f"/settings/sources/{source}/edit",
                     f"/settings/sources/{source}/rotate", f"/settings/sources/{source}/delete",
                     f"/alerts/{source_alert}", f"/alerts/{source_alert}/edit"]:
            audit.visit(path)
        audit.visit("/settings/sources/new", "new alert source")
        page.get_by_role("button", name="Create source").click()
        expect(page.locator(".field-error").first).to_be_visible()
        audit.check("new alert source, refused")
        page.get_by_role("textbox", name="Name", exact=True).fill("Prometheus")
        page.locator("input[name=destination_ids]").first.check()
        page.get_by_role("button", name="Create source").click()
        expect(page.locator("#inbound-url")).to_be_visible()
        audit.check("alert source created, its URL shown once")
        for path in ["/alerts/", "/alerts/?state=failing", "/alerts/?q=nothing-matches", f"/alerts/{alert}",
                     "/alerts/new", f"/alerts/{alert}/edit", f"/alerts/{alert}/delete",
                     "/settings/destinations/", "/settings/destinations/?state=failing&sort=health",
                     "/settings/destinations/?q=nothing-matches", "/settings/destinations/new",
                     *[f"/settings/destinations/new?type={key}" for key in REGISTRY],
                     f"/settings/destinations/{destination}/edit", f"/settings/destinations/{destination}/delete",
                     f"/settings/destinations/{destination}/duplicate",
                     "/deliveries/", "/deliveries/?status=failed", "/settings/email", "/settings/users",
                     "/settings/tokens", "/no-such-page"]:
            audit.visit(path)

        # The Settings menu open
        audit.visit("/alerts/", "alerts")
        page.get_by_text("Settings", exact=True).click()
        expect(page.get_by_role("link", name="API tokens")).to_be_visible()
        page.wait_for_timeout(600)  # the menu fades in; judge its colours once it has
        audit.check("settings menu open")

        # A refused form, then Preview and Send test on the webhook form
        audit.visit("/settings/destinations/new?type=webhook", "webhook form")
        page.get_by_role("button", name="Create destination").click()
        expect(page.locator(".field-error").first).to_be_visible()
        audit.check("webhook form, refused")
        page.get_by_role("textbox", name="Name", exact=True).fill("Preview hook")
        page.get_by_role("textbox", name="URL", exact=True).fill("http://127.0.0.1:9/hook")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview pre").first).to_be_visible()
        audit.check("webhook form, preview")
        page.get_by_role("button", name="Send test notification").click()
        expect(page.get_by_text("The test failed.")).to_be_visible()
        audit.check("webhook form, test failed")

        # The details toggles in the delivery log, opened
        audit.visit("/deliveries/", "deliveries")
        for toggle in page.locator("details.raw summary").all():
            toggle.click()
        audit.check("deliveries, details open")

        # A new token on show; an alert after Resolve
        audit.visit("/settings/tokens", "tokens")
        page.get_by_role("textbox", name="Token name").fill("monitoring")
        page.get_by_role("button", name="Create token").click()
        expect(page.locator("#new-token")).to_be_visible()
        audit.check("tokens, new token shown")
        audit.visit(f"/settings/destinations/{webhook}/edit", "disabled webhook")
        audit.visit(f"/alerts/{alert}", "alert")
        page.get_by_role("button", name="Resolve").click()
        expect(page.locator("#alert-live .flash")).to_be_visible()
        audit.check("alert after Resolve")
    finally:
        context.close()
    assert audit.count >= 40
    assert not audit.problems, f"{viewport} {scheme}:\n{audit.report()}"
