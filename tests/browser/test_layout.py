"""Layout cues of issue 15 in Chromium: a table wider than a phone scrolls in its own box,
says so (a line above it, an edge shadow, a name for screen readers) and takes the keyboard
focus so that arrow keys scroll it; on a wide screen none of that is there."""

from __future__ import annotations

import pytest

from .support import screenshot

pytestmark = pytest.mark.browser

CUE = """
() => {
  const wrap = document.querySelector('.table-wrap');
  const hint = wrap.previousElementSibling;
  return {
    scrolls: wrap.scrollWidth > wrap.clientWidth,
    tabindex: wrap.getAttribute('tabindex'),
    label: wrap.getAttribute('aria-label'),
    hint: hint && hint.classList.contains('scroll-hint') ? hint.textContent : null,
    shadow: getComputedStyle(wrap).backgroundImage.includes('radial-gradient'),
    page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  };
}
"""


def test_a_wide_table_on_a_phone_says_it_scrolls(site):
    context = site.context(persona="superuser")
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/r/team-a/api")
    cue = page.evaluate(CUE)
    assert cue["scrolls"] and cue["page"] <= 0, cue
    assert cue["tabindex"] == "0"
    assert cue["label"].startswith("Tags of team-a/api, sorted by"), cue
    assert cue["label"].endswith("(scrolls sideways)"), cue
    assert cue["hint"] == "More columns to the right: scroll the table sideways →"
    assert cue["shadow"]
    # The arrow keys scroll the focused box.
    page.locator(".table-wrap").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.table-wrap').scrollLeft > 0")
    screenshot(page, "layout-table-scrolls-390")

    # Widened, the table fits: the stop, the name and the line go.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_function("() => !document.querySelector('.table-wrap[tabindex]')")
    cue = page.evaluate(CUE)
    assert not cue["scrolls"] and cue["hint"] is None and cue["label"] is None, cue
    context.close()
