"""Fixtures of the security tests: the personas of ``tests/personas.py``."""

from __future__ import annotations

from tests.personas import personas  # noqa: F401
