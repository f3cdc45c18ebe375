"""What may change on an alert from a source: it is muted or not, and its extra destinations (besides those the
source's routes choose). Its state is the source's to set."""
from wtforms import BooleanField, SelectMultipleField, widgets
from wtforms.validators import ValidationError

from ..forms import HeraldForm
from ..json_input import InvalidInput, form_errors, reject_unknown, to_formdata
from ..models import Alert, Destination
from ..extensions import db

BY_HAND = ("This alert comes from an alert source, which sets its state: it cannot be triggered or resolved by "
           "hand (or by a value). It can be muted, and its extra destinations changed.")
FIELDS = ("muted", "destination_ids")


class SourceAlertForm(HeraldForm):
    muted = BooleanField("Muted", description="A muted alert records its changes and notifies nobody.")
    destination_ids = SelectMultipleField(
        "Extra destinations", coerce=int, option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
        description="Notified besides the destinations the source's routes choose.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        destinations = db.session.scalars(db.select(Destination).order_by(Destination.name)).all()
        self.destination_ids.choices = [(d.id, d.name) for d in destinations]
        self.destinations_by_id = {d.id: d for d in destinations}

    def validate_destination_ids(self, field):
        if len(set(field.data or [])) != len(field.data or []):
            raise ValidationError("A destination can be bound only once.")

    def apply_to(self, alert: Alert) -> Alert:
        alert.muted = bool(self.muted.data)
        alert.destinations = [self.destinations_by_id[i] for i in dict.fromkeys(self.destination_ids.data or [])]
        return alert

    @staticmethod
    def data_of(alert: Alert) -> dict:
        return {"muted": alert.muted, "destination_ids": [d.id for d in alert.destinations]}


def validated_source_alert_form(body: dict, alert: Alert) -> SourceAlertForm:
    """PATCH /api/alerts/<id> for an alert from a source: only `muted` and `destination_ids` (409 for the rest)."""
    others = sorted(set(body) - set(FIELDS))
    known = {"name", "description", "severity", "rearm_seconds", "condition"}
    if set(others) & known:
        names = [n for n in others if n in known]
        raise InvalidInput(409, f"{', '.join(names)}: set by the alert's source. {BY_HAND}",
                           {n: ["Set by the alert's source."] for n in names})
    reject_unknown(body, FIELDS)
    values = {**SourceAlertForm.data_of(alert), **body}
    form = SourceAlertForm(formdata=to_formdata(values, booleans=("muted",), id_lists=("destination_ids",)),
                           meta={"csrf": False})
    if not form.validate():
        raise InvalidInput(422, "The alert is not valid.", form_errors(form))
    return form
