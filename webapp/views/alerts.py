"""Alerts: list, create/edit with bound destinations, and the alert page with Trigger / Resolve / Mute."""
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import alerts as alert_service
from ..alert_form import AlertForm, parse_number
from ..extensions import db
from ..htmx import is_htmx, render
from ..models import Alert, Delivery
from .auth import admin_required

bp = Blueprint("alerts", __name__, url_prefix="/alerts")


def _get(alert_id: int) -> Alert:
    return db.get_or_404(Alert, alert_id)


def _live_context(alert: Alert, result=None) -> dict:
    deliveries = db.session.scalars(
        select(Delivery).where(Delivery.alert_id == alert.id, Delivery.event != "test").order_by(Delivery.id.desc()).limit(50)
    ).all()
    return {"alert": alert, "result": result, "deliveries": deliveries, "history": alert.history[:50]}


def _after_change(alert: Alert, change):
    """Run the change; htmx gets the alert page's live part, without JavaScript back to the alert page."""
    try:
        result = change(current_app._get_current_object())
    except alert_service.ChangeNotRecorded as exc:
        if is_htmx():
            return render("alerts/_live.html", status=503, **_live_context(alert), change_error=str(exc))
        flash(str(exc), "error")
        return redirect(url_for(".show", alert_id=alert.id))
    if is_htmx():
        return render("alerts/_live.html", **_live_context(alert, result))
    flash(result.message, "success")
    return redirect(url_for(".show", alert_id=alert.id))


@bp.get("/")
def index():
    alerts = db.session.scalars(select(Alert).options(selectinload(Alert.destinations)).order_by(Alert.name)).all()
    return render("alerts/index.html", alerts=alerts)


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    form = AlertForm()
    if form.validate_on_submit():
        alert = form.apply_to(Alert())
        db.session.add(alert)
        db.session.commit()
        flash(f"Created the alert “{alert.name}”.", "success")
        return redirect(url_for(".show", alert_id=alert.id))
    return render("alerts/form.html", status=422 if form.errors else 200, form=form, alert=None)


@bp.get("/<int:alert_id>")
def show(alert_id: int):
    alert = _get(alert_id)
    return render("alerts/show.html", "alerts/_live.html", **_live_context(alert))


@bp.get("/<int:alert_id>/deliveries")
def deliveries(alert_id: int):
    """The alert page's deliveries, which the page polls while any is still pending."""
    return render("alerts/show.html", "alerts/_deliveries.html", **_live_context(_get(alert_id)))


@bp.route("/<int:alert_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(alert_id: int):
    alert = _get(alert_id)
    form = AlertForm(data=AlertForm.data_of(alert))
    if form.validate_on_submit():
        form.apply_to(alert)
        db.session.commit()
        flash(f"Saved “{alert.name}”.", "success")
        return redirect(url_for(".show", alert_id=alert.id))
    return render("alerts/form.html", status=422 if form.errors else 200, form=form, alert=alert)


@bp.post("/<int:alert_id>/state")
@admin_required
def change_state(alert_id: int):
    alert = _get(alert_id)
    state = request.form.get("state")
    if state not in ("triggered", "ok"):
        abort(400)
    return _after_change(alert, lambda app: alert_service.set_state(app, alert, state, source="ui",
                                                                    actor=current_user.email))


@bp.post("/<int:alert_id>/value")
@admin_required
def submit_value(alert_id: int):
    alert = _get(alert_id)
    try:
        value = parse_number(request.form.get("value", ""))
    except ValueError:
        value = None
    if value is None or alert.condition is None:
        message = "Enter a number." if alert.condition else "This alert has no condition."
        if is_htmx():
            return render("alerts/_live.html", **_live_context(alert), value_error=message)
        flash(message, "error")
        return redirect(url_for(".show", alert_id=alert.id))
    return _after_change(alert, lambda app: alert_service.submit_value(app, alert, value, actor=current_user.email,
                                                                       source="ui"))


@bp.post("/<int:alert_id>/mute")
@admin_required
def toggle_mute(alert_id: int):
    alert = _get(alert_id)
    alert.muted = not alert.muted
    db.session.commit()
    return _after_change(alert, lambda app: alert_service.StateChangeResult(
        alert, alert.state, changed=False, notified=False,
        message="Muted: changes are recorded and nobody is notified." if alert.muted
        else "Unmuted: destinations will be notified again."))


@bp.route("/<int:alert_id>/delete", methods=["GET", "POST"])
@admin_required
def delete(alert_id: int):
    alert = _get(alert_id)
    if request.method == "GET":
        return render("alerts/delete.html", alert=alert)
    name = alert.name
    alert_service.delete_alert(alert)
    flash(f"Deleted the alert “{name}”.", "success")
    return redirect(url_for(".index"))
