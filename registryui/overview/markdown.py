"""README Markdown to HTML that is safe on our pages.

Two layers, each enough on its own for what it guards:

1. ``markdown-it-py`` (CommonMark plus tables) with raw HTML off, so ``<script>`` in a README
   is shown as text; its link check already refuses ``javascript:``, ``vbscript:`` and
   ``file:`` URLs. Images become links (the CSP allows images from this site only, and a
   README's picture of a build badge is not worth an exception), headings move down two levels
   so that a README's ``#`` sits below the page's own headings.
2. ``nh3`` (the Ammonia sanitizer) then keeps only the elements and attributes listed here and
   only ``http``, ``https`` and ``mailto`` links, adding ``rel="nofollow noopener noreferrer"``.
   No ``style`` or event attribute can pass, so nothing it lets through breaks the CSP.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5", "h6",
        "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
        "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
#: A README's ``#`` becomes an ``<h3>``: the page has its ``<h1>`` and the overview's ``<h2>``.
HEADING_SHIFT = 2


def _heading(self, tokens, idx, options, env):
    """A heading's opening or closing tag, moved down ``HEADING_SHIFT`` levels (h6 at most)."""
    token = tokens[idx]
    level = min(int(token.tag[1]) + HEADING_SHIFT, 6)
    token.tag = f"h{level}"
    return self.renderToken(tokens, idx, options, env)


def _image(self, tokens, idx, options, env):
    """An image as a link to it (http/https only), its alternative text as the link's text."""
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    text = escapeHtml(f"Image: {alt}")
    if src.lower().startswith(("https://", "http://")):
        return f'<a href="{escapeHtml(src)}">{text}</a>'
    return text


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.add_render_rule("heading_open", _heading)
    md.add_render_rule("heading_close", _heading)
    md.add_render_rule("image", _image)
    return md


_MD = _parser()


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )


def render_markdown(text: str) -> str:
    """Safe HTML for ``text`` (mark it safe only where this function produced it)."""
    if not text.strip():
        return ""
    html = sanitize(_MD.render(text))
    # Wide tables scroll in their own box (with the edge shadows and tab stop of the site's
    # .table-wrap) instead of the page. The sanitizer left ``<table>`` without attributes.
    return html.replace("<table>", '<div class="table-wrap"><table>').replace(
        "</table>", "</table></div>"
    )
