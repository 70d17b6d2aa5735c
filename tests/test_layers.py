"""The layers of ``registryui``: no package imports one on a higher layer.

Every module's imports are read with ``ast``, including those inside functions and under
``if TYPE_CHECKING``, because a lazy import is still a dependency: it only hides the cycle
from the interpreter, not from the reader. The table below is the one of docs/DEVELOPMENT.md;
a package that is not in it fails the test too, so that a new package gets a place on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import registryui

ROOT = Path(registryui.__file__).resolve().parent

#: Bottom to top. A package may import packages of its own layer or below, never above.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"lib", "registry"}),  # no Django models
    frozenset({"core"}),  # audit log, middleware, checks, error pages, admin mixins
    frozenset({"catalog"}),  # the mirrored data: models, parsing, store, upstream, freshness
    frozenset({"teams"}),  # teams, patterns and the resolver (permissions.py), decorators
    frozenset({"accounts", "webhooks"}),  # sign-in (groups → teams); outgoing webhooks
    frozenset({"events"}),  # registry notifications (and the models of sync state, for now)
    frozenset({"sync"}),  # the syncer, the worker and its lock
    frozenset({"tokens"}),  # the token server
    frozenset({"overview"}),  # what people write about repositories, and their stars
    frozenset({"browse", "cleanup", "ops", "storage", "api"}),  # pages, actions, REST API
    frozenset({"devtools"}),  # seeding, fault injection, demo data
)
#: Project-level modules (settings, URLconf, WSGI) wire everything together: above all layers.
TOP_MODULES = frozenset({"settings", "urls", "wsgi", "__init__"})


def layer_of(package: str) -> int | None:
    if package in TOP_MODULES:
        return len(LAYERS)
    for index, packages in enumerate(LAYERS):
        if package in packages:
            return index
    return None


def imported_packages(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, package)`` for every import of ``registryui.<package>`` in ``source``.

    ``module`` is the dotted name of the module the source belongs to (``registryui.a.b``) and
    ``is_package`` whether it is a package's ``__init__``, to resolve relative imports.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                # In a package's __init__, "." is the package itself.
                base = parts[: len(parts) - node.level + is_package]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from registryui import teams`` names the package in the imported names.
            targets = (
                [f"{target}.{alias.name}" for alias in node.names]
                if target == "registryui"
                else [target]
            )
        else:
            continue
        for target in targets:
            parts = target.split(".")
            if parts[0] == "registryui" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return sorted(found)


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def violations(path: Path, source: str) -> list[str]:
    module = module_name(path)
    parts = module.split(".")
    package = parts[1] if len(parts) > 1 else "__init__"
    own = layer_of(package)
    problems = []
    if own is None:
        return [f"{module}: package {package!r} is in no layer of tests/test_layers.py"]
    for line, imported in imported_packages(source, module, path.name == "__init__.py"):
        theirs = layer_of(imported)
        if theirs is None:
            problems.append(f"{module}:{line} imports {imported!r}, which is in no layer")
        elif theirs > own:
            problems.append(f"{module}:{line} ({package}) imports registryui.{imported}, above it")
    return problems


def test_no_package_imports_one_above_it():
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        problems += violations(path, path.read_text(encoding="utf-8"))
    assert problems == []


def test_lazy_and_relative_imports_count():
    """The checker itself: an import inside a function, a relative one reaching up and a
    ``from registryui import`` form are all found."""
    source = (
        "from registryui.lib import env\n"
        "def f():\n"
        "    from registryui.teams.permissions import can\n"
        "from ..events import models\n"
        "from registryui import ops\n"
    )
    path = ROOT / "catalog" / "example.py"
    assert violations(path, source) == [
        "registryui.catalog.example:3 (catalog) imports registryui.teams, above it",
        "registryui.catalog.example:4 (catalog) imports registryui.events, above it",
        "registryui.catalog.example:5 (catalog) imports registryui.ops, above it",
    ]
    assert violations(ROOT / "ops" / "example.py", source) == []


def package_imports() -> dict[str, set[str]]:
    """package → the other registryui packages its modules import."""
    edges: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        parts = module.split(".")
        if len(parts) < 2:
            continue
        source = path.read_text(encoding="utf-8")
        for _, imported in imported_packages(source, module, path.name == "__init__.py"):
            if imported != parts[1]:
                edges.setdefault(parts[1], set()).add(imported)
    return edges


def test_no_two_packages_import_each_other():
    """Packages on one layer may use each other, but only one way: a cycle would make the
    two one package in all but name."""
    edges = package_imports()
    cycles = sorted(
        f"{a} <-> {b}"
        for a, targets in edges.items()
        for b in targets
        if a < b and a in edges.get(b, set())
    )
    assert cycles == []
