"""The REST API's one ``NinjaAPI``: routers, error handlers, the OpenAPI document and docs.

Every failure under ``/api/`` is a problem document (``problems.py``): ninja's own validation
errors (400 naming the fields instead of its 422), authentication (401), the resolver's 404
and 403, Django's ``BadRequest`` (a bad reference), a wrong method (405) and an unknown path.
"""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import DocsBase

from . import act, read
from .auth import Credentials
from .problems import Code, Problem, field_errors, missing_confirmation
from .schemas import ProblemOut

logger = logging.getLogger(__name__)

#: Statuses any operation may answer with, as problem documents.
COMMON_PROBLEMS = {
    "400": "Bad input: `errors` names the fields.",
    "401": "No or a bad credential.",
    "403": "Not allowed (or the CSRF check failed).",
    "404": "Unknown, or hidden from you.",
    "429": "Too many failed tokens from your address.",
}


class ReferencePage(DocsBase):
    """Swagger UI from our own static files (``static/vendor/swagger-ui``): no CDN, and no
    inline script or style, so it works inside the site's Content-Security-Policy."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs) -> HttpResponse:
        return render(
            request,
            "api/docs.html",
            {"openapi_url": self.get_openapi_url(api, kwargs), "api": api},
        )


class RegistryAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "ProblemOut" not in components:
            components["ProblemOut"] = ProblemOut.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        problem = {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                # ninja's keys are ints: made strings, so that ours do not duplicate them.
                responses = {str(k): v for k, v in operation.get("responses", {}).items()}
                operation["responses"] = responses
                for status, response in list(responses.items()):
                    if not str(status).startswith("2"):
                        response["content"] = problem
                for status, description in COMMON_PROBLEMS.items():
                    responses.setdefault(status, {"description": description, "content": problem})
        return schema


api = RegistryAPI(
    title="Registry UI",
    version="1",
    description=(
        "The catalog, search, the audit log and sync status, and the cleanup actions of the "
        "web UI, with the same permissions: a repository you may not see is a 404, an action "
        "you may not take a 403. Errors are RFC 9457 problem documents with a stable `code`."
    ),
    urls_namespace="api",
    auth=Credentials(),
    docs=ReferencePage(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
# Actions first: their paths end in "/-/<action>", which the reads' catch-all
# "/repositories/{name}" and "/manifests/{reference}" patterns would otherwise swallow.
api.add_router("", act.router)
api.add_router("", read.router)


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return exc.response()


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    missing = missing_confirmation(exc.errors)
    if missing is not None:
        return missing.response()
    errors = field_errors(exc.errors)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "Invalid input."
    return Problem(400, Code.INVALID_FIELD, detail, errors=errors).response()


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return Problem(
        401,
        Code.NOT_AUTHENTICATED,
        "Send a personal access token or robot secret as 'Authorization: Bearer <token>'.",
        headers={"WWW-Authenticate": 'Bearer realm="registryui"'},
    ).response()


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return Problem(404, Code.NOT_FOUND, str(exc) or "Not found.").response()


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return Problem(403, Code.FORBIDDEN, str(exc) or "Not allowed.").response()


@api.exception_handler(BadRequest)
def _bad_request(request: HttpRequest, exc: BadRequest) -> HttpResponse:
    return Problem(400, Code.BAD_REQUEST, str(exc) or "Bad request.").response()


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return Problem(exc.status_code, Code.BAD_REQUEST, exc.message).response()


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API error on %s %s", request.method, request.path)
    return Problem(500, Code.SERVER_ERROR, "Something went wrong on our side.").response()


@csrf_exempt  # it changes nothing, and a POST to a wrong path must still get a problem
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /api/: a problem document, not the HTML 404 page."""
    return Problem(
        404,
        Code.NOT_FOUND,
        f"No such API path. The reference is at {reverse('api:openapi-view')}.",
    ).response()


def as_problems(view):
    """ninja answers a wrong method with a bare 405: make it a problem document."""

    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/problem+json"
        ):
            allowed = response.get("Allow", "")
            problem = Problem(
                405,
                Code.METHOD_NOT_ALLOWED,
                f"{request.method} is not allowed here; use {allowed}.",
                headers={"Allow": allowed},
            )
            return problem.response()
        return response

    wrapper.csrf_exempt = getattr(view, "csrf_exempt", False)
    return wrapper


def urlpatterns():
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = as_problems(pattern.callback)
    return patterns, app_name, namespace
