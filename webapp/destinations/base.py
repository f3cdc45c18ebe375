"""What every destination type shares: the form base, common fields and validators, the type base class."""
import re
from typing import ClassVar
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)

from .. import templating
from ..url_credentials import secret_key, split_userinfo
from ..delivery.notification import Notification
from ..delivery.outbound import OutboundBlocked, check_url
from ..delivery.transport import SendContext, SendResult
from ..forms import HeraldForm

HTTPS_HINT = "https is expected for the vendor's cloud; http is accepted for intranet gateways."


class SecretField(PasswordField):
    """A write-only value: never rendered back; left blank on edit, the stored value is kept."""

    secret = True

    def pre_validate(self, form):
        self.kept = False
        if not (self.data or "").strip() and self.name in getattr(form, "stored_secrets", ()):
            self.kept = True
            raise StopValidation()  # no message: nothing to check, the stored value stays


class HttpUrl:
    """An absolute http(s) URL with a host. With `path`, its path must match that regex too."""

    def __init__(self, path: str | None = None, path_message: str | None = None):
        self.path = re.compile(path) if path else None
        self.path_message = path_message

    def __call__(self, form, field):
        value = (field.data or "").strip()
        if not value:
            return
        if any(c.isspace() for c in value):
            raise ValidationError("A URL cannot contain spaces.")
        try:
            parts = urlsplit(value)
            port = parts.port  # raises ValueError on a bad port
        except ValueError:
            raise ValidationError("This is not a valid URL.") from None
        if parts.scheme not in ("http", "https"):
            raise ValidationError("The URL must start with https:// (or http:// for an intranet gateway).")
        if not parts.hostname:
            raise ValidationError("The URL has no host name.")
        if port == 0:
            raise ValidationError("The URL's port is not valid.")
        if self.path and not self.path.search(parts.path):
            raise ValidationError(self.path_message or "The URL's path is not the one this service uses.")
        try:
            check_url(value, current_app.config.get("HERALD_BLOCK_PRIVATE_DESTINATIONS", False))
        except OutboundBlocked as exc:
            raise ValidationError(str(exc)) from None
        field.data = value


class Pattern:
    def __init__(self, regex: str, message: str):
        self.regex = re.compile(regex)
        self.message = message

    def __call__(self, form, field):
        if field.data and not self.regex.fullmatch(field.data.strip()):
            raise ValidationError(self.message)


class Template:
    """A message template that names only Herald's placeholders."""

    def __call__(self, form, field):
        unknown = templating.unknown_placeholders(field.data or "")
        if unknown:
            known = ", ".join("{%s}" % name for name in templating.PLACEHOLDERS)
            raise ValidationError(f"Unknown placeholder {{{unknown[0]}}}. Use only {known}.")


class ListOf:
    """A comma- or newline-separated list with a bounded count and item length."""

    def __init__(self, max_items: int, max_length: int, noun: str = "item", regex: str | None = None,
                 item_message: str | None = None):
        self.max_items, self.max_length, self.noun = max_items, max_length, noun
        self.regex = re.compile(regex) if regex else None
        self.item_message = item_message

    def __call__(self, form, field):
        items = split_list(field.data)
        if len(items) > self.max_items:
            raise ValidationError(f"At most {self.max_items} {self.noun}s.")
        for item in items:
            if len(item) > self.max_length:
                raise ValidationError(f"“{item[:20]}…” is longer than {self.max_length} characters.")
            if self.regex and not self.regex.fullmatch(item):
                raise ValidationError(self.item_message or f"“{item}” is not a valid {self.noun}.")


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in re.split(r"[,\n]", value or "") if item.strip()]


# One recipient: `Name <addr>`, `"Name, Quoted" <addr>` or a bare address.
_RECIPIENT = re.compile(r'\s*(?:(?P<name>"[^"]*"|[^<>",]*?)\s*<(?P<addr>[^<>\s]+)>|(?P<bare>[^<>\s",]+))\s*')


def split_recipients(value: str) -> list[str]:
    """Split on commas and newlines that are outside quotes and angle brackets."""
    pieces, current = [], []
    for match in re.finditer(r'"[^"]*"|<[^>]*>|[,\n]|[^",<\n]+|["<]', value or ""):
        token = match.group(0)
        if token in (",", "\n"):
            pieces.append("".join(current))
            current = []
        else:
            current.append(token)
    pieces.append("".join(current))
    return [p.strip() for p in pieces if p.strip()]


def parse_recipients(value: str) -> list[tuple[str, str]]:
    """[(display name, address)], raising ValueError naming the first bad entry."""
    recipients = []
    for piece in split_recipients(value):
        if "\r" in piece or "\n" in piece:  # a quoted name may span lines; a header may not
            raise ValueError(f"“{' '.join(piece.split())}” has a line break inside it.")
        match = _RECIPIENT.fullmatch(piece)
        if not match:
            raise ValueError(f"“{piece}” is not an address. Write name@example.com or Name <name@example.com>.")
        addr = match.group("addr") or match.group("bare")
        name = (match.group("name") or "").strip().strip('"').strip()
        try:
            addr = validate_email(addr, check_deliverability=False).normalized
        except EmailNotValidError:
            raise ValueError(f"“{addr}” is not a valid email address.") from None
        recipients.append((name, addr))
    return recipients


class Recipients:
    def __init__(self, max_items: int = 50):
        self.max_items = max_items

    def __call__(self, form, field):
        try:
            recipients = parse_recipients(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if not recipients:
            raise ValidationError("Add at least one recipient.")
        if len(recipients) > self.max_items:
            raise ValidationError(f"At most {self.max_items} recipients.")


class DestinationForm(HeraldForm):
    """Fields every destination has. Subclasses add the type's options, named as the API names them."""

    name = StringField("Name", [InputRequired("Give the destination a name."), Length(max=100)],
                       description="Shown in the alert's destination picker; must be unique.")
    enabled = BooleanField("Enabled", default=True)

    COMMON = ("name", "enabled", "csrf_token")

    def __init__(self, *args, destination_id=None, stored_secrets=(), stored_options=None, secrets_sent_to=None,
                 stored_addresses=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.destination_id = destination_id
        self.stored_secrets = set(stored_secrets)
        # The saved options, and the options a kept secret is bound to (None: every option): see kept_secrets_stay
        self.stored_options = dict(stored_options or {})
        self.secrets_sent_to = secrets_sent_to
        # The stored values of secret options that are themselves where the other secrets go (ntfy's topic URL)
        self.stored_addresses = dict(stored_addresses or {})

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        return self.kept_secrets_stay() and ok

    def validate_name(self, field):
        from ..models import Destination, db

        field.data = (field.data or "").strip()
        if not field.data:
            raise StopValidation("Give the destination a name.")
        query = select(Destination.id).where(Destination.name == field.data)
        if self.destination_id is not None:
            query = query.where(Destination.id != self.destination_id)
        if db.session.scalar(query) is not None:
            raise ValidationError("Another destination already has this name.")

    def validate_options(self) -> dict[str, list[str]]:
        """Validate only the type's own fields (a test send needs no name); field name → errors."""
        problems = {}
        for field in self.option_fields():
            inline = getattr(type(self), f"validate_{field.name}", None)
            if not field.validate(self, [inline] if inline else ()):
                problems[field.name] = field.errors
        if not self.kept_secrets_stay():
            problems.update({f.name: f.errors for f in self.option_fields() if f.errors})
        return problems

    def changed_options(self) -> list:
        """The plain option fields whose value differs from the saved one (URLs compared without credentials)."""
        changed = []
        for field in self.option_fields():
            if getattr(field, "secret", False):
                continue
            new, old = field.data, self.stored_options.get(field.name)  # an option the row never had: ""
            if isinstance(new, str) or isinstance(old, str):
                new = split_userinfo((new or "").strip())[0] if isinstance(new, str) else new
                old = split_userinfo((old or "").strip())[0] if isinstance(old, str) else old
            if (new or "") != (old or "") and not (new in (None, "", False) and old in (None, "", False)):
                changed.append(field)
        return changed

    def kept_secrets_stay(self) -> bool:
        """A secret left blank keeps its stored value only while it goes where it went: if an option it is sent to
        changed (an API URL, an instance address), it must be typed again. Otherwise whoever may edit the
        destination, but not read its secrets, could send them to a host of their choosing."""
        kept = [f for f in self.option_fields() if getattr(f, "secret", False) and getattr(f, "kept", False)]
        if not kept or self.destination_id is None:
            return True
        bound = self.secrets_sent_to
        moved = [f for f in self.changed_options() if bound is None or f.name in bound]
        # A secret address typed anew (not kept) moves the secrets kept beside it just as a plain option would
        moved += [f for f in self.option_fields() if f.name in (bound or ()) and getattr(f, "secret", False)
                  and not getattr(f, "kept", False) and (f.data or "").strip()
                  and split_userinfo(f.data.strip())[0] != split_userinfo(self.stored_addresses.get(f.name) or "")[0]]
        if not moved:
            return True
        where = moved[0].label.text
        for field in kept:
            field.errors = [*field.errors, f"{where} changed: type the {field.label.text.lower()} again, so the stored "
                                           "one is not sent to the new address."]
        return False

    def option_fields(self):
        return [f for f in self if f.name not in self.COMMON]

    def apply_to(self, destination, stored_secrets: dict | None = None):
        """Copy the validated form onto a Destination (not committed)."""
        destination.name = self.name.data
        destination.enabled = self.enabled.data
        destination.options, destination.secrets = self.split_options(stored_secrets)
        return destination

    def split_options(self, stored_secrets: dict | None = None) -> tuple[dict, dict]:
        """(plain options, secrets) from validated data; blank secrets keep their stored value."""
        stored_secrets = stored_secrets or {}
        options, secrets = {}, {}
        for field in self.option_fields():
            if getattr(field, "secret", False):
                value = stored_secrets.get(field.name) if getattr(field, "kept", False) else field.data
                if value:
                    secrets[field.name] = value.strip()
            else:
                value = "" if field.data is None else field.data
                value = value.strip() if isinstance(value, str) else value
                if isinstance(value, str) and any(isinstance(v, HttpUrl) for v in field.validators):
                    value, userinfo = split_userinfo(value)
                    # Credentials in a URL are a secret; left out, the stored ones stay only with the same URL
                    stored = stored_secrets.get(secret_key(field.name))
                    if not userinfo and stored and value == self.stored_options.get(field.name):
                        userinfo = stored
                    if userinfo:
                        secrets[secret_key(field.name)] = userinfo
                options[field.name] = value
        return options, secrets


def url_field(label, default="", required=True, secret=False, description=HTTPS_HINT, **url_kwargs):
    # DataRequired, not InputRequired: a value of only spaces is no value
    validators = [DataRequired("Enter the URL.") if required else Optional(), Length(max=2048), HttpUrl(**url_kwargs)]
    cls = SecretField if secret else StringField
    return cls(label, validators, default=default or None, description=description)


def secret_field(label, description="", required=True, validators=()):
    required_validator = DataRequired("This value is required.") if required else Optional()
    return SecretField(label, [required_validator, Length(max=2048), *validators], description=description)


def text_field(label, max_length, description="", required=False, default=None, validators=()):
    first = DataRequired("This value is required.") if required else Optional()
    return StringField(label, [first, Length(max=max_length), *validators], default=default, description=description)


def template_field(label, max_length, description="", default=None, textarea=False, required=False):
    cls = TextAreaField if textarea else StringField
    first = InputRequired("Write a template.") if required else Optional()
    return cls(label, [first, Length(max=max_length), Template()], default=default, description=description)


# Line breaks and other control characters, which a one-line field (a title, a subject) must not carry
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` on one line: line breaks and control characters fold to single spaces."""
    return " ".join(_LINE_BREAKERS.sub(" ", text or "").split())


def json_object(response) -> dict:
    """The vendor's JSON answer when it is an object, else {} (an empty body, HTML from a proxy, a list)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


FROM_THE_ALERT = ""  # the stored value of a priority option that follows the alert's severity


def from_severity(mapping: dict[str, str], severity: str, fixed: str | None = None) -> str:
    """The destination's fixed choice when it has one, else the vendor value for Herald's severity.

    An unknown severity maps like `critical`: a misread alert should page rather than whisper.
    """
    return fixed or mapping.get(severity) or mapping["critical"]


class DestinationType:
    """A kind of destination: a stable `type` key, its label and form. Modules subclass it.

    Everything Herald needs to know about a type lives here, so adding one is its module and a REGISTRY line.
    """

    type: ClassVar[str]
    label: ClassVar[str]
    form: ClassVar[type[DestinationForm]]
    summary: ClassVar[str] = ""
    deprecated: ClassVar[bool] = False
    # A note shown above the form (end of life, vendor changes); `notices()` may add ones that depend on config
    notice: ClassVar[str] = ""
    # Options that take several values: the JSON API also accepts them as a list of strings
    list_options: ClassVar[frozenset[str]] = frozenset()
    # What a failure's status code is, for the metrics' reason label (http_429, smtp_550)
    status_kind: ClassVar[str] = "http"
    # The option whose value names where messages go, shown in the destinations list
    target_option: ClassVar[str | None] = None
    # Values offered in a datalist beside a free-text option (e.g. the EU endpoint)
    suggestions: ClassVar[dict[str, list[str]]] = {}

    # The options that say where the secrets go (e.g. ("api_url",)): changing one means typing the secrets again.
    # None, the default, binds them to every option, the safe choice for a type that does not say.
    secrets_sent_to: ClassVar[tuple[str, ...] | None] = None

    # True where the vendor closes what a trigger opened (incidents, tickets); chat and mail post a follow-up
    resolves: ClassVar[bool] = False
    # True where a send reads or keeps references from earlier sends of the alert (ctx.refs and
    # SendResult.remember: ticket ids, a Message-ID); the notifier looks them up only for these types
    uses_refs: ClassVar[bool] = False

    @classmethod
    def send(cls, config: dict, notification: Notification, ctx: SendContext) -> SendResult:
        """Deliver one notification; raise DeliveryError when it did not arrive."""
        raise NotImplementedError

    @classmethod
    def secret_fields(cls) -> list[str]:
        # formdata=None: without it Flask-WTF would read the current request's body into this throwaway form
        return [f.name for f in cls.form(formdata=None, meta={"csrf": False}) if getattr(f, "secret", False)]

    @classmethod
    def icon(cls) -> str:
        return f"icons/{cls.type}.svg"

    @classmethod
    def notices(cls) -> list[str]:
        """Notes for the form, as text or Markup (needs an app context when a type looks at the config)."""
        return [cls.notice] if cls.notice else []
