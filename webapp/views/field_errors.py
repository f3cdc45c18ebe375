"""Which form field a failed Send test concerns, so the error is shown beside it."""

_URL_WORDS = ("nothing is listening", "does not resolve", "no network route", "tls certificate", "closed the connection",
              "no answer within", "could not connect", "redirected to", "http 404", "http 405", "http 410",
              "http 501", "the request failed", "resolves to")
_CREDENTIAL_WORDS = ("http 401", "http 403", "authenticat", "unauthori", "forbidden", "invalid token",
                     "invalid api key", "invalid_auth", "invalid routing key")
_RECIPIENT_WORDS = ("recipient", "refused:")


def field_for_failure(form, outcome: dict):
    """The field a failed test points at (the URL for a network fault, the secret for a refusal), or None."""
    text = (outcome.get("error") or "").lower()
    fields = form.option_fields()
    secret = [f for f in fields if getattr(f, "secret", False)]
    urls = [f for f in fields if "url" in f.name]
    if outcome.get("status_code") in (401, 403) or any(w in text for w in _CREDENTIAL_WORDS):
        credential = [f for f in secret if "url" not in f.name] or secret
        return credential[0] if credential else None
    if any(w in text for w in _URL_WORDS):
        with_value = [f for f in urls if (f.data or "").strip()] or urls
        return with_value[0] if with_value else None
    if "addresses" in form and any(w in text for w in _RECIPIENT_WORDS):
        return form["addresses"]
    return None
