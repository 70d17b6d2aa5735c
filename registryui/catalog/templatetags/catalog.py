"""Template helpers of the browse pages: platforms, exec forms, media types, search hints.

The generic ones (sizes, dates, digests, sorting) are in ``{% load core %}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from registryui.lib.reference import MIN_DIGEST_PREFIX

register = template.Library()


@register.filter
def platform_list(platforms: str) -> list[str]:
    """``"linux/amd64, linux/arm64/v8"`` → ``["linux/amd64", "linux/arm64/v8"]``."""
    return [p.strip() for p in (platforms or "").split(",") if p.strip()]


_CHIP_UNKNOWN = mark_safe('<span class="unknown">—</span>')


@register.filter
def platform_chips(platforms: str) -> str:
    """The platforms as chips (one filter call instead of a template loop per table row)."""
    items = platform_list(platforms)
    if not items:
        return _CHIP_UNKNOWN
    return format_html_join("", '<span class="platform">{}</span>', ((p,) for p in items))


@register.filter
def exec_form(value: Any) -> str:
    """An Entrypoint/Cmd as the JSON exec form a Dockerfile would have (``["a", "b"]``)."""
    if value in (None, "", []):
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@register.filter
def media_type(value: Any) -> str:
    """A media type that may break after its "/" and nowhere else: each side is kept whole
    (``application/`` and ``vnd.oci.image.manifest.v1+json``), with a break point between."""
    text = "" if value is None else str(value)
    head, slash, tail = text.partition("/")
    if not slash:
        return format_html('<span class="nowrap">{}</span>', text)
    return format_html(
        '<span class="nowrap">{}/</span><wbr><span class="nowrap">{}</span>', head, tail
    )


#: Architectures (and os/arch[/variant] forms) people type when they look for a platform.
PLATFORM_RE = re.compile(
    r"((linux|windows|darwin|freebsd)/)?"
    r"(amd64|arm64|aarch64|arm|386|i386|x86_64|ppc64le|s390x|riscv64|mips64le|wasm)"
    r"(/v[5-8])?",
    re.IGNORECASE,
)
SHORT_HEX_RE = re.compile(r"(sha256:)?[0-9a-fA-F]+")


@register.simple_tag
def search_hints(query: str) -> list[str]:
    """Why a search found nothing, for the queries people try first: too few hex characters
    for a digest, a platform no visible image is built for, capitals (names are lowercase)."""
    text = (query or "").strip()
    hints: list[str] = []
    match = SHORT_HEX_RE.fullmatch(text)
    if match:
        digits = len(text) - len(match.group(1) or "")
        if digits < MIN_DIGEST_PREFIX:
            hints.append(
                f"“{text}” has {digits} hex character{'s' if digits != 1 else ''}: a digest "
                f"is searched from {MIN_DIGEST_PREFIX} on. Type more of it, or paste the "
                "whole sha256:… digest."
            )
    if PLATFORM_RE.fullmatch(text):
        hints.append(
            f"No image you may see is built for the platform “{text}”. A multi-platform "
            "image lists its platforms on its page (open a tag such as latest)."
        )
    if text != text.lower():
        hints.append(
            "Repository names are lowercase: search matches them as typed, so try it in lowercase."
        )
    return hints
