"""The base of every Herald form."""
import re

from flask_wtf import FlaskForm

NUL = "\x00"
SURROGATE = re.compile("[\ud800-\udfff]")


def _without_nul(value):
    # PostgreSQL cannot store NUL in text, and no one types it: drop it before any validator or query sees it
    # (and lone surrogates, which neither database can store, for the same reason; validate() says so)
    return SURROGATE.sub("", value.replace(NUL, "")) if isinstance(value, str) else value


class HeraldForm(FlaskForm):
    """Refuses NUL characters in any field, with a message beside it, before anything reaches the database."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            options["filters"] = (*options.get("filters", ()), _without_nul)
            return unbound_field.bind(form=form, **options)

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for field in self:
            raw = [value for value in (field.raw_data or ()) if isinstance(value, str)]
            if any(NUL in value for value in raw):
                field.errors = [*field.errors, "Remove the NUL character (\\0) from this value."]
                ok = False
            # A browser cannot send one (UTF-8 has no lone surrogates) but JSON can: SQLite and PostgreSQL
            # cannot store it, and a page showing it could not be encoded
            if any(SURROGATE.search(value) for value in raw):
                field.errors = [*field.errors, "Remove the lone surrogate (\\ud800-\\udfff): it is not text."]
                ok = False
        return ok
