"""Shared test data and helpers: valid form data per destination type, an HTML reader, login, DB look-ups."""
import json
from contextlib import contextmanager
from html.parser import HTMLParser

from webapp.extensions import db
from webapp.models import Destination, User

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
VIEWER_EMAIL = "viewer@example.com"
VIEWER_PASSWORD = "viewer password 1"

LIST_URL = "/settings/destinations/"
NEW_URL = "/settings/destinations/new"


def new_url(type_key: str) -> str:
    return f"{NEW_URL}?type={type_key}"


def edit_url(destination_id: int) -> str:
    return f"/settings/destinations/{destination_id}/edit"


def toggle_url(destination_id: int) -> str:
    return f"/settings/destinations/{destination_id}/toggle"


def delete_url(destination_id: int) -> str:
    return f"/settings/destinations/{destination_id}/delete"


HTMX = {"HX-Request": "true"}


# ---------------------------------------------------------------------------------------------------------------
# Valid data for every destination type.
#
# `options` are the plain (non-secret) fields exactly as they must be stored, `secrets` the write-only fields.
# Every secret holds a marker unique to its type (S3CR3T...) so a leak can be attributed; every type also has
# a recognizable non-secret value (MARK_* below) so "the secret is absent" checks can be shown able to fail.
# ---------------------------------------------------------------------------------------------------------------
TYPES = {
    "email": {
        "label": "Email",
        "options": {
            # A quoted display name with a comma in it is one recipient, not two
            "addresses": 'ops@example.com, "Doe, Jane" <jane@example.com>\nOps Team <team-7c41@example.com>',
            "subject_template": "[{severity}] {alert_name} is {state}",
            "body_template": "{alert_name} went from {previous_state} to {state}: {alert_url}",
        },
        "secrets": {},
    },
    "chatwork": {
        "label": "ChatWork",
        "options": {"room_id": "74123456", "message_template": "{alert_name}: {state}",
                    "api_url": "https://api.chatwork.com/v2"},
        "secrets": {"api_token": "S3CR3Tchatwork9f3a1c7e5b2d"},
    },
    "webhook": {
        "label": "Generic Webhook",
        "options": {"url": "https://hooks.example.com/herald-7c41", "username": "herald",
                    "field_mapper": "alert.name:title, alert.severity:notification.level", "payload_mapper": "data"},
        "secrets": {"password": "S3CR3Twebhook9f3a1c7e5b2d"},
    },
    "hipchat": {
        "label": "HipChat (end of life)",
        "options": {"color": "purple", "notify": True},
        "secrets": {"url": "https://hipchat.example.com/v2/room/42/notification?auth_token=S3CR3Thipchat9f3a1c7e5b2d"},
    },
    "ilert": {
        "label": "ilert",
        "options": {"priority": "LOW", "api_url": "https://api.ilert.com/api/events"},
        "secrets": {"integration_key": "il1api-S3CR3Tilert9f3a1c7e5b2d"},
    },
    "mattermost": {
        "label": "Mattermost",
        "options": {"channel": "town-square-7c41", "username": "herald", "icon_url": "https://example.com/herald.png"},
        "secrets": {"webhook_url": "https://mattermost.example.com/hooks/S3CR3Tmattermost9f3a1c7e5b2d"},
    },
    "opsgenie": {
        "label": "OpsGenie",
        "options": {"priority": "P2", "tags": "prod, database", "responders": "SRE-7c41, DBA",
                    "api_url": "https://api.eu.opsgenie.com"},
        "secrets": {"api_key": "0a1b2c3d-S3CR3Topsgenie9f3a1c7e5b2d"},
    },
    "pagerduty": {
        "label": "PagerDuty",
        "options": {"severity": "critical", "api_url": "https://events.eu.pagerduty.com/v2/enqueue"},
        # exactly 32 letters and digits
        "secrets": {"integration_key": "S3CR3Tpagerduty9f3a1c7e5b2d4e6f8"},
    },
    "servicenow": {
        "label": "ServiceNow",
        "options": {"instance_url": "https://acme-7c41.service-now.com", "username": "herald.integration",
                    "urgency": "1", "impact": "3", "assignment_group": "Database", "close_code": "Workaround provided"},
        "secrets": {"password": "S3CR3Tservicenow9f3a1c7e5b2d"},
    },
    "slack": {
        "label": "Slack",
        "options": {"channel": "#ops-7c41", "username": "Herald", "icon_emoji": ":rotating_light:"},
        "secrets": {"webhook_url": "https://hooks.slack.com/services/T000/B000/S3CR3Tslack9f3a1c7e5b2d"},
    },
    "zendesk": {
        "label": "Zendesk",
        "options": {"zendesk_url": "https://acme-7c41.zendesk.com", "email": "agent@example.com", "priority": "urgent",
                    "ticket_type": "problem", "tags": "herald, prod"},
        # Both ways to sign in: the OAuth token is the one used; the API token is what older setups have
        "secrets": {"oauth_token": "S3CR3Tzendeskoauth9f3a1c7e5b2d", "api_token": "S3CR3Tzendesk9f3a1c7e5b2d"},
    },
    "zenduty": {
        "label": "Zenduty",
        "options": {},
        "secrets": {"integration_url": "https://events.zenduty.com/integration/abc/generic/S3CR3Tzenduty9f3a1c7e5b2d/"},
    },
    "jsm": {
        "label": "Jira Service Management",
        "options": {"priority": "", "tags": "prod, jsm-7c41", "responders": "SRE",
                    "api_url": "https://api.atlassian.com/jsm/ops/integration"},
        "secrets": {"api_key": "0a1b2c3d-S3CR3Tjsm9f3a1c7e5b2d"},
    },
    "teams": {
        "label": "Microsoft Teams",
        "options": {},
        "secrets": {"webhook_url": "https://prod-42.westeurope.logic.azure.com/workflows/S3CR3Tteams9f3a1c7e5b2d/"
                                   "triggers/manual/paths/invoke?api-version=2016-06-01&sig=S3CR3Tteamssig9f3a"},
    },
    "discord": {
        "label": "Discord",
        "options": {"mentions": "<@&123456789012345678>", "username": "herald-7c41",
                    "avatar_url": "https://example.com/herald.png"},
        "secrets": {"webhook_url": "https://discord.com/api/webhooks/1234567890/S3CR3Tdiscord9f3a1c7e5b2d"},
    },
    "telegram": {
        "label": "Telegram",
        "options": {"chat_id": "-1001234567890", "message_thread_id": "", "api_url": "https://api.telegram.org"},
        "secrets": {"bot_token": "123456789:S3CR3Ttelegram9f3a1c7e5b2dAAEhBOweik6"},
    },
    "googlechat": {
        "label": "Google Chat",
        "options": {},
        "secrets": {"webhook_url": "https://chat.googleapis.com/v1/spaces/AAAA7c41/messages"
                                   "?key=S3CR3Tgchatkey9f3a&token=S3CR3Tgooglechat9f3a1c7e5b2d"},
    },
    "ntfy": {
        "label": "ntfy",
        "options": {"priority": "4", "tags": "herald, prod-7c41"},
        "secrets": {"topic_url": "https://ntfy.sh/S3CR3Tntfy9f3a1c7e5b2d", "access_token": "tk_S3CR3Tntfytoken9f3a"},
    },
}

TYPE_KEYS = list(TYPES)
SECRET_TYPE_KEYS = [key for key, spec in TYPES.items() if spec["secrets"]]

# A second valid secret per type, for "a new secret replaces the stored one"
NEW_SECRETS = {
    "chatwork": {"api_token": "N3WS3CR3Tchatwork4d2b"},
    "webhook": {"password": "N3WS3CR3Twebhook4d2b"},
    "hipchat": {"url": "https://hipchat.example.com/v2/room/43/notification?auth_token=N3WS3CR3Thipchat4d2b"},
    "ilert": {"integration_key": "il1api-N3WS3CR3Tilert4d2b"},
    "mattermost": {"webhook_url": "https://mattermost.example.com/hooks/N3WS3CR3Tmattermost4d2b"},
    "opsgenie": {"api_key": "9f8e7d6c-N3WS3CR3Topsgenie4d2b"},
    "pagerduty": {"integration_key": "N3WS3CR3Tpagerduty4d2b0000000000"},
    "servicenow": {"password": "N3WS3CR3Tservicenow4d2b"},
    "slack": {"webhook_url": "https://hooks.slack.com/services/T000/B000/N3WS3CR3Tslack4d2b"},
    "zendesk": {"oauth_token": "N3WS3CR3Tzendeskoauth4d2b", "api_token": "N3WS3CR3Tzendesk4d2b"},
    "zenduty": {"integration_url": "https://events.zenduty.com/integration/abc/generic/N3WS3CR3Tzenduty4d2b/"},
    "jsm": {"api_key": "9f8e7d6c-N3WS3CR3Tjsm4d2b"},
    "teams": {"webhook_url": "https://prod-43.westeurope.logic.azure.com/workflows/N3WS3CR3Tteams4d2b/"
                             "triggers/manual/paths/invoke?api-version=2016-06-01&sig=N3WS3CR3Tteamssig4d2b"},
    "discord": {"webhook_url": "https://discord.com/api/webhooks/1234567891/N3WS3CR3Tdiscord4d2b"},
    "telegram": {"bot_token": "987654321:N3WS3CR3Ttelegram4d2bAAEhBOweik6xyzw"},
    "googlechat": {"webhook_url": "https://chat.googleapis.com/v1/spaces/BBBB/messages?key=N3WS3CR3Tkey4d2b"
                                  "&token=N3WS3CR3Tgooglechat4d2b"},
    "ntfy": {"topic_url": "https://ntfy.sh/N3WS3CR3Tntfy4d2b", "access_token": "tk_N3WS3CR3Tntfy4d2b"},
}

# A non-secret change per type for the edit tests: (field, new value). Zenduty has only its secret URL.
EDITS = {
    "email": ("addresses", "oncall@example.com"),
    "chatwork": ("room_id", "999"),
    "webhook": ("username", "svc-herald"),
    "hipchat": ("color", "gray"),
    "ilert": ("priority", "HIGH"),
    "mattermost": ("channel", "off-topic"),
    "opsgenie": ("priority", "P1"),
    "pagerduty": ("severity", "warning"),
    "servicenow": ("urgency", "2"),
    "slack": ("channel", "#alerts"),
    "zendesk": ("priority", "low"),
    "zenduty": ("name", "Zenduty renamed"),
    "jsm": ("priority", "P4"),
    "teams": ("name", "Teams renamed"),
    "discord": ("username", "herald-ops"),
    "telegram": ("chat_id", "@herald_alerts"),
    "googlechat": ("name", "Google Chat renamed"),
    "ntfy": ("priority", "5"),
}


def default_name(type_key: str) -> str:
    return f"{TYPES[type_key]['label']} destination"


def form_data(type_key: str, name: str | None = None, **overrides) -> dict:
    """The POST body a user submitting the valid example of `type_key` sends; `overrides` replace fields."""
    spec = TYPES[type_key]
    data = {"name": default_name(type_key) if name is None else name, "enabled": "y"}
    for key, value in {**spec["options"], **spec["secrets"]}.items():
        if value is True:
            data[key] = "y"
        elif value is not False:
            data[key] = value
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def secret_values(type_key: str) -> list[str]:
    return list(TYPES[type_key]["secrets"].values())


# ---------------------------------------------------------------------------------------------------------------
# Reading HTML the way a user sees it
# ---------------------------------------------------------------------------------------------------------------
class Page(HTMLParser):
    """A forgiving reader of a page: elements by id with their text, inputs, textareas and selects by name."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.html = html
        self.by_id: dict[str, dict] = {}
        self.inputs: dict[str, list[dict]] = {}
        self.textareas: dict[str, dict] = {}
        self.selects: dict[str, dict] = {}
        self.body_attrs: dict = {}
        self._open: list[dict] = []
        self._select: dict | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {k: ("" if v is None else v) for k, v in attrs}
        record = {"tag": tag, "attrs": attrs, "text": ""}
        if "id" in attrs:
            self.by_id.setdefault(attrs["id"], record)
        if tag == "body":
            self.body_attrs = attrs
        elif tag == "input":
            self.inputs.setdefault(attrs.get("name", ""), []).append(attrs)
        elif tag == "textarea":
            self.textareas[attrs.get("name", "")] = record
        elif tag == "select":
            self._select = {"attrs": attrs, "options": [], "selected": []}
            self.selects[attrs.get("name", "")] = self._select
        elif tag == "option" and self._select is not None:
            self._select["options"].append(attrs.get("value", ""))
            if "selected" in attrs:
                self._select["selected"].append(attrs.get("value", ""))
        if tag not in self.VOID:
            self._open.append(record)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                break
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        for record in self._open:
            record["text"] += data

    # -- queries -----------------------------------------------------------------------------------------------
    def text_of(self, element_id: str) -> str | None:
        record = self.by_id.get(element_id)
        return None if record is None else " ".join(record["text"].split())

    def error(self, field_id: str) -> str | None:
        """The message shown beside a field (`<small id="FIELD-error" class="field-error">`), or None."""
        record = self.by_id.get(f"{field_id}-error")
        if record is None or "field-error" not in record["attrs"].get("class", "").split():
            return None
        return " ".join(record["text"].split())

    def errors(self) -> dict[str, str]:
        return {key[: -len("-error")]: self.error(key[: -len("-error")]) for key in self.by_id
                if key.endswith("-error") and self.error(key[: -len("-error")]) is not None}

    def has_field(self, name: str) -> bool:
        return name in self.inputs or name in self.textareas or name in self.selects

    def value(self, name: str):
        """What the form shows for `name`: an input's value, a textarea's text, a select's chosen option, a
        checkbox's checked state."""
        if name in self.textareas:
            text = self.textareas[name]["text"]
            return text[2:] if text.startswith("\r\n") else text[1:] if text.startswith("\n") else text
        if name in self.selects:
            selected = self.selects[name]["selected"]
            return selected[0] if selected else None
        inputs = self.inputs.get(name)
        if not inputs:
            raise KeyError(f"no field named {name!r} on the page")
        field = inputs[0]
        if field.get("type") == "checkbox":
            return "checked" in field
        return field.get("value", "")

    def input(self, name: str) -> dict:
        return self.inputs[name][0]

    def widget(self, name: str) -> dict:
        """The attributes of the control named `name`, whatever its element, plus `kind`: its type or tag."""
        if name in self.textareas:
            return {**self.textareas[name]["attrs"], "kind": "textarea"}
        if name in self.selects:
            return {**self.selects[name]["attrs"], "kind": "select"}
        attrs = self.input(name)
        return {**attrs, "kind": attrs.get("type", "text")}

    def csrf_token(self) -> str:
        return self.input("csrf_token")["value"]

    def hx_headers(self) -> dict:
        return json.loads(self.body_attrs["hx-headers"])


def page(response) -> Page:
    return Page(response.get_data(as_text=True))


# ---------------------------------------------------------------------------------------------------------------
# Users and sign-in
# ---------------------------------------------------------------------------------------------------------------
_PASSWORD_HASHES: dict[str, str] = {}  # hashing is deliberately slow; hash each test password once per run


def create_user(app, email: str, password: str, role: str) -> int:
    with app.app_context():
        user = User(email=email, role=role)
        if password in _PASSWORD_HASHES:
            user.password_hash = _PASSWORD_HASHES[password]
        else:
            user.set_password(password)
            _PASSWORD_HASHES[password] = user.password_hash
        db.session.add(user)
        db.session.commit()
        return user.id


def login(client, email: str, password: str, next_url: str | None = None):
    """Sign in through the real /login form (with its CSRF token when the form has one)."""
    form_page = page(client.get("/login"))
    data = {"email": email, "password": password}
    if "csrf_token" in form_page.inputs:
        data["csrf_token"] = form_page.csrf_token()
    response = client.post("/login", data=data, query_string={"next": next_url} if next_url else None)
    assert response.status_code == 302, f"sign-in as {email} failed: {response.status_code}"
    return response


# ---------------------------------------------------------------------------------------------------------------
# Destinations as stored
# ---------------------------------------------------------------------------------------------------------------
def stored(app, name: str | None = None, destination_id: int | None = None) -> dict | None:
    """A destination as stored, secrets decrypted, as a plain dict (None when there is no such row)."""
    with app.app_context():
        if destination_id is not None:
            row = db.session.get(Destination, destination_id)
        else:
            row = db.session.scalar(db.select(Destination).where(Destination.name == name))
        if row is None:
            return None
        return {"id": row.id, "name": row.name, "type": row.type, "enabled": row.enabled,
                "options": dict(row.options), "secrets": row.secrets}


def all_stored(app) -> list[dict]:
    with app.app_context():
        ids = db.session.scalars(db.select(Destination.id).order_by(Destination.id)).all()
    return [stored(app, destination_id=i) for i in ids]


def count_destinations(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Destination))


def count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(User))


def create_destination(client, app, type_key: str, name: str | None = None, **overrides) -> dict:
    """Create through POST /settings/destinations/new?type=KEY and return the stored row."""
    data = form_data(type_key, name, **overrides)
    response = client.post(new_url(type_key), data=data)
    assert response.status_code == 302, (
        f"creating {type_key} failed ({response.status_code}): {page(response).errors()}")
    return stored(app, data["name"].strip())


# ---------------------------------------------------------------------------------------------------------------
# waitress, as `make run` serves the app
# ---------------------------------------------------------------------------------------------------------------
@contextmanager
def waitress_server(app, **options):
    """The app served by waitress on a loopback port (base URL yielded); its loop is stopped before its sockets
    close, so no thread is left selecting on a closed descriptor."""
    import threading

    from waitress import wasyncore

    from webapp.serving import create_server

    socket_map = {}
    server = create_server(app, host="127.0.0.1", port=0, threads=2, map=socket_map, **options)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=socket_map, count=1)

    thread = threading.Thread(target=loop, name="herald-waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
        for channel in list(socket_map.values()):
            channel.close()
        server.task_dispatcher.shutdown()
