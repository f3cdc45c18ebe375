"""Settings → Alert sources: list, create, edit, rotate the inbound URL, delete. Thin: webapp.sources.service."""
from flask import Blueprint, flash, redirect, request, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..htmx import is_htmx, render
from ..json_input import InvalidInput
from ..models import Alert
from ..sources import service
from ..sources.models import Source
from .auth import admin_required

bp = Blueprint("sources", __name__, url_prefix="/settings/sources")
LISTED_ON_DELETE = 20  # of the alerts a delete takes with it, the newest shown on its page


def _get(source_id: int) -> Source:
    return db.get_or_404(Source, source_id)


def _listed() -> dict:
    """The list's sources, and how many alerts each has made: counted, as a source's alerts grow without end (one
    per label set Alertmanager or Grafana ever sent), and loading them to count them read every one."""
    counts = dict(db.session.execute(select(Alert.source_id, func.count()).where(Alert.source_id.is_not(None))
                                     .group_by(Alert.source_id)).all())
    return {"sources": db.session.scalars(select(Source).order_by(Source.name)).all(), "alert_counts": counts}


@bp.get("/")
def index():
    return render("sources/index.html", "sources/_list.html", **_listed())


def _saved(form, save):
    """save(form) once the form validates; None when it does not, or the service refuses (a name taken
    meanwhile: the message goes beside its field)."""
    if not form.validate_on_submit():
        return None
    try:
        return save(form)
    except InvalidInput as refusal:
        for name, messages in refusal.fields.items():
            if name in form:
                form[name].errors = [*form[name].errors, *messages]
        return None


def _shown_once(source: Source, token: str, new: bool):
    return render("sources/created.html", source=source, url=service.inbound_url(token), new=new,
                  webhook_example=service.webhook_example(source.mapping))


def _with_blank_route(form):
    form.add_blank_route()
    return form


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    form = service.make_form(data={"kind": request.args.get("kind") or "alertmanager"} if request.method == "GET"
                             else None)
    created = _saved(form, service.create)
    if created:
        return _shown_once(*created, new=True)
    status = 422 if request.method == "POST" else 200
    return render("sources/form.html", status=status, form=_with_blank_route(form), source=None)


@bp.route("/<int:source_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(source_id: int):
    source = _get(source_id)
    form = service.make_form(source, data=service.SourceForm.data_of(source))
    if _saved(form, lambda f: service.save(source, f)):
        flash(f"Saved “{source.name}”.", "success")
        return redirect(url_for(".index"))
    status = 422 if request.method == "POST" else 200
    return render("sources/form.html", status=status, form=_with_blank_route(form), source=source)


@bp.route("/<int:source_id>/rotate", methods=["GET", "POST"])
@admin_required
def rotate(source_id: int):
    source = _get(source_id)
    if request.method == "GET":
        return render("sources/rotate.html", source=source)
    return _shown_once(source, service.rotate(source), new=False)


@bp.route("/<int:source_id>/delete", methods=["GET", "POST"])
@admin_required
def delete(source_id: int):
    source = _get(source_id)
    if request.method == "GET":
        return render("sources/delete.html", source=source, alert_count=service.alert_count(source),
                      listed=service.newest_alerts(source, LISTED_ON_DELETE))
    name = source.name
    service.delete(source)
    if is_htmx():
        return render("sources/_list.html", **_listed(), notice=f"Deleted “{name}”.")
    flash(f"Deleted “{name}”.", "success")
    return redirect(url_for(".index"))
