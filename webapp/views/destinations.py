"""Settings → Alert Destinations: list, create (type fields swapped in by htmx), edit, enable/disable, delete."""
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ..crypto import SecretsUnreadable
from ..delivery.notifier import get_notifier
from ..destinations import REGISTRY, get_type
from ..extensions import db
from ..htmx import is_htmx, render
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
    return render("destinations/index.html", "destinations/_list.html", **_list_context())


def _form(dtype, destination: Destination | None = None, stored_secrets: dict | None = None, data=None):
    """The type's form on the POSTed values (typed secrets carried over a refusal), or on `data` for a GET.

    Returns (form, stored secrets still in force): a stored optional secret the user cleared is no longer kept.
    """
    secret_names = dtype.secret_fields()
    kept = {k: v for k, v in (stored_secrets or {}).items() if k not in form_secrets.cleared(secret_names)}
    form = dtype.form(formdata=form_secrets.form_data(secret_names), data=data,
                      destination_id=destination.id if destination else None, stored_secrets=kept.keys())
    return form, kept


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
        form, _ = _form(dtype, data={"name": request.args.get("name", "")})
        if form.validate_on_submit() and _save(Destination(type=dtype.type), form, {}):
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
    form, _ = _form(dtype, data={"name": _copy_name(source.name), "enabled": source.enabled, **source.options})
    return render("destinations/new.html", dtype=dtype, form=form, duplicate_of=source)


def _copy_name(name: str) -> str:
    """"Copy of X", then "Copy 2 of X"…: the first that is free, at most 100 characters."""
    for n in range(1, 100):
        candidate = (f"Copy of {name}" if n == 1 else f"Copy {n} of {name}")[:100]
        if db.session.scalar(select(Destination.id).where(Destination.name == candidate)) is None:
            return candidate
    return f"Copy of {name}"[:100]


def _test_with_form(dtype, form, stored_secrets: dict, destination: Destination | None):
    """Send a test with the form's (unsaved) values; blank secrets fall back to the stored ones."""
    problems = form.validate_options()
    if problems:
        return None, problems
    options, secrets = form.split_options(stored_secrets)
    name = form.name.data or (destination.name if destination else "")
    if destination is None:
        name = f"{name or 'New destination'} {UNSAVED_FORM}"[-100:]
    outcome = get_notifier(current_app._get_current_object()).send_test(
        dtype, {**options, **secrets}, name=name, destination_id=destination.id if destination else None)
    if outcome["status"] != "sent":
        outcome["error"] = human_error(outcome["error"], _target_url({**options, **secrets}))
        field = field_for_failure(form, outcome)
        if field is not None:
            problems = {field.name: [f"The test failed here: {outcome['error']}"]}
            field.errors = problems[field.name]
    return outcome, problems


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


@bp.post("/test")
@admin_required
def test_new():
    dtype = get_type(request.args.get("type"))
    if dtype is None:
        abort(404)
    form, _ = _form(dtype)
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
        form, kept = _form(dtype, destination, stored_secrets)
        outcome, problems = _test_with_form(dtype, form, kept, destination)
        return _test_response(outcome, problems, form, "destinations/edit.html", dtype=dtype, destination=destination,
                              deliveries=recent_deliveries(destination.id))
    if destination.encrypted_secrets and not stored_secrets:
        outcome = {"status": "failed", "error": SECRETS_LOST, "status_code": None, "detail": None}
    else:
        outcome = get_notifier(current_app._get_current_object()).send_test(
            dtype, destination.config, name=destination.name, destination_id=destination.id)
        if outcome["status"] != "sent":
            outcome["error"] = human_error(outcome["error"], _target_url(destination.config))
    if is_htmx():
        return render("destinations/_test_result.html", outcome=outcome, problems={})
    flash(f"Test to “{destination.name}”: " + (
        "sent." if outcome["status"] == "sent" else f"failed. {outcome['error']}"), "success" if outcome["status"] == "sent" else "error")
    return redirect(url_for(".index"))


def _preview_with_form(dtype, form, stored_secrets: dict):
    problems = form.validate_options()
    if problems:
        return None, problems
    options, secrets = form.split_options(stored_secrets)
    cfg = current_app.config
    return preview(dtype, {**options, **secrets}, cfg["HERALD_BASE_URL"],
                   bool(cfg["HERALD_BLOCK_PRIVATE_DESTINATIONS"])), {}


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
    dtype = get_type(request.args.get("type"))
    if dtype is None:
        abort(404)
    form, _ = _form(dtype)
    events, problems = _preview_with_form(dtype, form, {})
    return _preview_response(events, problems, form, "destinations/new.html", dtype=dtype)


@bp.post("/<int:destination_id>/preview")
@admin_required
def preview_existing(destination_id: int):
    destination = _get(destination_id)
    dtype = destination.destination_type
    if dtype is None:
        abort(404)
    form, kept = _form(dtype, destination, _stored_secrets(destination))
    events, problems = _preview_with_form(dtype, form, kept)
    return _preview_response(events, problems, form, "destinations/edit.html", dtype=dtype, destination=destination,
                             deliveries=recent_deliveries(destination.id))


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
    form, kept = _form(dtype, destination, stored_secrets,
                       data={"name": destination.name, "enabled": destination.enabled, **destination.options})
    if form.validate_on_submit() and _save(destination, form, kept):
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
    db.session.delete(destination)
    db.session.commit()
    if is_htmx():
        return render("destinations/_list.html", **_list_context(notice=f"Deleted “{name}”."))
    flash(f"Deleted “{name}”.", "success")
    return redirect(url_for(".index"))
