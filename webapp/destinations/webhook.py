"""Generic Webhook: a JSON POST to any URL, with optional basic auth and field/payload mappers."""
import re

from wtforms.validators import ValidationError

from .base import DestinationForm, DestinationType, Pattern, secret_field, text_field, url_field

_PATH = r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"
_MOVE = re.compile(rf"\s*({_PATH})\s*:\s*({_PATH})\s*")


def parse_field_mapper(text: str) -> list[tuple[str, str]]:
    """`a.b:c.d, e:f` → [("a.b", "c.d"), ("e", "f")]; ValueError names the first bad pair."""
    moves = []
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        match = _MOVE.fullmatch(pair)
        if not match:
            raise ValueError(f"“{pair.strip()}” is not source:destination, e.g. alert.name:title.")
        moves.append((match.group(1), match.group(2)))
    return moves


class FieldMapper:
    def __call__(self, form, field):
        try:
            parse_field_mapper(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class WebhookForm(DestinationForm):
    url = url_field("URL")
    username = text_field("Username", 255, description="Optional: with a username, requests use HTTP Basic auth.")
    password = secret_field("Password", required=False)
    field_mapper = text_field(
        "Field mapper", 2000, validators=[FieldMapper()],
        description="Optional moves of payload fields, source:destination separated by commas, "
                    "e.g. alert.name:title,alert.severity:notification.level",
    )
    payload_mapper = text_field(
        "Payload mapper", 100,
        validators=[Pattern(r"[A-Za-z0-9_\-]+", "One field name, letters, digits, _ and - only.")],
        description="Optional field name to wrap the whole payload in, e.g. data.",
    )

    def validate_password(self, field):
        if field.data and not (self.username.data or "").strip():
            raise ValidationError("A password needs a username.")


class Webhook(DestinationType):
    type = "webhook"
    label = "Generic Webhook"
    summary = "A JSON POST to any URL, shaped by optional field and payload mappers."
    form = WebhookForm
    target_option = "url"
