"""Settings → Email server: the SMTP settings in force, and a test email."""
from flask import Blueprint, current_app
from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms.validators import Email, InputRequired, Length

from ..destinations import REGISTRY
from ..destinations.email import DEFAULT_SUBJECT
from ..htmx import render
from ..notifier import Notifier
from .auth import admin_required

bp = Blueprint("settings", __name__, url_prefix="/settings")


class TestEmailForm(FlaskForm):
    to = EmailField("Send a test email to", [InputRequired("Enter an address."), Length(max=254),
                                              Email("Enter a valid email address.")])


def smtp_settings() -> dict:
    cfg = current_app.config
    return {
        "MAIL_SERVER": cfg.get("MAIL_SERVER") or "",
        "MAIL_PORT": cfg.get("MAIL_PORT"),
        "MAIL_USE_TLS": bool(cfg.get("MAIL_USE_TLS")),
        "MAIL_USE_SSL": bool(cfg.get("MAIL_USE_SSL")),
        "MAIL_USERNAME": cfg.get("MAIL_USERNAME") or "",
        "MAIL_PASSWORD": "set (hidden)" if cfg.get("MAIL_PASSWORD") else "not set",
        "MAIL_DEFAULT_SENDER": cfg.get("MAIL_DEFAULT_SENDER") or "",
    }


@bp.route("/email", methods=["GET", "POST"])
@admin_required
def email_server():
    form = TestEmailForm()
    outcome = None
    if form.validate_on_submit():
        config = {"addresses": form.to.data, "subject_template": DEFAULT_SUBJECT, "body_template": ""}
        outcome = Notifier(current_app._get_current_object()).send_test(REGISTRY["email"], config, name="Email server test")
    status = 422 if form.errors else 200
    return render("settings/email.html", "settings/_email_test.html", status=status, form=form, outcome=outcome,
                  smtp=smtp_settings())
