"""Every change to a destination, one way for the settings UI, the JSON API and import: forms built with what is
stored, secrets that cannot be decrypted, saving, deleting while alerts use it, test sends.

Refusals are InvalidInput (an HTTP status, a message, the fields by name): the API answers them as JSON, the UI
shows them beside the field or as the test's outcome.
"""
from flask import current_app
from sqlalchemy.exc import IntegrityError

from .crypto import SecretsUnreadable
from .delivery.notifier import get_notifier
from .extensions import db
from .json_input import InvalidInput, form_errors, reject_unknown, to_formdata, type_schema
from .models import Destination
from .url_credentials import with_userinfo, without_userinfo

SECRETS_LOST = ("The stored secrets of this destination cannot be decrypted: the encryption key changed. "
                "Type them again and save.")
SECRET_LOST_FIELD = "The stored value cannot be decrypted (the encryption key changed): type it again."
NAME_TAKEN = "Another destination already has this name."


def readable_secrets(destination: Destination | None) -> dict | None:
    """The decrypted secrets; None when they cannot be decrypted."""
    if destination is None:
        return {}
    try:
        return destination.secrets
    except SecretsUnreadable:
        return None


def stored_secrets(destination: Destination | None) -> dict:
    """The decrypted secrets, or none when the key changed: forms then ask for them again."""
    return readable_secrets(destination) or {}


def secrets_lost(destination: Destination) -> bool:
    return readable_secrets(destination) is None


def public_options(destination: Destination) -> dict:
    """The options anyone who may read the destination may see: no secrets, no credentials in URLs."""
    return without_userinfo(dict(destination.options))


def make_form(dtype, destination: Destination | None = None, kept_secrets=None, **form_kwargs):
    """The type's form for a new destination or bound to a stored one: it knows which secrets are stored (a blank
    one keeps its value) and the saved options (a secret is kept only while its destination address stays)."""
    secrets = stored_secrets(destination)
    return dtype.form(
        destination_id=destination.id if destination else None,
        stored_secrets=secrets.keys() if kept_secrets is None else kept_secrets,
        stored_options=dict(destination.options) if destination else {},
        secrets_sent_to=dtype.secrets_sent_to,
        stored_addresses={k: v for k, v in secrets.items() if k in (dtype.secrets_sent_to or ())},
        **form_kwargs,
    )


def edit_data(destination: Destination) -> dict:
    """What the settings page's edit form starts with: the stored (public) options, never a secret."""
    return {"name": destination.name, "enabled": destination.enabled, **public_options(destination)}


def explain_lost_secrets(form, destination: Destination | None) -> None:
    """A secret asked for because it cannot be decrypted says so, rather than a bare "required"."""
    if destination is None or not secrets_lost(destination):
        return
    for field in form.option_fields():
        if getattr(field, "secret", False) and field.errors and not (field.data or "").strip():
            field.errors = [SECRET_LOST_FIELD]


def form_from_json(dtype, body: dict, destination: Destination | None):
    """The type's form bound to a JSON body (merged over the stored values when `destination` is given), validated;
    InvalidInput 422 naming the fields otherwise."""
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise InvalidInput(422, "options must be an object.", {"options": ["Must be an object."]})
    fields = type_schema(dtype)["fields"]
    reject_unknown(options, [f["name"] for f in fields], prefix="")
    if destination is None:  # options left out take the form's defaults, as the UI's pre-filled form does
        merged = {f["name"]: f["default"] for f in fields if f["default"] not in (None, "")}
    else:
        merged = {"name": destination.name, "enabled": destination.enabled, **public_options(destination)}
    merged.update(options)
    for key in ("name", "enabled"):
        if key in body:
            merged[key] = body[key]
    merged.setdefault("enabled", True)
    boolean_names = ["enabled"] + [f["name"] for f in fields if f["type"] == "boolean"]
    secrets = stored_secrets(destination)
    form = make_form(dtype, destination, kept_secrets=[k for k in secrets if not options.get(k)],
                     formdata=to_formdata(merged, booleans=boolean_names, lists=dtype.list_options),
                     meta={"csrf": False})
    if not form.validate():
        explain_lost_secrets(form, destination)
        raise InvalidInput(422, "The destination is not valid.", form_errors(form))
    return form


def apply(destination: Destination, form) -> Destination:
    """Copy a validated form onto the destination (added to the session, not committed)."""
    db.session.add(form.apply_to(destination, stored_secrets(destination)))
    return destination


def save(destination: Destination, form) -> Destination:
    """Apply and commit; InvalidInput 409 naming `name` when another destination took the name meanwhile."""
    apply(destination, form)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise InvalidInput(409, NAME_TAKEN, {"name": [NAME_TAKEN]}) from None
    return destination


def set_enabled(destination: Destination, enabled: bool) -> Destination:
    destination.enabled = enabled
    db.session.commit()
    return destination


def delete(destination: Destination, force: bool) -> None:
    """Delete; while alerts use it, only with `force` (they are unbound). InvalidInput 409 names the alerts."""
    alerts = list(destination.alerts)
    if alerts and not force:
        names = ", ".join(a.name for a in alerts)
        raise InvalidInput(409, f"Alerts use this destination: {names}. Delete with force to unbind them.",
                           {"alert_ids": [str(a.id) for a in alerts]})
    db.session.delete(destination)
    db.session.commit()


def lost_secrets_error(destination: Destination) -> InvalidInput:
    dtype = destination.destination_type
    names = dtype.secret_fields() if dtype else []
    return InvalidInput(409, SECRETS_LOST, {name: [SECRET_LOST_FIELD] for name in names})


def config_from_form(form, destination: Destination | None) -> tuple[dict | None, dict]:
    """(the config a form's unsaved values send with, problems): blank secrets keep their stored value only where
    the form allows it (see DestinationForm.kept_secrets_stay); with problems (field → messages) there is no config."""
    problems = form.validate_options()
    if problems:
        explain_lost_secrets(form, destination)
        return None, {name: form[name].errors for name in problems}
    options, secrets = form.split_options(stored_secrets(destination))
    return with_userinfo(options, secrets), {}


def send_test(dtype, destination: Destination | None, form=None, name: str | None = None,
              on_failure=None) -> tuple[dict | None, dict]:
    """A test notification: with a form's (unsaved) values, else the stored settings. (outcome, problems): with
    problems (field → messages) nothing was sent. InvalidInput 409 when stored secrets cannot be decrypted.

    `name` overrides the destination's name in the message; `on_failure(outcome, config)` may reword a failure."""
    if form is not None:
        config, problems = config_from_form(form, destination)
        if problems:
            return None, problems
        name = name or form.name.data or (destination.name if destination else "")
    else:
        if secrets_lost(destination):
            raise lost_secrets_error(destination)
        config, name = destination.config, name or destination.name
    outcome = get_notifier(current_app._get_current_object()).send_test(
        dtype, config, name=name, destination_id=destination.id if destination else None)
    if on_failure is not None and outcome["status"] != "sent":
        on_failure(outcome, config)
    return outcome, {}


def as_json(destination: Destination) -> dict:
    dtype = destination.destination_type
    secret_names = dtype.secret_fields() if dtype else []
    secrets = readable_secrets(destination) if secret_names else {}
    return {
        "id": destination.id,
        "name": destination.name,
        "type": destination.type,
        "enabled": destination.enabled,
        "options": public_options(destination),
        # Write-only: a GET says which secrets are set, never their values (as Grafana's secureFields)
        "secure_fields": {name: bool((secrets or {}).get(name)) for name in secret_names},
        # False after an encryption-key change: the secrets must be typed again (PATCH them)
        "secrets_readable": secrets is not None,
        "alert_ids": [a.id for a in destination.alerts],
        "created_at": destination.created_at.isoformat(),
        "updated_at": destination.updated_at.isoformat() if destination.updated_at else None,
    }


def export_options(destination: Destination, with_secrets: bool) -> tuple[dict, str | None]:
    """(the options to export, a warning or None): with secrets, the full config (credentials back in URLs);
    secrets that cannot be decrypted are left out and said so."""
    if not with_secrets:
        return public_options(destination), None
    secrets = readable_secrets(destination)
    if secrets is None:
        return public_options(destination), f"“{destination.name}”: {SECRETS_LOST}"
    return with_userinfo(dict(destination.options), secrets), None
