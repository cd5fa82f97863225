"""The layer contract, read from the source: what each module of ``overseer`` may import.

From the bottom up: the foundation (``overseer.errors`` and the top-level ``overseer._*`` modules and packages), the
shared layers (``overseer.models``, ``overseer.data``, ``overseer.results``), the pillars (``w2s``,
``selfcorrect``, ``pvg``, ``audit``, ``organisms``), and what is built on the pillars (``overseer.cli``,
``overseer.__main__``, the inspect_ai entry point ``overseer._inspect_ai``). A module imports only from its
own level or below; a pillar imports no other pillar, except that organisms build on audits. A private
module (``_name``) or private name belongs to its package: other packages use the public names, which is
what keeps a layer free to rearrange its internals. Every import counts, those inside functions too (a
lazy import is still a dependency); cycles are looked for among the imports that run when a module is
imported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

FOUNDATION, LAYERS, PILLARS, TOP = 0, 1, 2, 3
LEVEL_NAMES = {FOUNDATION: "the foundation", LAYERS: "a shared layer", PILLARS: "a pillar", TOP: "the top"}
SHARED_LAYERS = ("models", "data", "results")
PILLAR_NAMES = ("w2s", "selfcorrect", "pvg", "audit", "organisms", "guard")
TOP_PACKAGES = ("cli", "testing", "__main__", "_inspect_ai")
"""``testing`` holds servers and fakes for tests, built on the layers; ``_inspect_ai`` registers pillar tasks."""
PILLAR_USES = {"organisms": ("audit",)}
"""The only pillar built on another: an organism is scored by audits."""


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    """The module imported (``from P import name`` names ``P.name`` when that is a module, else ``P``)."""
    names: tuple[str, ...]
    """Names taken from ``target`` by ``from ... import``; empty for ``import X`` and for submodules."""
    line: int
    at_import_time: bool
    """Runs when the importer is imported: not inside a function, not under ``if TYPE_CHECKING``."""

    def where(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "overseer").rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str) -> list[Import]:
    """Every ``overseer`` import in ``module``, with whether it runs at import time."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, at_import_time: bool) -> None:
        for child in ast.iter_child_nodes(node):
            now = at_import_time
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                now = False
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, (), child.lineno, now) for a in child.names
                             if a.name.split(".")[0] == "overseer")
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - child.level + 1], base]).strip(".")
                if base.split(".")[0] == "overseer":
                    names = []
                    for alias in child.names:
                        if f"{base}.{alias.name}" in MODULES:
                            found.append(Import(module, f"{base}.{alias.name}", (), child.lineno, now))
                        else:
                            names.append(alias.name)
                    if names:
                        found.append(Import(module, base, tuple(names), child.lineno, now))
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), now)
            else:
                visit(child, now)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


def package_of(module: str) -> str:
    """The top package under ``overseer`` a module belongs to (``overseer.models._load`` -> ``models``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def level(module: str) -> int:
    top = package_of(module)
    if top in TOP_PACKAGES:
        return TOP
    if top in PILLAR_NAMES:
        return PILLARS
    if top in SHARED_LAYERS:
        return LAYERS
    if top == "" or top == "errors" or top.startswith("_"):  # overseer._config, _storage, _progress, ...
        return FOUNDATION
    raise AssertionError(f"{module} belongs to no level; add its package to the lists in {__file__}")


def test_every_module_has_a_level() -> None:
    assert len(MODULES) > 50
    for module in MODULES:
        level(module)


def test_no_module_imports_a_higher_level_or_another_pillar() -> None:
    breaches = []
    for imp in IMPORTS:
        mine, theirs = level(imp.importer), level(imp.target)
        if theirs > mine:
            breaches.append(f"{imp.where()}: {LEVEL_NAMES[mine]} imports {LEVEL_NAMES[theirs]}")
        elif mine == theirs == PILLARS:
            own, other = package_of(imp.importer), package_of(imp.target)
            if own != other and other not in PILLAR_USES.get(own, ()):
                breaches.append(f"{imp.where()}: the {own} pillar imports the {other} pillar")
    assert not breaches, "\n".join(breaches)


def owner(module: str) -> str | None:
    """The package a private module belongs to: the part before its first ``_name`` (None for a public one)."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_import_names_a_module_that_exists() -> None:
    missing = [imp.where() for imp in IMPORTS if imp.target not in MODULES]
    assert not missing, "\n".join(missing)


def test_no_module_imports_a_private_module_or_name_of_another_package() -> None:
    breaches = []
    for imp in IMPORTS:
        if imp.target not in MODULES:
            continue  # test_every_import_names_a_module_that_exists names it
        home = owner(imp.target)
        if home is not None and not inside(imp.importer, home):
            breaches.append(f"{imp.where()}: a private module of {home}")
        package = imp.target if MODULES[imp.target].name == "__init__.py" else imp.target.rpartition(".")[0]
        private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
        if private and not inside(imp.importer, package):
            breaches.append(f"{imp.where()}: private names {', '.join(private)}")
    assert not breaches, "\n".join(breaches)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.at_import_time and imp.target != imp.importer:
            graph.setdefault(imp.importer, set()).add(imp.target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(("source", "expected"), [
    ("from overseer.models._load import x\n", ["overseer.models._load"]),
    ("def f():\n    from overseer.audit import run\n", ["overseer.audit.run"]),
    ("from overseer import errors\n", ["overseer.errors"]),
    ("import overseer.results\n", ["overseer.results"]),
])
def test_the_walk_sees_module_and_function_level_imports(tmp_path: Path, source: str, expected: list[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    monkeypatch.setitem(MODULES, "overseer.probe", probe)
    assert [imp.target for imp in imports_of("overseer.probe")] == expected


def test_a_cycle_is_reported_as_its_path() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
