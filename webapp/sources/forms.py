"""The source form: one definition validates the settings page and the JSON API (through service.form_from_json)."""
from sqlalchemy import select
from wtforms import (BooleanField, FieldList, FormField, IntegerField, PasswordField, SelectField, SelectMultipleField,
                     StringField, widgets)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from ..extensions import db
from ..forms import HeraldForm
from ..models import Destination
from .formats import MAPPING_PATHS
from .matchers import MatcherError, parse_matcher, split_matchers
from .models import Source

MAX_PERIOD = 30 * 24 * 3600
MAX_ROUTES = 50
PATH_LENGTH = 200
MAPPING_LABELS = {
    "alerts": ("Alerts list", "Optional: where a list of alerts is, e.g. events. Without it the body is one alert."),
    "key": ("Key", "Required: what tells one alert from another, e.g. alert.id."),
    "name": ("Alert name", "e.g. alert.title; without it the key names the alert."),
    "state": ("State", "Required: e.g. status."),
    "severity": ("Severity", "e.g. labels.severity: critical, error, warning, info (page, high… are mapped)."),
    "description": ("Description", "e.g. message."),
}


def _checkboxes(label, description=""):
    return SelectMultipleField(label, coerce=int, option_widget=widgets.CheckboxInput(),
                               widget=widgets.ListWidget(prefix_label=False), description=description)


class RouteForm(HeraldForm):
    class Meta:
        csrf = False  # a part of SourceForm, whose token covers it

    matchers = StringField("Matchers", [Length(max=4000)], render_kw={"placeholder": 'severity=~"critical|page"'},
                           description='Label matchers as Alertmanager writes them, comma separated: '
                                       'team="db", severity=~"critical|page". All must hold.')
    destination_ids = _checkboxes("Destinations")
    continue_matching = BooleanField("Continue", description="Also try the routes after this one when it matches.")

    @property
    def blank(self) -> bool:
        return not (self.matchers.data or "").strip() and not self.destination_ids.data

    def parsed_matchers(self) -> list:
        return [parse_matcher(m) for m in split_matchers(self.matchers.data or "")]

    def validate(self, extra_validators=None):
        # Checked here, inside the routes list's own validation, so the list reports these errors with the rest
        ok = super().validate(extra_validators)
        if self.blank:
            return ok
        try:
            self.parsed_matchers()
        except MatcherError as exc:
            self.matchers.errors = [*self.matchers.errors, str(exc)]
            ok = False
        if not self.destination_ids.data:
            self.destination_ids.errors = [*self.destination_ids.errors, "Choose the route's destinations."]
            ok = False
        self._errors = None  # WTForms caches a form's errors; these came after
        return ok


class SourceForm(HeraldForm):
    class Meta(HeraldForm.Meta):
        def bind_field(self, form, unbound_field, options):
            if unbound_field.field_class in (FieldList, FormField):  # the routes' own fields take the filters
                return unbound_field.bind(form=form, **options)
            return super().bind_field(form, unbound_field, options)

    name = StringField("Name", [InputRequired("Give the source a name."), Length(max=100)],
                       description="e.g. the Alertmanager or Grafana instance that sends here.")
    kind = SelectField("Kind", choices=Source.KINDS, default="alertmanager")
    destination_ids = _checkboxes("Default destinations",
                                  "Where its alerts go when no route below matches them.")
    routes = FieldList(FormField(RouteForm), max_entries=MAX_ROUTES)
    period_seconds = IntegerField("Period (seconds)", [Optional(), NumberRange(1, MAX_PERIOD)],
                                  description="Heartbeat: how often a ping is expected.")
    grace_seconds = IntegerField("Grace (seconds)", [Optional(), NumberRange(0, MAX_PERIOD)], default=0,
                                 description="Heartbeat: how late a ping may be before the alert triggers.")
    mapping_alerts = StringField(MAPPING_LABELS["alerts"][0], [Length(max=PATH_LENGTH)],
                                 description=MAPPING_LABELS["alerts"][1])
    mapping_key = StringField(MAPPING_LABELS["key"][0], [Length(max=PATH_LENGTH)], description=MAPPING_LABELS["key"][1])
    mapping_name = StringField(MAPPING_LABELS["name"][0], [Length(max=PATH_LENGTH)],
                               description=MAPPING_LABELS["name"][1])
    mapping_state = StringField(MAPPING_LABELS["state"][0], [Length(max=PATH_LENGTH)],
                                description=MAPPING_LABELS["state"][1])
    mapping_firing_values = StringField("Firing values", [Length(max=1000)],
                                        description="Comma separated; default: firing, alerting, triggered, problem, "
                                                    "down, critical.")
    mapping_resolved_values = StringField("Resolved values", [Length(max=1000)],
                                          description="Comma separated; default: resolved, ok, normal, recovered, up.")
    mapping_severity = StringField(MAPPING_LABELS["severity"][0], [Length(max=PATH_LENGTH)],
                                   description=MAPPING_LABELS["severity"][1])
    mapping_description = StringField(MAPPING_LABELS["description"][0], [Length(max=PATH_LENGTH)],
                                      description=MAPPING_LABELS["description"][1])
    bearer_token = PasswordField("Bearer token", [Optional(), Length(8, 500)],
                                 render_kw={"autocomplete": "new-password"},
                                 description="Optional: requests must send Authorization: Bearer <this> "
                                             "(Alertmanager's http_config.authorization). Stored encrypted, never shown.")
    clear_bearer = BooleanField("Stop requiring a bearer token")

    def __init__(self, *args, stored_bearer: bool = False, stored_kind: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stored_bearer, self.stored_kind = stored_bearer, stored_kind
        destinations = db.session.scalars(select(Destination).order_by(Destination.name)).all()
        self.destinations_by_id = {d.id: d for d in destinations}
        choices = [(d.id, d.name) for d in destinations]
        self.destination_ids.choices = choices
        for entry in self.routes:
            entry.form.destination_ids.choices = choices
        if stored_bearer:
            self.bearer_token.description = "Set (hidden). Type a new one to replace it; blank keeps it."

    def add_blank_route(self) -> None:
        """One empty row to add a route in (blank rows are ignored on save)."""
        if self.routes.entries and self.routes.entries[-1].form.blank:
            return
        if len(self.routes.entries) < MAX_ROUTES:
            self.routes.append_entry()
            self.routes.entries[-1].form.destination_ids.choices = self.destination_ids.choices

    def validate_name(self, field):
        field.data = (field.data or "").strip()
        if not field.data:
            raise ValidationError("Give the source a name.")

    def validate_kind(self, field):
        if self.stored_kind is not None and field.data != self.stored_kind:
            raise ValidationError("A source's kind cannot change; create a new source.")

    def validate_destination_ids(self, field):
        if not field.data:
            raise ValidationError("Choose at least one default destination.")

    def validate_mapping_key(self, field):
        if self.kind.data == "webhook" and not (field.data or "").strip():
            raise ValidationError("A webhook source needs the dot path of each alert's key.")
        self._check_path(field)

    def validate_mapping_state(self, field):
        if self.kind.data == "webhook" and not (field.data or "").strip():
            raise ValidationError("A webhook source needs the dot path of each alert's state.")
        self._check_path(field)

    def validate_mapping_alerts(self, field):
        self._check_path(field)

    def validate_mapping_name(self, field):
        self._check_path(field)

    def validate_mapping_severity(self, field):
        self._check_path(field)

    def validate_mapping_description(self, field):
        self._check_path(field)

    @staticmethod
    def _check_path(field):
        path = (field.data or "").strip()
        field.data = path
        if path and any(not part or part != part.strip() for part in path.split(".")):
            raise ValidationError("A dot path such as alert.id: names separated by dots, none empty.")

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        # Here, not as validate_period_seconds: Optional() ends an empty field's validators before that would run
        if self.kind.data == "heartbeat" and self.period_seconds.data is None and not self.period_seconds.errors:
            self.period_seconds.errors = ["A heartbeat needs a period: how often a ping is expected."]
            ok = False
        if self.bearer_token.data and self.clear_bearer.data:
            self.bearer_token.errors = [*self.bearer_token.errors,
                                        "Either type a new token or stop requiring one, not both."]
            ok = False
        self._errors = None  # WTForms caches a form's errors; these came after
        return ok

    # -- to the model ----------------------------------------------------------------------------------------------
    def routes_value(self) -> list[dict]:
        return [{"matchers": [str(m) for m in entry.form.parsed_matchers()],
                 "destination_ids": list(dict.fromkeys(entry.form.destination_ids.data)),
                 "continue": bool(entry.form.continue_matching.data)}
                for entry in self.routes if not entry.form.blank]

    def mapping_value(self) -> dict | None:
        if self.kind.data != "webhook":
            return None
        mapping = {name: getattr(self, f"mapping_{name}").data for name in MAPPING_PATHS
                   if getattr(self, f"mapping_{name}").data}
        for name in ("firing_values", "resolved_values"):
            values = [v.strip() for v in (getattr(self, f"mapping_{name}").data or "").split(",") if v.strip()]
            if values:
                mapping[name] = values
        return mapping

    def apply_to(self, source: Source) -> Source:
        source.name = self.name.data
        source.kind = self.kind.data
        source.destinations = [self.destinations_by_id[i] for i in dict.fromkeys(self.destination_ids.data)]
        source.routes = self.routes_value()
        heartbeat = self.kind.data == "heartbeat"
        source.period_seconds = self.period_seconds.data if heartbeat else None
        source.grace_seconds = (self.grace_seconds.data or 0) if heartbeat else None
        source.mapping = self.mapping_value()
        if self.clear_bearer.data:
            source.bearer_token = None
        elif self.bearer_token.data:
            source.bearer_token = self.bearer_token.data
        return source

    @staticmethod
    def data_of(source: Source) -> dict:
        """What the edit form starts with (never the bearer token)."""
        mapping = source.mapping or {}
        data = {"name": source.name, "kind": source.kind, "destination_ids": [d.id for d in source.destinations],
                "period_seconds": source.period_seconds, "grace_seconds": source.grace_seconds,
                "routes": [{"matchers": ", ".join(r.get("matchers", [])), "destination_ids": r.get("destination_ids", []),
                            "continue_matching": bool(r.get("continue"))} for r in source.routes or []]}
        for name in MAPPING_PATHS:
            data[f"mapping_{name}"] = mapping.get(name, "")
        for name in ("firing_values", "resolved_values"):
            data[f"mapping_{name}"] = ", ".join(mapping.get(name, []))
        return data
