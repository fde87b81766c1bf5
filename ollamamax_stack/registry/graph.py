"""The dependency graph: closures, start layers, stop order, cycles named."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ollamamax_stack.errors import RegistryError


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in deps.get(node, ()):
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def start_layers(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Layers to start in order; a layer's members depend only on earlier layers."""
    cycle = find_cycle(deps)
    if cycle:
        raise RegistryError(f"dependency cycle: {' -> '.join(cycle)}", key="depends_on")
    remaining = {name: {d for d in ds if d in deps} for name, ds in deps.items()}
    layers: list[list[str]] = []
    while remaining:
        layer = [name for name, ds in remaining.items() if not ds]
        layers.append(layer)
        for name in layer:
            del remaining[name]
        for ds in remaining.values():
            ds.difference_update(layer)
    return layers


def stop_order(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Layers to stop in order: dependents before what they depend on."""
    return list(reversed(start_layers(deps)))


def with_dependencies(deps: Mapping[str, Sequence[str]], names: Iterable[str]) -> list[str]:
    """The named services and everything they depend on, transitively, in `deps` order."""
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in wanted:
            continue
        wanted.add(name)
        stack.extend(d for d in deps.get(name, ()) if d in deps)
    return [name for name in deps if name in wanted]
