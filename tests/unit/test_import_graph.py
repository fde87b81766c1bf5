"""No import circle inside `supervise/`, and none between the packages of `services/`.

The graph is read from the AST of every module, imports inside functions included (they run
too, only later); imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from ollamamax_stack.registry.graph import find_cycle

PACKAGE = Path(__file__).resolve().parents[2] / "ollamamax_stack"


def module_name(path: Path, base: Path) -> str:
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield from _imports(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _imports(child)


def imported(path: Path, base: Path, known: set[str]) -> set[str]:
    """The modules of `known` that the module at `path` imports, at any depth of its code."""
    here = module_name(path, base)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        found.add(base)
        found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known} - {here}


def graph(root: Path, base: Path = PACKAGE.parent) -> dict[str, set[str]]:
    """Module -> the modules of `root` it imports; names are dotted paths below `base`."""
    paths = sorted(root.rglob("*.py"))
    known = {module_name(p, base) for p in paths}
    return {module_name(p, base): imported(p, base, known) for p in paths}


def cycle_text(edges: dict[str, set[str]]) -> str | None:
    cycle = find_cycle({name: sorted(targets) for name, targets in edges.items()})
    return " -> ".join(cycle) if cycle else None


def test_no_import_circle_inside_supervise() -> None:
    cycle = cycle_text(graph(PACKAGE / "supervise"))
    assert cycle is None, f"supervise/ imports in a circle: {cycle}"


def test_no_import_circle_between_the_services_packages() -> None:
    services = PACKAGE / "services"
    modules = graph(services)

    def package_of(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:3])  # ollamamax_stack.services.<package> (or a top module)

    edges: dict[str, set[str]] = {}
    for name, targets in modules.items():
        edges.setdefault(package_of(name), set()).update(
            package_of(t) for t in targets if package_of(t) != package_of(name))
    cycle = cycle_text(edges)
    assert cycle is None, f"services/ packages import in a circle: {cycle}"


@pytest.mark.parametrize(("source", "expected"), [
    ("from . import b\n", "pkg.a -> pkg.b -> pkg.a"),
    ("def f():\n    from pkg.b import thing\n", "pkg.a -> pkg.b -> pkg.a"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n", None),
])
def test_the_graph_sees_relative_and_function_level_imports(
        tmp_path: Path, source: str, expected: str | None) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text(source)
    (root / "b.py").write_text("import pkg.a\n")
    assert cycle_text(graph(root, tmp_path)) == expected
