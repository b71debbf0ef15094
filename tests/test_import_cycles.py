"""`sliders` has no import cycle, and domain code never pulls in the socket side.

The graph is built from the source with `ast`: every `import` and `from ... import`, at module
level and inside functions (a function-local import hides a cycle, it does not remove one),
except those under `if TYPE_CHECKING:`, which never run. Importing `a.b.c` imports the packages
`a` and `a.b` first, so a module also depends on the package it is in (but a package that
re-exports its own submodules does not thereby depend on them).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "sliders"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import that runs."""
    found: list[tuple[str, bool]] = []
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, in_function: bool) -> None:
        if _type_checking_only(node):
            for child in node.orelse:  # type: ignore[attr-defined]
                visit(child, in_function)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found.append((origin, in_function))
            found.extend((f"{origin}.{alias.name}", in_function) for alias in node.names)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        if "." in name:
            edges[name].add(name.rsplit(".", 1)[0])  # its package runs first
        for target, _ in imports(name, path):
            parts = target.split(".")
            # `import a.b.c` runs a, a.b and a.b.c; `from a import b` may name a module a.b.
            for end in range(1, len(parts) + 1):
                imported = ".".join(parts[:end])
                if imported in known and imported != name and not _reexport(name, path, imported):
                    edges[name].add(imported)
    return edges


def _reexport(name: str, path: Path, imported: str) -> bool:
    """A package's `__init__` importing its own submodules (to offer their names as the
    package's, like `sliders.services`) runs them from inside the package: no cycle with them."""
    return path.name == "__init__.py" and imported.startswith(name + ".")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_the_graph_sees_function_level_imports() -> None:
    edges = graph()
    assert "sliders.models" in edges["sliders.sharing"]  # imported inside share_for
    assert "sliders.realtime" in edges["sliders.realtime.handlers"]  # its package


def test_sliders_has_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_imports_the_socket_side_inside_a_function() -> None:
    local = [
        (name, target)
        for name, path in modules().items()
        for target, in_function in imports(name, path)
        if in_function and target.startswith(f"{PACKAGE}.realtime")
    ]
    assert local == []


def test_announcing_a_change_builds_no_socketio_server() -> None:
    """What a shell or a management command does: the domain side, without the socket side."""
    script = (
        "import sys, django; django.setup();"
        "from sliders import admin, api, metrics, notices, services, views;"
        "notices.board_changed('main');"
        "loaded = sorted(m for m in sys.modules if m.startswith('sliders.realtime.'));"
        "print(loaded);"
        "assert 'sliders.realtime.server' not in sys.modules, loaded"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
