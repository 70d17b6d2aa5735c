"""The browser audit: every page a user reaches, as each persona, at 1280 and 390 px wide, in
the light and the dark theme, checked in the DOM of Debian's Chromium:

- the page body never scrolls sideways (a wide table scrolls inside its own box);
- no word of a tag, digest or media type is broken across two lines (measured with
  ``Range.getClientRects()`` on each part between the characters where a break is fine);
- axe-core (bundled by ``axe-playwright-python``, no CDN) finds no serious or critical
  violation, colour contrast (WCAG AA) included, in both themes;
- every interactive element is reached with the Tab key, and shows a focus ring when it is
  (at 1280 px, in both themes).

The pages include every confirmation and result of the cleanup actions and of the token pages,
so the audit has its own registry (module scope: the actions delete from it) holding the
samples plus a ``team-a/scratch`` repository whose tags are put back before each run. A full
page screenshot of each page goes to ``test-artifacts/screenshots/audit-*.png``.

One test per width and theme walks all pages and reports every finding at once; a test that
stopped at the first would hide the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings as django_settings
from django.test import Client

from registryui.devtools.artifacts import push_attached_samples
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.samples import push_samples
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from tests.attach.support import attached_pages
from tests.personas import make_personas
from tests.support import PUBLIC_HOST, sync

from .support import TIMEOUT_MS, browser, screenshot  # noqa: F401
from .tag_pages import tag_pages

pytestmark = pytest.mark.browser

SCRATCH = "team-a/scratch"
#: Tags of the scratch repository: names like those seen broken ("buil|d-60"), one long name.
SCRATCH_TAGS = [f"build-{n}" for n in range(55, 63)] + [
    "keep",
    "feature-login-flow-with-a-rather-long-branch-name-build-1234",
]
#: axe-core impacts that fail the audit.
BLOCKING = {"serious", "critical"}

#: Runs in the page: parts of tags, digests and media types that span two line boxes, and
#: whether the page scrolls sideways. A part is the text between the characters where a line
#: break is fine (white space, "/", ":", "@" and ","): "application/vnd.oci.image.manifest.v1+json"
#: may break after "application/", never inside "manifest"; "build-60" never at its hyphen.
MEASURE = r"""
() => {
  const selector = 'code, kbd, samp, .tag-name, .digest, .nobreak, [data-nobreak]';
  const broken = [];
  const seen = new Set();
  for (const element of document.querySelectorAll(selector)) {
    if (element.closest('pre, textarea, .visually-hidden')) continue;
    if (seen.has(element)) continue;
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/[^\s\/:@,]{2,}/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set();
        for (const rect of range.getClientRects()) {
          if (rect.width > 0 && rect.height > 0) tops.add(Math.round(rect.bottom));
        }
        if (tops.size > 1) broken.push(match[0]);
      }
    }
    for (const inner of element.querySelectorAll(selector)) seen.add(inner);
  }
  const doc = document.documentElement;
  return {
    broken: [...new Set(broken)],
    overflow: Math.max(doc.scrollWidth, document.body.scrollWidth) - doc.clientWidth,
  };
}
"""

#: Runs once per page before the Tab key is pressed: records each focused element and whether
#: a focus indicator is drawn (an outline of 2 px or more, or a box shadow).
WATCH_FOCUS = r"""
() => {
  window.__focused = [];
  document.addEventListener('focusin', (event) => {
    const el = event.target;
    const style = getComputedStyle(el);
    // Chromium draws its own ring for "auto" whatever the width.
    const ring = style.outlineStyle === 'auto'
      || (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
      || (style.boxShadow && style.boxShadow !== 'none');
    window.__focused.push({key: el.dataset.auditKey || '', ring, html: el.outerHTML.slice(0, 120)});
  }, true);
  const interactive = 'a[href], button, input:not([type=hidden]), select, textarea, summary, '
    + '[tabindex]:not([tabindex="-1"])';
  const expected = [];
  let n = 0;
  for (const el of document.querySelectorAll(interactive)) {
    if (el.disabled || el.closest('[inert], [hidden]')) continue;
    if (el.tabIndex < 0) continue;
    const details = el.parentElement && el.parentElement.closest('details:not([open])');
    if (details && el.tagName !== 'SUMMARY') continue;
    const style = getComputedStyle(el);
    const rects = el.getClientRects();
    const skip = el.classList.contains('skip-link');
    if (!skip && (style.visibility === 'hidden' || rects.length === 0)) continue;
    el.dataset.auditKey = String(++n);
    expected.push({key: el.dataset.auditKey, html: el.outerHTML.slice(0, 120)});
  }
  return expected;
}
"""

START_AT_TOP = r"""
() => {
  const start = document.createElement('span');
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus();
  window.__focused.length = 0;
  start.addEventListener('blur', () => start.remove());
}
"""


@dataclass
class Finding:
    page: str
    problem: str

    def __str__(self) -> str:
        return f"{self.page}: {self.problem}"


@dataclass
class Audit:
    """Opens pages as personas and collects findings; one per width and theme."""

    url: str
    browser: object
    width: int
    scheme: str
    personas: dict
    findings: list[Finding] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    _contexts: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.width}-{self.scheme}"

    def page(self, persona: str | None):
        """The one page of ``persona`` (None: not logged in) in this width and theme."""
        if persona not in self._contexts:
            context = self.browser.new_context(
                color_scheme=self.scheme,
                viewport={"width": self.width, "height": 900},
                base_url=self.url,
                reduced_motion="reduce",
            )
            context.set_default_timeout(TIMEOUT_MS)
            if persona is not None and self.personas[persona].authenticated:
                client = Client()
                client.force_login(self.personas[persona].user)
                context.add_cookies(
                    [
                        {
                            "name": django_settings.SESSION_COOKIE_NAME,
                            "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                            "domain": self.url.split("//", 1)[1].split(":", 1)[0],
                            "path": "/",
                        }
                    ]
                )
            self._contexts[persona] = context.new_page()
        return self._contexts[persona]

    def close(self) -> None:
        for page in self._contexts.values():
            page.context.close()

    def visit(self, persona: str | None, path: str, name: str, *, status: int = 200):
        page = self.page(persona)
        response = page.goto(path)
        if response is None or response.status != status:
            got = None if response is None else response.status
            self.findings.append(Finding(name, f"GET {path} answered {got}, expected {status}"))
        self.check(page, name)
        return page

    def act(self, persona: str, path: str, name: str, do: Callable) -> None:
        """Audit the page at ``path``, then ``do(page)`` (submit its form) and audit the
        result: where the result is rendered or redirected to does not matter here."""
        page = self.visit(persona, path, f"{name}-confirm")
        with page.expect_navigation():
            do(page)
        self.check(page, f"{name}-result")

    def check(self, page, name: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        full = f"{self.label} {name}"
        self.pages.append(name)
        page.wait_for_load_state("load")
        measured = page.evaluate(MEASURE)
        if measured["overflow"] > 1:
            self.findings.append(
                Finding(full, f"the page scrolls sideways by {measured['overflow']} px")
            )
        for word in measured["broken"]:
            self.findings.append(Finding(full, f"{word!r} is broken across lines"))
        results = _axe(Axe).run(page).response
        for violation in results["violations"]:
            if violation["impact"] in BLOCKING:
                targets = ", ".join(
                    " ".join(map(str, node["target"])) for node in violation["nodes"][:4]
                )
                self.findings.append(
                    Finding(full, f"axe {violation['id']} ({violation['impact']}): {targets}")
                )
        # The screenshot shows the page as loaded: tabbing scrolls boxes to their links.
        screenshot(page, f"audit-{self.label}-{name}")
        # Which elements take the focus and how the ring looks depend on the theme, not on
        # the width (both widths share the markup and the focus styles): the Tab walk runs
        # at 1280 px in both themes, which keeps the audit within its time.
        if self.width >= 1280:
            self.keyboard(page, full)

    def keyboard(self, page, full: str) -> None:
        expected = page.evaluate(WATCH_FOCUS)
        # Start from the top of the document (not from an autofocused field): focus a
        # throw-away element placed first in the body, so the first Tab goes to what follows.
        page.evaluate(START_AT_TOP)
        for _ in range(len(expected) + 1):
            page.keyboard.press("Tab")
        focused = page.evaluate("() => window.__focused")
        reached = {item["key"] for item in focused}
        for item in expected:
            if item["key"] not in reached:
                self.findings.append(Finding(full, f"not reached with Tab: {item['html']}"))
        for item in focused:
            if not item["ring"]:
                self.findings.append(Finding(full, f"no focus ring on {item['html']}"))
        # Tabbing may have scrolled or opened things: leave the page as it was loaded.
        page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")


_AXE = None


def _axe(cls):
    global _AXE
    if _AXE is None:
        _AXE = cls()
    return _AXE


@pytest.fixture(scope="module")
def audit_registry(tmp_path_factory) -> Iterator[tuple[RegistryProcess, dict[str, str]]]:
    """The samples in a registry of this module's own: the audit deletes and moves tags."""
    root = tmp_path_factory.mktemp("audit")
    process = RegistryProcess(root / "registry").start()
    try:
        pushed = push_samples(process.host, root)
        with RegistryClient(process.url) as client:
            attached = push_attached_samples(client)  # signatures, SBOMs, a chart (issue 17)
        yield process, {**pushed.digests, **attached}
    finally:
        process.stop()


@pytest.fixture
def audit_site(browser, live_server, audit_registry, transactional_db, settings):  # noqa: F811
    process, digests = audit_registry
    settings.REGISTRY_URL = process.url
    settings.REGISTRY_PUBLIC_HOST = PUBLIC_HOST
    settings.REGISTRY_RETRIES = 1
    settings.PULL_TRACKING = True  # the repository page's pull sparkline, the tag's pulls
    seeder = Seeder(RegistryClient(process.url))
    # The same note gives the same digest: "build-60" and "build-61" share an image.
    seeder.put_many(
        [
            (SCRATCH, tag, "shared" if tag in ("build-60", "build-61") else tag)
            for tag in SCRATCH_TAGS
        ]
    )
    sync(None)
    return live_server.url, digests


OVERVIEW_README = """# Weather API

Forecasts by postcode. Run it:

```sh
docker run -p 8080:8080 registry.example.com/team-a/api:1.4
```

| variable | meaning |
| --- | --- |
| `API_KEY` | the upstream key |

See [the runbook](https://wiki.example.com/team-a/api) <script>alert(1)</script>
"""


def journey(audit: Audit, digests: dict[str, str]) -> None:
    """Every page a user reaches, each persona's view of it."""
    from registryui.cleanup.models import RetentionPolicy
    from registryui.teams.models import Team
    from registryui.webhooks.models import Endpoint

    personas = audit.personas
    personas["public"].apply_site_settings()

    audit.visit(None, "/accounts/login/", "login")
    for path, name in (
        ("/", "public-list"),
        ("/r/hello", "public-repository"),
        ("/r/hello:latest", "public-tag"),
        ("/search/?q=hello", "public-search"),
    ):
        audit.visit("public", path, name)

    audit.visit("no_team", "/", "no-team-list")
    audit.visit("no_team", "/search/?q=api", "no-team-search")
    audit.visit("no_team", "/profile/", "no-team-profile")
    audit.visit("no_team", "/push/", "no-team-push")

    for path, name in (
        ("/", "viewer-list"),
        ("/r/team-a/api", "viewer-repository"),
        ("/r/team-a/api:1.4", "viewer-tag"),
        ("/search/?q=38586", "viewer-search-hex"),
        ("/search/?q=arm64", "viewer-search-arm64"),
        ("/search/?q=team-a/api:1", "viewer-search-reference"),
        (f"/r/team-a/api@{digests['team-a/api:1.4']}", "viewer-digest"),
        ("/push/", "viewer-push"),
        ("/storage/", "viewer-storage"),
    ):
        audit.visit("a_viewer", path, name)

    for path, name in (
        ("/", "team-admin-list"),
        ("/r/team-b/worker", "team-admin-repository"),
        ("/r/team-b/worker:v1", "team-admin-tag"),
        ("/status/", "team-admin-status"),
        ("/push/?name=team-b/new&source=new:1&also=latest+beta", "team-admin-push"),
        ("/push/?name=team-b/new&tool=skopeo&also=beta", "team-admin-push-skopeo"),
        ("/r/team-b/worker?source=worker:3&tag=v3&also=latest", "team-admin-push-panel"),
    ):
        audit.visit("b_admin", path, name)

    web = digests["team-a/web:2.0"]
    for path, name, status in (
        ("/", "superuser-list", 200),
        ("/?q=team&sort=-tags", "superuser-list-filtered", 200),
        ("/search/?q=team", "superuser-search", 200),
        ("/storage/", "superuser-storage", 200),
        ("/search/?q=https://git.example.com/team-a", "superuser-search-labels", 200),
        ("/r/team-a/api", "superuser-repository", 200),
        ("/r/team-a/api:1.4", "superuser-tag", 200),
        (f"/r/team-a/web@{web}", "superuser-digest", 200),
        ("/r/platform/tools/builder", "superuser-nested-repository", 200),
        ("/r/team-a/api:9.9", "superuser-not-found", 404),
        ("/r/Team-A/api", "superuser-bad-request", 400),
        ("/status/", "superuser-status", 200),
        ("/profile/", "superuser-profile", 200),
        ("/retention/", "superuser-retention", 200),
    ):
        audit.visit("superuser", path, name, status=status)
    page = audit.visit("superuser", "/r/team-a/web:2.0", "superuser-index")
    child = page.locator("a[href*='/r/team-a/web@sha256:']").first.get_attribute("href")
    if child:
        audit.visit("superuser", child, "superuser-platform-image")

    attached_pages(audit, digests)  # signatures, SBOMs, artifacts, lineage (issue 17)

    # Tokens and robot accounts: the lists, a creation (the secret shown once), a revocation.
    audit.act(
        "a_viewer",
        "/profile/tokens/",
        "viewer-token",
        lambda page: (
            page.locator("#id_name").fill(f"laptop-{audit.label}"),
            page.get_by_role("button", name="Create token").click(),
        ),
    )
    audit.act(
        "b_admin",
        "/profile/robots/",
        "admin-robot",
        lambda page: (
            page.locator("#id_name").fill(f"ci-{audit.label}"),
            page.locator("#id_grants").fill("team-b/* pull"),
            page.get_by_role("button", name="Create robot account").click(),
        ),
    )

    # Cleanup as a member of a team that may delete: each confirmation and its result.
    audit.visit("a_deleter", "/", "deleter-list")
    audit.visit("a_deleter", "/search/?q=build-6", "deleter-search")
    audit.visit("a_deleter", f"/r/{SCRATCH}", "deleter-repository")
    audit.visit("a_deleter", f"/r/{SCRATCH}:build-60", "deleter-tag")
    confirm = lambda label: lambda page: page.get_by_role("button", name=label).click()  # noqa: E731
    audit.act("a_deleter", f"/r/{SCRATCH}:build-60/-/delete", "delete-tag", confirm("Delete tag"))
    audit.act(
        "a_deleter",
        f"/r/{SCRATCH}:build-59/-/delete-image",
        "delete-image",
        confirm("Delete image and its tags"),
    )
    moved = f"moved-{audit.label}"  # a new tag in each run: the registry outlives the run
    audit.act(
        "a_deleter",
        f"/r/{SCRATCH}:build-58/-/retag",
        "retag",
        lambda page: (
            page.get_by_label(re.compile("New tag")).fill(moved),
            page.get_by_role("button", name="Add tag").click(),
        ),
    )
    page = audit.visit("a_deleter", f"/r/{SCRATCH}:build-57/-/retag", "retag-move-form")
    page.get_by_label(re.compile("New tag")).fill(moved)
    with page.expect_navigation():
        page.get_by_role("button", name="Add tag").click()
    audit.check(page, "retag-move-confirm")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("^Move")).click()
    audit.check(page, "retag-move-result")
    long_tag = SCRATCH_TAGS[-1]
    audit.act(
        "a_deleter",
        f"/r/{SCRATCH}/-/bulk-delete?tag=build-56&tag=build-61&tag={long_tag}",
        "bulk-delete",
        confirm("Delete these tags"),
    )
    tag_pages(audit)  # the tags table, add tags, copy to repository (issue 14)
    policy = RetentionPolicy.objects.create(
        name=f"scratch-{audit.label}", repository_pattern=SCRATCH, keep_last=2, enabled=True
    )
    audit.visit("a_deleter", "/retention/", "deleter-retention")
    audit.visit("a_viewer", "/stale/", "viewer-stale")
    audit.visit("a_deleter", "/stale/?pulled=30&pushed=0", "deleter-stale")
    audit.visit("a_deleter", "/stale/preview?pulled=30&pushed=0", "deleter-stale-preview")
    audit.act(
        "a_deleter",
        f"/retention/{policy.pk}/",
        "retention",
        lambda page: page.get_by_role("button", name=re.compile("^Apply")).click(),
    )

    # A result page reloads without acting again (post/redirect/get).
    page.reload()
    audit.check(page, "retention-result-reloaded")
    # Nothing ticked for "Delete selected tags…": said next to the button.
    audit.visit("a_deleter", f"/r/{SCRATCH}/-/bulk-delete", "bulk-delete-nothing")
    # A new policy starts off; switching it on shows its dry run first.
    off = RetentionPolicy.objects.create(
        name=f"off-{audit.label}", repository_pattern=SCRATCH, keep_last=1
    )
    audit.act(
        "superuser",
        f"/retention/{off.pk}/enable",
        "retention-enable",
        lambda page: page.get_by_role("button", name=re.compile("^Switch on")).click(),
    )

    # A repository's overview: written by who may push, starred by a viewer.
    audit.act(
        "a_deleter",
        "/r/team-a/api/-/overview",
        "overview-edit",
        lambda page: (
            page.get_by_label("Description").fill("Weather forecasts by postcode"),
            page.get_by_label("README").fill(OVERVIEW_README),
            page.get_by_role("button", name="Save overview").click(),
        ),
    )
    audit.act(
        "a_viewer",
        "/r/team-a/api",
        "overview-star",
        lambda page: page.get_by_role("button", name=re.compile("Star")).click(),
    )
    audit.visit("a_viewer", "/?starred=1", "viewer-list-starred")
    audit.visit("a_viewer", "/r/team-a/web", "viewer-repository-no-overview")

    # The admin's team pages, as a team admin and as a superuser.
    team_b = Team.objects.get(name="team-b").pk
    for persona in ("b_admin", "superuser"):
        short = "team-admin" if persona == "b_admin" else "superuser"
        audit.visit(persona, "/admin/", f"{short}-admin-index")
        audit.visit(persona, "/admin/teams/team/", f"{short}-admin-teams")
        audit.visit(persona, f"/admin/teams/team/{team_b}/change/", f"{short}-admin-team")
        audit.visit(
            persona,
            "/admin/teams/team/effective-permissions/?user=b-admin&repository=team-b/worker",
            f"{short}-admin-effective",
        )
    audit.visit("superuser", "/admin/teams/team/add/", "superuser-admin-team-add")
    # Webhook endpoints and their delivery log, as the team admin who manages team-b's.
    hook, _ = Endpoint.objects.get_or_create(
        team_id=team_b,
        name="ci",
        defaults={
            "url": "https://ci.example.com/hooks/registry",
            "events": ["push", "delete"],
            "repository_pattern": "team-b/*",
        },
    )
    audit.visit("b_admin", "/admin/webhooks/endpoint/", "team-admin-webhooks")
    audit.visit("b_admin", f"/admin/webhooks/endpoint/{hook.pk}/change/", "team-admin-webhook")
    audit.visit("superuser", "/admin/webhooks/endpoint/add/", "superuser-webhook-add")


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_the_audit(audit_site, browser, width, scheme):  # noqa: F811
    url, digests = audit_site
    audit = Audit(url, browser, width, scheme, make_personas())
    try:
        journey(audit, digests)
    finally:
        audit.close()
    assert len(audit.pages) >= 60, audit.pages
    assert not audit.findings, "\n".join(map(str, audit.findings))


def test_the_audit_sees_a_broken_word_overflow_and_a_missing_focus_ring(
    audit_site,
    browser,  # noqa: F811
):
    """The audit's own checks can fail: a page with a digest squeezed into a narrow cell, a
    wide element and a button without a focus ring is reported on each count."""
    url, _ = audit_site
    audit = Audit(url, browser, 1280, "light", make_personas())
    try:
        page = audit.visit("superuser", "/profile/", "self-test")
        audit.findings.clear()
        page.evaluate(
            """() => {
              const main = document.querySelector('main');
              main.insertAdjacentHTML('beforeend',
                '<table><tr><td><code id="squeezed">sha256:385867f665a5d1e2</code></td>'
                + '<td><div id="wide"></div></td></tr></table>'
                + '<button id="ringless">Go</button>');
              document.getElementById('squeezed').parentElement.classList.add('audit-narrow');
              const sheet = new CSSStyleSheet();
              sheet.replaceSync('#squeezed { display: inline-block; width: 4ch;'
                + ' white-space: normal; overflow-wrap: anywhere; }'
                + ' #wide { width: 2000px; height: 1px; }'
                + ' #ringless:focus-visible { outline: none; box-shadow: none; }');
              document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
            }"""
        )
        audit.check(page, "self-test-broken")
    finally:
        audit.close()
    problems = "\n".join(map(str, audit.findings))
    assert "'385867f665a5d1e2' is broken across lines" in problems
    assert "scrolls sideways" in problems
    assert 'no focus ring on <button id="ringless"' in problems
