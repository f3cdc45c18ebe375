"""First-run setup, sign-in and sign-out; every other page requires a signed-in user."""
from functools import wraps
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import EqualTo, InputRequired, Length, ValidationError

from ..extensions import db, login_manager
from ..forms import HeraldForm
from ..models import User

bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static", "health.healthz", "health.metrics"}
MIN_PASSWORD = 8


def validate_credentials(email: str, password: str) -> dict[str, str]:
    """Field name → message for a new user's email and password (shared by /setup and the CLI)."""
    errors = {}
    try:
        validate_email((email or "").strip(), check_deliverability=False)
    except EmailNotValidError:
        errors["email"] = "Enter a valid email address."
    if len(password or "") < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters."
    return errors


class SetupForm(HeraldForm):
    email = EmailField("Email", [InputRequired(), Length(max=254)], render_kw={"autocomplete": "username"})
    password = PasswordField("Password", [InputRequired(), Length(max=256)], render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat password", [InputRequired(), EqualTo("password", "The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for name, message in validate_credentials(self.email.data, self.password.data).items():
            if not getattr(self, name).errors:
                getattr(self, name).errors.append(message)
                ok = False
        return ok


class LoginForm(HeraldForm):
    email = EmailField("Email", [InputRequired(), Length(max=254)], render_kw={"autocomplete": "username"})
    password = PasswordField("Password", [InputRequired(), Length(max=256)], render_kw={"autocomplete": "current-password"})
    remember = BooleanField("Keep me signed in")


@login_manager.user_loader
def load_user(session_id: str):
    # On every request, from the session or the remember cookie: "id:token", and the token must still be the user's
    return User.by_session_id(session_id)


def admin_required(view):
    """Viewers may read every page but change nothing."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def init_app(app):
    @app.before_request
    def require_user():
        # The API authenticates its own requests with bearer tokens
        if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint == "api" or request.path.startswith("/api/"):
            return None
        if request.blueprint == "inbound" or request.path.startswith("/inbound/"):  # the token in the URL is the key
            return None
        if not User.any_exist():
            return redirect(url_for("auth.setup"))
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after sign-in would be a phishing aid. Browsers drop tabs and
    # newlines from URLs, so "/\t/evil.example" would become "//evil.example": refuse control characters too.
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(c) < 0x20 or ord(c) == 0x7f for c in target)):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("index")


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if User.any_exist():
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        user = User(email=User.normalize_email(form.email.data), role="admin")
        user.set_password(form.password.data)
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:  # someone else finished setup a moment ago
            db.session.rollback()
            return redirect(url_for("auth.login"))
        login_user(user)
        flash("Welcome to Herald. Add your first alert destination.", "success")
        return redirect(url_for("destinations.index"))
    return render_template("auth/setup.html", form=form), 422 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not User.any_exist():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    if form.validate_on_submit():
        throttle = current_app.extensions["herald_login_throttle"]
        keys = (request.remote_addr, form.email.data)
        wait = throttle.retry_after(*keys)
        if wait:
            minutes = max(1, round(wait / 60))
            form.password.errors.append(f"Too many failed sign-ins. Try again in about {minutes} minute{'s' if minutes > 1 else ''}.")
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(wait)}
        user = User.by_email(form.email.data)
        if user is not None and user.check_password(form.password.data):
            throttle.succeeded(*keys)
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
        if user is None:
            User.spend_password_check_time()
        throttle.failed(*keys)
        form.password.errors.append("Wrong email or password.")
    return render_template("auth/login.html", form=form), 422 if form.errors else 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))


class PasswordForm(HeraldForm):
    current = PasswordField("Current password", [InputRequired("Enter your current password."), Length(max=256)],
                            render_kw={"autocomplete": "current-password"})
    password = PasswordField("New password", [InputRequired("Choose a new password."), Length(max=256)],
                             description=f"At least {MIN_PASSWORD} characters.", render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat the new password", [InputRequired(), EqualTo("password", "The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})

    def validate_current(self, field):
        if not current_user.check_password(field.data or ""):
            raise ValidationError("This is not your current password.")

    def validate_password(self, field):
        if len(field.data or "") < MIN_PASSWORD:
            raise ValidationError(f"Use at least {MIN_PASSWORD} characters.")


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Your account: change your password (which signs out your other browsers), or sign out everywhere."""
    form = PasswordForm()
    if form.validate_on_submit():
        current_user.set_password(form.password.data)
        db.session.commit()
        login_user(current_user._get_current_object())  # this browser stays signed in, with the new token
        flash("Password changed. Every other browser signed in as you has been signed out.", "success")
        return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form), 422 if form.errors else 200


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    current_user.sign_out_everywhere()
    db.session.commit()
    logout_user()
    flash("Signed out everywhere: every browser and remember-me cookie of yours must sign in again.", "info")
    return redirect(url_for("auth.login"))
