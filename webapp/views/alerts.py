"""Alerts: list, create/edit with bound destinations, and the alert page with Trigger / Resolve / Mute."""
from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased, selectinload

from .. import alerts as alert_service
from ..alert_form import AlertForm, parse_number
from ..extensions import db
from ..htmx import is_htmx, render
from ..models import Alert, AlertStateChange, Delivery, Destination, Source, alert_destination
from ..sources.alerts import BY_HAND, SourceAlertForm
from .auth import admin_required
from .listing import FAILING, choice_arg, contains, health_of, int_arg, last_attempt_id, search_arg

bp = Blueprint("alerts", __name__, url_prefix="/alerts")


def _get(alert_id: int) -> Alert:
    return db.get_or_404(Alert, alert_id)


def _live_context(alert: Alert, result=None) -> dict:
    deliveries = db.session.scalars(
        select(Delivery).where(Delivery.alert_id == alert.id, Delivery.event != "test").order_by(Delivery.id.desc()).limit(50)
    ).all()
    # The newest 50 by query: alert.history loads every entry ever made (one per re-notification of a re-armed
    # alert), and this runs at every poll of the page's deliveries
    history = db.session.scalars(select(AlertStateChange).where(AlertStateChange.alert_id == alert.id)
                                 .order_by(AlertStateChange.id.desc()).limit(50)).all()
    return {"alert": alert, "result": result, "deliveries": deliveries, "history": history,
            "delivery_groups": group_by_change(deliveries, history)}


@dataclass
class DeliveryGroup:
    """The deliveries one state change (or re-notification) caused."""

    change: AlertStateChange | None
    deliveries: list


def group_by_change(deliveries, history) -> list[DeliveryGroup]:
    """Newest first, by the state change each delivery belongs to: its state_change_id, or else (rows from
    before that column) the newest change to the delivery's state made at or just before it was created."""
    by_id = {change.id: change for change in history}
    groups: list[DeliveryGroup] = []
    for delivery in deliveries:
        change = by_id.get(getattr(delivery, "state_change_id", None))
        if change is None:
            wanted = "ok" if delivery.event == "resolve" else "triggered"
            change = next((c for c in history if c.to_state == wanted
                           and c.created_at <= delivery.created_at + timedelta(seconds=1)
                           and delivery.created_at - c.created_at <= timedelta(minutes=5)), None)
        if groups and groups[-1].change is change:
            groups[-1].deliveries.append(delivery)
        else:
            groups.append(DeliveryGroup(change, [delivery]))
    return groups


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


PER_PAGE = 50
STATE_FILTERS = {"triggered": "Triggered", "ok": "OK", "unknown": "Unknown", "muted": "Muted",
                 "failing": "Destination failing"}
SORTS = {"urgency": "What is on fire", "name": "Name", "changed": "Last change"}
_STATE_RANK = case((Alert.state == "triggered", 0), (Alert.state == "unknown", 1), else_=2)
_SEVERITY_RANK = case(*((Alert.severity == s, i) for i, s in enumerate(Alert.SEVERITIES)), else_=len(Alert.SEVERITIES))


def _failing_alert_ids():
    """Alerts bound to at least one enabled destination whose newest attempted delivery failed."""
    last = aliased(Delivery)
    return (select(alert_destination.c.alert_id)
            .join(Destination, Destination.id == alert_destination.c.destination_id)
            .join(last, last.id == last_attempt_id())
            .where(Destination.enabled.is_(True), last.status.in_(FAILING)))


@bp.get("/")
def index():
    """Triggered first (then by severity), muted shown beside the state; search, filters and pages."""
    filters = {"q": search_arg(), "state": choice_arg("state", STATE_FILTERS),
               "severity": choice_arg("severity", Alert.SEVERITIES), "destination_id": int_arg("destination_id"),
               "destination": search_arg("destination"), "source_id": int_arg("source_id"),
               "sort": choice_arg("sort", SORTS, "urgency")}
    query = select(Alert).options(selectinload(Alert.destinations), selectinload(Alert.source))
    if filters["q"]:
        query = query.where(contains(Alert.name, filters["q"]))
    if filters["state"] in Alert.STATES:
        query = query.where(Alert.state == filters["state"])
    elif filters["state"] == "muted":
        query = query.where(Alert.muted.is_(True))
    elif filters["state"] == "failing":
        query = query.where(Alert.id.in_(_failing_alert_ids()))
    if filters["severity"]:
        query = query.where(Alert.severity == filters["severity"])
    if filters["destination_id"]:
        query = query.where(Alert.id.in_(select(alert_destination.c.alert_id).where(
            alert_destination.c.destination_id == filters["destination_id"])))
    if filters["source_id"]:
        query = query.where(Alert.source_id == filters["source_id"])
    if filters["destination"]:
        query = query.where(Alert.id.in_(
            select(alert_destination.c.alert_id)
            .join(Destination, Destination.id == alert_destination.c.destination_id)
            .where(contains(Destination.name, filters["destination"]))))
    order = {"urgency": (_STATE_RANK, _SEVERITY_RANK, Alert.name, Alert.id),
             "name": (Alert.name, Alert.id),
             "changed": (Alert.last_state_change_at.desc().nulls_last(), Alert.id.desc())}[filters["sort"]]
    page = db.paginate(query.order_by(*order), page=int_arg("page") or 1, per_page=PER_PAGE, error_out=False)
    health = health_of(d.id for alert in page.items for d in alert.destinations)
    destination = db.session.get(Destination, filters["destination_id"]) if filters["destination_id"] else None
    source = db.session.get(Source, filters["source_id"]) if filters["source_id"] else None
    total = db.session.scalar(select(func.count()).select_from(Alert))
    return render("alerts/index.html", "alerts/_list.html", page=page, alerts=page.items, health=health,
                  filters=filters, states=STATE_FILTERS, severities={s: s.capitalize() for s in Alert.SEVERITIES},
                  sorts=SORTS, total=total, destination=destination, source=source)


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
    # An alert from a source: only muted and its extra destinations are Herald's to change
    form_class = SourceAlertForm if alert.from_source else AlertForm
    form = form_class(data=form_class.data_of(alert))
    if form.validate_on_submit():
        form.apply_to(alert)
        db.session.commit()
        flash(f"Saved “{alert.name}”.", "success")
        return redirect(url_for(".show", alert_id=alert.id))
    return render("alerts/form.html", status=422 if form.errors else 200, form=form, alert=alert)


def _refuse_by_hand(alert: Alert):
    """A state change by hand to an alert from a source: refused, saying why (409)."""
    if is_htmx():
        return render("alerts/_live.html", status=409, **_live_context(alert), change_error=BY_HAND)
    flash(BY_HAND, "error")
    return redirect(url_for(".show", alert_id=alert.id), 303)


@bp.post("/<int:alert_id>/state")
@admin_required
def change_state(alert_id: int):
    alert = _get(alert_id)
    if alert.from_source:
        return _refuse_by_hand(alert)
    state = request.form.get("state")
    if state not in ("triggered", "ok"):
        abort(400)
    return _after_change(alert, lambda app: alert_service.set_state(app, alert, state, source="ui",
                                                                    actor=current_user.email))


@bp.post("/<int:alert_id>/value")
@admin_required
def submit_value(alert_id: int):
    alert = _get(alert_id)
    if alert.from_source:
        return _refuse_by_hand(alert)
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
