"""Settings → Email server (the SMTP settings in force, a test email) and Settings → API tokens."""
from flask import Blueprint, abort, current_app, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms import EmailField, StringField
from wtforms.validators import Email, InputRequired, Length

from ..delivery.notifier import get_notifier
from ..destinations import REGISTRY
from ..destinations.email import DEFAULT_SUBJECT
from ..extensions import db
from ..forms import HeraldForm
from ..htmx import render
from ..models import ApiToken, utcnow
from .auth import admin_required
from .readable import EMAIL_SERVER_TEST

bp = Blueprint("settings", __name__, url_prefix="/settings")


class TestEmailForm(HeraldForm):
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
        outcome = get_notifier(current_app._get_current_object()).send_test(REGISTRY["email"], config, name=EMAIL_SERVER_TEST)
    status = 422 if form.errors else 200
    return render("settings/email.html", "settings/_email_test.html", status=status, form=form, outcome=outcome,
                  smtp=smtp_settings())


class TokenForm(HeraldForm):
    name = StringField("Token name", [InputRequired("Name the token after what will use it."), Length(max=100)],
                       description="e.g. the monitoring script or host that will call the API.")


def _own_tokens():
    return db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id.desc())).all()


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    """Every user manages their own tokens; a viewer's tokens may only read."""
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        row, new_token = ApiToken.issue(current_user, form.name.data.strip())
        db.session.add(row)
        db.session.commit()
        form = TokenForm(formdata=None)
    return render("settings/tokens.html", status=422 if form.errors else 200, form=form, tokens=_own_tokens(),
                  new_token=new_token)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    row = db.get_or_404(ApiToken, token_id)
    if row.user_id != current_user.id:
        abort(404)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.commit()
    flash(f"Revoked the token “{row.name}”. Requests that use it now get 401.", "success")
    return redirect(url_for(".tokens"))
