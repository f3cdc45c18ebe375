"""Typed secrets survive a refused form: they come back encrypted in a hidden field, never as plain text.

A password input is never filled in again (the HTML would hold the secret). Instead, the value the user typed
travels as a Fernet token under `_carried_<field>`; a later POST with the field left blank uses it. A stored
optional secret can be removed on purpose with the `_clear_<field>` box.
"""
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, request
from werkzeug.datastructures import MultiDict

from ..crypto import _fernet

CARRIED = "_carried_"
CLEAR = "_clear_"
# Long enough to fix a form and retry, short enough that a copied page is soon useless
CARRY_SECONDS = 6 * 3600


def _key() -> Fernet:
    cfg = current_app.config
    return _fernet((cfg.get("HERALD_ENCRYPTION_KEY") or cfg["SECRET_KEY"]) + ":carried form secrets")


def carry(value: str) -> str:
    return _key().encrypt(value.encode()).decode()


def _uncarry(token: str) -> str | None:
    try:
        return _key().decrypt(token.encode(), ttl=CARRY_SECONDS).decode()
    except (InvalidToken, ValueError):
        return None


def form_data(secret_names) -> MultiDict | None:
    """The POSTed form with every blank secret filled from its carried copy (None on GET: no form data)."""
    if request.method != "POST":
        return None
    data = MultiDict(request.form)
    for name in secret_names:
        token = data.pop(CARRIED + name, "")
        if token and not (data.get(name) or "").strip():
            value = _uncarry(token)
            if value is not None:
                data[name] = value
    return data


def cleared(secret_names) -> set[str]:
    """The optional secrets the user asked to remove."""
    if request.method != "POST":
        return set()
    return {name for name in secret_names if request.form.get(CLEAR + name)}


def init_app(app):
    app.add_template_global(carry, "carry_secret")
    app.add_template_global(CARRIED, "CARRIED")
    app.add_template_global(CLEAR, "CLEAR")
