"""The login forms of the site and of the admin, both checking passwords through
``passwords.authenticate`` (the rate limit and the audit log)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from . import passwords


class LimitedLoginMixin:
    #: The audit log's ``via`` for logins through this form.
    via = "ui"
    error_messages = {
        **AuthenticationForm.error_messages,
        "directory_unavailable": (
            "The LDAP directory did not answer, so directory accounts cannot log in right now. "
            "Local accounts still can."
        ),
    }

    #: Set when the limit refused the attempt (the view answers 429).
    locked: passwords.Locked | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = passwords.authenticate(
                    self.request, username, password, via=self.via
                )
            except passwords.Locked as exc:
                self.locked = exc
                raise forms.ValidationError(str(exc), code="locked") from None
            if self.user_cache is None:
                if getattr(self.request, "directory_unavailable", False):
                    raise forms.ValidationError(
                        self.error_messages["directory_unavailable"], code="directory_unavailable"
                    )
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginForm(LimitedLoginMixin, AuthenticationForm):
    via = "ui"


class AdminLoginForm(LimitedLoginMixin, AdminAuthenticationForm):
    via = "admin"
    error_messages = {**LimitedLoginMixin.error_messages, **AdminAuthenticationForm.error_messages}
