"""The base of every Herald form."""
from flask_wtf import FlaskForm

NUL = "\x00"


def _without_nul(value):
    # PostgreSQL cannot store NUL in text, and no one types it: drop it before any validator or query sees it
    return value.replace(NUL, "") if isinstance(value, str) else value


class HeraldForm(FlaskForm):
    """Refuses NUL characters in any field, with a message beside it, before anything reaches the database."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            options["filters"] = (*options.get("filters", ()), _without_nul)
            return unbound_field.bind(form=form, **options)

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for field in self:
            if any(isinstance(raw, str) and NUL in raw for raw in (field.raw_data or ())):
                field.errors = [*field.errors, "Remove the NUL character (\\0) from this value."]
                ok = False
        return ok
