"""Settings → Alert Destinations: list, create (type fields swapped in by htmx), edit, enable/disable, delete.

Thin: every change goes through webapp.destination_service, as the API's and import's do.
"""
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from .. import destination_service as service
from ..destinations import REGISTRY, get_type
from ..extensions import db
from ..htmx import is_htmx, render
from ..json_input import InvalidInput
from ..models import Delivery, Destination, alert_destination
from .auth import admin_required
from .deliveries import recent_deliveries
from . import form_secrets
from .field_errors import field_for_failure
from .readable import UNSAVED_FORM, human_error
from ..preview import preview
from .listing import FAILING, choice_arg, contains, health_of, int_arg, last_attempt_id, search_arg

bp = Blueprint("destinations", __name__, url_prefix="/settings/destinations")


PER_PAGE = 50
STATES = {"enabled": "Enabled", "disabled": "Disabled", "failing": "Failing", "healthy": "Last delivery sent",
          "unused": "Used by no alert"}
SORTS = {"name": "Name", "type": "Type", "health": "Failing first", "created": "Newest first"}


def _list_context(notice: str | None = None) -> dict:
    """One page of destinations for the list's search, filters and sort, with each row's health."""
    filters = {"q": search_arg(), "type": choice_arg("type", REGISTRY), "state": choice_arg("state", STATES),
               "sort": choice_arg("sort", SORTS, "name")}
    query = select(Destination)
    if filters["q"]:
        query = query.where(contains(Destination.name, filters["q"]))
    if filters["type"]:
        query = query.where(Destination.type == filters["type"])
    last = aliased(Delivery)
    if filters["state"] in ("failing", "healthy") or filters["sort"] == "health":
        query = query.outerjoin(last, last.id == last_attempt_id())
    if filters["state"] == "enabled":
        query = query.where(Destination.enabled.is_(True))
    elif filters["state"] == "disabled":
        query = query.where(Destination.enabled.is_(False))
    elif filters["state"] == "failing":  # as the row says: a disabled destination shows Disabled, not Failing
        query = query.where(Destination.enabled.is_(True), last.status.in_(FAILING))
    elif filters["state"] == "healthy":
        query = query.where(last.status == "sent")
    elif filters["state"] == "unused":
        query = query.where(~select(alert_destination.c.alert_id)
                            .where(alert_destination.c.destination_id == Destination.id).exists())
    order = {
        "name": (Destination.name,),
        "type": (Destination.type, Destination.name),
        "created": (Destination.created_at.desc(), Destination.id.desc()),
        "health": (case((last.status.in_(FAILING), 0), (last.status == "sent", 2), else_=1), Destination.name),
    }[filters["sort"]]
    page = db.paginate(query.order_by(*order), page=int_arg("page") or 1, per_page=PER_PAGE, error_out=False)
    total = db.session.scalar(select(func.count()).select_from(Destination))
    return {"page": page, "destinations": page.items, "health": health_of(d.id for d in page.items),
            "filters": filters, "states": STATES, "sorts": SORTS, "total": total, "notice": notice,
            "type_labels": {key: t.label for key, t in sorted(REGISTRY.items(), key=lambda item: item[1].label)}}


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
    return render("destinations/index.html", "destinations/_list.html", **_list_context())


def _form(dtype, destination: Destination | None = None, data=None):
    """The service's form on the POSTed values (typed secrets carried over a refusal), or on `data` for a GET.

    A stored optional secret the user cleared is not kept; the others are, while their destination address stays.
    """
    secret_names = dtype.secret_fields()
    cleared = form_secrets.cleared(secret_names)
    kept = [name for name in service.stored_secrets(destination) if name not in cleared]
    return service.make_form(dtype, destination, kept_secrets=kept, formdata=form_secrets.form_data(secret_names),
                             data=data)


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
        form = _form(dtype, data={"name": request.args.get("name", "")})
        if form.validate_on_submit() and _save(Destination(type=dtype.type), form):
            flash(f"Created “{form.name.data}”.", "success")
            return redirect(url_for(".index"))
    if request.method == "POST" and dtype is None:
        abort(400)
    status = 422 if request.method == "POST" else 200
    return render("destinations/new.html", "destinations/_new.html", status=status, dtype=dtype, form=form)


@bp.get("/<int:destination_id>/duplicate")
@admin_required
def duplicate(destination_id: int):
    """A new destination's form filled with this one's options; secrets stay behind and are typed again."""
    source = _get(destination_id)
    dtype = source.destination_type
    if dtype is None:
        abort(404)
    # Public options only: the secrets, URL credentials included, stay behind
    form = _form(dtype, data={**service.edit_data(source), "name": _copy_name(source.name)})
    return render("destinations/new.html", dtype=dtype, form=form, duplicate_of=source)


def _copy_name(name: str) -> str:
    """"Copy of X", then "Copy 2 of X"…: the first that is free, at most 100 characters."""
    for n in range(1, 100):
        candidate = (f"Copy of {name}" if n == 1 else f"Copy {n} of {name}")[:100]
        if db.session.scalar(select(Destination.id).where(Destination.name == candidate)) is None:
            return candidate
    return f"Copy of {name}"[:100]


def _test_with_form(dtype, form, destination: Destination | None):
    """Send a test with the form's (unsaved) values; a failure is worded for people and shown beside its field."""
    name = None
    if destination is None:
        name = f"{form.name.data or 'New destination'} {UNSAVED_FORM}"[-100:]
    outcome, problems = service.send_test(dtype, destination, form, name=name, on_failure=_reword_failure)
    if outcome is not None and outcome["status"] != "sent":
        field = field_for_failure(form, outcome)
        if field is not None:
            problems = {field.name: [f"The test failed here: {outcome['error']}"]}
            field.errors = problems[field.name]
    return outcome, problems


def _reword_failure(outcome: dict, config: dict) -> None:
    outcome["error"] = human_error(outcome["error"], _target_url(config))


def _target_url(config: dict) -> str | None:
    """The URL a destination sends to (its first http(s) option), to name host and port in an error."""
    return next((v for k, v in config.items() if "url" in k and isinstance(v, str) and v.startswith("http")), None)


def _test_response(outcome, problems, form, page, **context):
    """htmx: only the result box (and the fields it marks). Without JavaScript: the whole form page again."""
    if is_htmx():
        return render("destinations/_test_result.html", outcome=outcome, problems=problems, form=form,
                      oob_fields=True, **context)
    return render(page, status=422 if problems and not outcome else 200, form=form, outcome=outcome,
                  problems=problems, **context)


def _type_of(destination: Destination | None):
    """The destination's type, or for a new one the `?type=` asked for; 404 when there is none."""
    dtype = destination.destination_type if destination else get_type(request.args.get("type"))
    if dtype is None:
        abort(404)
    return dtype


def _unsaved_form(destination: Destination | None):
    """The request's unsaved form values for a new or stored destination, with the page that shows them."""
    dtype = _type_of(destination)
    if destination is None:
        return dtype, _form(dtype), "destinations/new.html", {"dtype": dtype}
    return dtype, _form(dtype, destination), "destinations/edit.html", {
        "dtype": dtype, "destination": destination, "deliveries": recent_deliveries(destination.id)}


@bp.post("/test")
@admin_required
def test_new():
    dtype, form, page, context = _unsaved_form(None)
    outcome, problems = _test_with_form(dtype, form, None)
    return _test_response(outcome, problems, form, page, **context)


@bp.post("/<int:destination_id>/test")
@admin_required
def test_existing(destination_id: int):
    """From the edit form (its unsaved values) or from the list's row (the stored settings)."""
    destination = _get(destination_id)
    dtype = _type_of(destination)
    if "name" in request.form:
        dtype, form, page, context = _unsaved_form(destination)
        outcome, problems = _test_with_form(dtype, form, destination)
        return _test_response(outcome, problems, form, page, **context)
    try:
        outcome, _ = service.send_test(dtype, destination, on_failure=_reword_failure)
    except InvalidInput as refusal:
        outcome = _failed_outcome(refusal.message)
    if is_htmx():
        return render("destinations/_test_result.html", outcome=outcome, problems={})
    flash(f"Test to “{destination.name}”: " + (
        "sent." if outcome["status"] == "sent" else f"failed. {outcome['error']}"), "success" if outcome["status"] == "sent" else "error")
    return redirect(url_for(".index"))


def _preview_with_form(dtype, form, destination: Destination | None):
    """The preview of the form's (unsaved) values: a stored secret is used only where a test send would use it."""
    config, problems = service.config_from_form(form, destination)
    if problems:
        return None, problems
    cfg = current_app.config
    return preview(dtype, config, cfg["HERALD_BASE_URL"], bool(cfg["HERALD_BLOCK_PRIVATE_DESTINATIONS"])), {}


def _preview_response(events, problems, form, page, **context):
    if is_htmx():
        return render("destinations/_preview.html", events=events, preview_problems=problems, problems=problems,
                      form=form, oob_fields=True, **context)
    return render(page, status=422 if problems else 200, form=form, preview_events=events, preview_problems=problems,
                  **context)


@bp.post("/preview")
@admin_required
def preview_new():
    """What the unsaved form's destination would receive, built by its own send path, sent nowhere."""
    dtype, form, page, context = _unsaved_form(None)
    events, problems = _preview_with_form(dtype, form, None)
    return _preview_response(events, problems, form, page, **context)


@bp.post("/<int:destination_id>/preview")
@admin_required
def preview_existing(destination_id: int):
    destination = _get(destination_id)
    dtype, form, page, context = _unsaved_form(destination)
    events, problems = _preview_with_form(dtype, form, destination)
    return _preview_response(events, problems, form, page, **context)


@bp.route("/<int:destination_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(destination_id: int):
    destination = _get(destination_id)
    dtype = _type_of(destination)
    if service.secrets_lost(destination) and request.method == "GET":
        flash(service.SECRETS_LOST, "warning")
    form = _form(dtype, destination, data=service.edit_data(destination))
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
        return render("destinations/_row.html", destination=destination, health=health_of([destination.id]))
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
        return render("destinations/_list.html", **_list_context(notice=f"Deleted “{name}”."))
    flash(f"Deleted “{name}”.", "success")
    return redirect(url_for(".index"))
