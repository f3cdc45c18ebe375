"""ServiceNow incidents through the Table API (https://developer.servicenow.com/dev.do#!/reference/api/latest/rest/c_TableAPI)."""
from wtforms import SelectField

from .base import DestinationForm, DestinationType, secret_field, text_field, url_field

LEVELS = [("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low")]
CLOSE_CODES = ["Solution provided", "Workaround provided", "Resolved by caller", "No resolution provided",
               "Solved (Permanently)", "Solved (Work Around)"]


class ServiceNowForm(DestinationForm):
    instance_url = url_field("Instance URL", path=r"^/?$", path_message="Give the instance's address only, e.g. https://acme.service-now.com",
                             description="e.g. https://acme.service-now.com")
    username = text_field("Username", 255, required=True, description="An integration user allowed to write incidents (itil).")
    password = secret_field("Password")
    urgency = SelectField("Urgency", choices=LEVELS, default="2")
    impact = SelectField("Impact", choices=LEVELS, default="2")
    assignment_group = text_field("Assignment group", 255, description="Optional group name or sys_id.")
    close_code = text_field("Resolution code", 100, required=True, default=CLOSE_CODES[0],
                            description="The close code your instance expects when an incident is resolved.")


class ServiceNow(DestinationType):
    type = "servicenow"
    label = "ServiceNow"
    summary = "Opens a ServiceNow incident on trigger and resolves it on recovery."
    form = ServiceNowForm
    target_option = "instance_url"
    suggestions = {"close_code": CLOSE_CODES}
