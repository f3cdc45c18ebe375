"""Settings → Alert Destinations: list, create (type fields swapped in by htmx), edit, enable/disable, delete.

Thin: every change goes through webapp.destination_service, as the API's and import's do.
"""
from flask import Blueprint, abort, flash, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import destination_service as service
from ..destinations import get_type
from ..extensions import db
from ..htmx import is_htmx, render
from ..json_input import InvalidInput
from ..models import Destination
from .auth import admin_required
from .deliveries import recent_deliveries

bp = Blueprint("destinations", __name__, url_prefix="/settings/destinations")


def _all_destinations():
    # Rows show how many alerts use each destination: load those in one query, not one per row
    return db.session.scalars(select(Destination).options(selectinload(Destination.alerts)).order_by(Destination.name)).all()


def _get(destination_id: int) -> Destination:
    return db.get_or_404(Destination, destination_id)


def _save(destination: Destination, form) -> bool:
    """Save a validated form; False (with the message beside the field) when the service refuses it."""
    try:
        service.save(destination, form)
    except InvalidInput as refusal:
        for name, messages in refusal.fields.items():
            form[name].errors = [*form[name].errors, *messages]
        return False
    return True


def _failed_outcome(message: str) -> dict:
    return {"status": "failed", "error": message, "status_code": None, "detail": None}


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
        form = service.make_form(dtype, data={"name": request.args.get("name", "")})
        if form.validate_on_submit() and _save(Destination(type=dtype.type), form):
            flash(f"Created “{form.name.data}”.", "success")
            return redirect(url_for(".index"))
    if request.method == "POST" and dtype is None:
        abort(400)
    status = 422 if request.method == "POST" else 200
    return render("destinations/new.html", "destinations/_new.html", status=status, dtype=dtype, form=form)


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
    form = service.make_form(dtype)
    outcome, problems = service.send_test(dtype, None, form)
    return _test_response(outcome, problems, form, "destinations/new.html", dtype=dtype)


@bp.post("/<int:destination_id>/test")
@admin_required
def test_existing(destination_id: int):
    """From the edit form (its unsaved values) or from the list's row (the stored settings)."""
    destination = _get(destination_id)
    dtype = destination.destination_type
    if dtype is None:
        abort(404)
    if "name" in request.form:
        form = service.make_form(dtype, destination)
        outcome, problems = service.send_test(dtype, destination, form)
        return _test_response(outcome, problems, form, "destinations/edit.html", dtype=dtype, destination=destination,
                              deliveries=recent_deliveries(destination.id))
    try:
        outcome, _ = service.send_test(dtype, destination)
    except InvalidInput as refusal:
        outcome = _failed_outcome(refusal.message)
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
    if service.secrets_lost(destination) and request.method == "GET":
        flash(service.SECRETS_LOST, "warning")
    form = service.edit_form(dtype, destination)
    if form.validate_on_submit() and _save(destination, form):
        flash(f"Saved “{destination.name}”.", "success")
        return redirect(url_for(".index"))
    service.explain_lost_secrets(form, destination)
    status = 422 if request.method == "POST" else 200
    return render("destinations/edit.html", status=status, dtype=dtype, form=form, destination=destination,
                  deliveries=recent_deliveries(destination.id))


@bp.post("/<int:destination_id>/toggle")
@admin_required
def toggle(destination_id: int):
    destination = _get(destination_id)
    service.set_enabled(destination, not destination.enabled)
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
    # A POST is the answer to the page (or the htmx dialog) that named the alerts using it: confirmed, so forced
    service.delete(destination, force=True)
    if is_htmx():
        return render("destinations/_list.html", destinations=_all_destinations(), notice=f"Deleted “{name}”.")
    flash(f"Deleted “{name}”.", "success")
    return redirect(url_for(".index"))
