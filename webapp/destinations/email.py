"""Email through the SMTP server configured for Herald (Flask-Mail)."""
from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length

from .base import DestinationForm, DestinationType, Recipients, template_field

DEFAULT_SUBJECT = "Alert {alert_name} changed status to {state}"


class EmailForm(DestinationForm):
    addresses = TextAreaField(
        "Recipients",
        [InputRequired("Add at least one recipient."), Length(max=10000), Recipients()],
        description="One or more addresses, comma or newline separated: ops@example.com or Ops Team <ops@example.com>.",
        render_kw={"rows": 3},
    )
    subject_template = template_field("Subject", 255, default=DEFAULT_SUBJECT,
                                      description="Placeholders such as {alert_name} and {state} are filled in.")
    body_template = template_field("Body", 10000, textarea=True,
                                   description="Optional. Left empty, the mail lists the alert's details and link.")


class Email(DestinationType):
    type = "email"
    label = "Email"
    summary = "Mail to one or more recipients through Herald's SMTP server."
    form = EmailForm
    target_option = "addresses"
