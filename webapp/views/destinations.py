"""Settings → Alert Destinations: list, create (type fields swapped in by htmx), edit, enable/disable, delete."""
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..crypto import SecretsUnreadable
from ..delivery.notifier import get_notifier
from ..destinations import get_type
from ..extensions import db
from ..htmx import is_htmx, render
from ..models import Destination
from .auth import admin_required
from .deliveries import recent_deliveries

bp = Blueprint("destinations", __name__, url_prefix="/settings/destinations")


def _all_destinations():
    # Rows show how many alerts use each destination: load those in one query, not one per row
    return db.session.scalars(select(Destination).options(selectinload(Destination.alerts)).order_by(Destination.name)).all()


def _get(destination_id: int) -> Destination:
    return db.get_or_404(Destination, destination_id)


SECRETS_LOST = ("The stored secrets of this destination cannot be decrypted: the encryption key changed. "
                "Type them again and save.")


def _stored_secrets(destination: Destination) -> dict:
    """The decrypted secrets, or none when the key changed: the form then asks for them again."""
    try:
        return destination.secrets
    except SecretsUnreadable:
        return {}


def _save(destination: Destination, form, stored_secrets: dict) -> bool:
    """Copy a validated form onto `destination` and commit; False (with a field error) on a name race."""
    db.session.add(form.apply_to(destination, stored_secrets))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.name.errors.append("Another destination already has this name.")
        return False
    return True


@bp.get("/")
def index():
    return render("destinations/index.html", destinations=_all_destinations())


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    type_key = request.args.get("type")
    dtype = get_type(type_key)
    if type_key and dtype is None:
        abort(404)
    form = None
    if dtype:
        # The name typed before switching type comes along (hx-include), so switching loses nothing
        form = dtype.form(data={"name": request.args.get("name", "")})
        if form.validate_on_submit() and _save(Destination(type=dtype.type), form, {}):
            flash(f"Created “{form.name.data}”.", "success")
            return redirect(url_for(".index"))
    if request.method == "POST" and dtype is None:
        abort(400)
    status = 422 if request.method == "POST" else 200
    return render("destinations/new.html", "destinations/_new.html", status=status, dtype=dtype, form=form)


def _test_with_form(dtype, form, stored_secrets: dict, destination: Destination | None):
    """Send a test with the form's (unsaved) values; blank secrets fall back to the stored ones."""
    problems = form.validate_options()
    if problems:
        return None, problems
    options, secrets = form.split_options(stored_secrets)
    name = form.name.data or (destination.name if destination else "")
    outcome = get_notifier(current_app._get_current_object()).send_test(
        dtype, {**options, **secrets}, name=name, destination_id=destination.id if destination else None)
    return outcome, {}


def _test_response(outcome, problems, form, page, **context):
    """htmx: only the result box. Without JavaScript: the whole form page again, with the result above it."""
    if is_htmx():
        return render("destinations/_test_result.html", outcome=outcome, problems=problems, form=form)
    return render(page, status=422 if problems else 200, form=form, outcome=outcome, problems=problems, **context)


@bp.post("/test")
@admin_required
def test_new():
    dtype = get_type(request.args.get("type"))
    if dtype is None:
        abort(404)
    form = dtype.form()
    outcome, problems = _test_with_form(dtype, form, {}, None)
    return _test_response(outcome, problems, form, "destinations/new.html", dtype=dtype)


@bp.post("/<int:destination_id>/test")
@admin_required
def test_existing(destination_id: int):
    """From the edit form (its unsaved values) or from the list's row (the stored settings)."""
    destination = _get(destination_id)
    dtype = destination.destination_type
    if dtype is None:
        abort(404)
    stored_secrets = _stored_secrets(destination)
    if "name" in request.form:
        form = dtype.form(destination_id=destination.id, stored_secrets=stored_secrets.keys())
        outcome, problems = _test_with_form(dtype, form, stored_secrets, destination)
        return _test_response(outcome, problems, form, "destinations/edit.html", dtype=dtype, destination=destination,
                              deliveries=recent_deliveries(destination.id))
    if destination.encrypted_secrets and not stored_secrets:
        outcome = {"status": "failed", "error": SECRETS_LOST, "status_code": None, "detail": None}
    else:
        outcome = get_notifier(current_app._get_current_object()).send_test(
            dtype, destination.config, name=destination.name, destination_id=destination.id)
    if is_htmx():
        return render("destinations/_test_result.html", outcome=outcome, problems={})
    flash(f"Test to “{destination.name}”: " + (
        "sent." if outcome["status"] == "sent" else f"failed. {outcome['error']}"), "success" if outcome["status"] == "sent" else "error")
    return redirect(url_for(".index"))


@bp.route("/<int:destination_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(destination_id: int):
    destination = _get(destination_id)
    dtype = destination.destination_type
    if dtype is None:
        abort(404)
    stored_secrets = _stored_secrets(destination)
    if destination.encrypted_secrets and not stored_secrets and request.method == "GET":
        flash(SECRETS_LOST, "warning")
    form = dtype.form(
        data={"name": destination.name, "enabled": destination.enabled, **destination.options},
        destination_id=destination.id,
        stored_secrets=stored_secrets.keys(),
    )
    if form.validate_on_submit() and _save(destination, form, stored_secrets):
        flash(f"Saved “{destination.name}”.", "success")
        return redirect(url_for(".index"))
    status = 422 if request.method == "POST" else 200
    return render("destinations/edit.html", status=status, dtype=dtype, form=form, destination=destination,
                  deliveries=recent_deliveries(destination.id))


@bp.post("/<int:destination_id>/toggle")
@admin_required
def toggle(destination_id: int):
    destination = _get(destination_id)
    destination.enabled = not destination.enabled
    db.session.commit()
    if is_htmx():
        return render("destinations/_row.html", destination=destination)
    flash(f"“{destination.name}” is now {'enabled' if destination.enabled else 'disabled'}.", "success")
    return redirect(url_for(".index"))


@bp.route("/<int:destination_id>/delete", methods=["GET", "POST"])
@admin_required
def delete(destination_id: int):
    destination = _get(destination_id)
    if request.method == "GET":
        return render("destinations/delete.html", destination=destination)
    name = destination.name
    db.session.delete(destination)
    db.session.commit()
    if is_htmx():
        return render("destinations/_list.html", destinations=_all_destinations(), notice=f"Deleted “{name}”.")
    flash(f"Deleted “{name}”.", "success")
    return redirect(url_for(".index"))
