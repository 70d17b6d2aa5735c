"""README rendering: what a hostile README can put on the page (nothing that runs)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from registryui.overview.markdown import ALLOWED_TAGS, render_markdown


class Elements(HTMLParser):
    """Every element and attribute of the rendered HTML, as a browser would parse it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


#: Hostile README snippets; each must come out with no element, attribute or URL that runs.
CORPUS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](data:image/png;base64,iVBORw0KGgo=)",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=https://evil.example></iframe>",
    '<div style="position:fixed">x</div>',
    "<svg onload=alert(1)>",
    '[x](https://ok.example "a\\" onmouseover=\\"alert(1)")',
    "<style>body{display:none}</style>",
    "<form action=/logout><button>x</button></form>",
    "<details open ontoggle=alert(1)>",
    "[x](&#106;avascript:alert(1))",
]


@pytest.mark.parametrize("text", CORPUS)
def test_hostile_markdown_renders_inert(text):
    html = render_markdown(text)
    for tag, attributes in Elements(html).elements:
        assert tag in ALLOWED_TAGS | {"div"}, html
        for name, value in attributes.items():
            assert not name.startswith("on") and name != "style", html
            if name == "href":
                assert value.startswith(("https://", "http://", "mailto:")), html
        if tag == "div":
            assert attributes == {"class": "table-wrap"}
    # Raw HTML stays visible as text rather than vanishing silently.
    if text.startswith("<script"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_images_become_links_and_only_http_links_are_kept():
    html = render_markdown(
        "![build status](https://ci.example.com/badge.svg) "
        "[docs](https://docs.example.com) [mail](mailto:ops@example.com) [ftp](ftp://x)"
    )
    assert "<img" not in html
    assert (
        '<a href="https://ci.example.com/badge.svg" rel="nofollow noopener noreferrer">'
        "Image: build status</a>" in html
    )
    assert '<a href="https://docs.example.com" rel="nofollow noopener noreferrer">docs</a>' in html
    assert 'href="mailto:ops@example.com"' in html
    assert 'href="ftp' not in html


def test_markdown_structure_is_kept_and_headings_sit_below_the_page():
    html = render_markdown(
        "# Weather API\n\nRun it:\n\n```sh\ndocker run x\n```\n\n"
        "| port | use |\n|--|--|\n| 80 | http |\n\n- one\n- two\n"
    )
    assert "<h3>Weather API</h3>" in html
    assert "<h1>" not in html and "<h2>" not in html
    assert "<pre><code>docker run x\n</code></pre>" in html
    assert '<div class="table-wrap"><table>' in html and "<td>80</td>" in html
    assert "<li>one</li>" in html


def test_empty_readme_renders_nothing():
    assert render_markdown("  \n ") == ""
