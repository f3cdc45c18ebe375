"""Fragments for htmx, whole pages for everyone else, from one URL."""
from flask import make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render(page_template: str, fragment_template: str | None = None, status: int = 200, **context):
    """Render the fragment for htmx requests and the whole page otherwise; the answer varies on HX-Request."""
    template = fragment_template if fragment_template and is_htmx() else page_template
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response
