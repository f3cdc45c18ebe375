"""Settings → Users: administrators add people, change their role and remove them."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from wtforms import EmailField, PasswordField, SelectField
from wtforms.validators import InputRequired, Length

from ..extensions import db
from ..forms import HeraldForm
from ..models import User
from .auth import admin_required, validate_credentials

bp = Blueprint("users", __name__, url_prefix="/settings/users")
ROLES = {"viewer": "Viewer (read-only)", "admin": "Administrator"}


class UserForm(HeraldForm):
    email = EmailField("Email", [InputRequired("Enter an email address."), Length(max=254)], render_kw={"autocomplete": "off"})
    password = PasswordField("Password", [InputRequired("Set a password."), Length(max=256)],
                             description="At least 8 characters. Tell the person; they can sign in with it.",
                             render_kw={"autocomplete": "new-password"})
    role = SelectField("Role", choices=ROLES, default="viewer")

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for name, message in validate_credentials(self.email.data, self.password.data).items():
            field = getattr(self, name)
            if not field.errors:
                field.errors.append(message)
                ok = False
        if ok and User.by_email(self.email.data) is not None:
            self.email.errors.append("A user with this email exists.")
            ok = False
        return ok


def _admins() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.role == "admin"))


def _page(form, status=200):
    users = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template("settings/users.html", form=form, users=users, roles=ROLES), status


@bp.route("/", methods=["GET", "POST"])
@admin_required
def index():
    form = UserForm()
    if form.validate_on_submit():
        user = User(email=User.normalize_email(form.email.data), role=form.role.data)
        user.set_password(form.password.data)
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            form.email.errors.append("A user with this email exists.")
            return _page(form, 422)
        flash(f"Added {user.email} as {ROLES[user.role].lower()}.", "success")
        return redirect(url_for(".index"))
    return _page(form, 422 if form.errors else 200)


@bp.post("/<int:user_id>/role")
@admin_required
def change_role(user_id: int):
    user = db.get_or_404(User, user_id)
    role = request.form.get("role")
    if role not in ROLES:
        abort(400)
    if user.role == "admin" and role != "admin" and _admins() == 1:
        flash("Herald needs at least one administrator.", "error")
    else:
        user.role = role
        db.session.commit()
        flash(f"{user.email} is now {ROLES[role].lower()}.", "success")
    return redirect(url_for(".index"))


@bp.post("/<int:user_id>/delete")
@admin_required
def delete(user_id: int):
    user = db.get_or_404(User, user_id)
    if user.id == current_user.id:
        flash("You cannot remove yourself.", "error")
    else:
        db.session.delete(user)
        db.session.commit()
        flash(f"Removed {user.email}; their API tokens stop working.", "success")
    return redirect(url_for(".index"))
