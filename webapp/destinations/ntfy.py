"""ntfy push notifications, on ntfy.sh or a self-hosted server (https://docs.ntfy.sh/publish/#publish-as-json)."""
from urllib.parse import urlsplit, urlunsplit

from wtforms import SelectField

from ..delivery.transport import SendResult, check, request, truncate, vendor_text
from .base import (
    FROM_THE_ALERT,
    DestinationForm,
    DestinationType,
    ListOf,
    from_severity,
    json_object,
    one_line,
    secret_field,
    split_list,
    text_field,
    url_field,
)

# ntfy's default message-size-limit is 4096 bytes; a longer message is turned into an attachment
MESSAGE_BYTES = 4096
TITLE_LIMIT = 250
SEVERITY_PRIORITIES = {"critical": "5", "error": "4", "warning": "3", "info": "2"}
PRIORITIES = {FROM_THE_ALERT: "From the alert (critical 5, error 4, warning 3, info 2)", "5": "5 (max, urgent)",
              "4": "4 (high)", "3": "3 (default)", "2": "2 (low)", "1": "1 (min)"}


class NtfyForm(DestinationForm):
    topic_url = url_field(
        "Topic URL", secret=True, path=r"^(/[^/]+)*/[-_A-Za-z0-9]{1,64}$",
        path_message="Give the topic's URL, e.g. https://ntfy.sh/my-alerts (letters, digits, - and _ in the topic).",
        description="e.g. https://ntfy.sh/my-alerts or https://ntfy.example.com/ops. On ntfy.sh a topic without "
                    "access control is readable by anyone who knows its name, so it is kept as a secret.",
    )
    access_token = secret_field("Access token", required=False,
                                description="Optional: a token (tk_…) for a protected topic, sent as Bearer.")
    priority = SelectField("Priority", choices=PRIORITIES, default=FROM_THE_ALERT,
                           description="From the alert follows its severity; a fixed priority applies to every alert.")
    tags = text_field("Tags", 500, validators=[ListOf(10, 50, "tag")],
                      description="Optional, comma separated; emoji short codes such as warning show as icons.")


class Ntfy(DestinationType):
    type = "ntfy"
    label = "ntfy"
    summary = "A push notification to an ntfy topic, on ntfy.sh or your own server."
    form = NtfyForm
    # The access token goes to the topic URL's server (itself a secret: retyping another one is a move)
    secrets_sent_to = ("topic_url",)
    list_options = frozenset({"tags"})

    @classmethod
    def split_topic(cls, config) -> tuple[str, str]:
        """(the server's publish URL, the topic): JSON is posted to the server's root, naming the topic."""
        parts = urlsplit(config["topic_url"].rstrip("/"))
        prefix, _, topic = parts.path.rpartition("/")
        return urlunsplit((parts.scheme, parts.netloc, prefix + "/", "", "")), topic

    @classmethod
    def payload(cls, config, n) -> dict:
        _, topic = cls.split_topic(config)
        lines = [n.description.strip()] if (n.description or "").strip() else []
        lines += [f"{label}: {value}" for label, value in n.facts()]
        state_tag = "white_check_mark" if n.is_recovery else "rotating_light"
        message = {
            "topic": topic,
            "title": truncate(one_line(n.title), TITLE_LIMIT),
            "message": cut_bytes("\n".join(lines), MESSAGE_BYTES),
            "priority": int(from_severity(SEVERITY_PRIORITIES, n.severity, config.get("priority"))),
            "tags": [state_tag, *split_list(config.get("tags"))],
        }
        if n.alert_url:
            message["click"] = n.alert_url
            message["actions"] = [{"action": "view", "label": "Open alert", "url": n.alert_url}]
        return message

    @classmethod
    def send(cls, config, n, ctx):
        url, _ = cls.split_topic(config)
        headers = {"Authorization": f"Bearer {config['access_token']}"} if config.get("access_token") else {}
        response = check(request(ctx, "POST", url, json=cls.payload(config, n), headers=headers))
        message_id = json_object(response).get("id")
        return SendResult(response.status_code, f"id {message_id}" if message_id else vendor_text(response))


def cut_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary, with an ellipsis when cut."""
    if len(text.encode()) <= limit:
        return text
    cut = text.encode()[: limit - len("…".encode())].decode(errors="ignore")
    return cut + "…"
