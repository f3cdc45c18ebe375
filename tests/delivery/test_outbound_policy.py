"""The outbound policy checks the host the HTTP client really connects to, and the address it connects to;
credentials a vendor echoes back never reach the log. Real app, real receivers on loopback."""
import base64
import sys

import pytest
from werkzeug import Response

from webapp.delivery.notification import Notification
from webapp.delivery.notifier import Notifier, NotifierSettings
from webapp.delivery.outbound import OutboundBlocked, check_url
from webapp.extensions import db
from webapp.models import Delivery

CONNECTS: list | None = None


def _audit(event, args):
    if event == "socket.connect" and CONNECTS is not None:
        CONNECTS.append(args[1])


sys.addaudithook(_audit)  # sees every real connect of this process; it cannot be removed, so it is switched


@pytest.fixture
def connects():
    global CONNECTS
    CONNECTS = []
    yield CONNECTS
    CONNECTS = None


def trigger(alert_id=7):
    return Notification(alert_id=alert_id, alert_name="Disk full", state="triggered", previous_state="ok")


def test_a_backslash_userinfo_trick_is_refused_at_save():
    """urlsplit sees 127.0.0.1 here; requests connects to 169.254.169.254, and so does the check."""
    with pytest.raises(OutboundBlocked, match="169.254.169.254"):
        check_url("http://169.254.169.254\\@127.0.0.1/latest/meta-data/")


def test_a_stored_backslash_trick_url_connects_nowhere(delivery_app, make_destination, connects):
    destination = make_destination("Tampered", "webhook", url="http://169.254.169.254\\@127.0.0.1/hook")

    [outcome] = Notifier(delivery_app, NotifierSettings(timeout=2, deadline=3)).notify([destination], trigger())

    assert connects == [], f"Herald connected to {connects}"
    assert outcome["status"] == "failed" and "169.254.169.254" in outcome["error"]


def test_with_blocking_on_a_name_that_resolves_to_loopback_is_refused_at_connect(delivery_app, make_destination,
                                                                              receivers, connects):
    """The policy is applied to the addresses the send resolves and connects to, not to an earlier lookup."""
    receiver = receivers()
    receiver.expect_request("/hook").respond_with_data("ok")
    destination = make_destination("By name", "webhook", url=f"http://localhost:{receiver.port}/hook")
    settings = NotifierSettings(timeout=2, deadline=3, block_private=True)

    [outcome] = Notifier(delivery_app, settings).notify([destination], trigger())

    assert connects == [] and receiver.log == []
    assert outcome["status"] == "failed" and "private or loopback" in outcome["error"]


def echo_authorization(request):
    return Response(f"401 Unauthorized: we got {request.headers.get('Authorization')}", status=401)


@pytest.mark.parametrize("type_key, path, config, credentials", [
    ("webhook", "/hook", {"username": "herald-bot", "password": "Webhook-Pass-7c41"}, "herald-bot:Webhook-Pass-7c41"),
    ("servicenow", "/api/now/table/incident", {"username": "integration", "password": "SN-Pass-7c41"},
     "integration:SN-Pass-7c41"),
    ("zendesk", "/api/v2/tickets", {"email": "agent@example.com", "api_token": "ZdTok7c41secret"},
     "agent@example.com/token:ZdTok7c41secret"),
])
def test_credentials_a_vendor_echoes_are_redacted_in_every_form(delivery_app, make_destination, receivers, caplog,
                                                                type_key, path, config, credentials):
    receiver = receivers()
    receiver.expect_request(path).respond_with_handler(echo_authorization)
    base = receiver.url_for("").rstrip("/")
    target = {"webhook": {"url": receiver.url_for(path)}, "servicenow": {"instance_url": base},
              "zendesk": {"zendesk_url": base}}[type_key]
    destination = make_destination("Echo", type_key, **target, **config)

    [outcome] = Notifier(delivery_app, NotifierSettings(timeout=2, deadline=3)).notify([destination], trigger())

    encoded = base64.b64encode(credentials.encode()).decode()
    db.session.expire_all()
    stored = db.session.scalar(db.select(Delivery.error))
    assert outcome["status"] == "failed" and "401 Unauthorized: we got" in stored
    for text in (stored, outcome["error"], caplog.text):
        assert encoded not in text and credentials not in text and credentials.split(":")[-1] not in text
    assert "••••" in stored


def test_credentials_inside_a_webhook_url_are_redacted_when_the_vendor_echoes_them(delivery_app, receivers, caplog):
    """The URL's user:password is stored apart, put back only for sending; an echo of it never reaches the log."""
    from webapp.models import Destination

    receiver = receivers()
    receiver.expect_request("/hook").respond_with_handler(
        lambda request: Response(f"denied: {request.url} with {request.headers.get('Authorization')}", status=403))
    url = receiver.url_for("/hook").replace("http://", "http://hook-user:Url-Pass-7c41@")
    destination = Destination(name="Userinfo", type="webhook", options={"url": url.replace("hook-user:Url-Pass-7c41@", "")})
    destination.secrets = {"url:userinfo": "hook-user:Url-Pass-7c41"}
    db.session.add(destination)
    db.session.commit()

    [outcome] = Notifier(delivery_app, NotifierSettings(timeout=2, deadline=3)).notify([destination], trigger())

    encoded = base64.b64encode(b"hook-user:Url-Pass-7c41").decode()
    assert receiver.log and receiver.log[0][0].headers["Authorization"] == f"Basic {encoded}", "sent with credentials"
    assert outcome["status"] == "failed" and "denied" in outcome["error"]
    for text in (outcome["error"], caplog.text):
        assert "Url-Pass-7c41" not in text and encoded not in text
