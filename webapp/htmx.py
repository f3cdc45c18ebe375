"""Fragments for htmx, whole pages for everyone else, from one URL."""
from flask import make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render(page: str, fragment: str | None = None, status: int = 200, **context):
    """Render `fragment` for htmx requests and `page` otherwise; the answer varies on HX-Request."""
    template = fragment if fragment and is_htmx() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response
