"""The login and logout pages (password form, "Sign in with …"), and the OIDC views."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from mozilla_django_oidc import views as oidc_views

from . import oidc
from .forms import LoginForm
from .passwords import audit_failure

log = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = False

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = oidc.enabled()
        context["oidc_name"] = settings.OIDC_PROVIDER_NAME
        context["password_form"] = settings.LOGIN_PASSWORD_FORM or not oidc.enabled()
        return context

    def post(self, request, *args, **kwargs):
        if oidc.enabled() and not settings.LOGIN_PASSWORD_FORM:
            # The page offers only the provider; the admin's login page stays for local
            # accounts (e.g. the first superuser).
            return render(
                request,
                "registration/login.html",
                self.get_context_data(form=self.get_form_class()(request)),
                status=400,
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.locked.retry_after)
        elif getattr(self.request, "directory_unavailable", False):
            response.status_code = 503
        return response


@never_cache
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Log out here, and at the provider too when the session came from it."""
    target = None
    if request.user.is_authenticated and request.session.get("oidc_id_token"):
        target = oidc.provider_logout_url(request)
    auth.logout(request)
    if target:
        # A page that moves on by itself (meta refresh) rather than a redirect: browsers apply
        # the CSP's form-action 'self' to redirects after a form's POST, and this one leaves
        # for the provider's origin.
        return render(
            request,
            "accounts/provider_logout.html",
            {"target": target, "provider_name": settings.OIDC_PROVIDER_NAME},
        )
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))


class OIDCStartView(oidc_views.OIDCAuthenticationRequestView):
    """Redirects to the provider with a fresh state, nonce and PKCE challenge."""

    get_settings = staticmethod(oidc.oidc_setting)

    def __init__(self, *args, **kwargs) -> None:
        # Endpoints are discovered per request (in ``get``), not when the view is made.
        super(oidc_views.OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not oidc.enabled():
            return render(
                request, "accounts/sso_failed.html", {"reason": "not_enabled"}, status=404
            )
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except oidc.ProviderError as exc:
            log.warning("%s", exc)
            return render(
                request, "accounts/sso_failed.html", {"reason": "unreachable"}, status=503
            )
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        return super().get(request)


class OIDCCallbackView(oidc_views.OIDCAuthenticationCallbackView):
    """The provider's redirect back: state, nonce and code checked, the user logged in."""

    get_settings = staticmethod(oidc.oidc_setting)

    def get(self, request):
        if not oidc.enabled():
            return render(
                request, "accounts/sso_failed.html", {"reason": "not_enabled"}, status=404
            )
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            # A state that this browser never sent, a nonce or signature that does not match:
            # refused, recorded, and never a 500.
            audit_failure(request, "(oidc)", via="oidc", reason=str(exc))
            log.warning("OIDC login refused: %s", exc)
            return render(request, "accounts/sso_failed.html", {"reason": "refused"}, status=400)
        except oidc.ProviderError as exc:
            log.warning("%s", exc)
            return render(
                request, "accounts/sso_failed.html", {"reason": "unreachable"}, status=503
            )

    def login_failure(self):
        error = self.request.GET.get("error", "")
        audit_failure(
            self.request,
            "(oidc)",
            via="oidc",
            reason=f"the provider answered {error}" if error else "sign-in did not complete",
        )
        messages.error(self.request, "Signing in with the provider did not succeed.")
        return HttpResponseRedirect(resolve_url(settings.LOGIN_URL))
