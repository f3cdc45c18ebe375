"""The alert form, shared by the UI and the JSON API."""
import math

from sqlalchemy import select
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import (
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from .delivery.notification import format_number
from .extensions import db
from .forms import HeraldForm
from .models import Alert, Destination

MAX_REARM = 30 * 24 * 3600
SEVERITY_LABELS = {"critical": "Critical", "error": "Error", "warning": "Warning", "info": "Info"}
OPERATOR_LABELS = {"": "No condition (set the state by hand or through the API)", ">": "value > threshold",
                   ">=": "value ≥ threshold", "<": "value < threshold", "<=": "value ≤ threshold",
                   "==": "value = threshold", "!=": "value ≠ threshold"}


def parse_number(text) -> float:
    """A finite number from a form or JSON value; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError
    number = float(text if isinstance(text, (int, float)) else str(text).strip())
    if not math.isfinite(number):
        raise ValueError
    return number


class AlertForm(HeraldForm):
    name = StringField("Name", [InputRequired("Give the alert a name."), Length(max=255)])
    description = TextAreaField("Description", [Optional(), Length(max=10000)], render_kw={"rows": 3},
                                description="Sent with every notification.")
    severity = SelectField("Severity", choices=SEVERITY_LABELS, default="critical")
    condition_op = SelectField("Condition", choices=OPERATOR_LABELS, default="",
                               description="With a condition, values sent to the alert decide its state.")
    # No Optional(): an empty threshold must still reach validate_condition_threshold
    condition_threshold = StringField("Threshold", [Length(max=50)], render_kw={"inputmode": "decimal"})
    rearm_seconds = IntegerField("Notify again every (seconds)", [Optional(), NumberRange(0, MAX_REARM)], default=0,
                                 description="While the alert stays triggered. 0 notifies once per trigger.")
    muted = BooleanField("Muted", description="A muted alert records its changes and notifies nobody.")
    destination_ids = SelectMultipleField(
        "Destinations", coerce=int, option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False),
        description="Every bound destination is notified when the alert triggers and when it recovers.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        destinations = db.session.scalars(select(Destination).order_by(Destination.name)).all()
        self.destination_ids.choices = [(d.id, d.name) for d in destinations]
        self.destinations_by_id = {d.id: d for d in destinations}

    def validate_name(self, field):
        field.data = (field.data or "").strip()
        if not field.data:
            raise ValidationError("Give the alert a name.")

    def validate_condition_threshold(self, field):
        text = (field.data or "").strip()
        if not self.condition_op.data:
            if text:
                raise ValidationError("A threshold needs a condition.")
            return
        if not text:
            raise ValidationError("A condition needs a threshold.")
        try:
            parse_number(text)
        except ValueError:
            raise ValidationError("The threshold must be a number, e.g. 90 or 0.5.") from None

    def validate_destination_ids(self, field):
        if not field.data:
            raise ValidationError("Bind at least one destination.")
        if len(set(field.data)) != len(field.data):
            raise ValidationError("A destination can be bound only once.")

    def apply_to(self, alert: Alert) -> Alert:
        alert.name = self.name.data
        alert.description = (self.description.data or "").strip()
        alert.severity = self.severity.data
        alert.condition_op = self.condition_op.data or None
        alert.condition_threshold = parse_number(self.condition_threshold.data) if alert.condition_op else None
        alert.rearm_seconds = self.rearm_seconds.data or 0
        alert.muted = bool(self.muted.data)
        alert.destinations = [self.destinations_by_id[i] for i in dict.fromkeys(self.destination_ids.data)]
        return alert

    @classmethod
    def data_of(cls, alert: Alert) -> dict:
        return {
            "name": alert.name, "description": alert.description, "severity": alert.severity,
            "condition_op": alert.condition_op or "",
            "condition_threshold": "" if alert.condition_threshold is None else format_number(alert.condition_threshold),
            "rearm_seconds": alert.rearm_seconds, "muted": alert.muted,
            "destination_ids": [d.id for d in alert.destinations],
        }
