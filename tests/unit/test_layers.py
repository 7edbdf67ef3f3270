"""The layers point one way, and no module imports itself back: an upward import or a cycle fails CI.

Layers, top to bottom (fedledger/__init__.py, docs/ARCHITECTURE.md):

    apps, bench               the CLI, demo, experiment harness, benchmarks
    client | node | localnet  services, which never import each other
    sdk                       the shared layer: chain client, errors, protocol libraries
    ipfs                      the content store
    abci_app                  the state machine and its public types

A folder may import its own layer's other folders only where ALLOWED_SIDEWAYS says so, and any
lower layer. On top of that, the module graph (every import, including those inside functions)
has no cycle at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.imports import ROOT, imports_of, module_name, package_files

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"apps", "bench"}),
    frozenset({"client", "node", "localnet"}),
    frozenset({"sdk"}),
    frozenset({"ipfs"}),
    frozenset({"abci_app"}),
)
# Sideways imports inside one layer: the CLI mounts `fedledger bench`, and the round bench runs the
# experiment harness; the module graph below still forbids a cycle between them.
ALLOWED_SIDEWAYS = frozenset({("apps", "bench"), ("bench", "apps")})
FOLDERS = sorted(set().union(*LAYERS))


def _layer(folder: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if folder in layer)


def _graph(root: Path = ROOT) -> dict[str, list[tuple[str, int, Path]]]:
    """module -> the fedledger modules it imports (resolved to modules that exist), with line and file."""
    sources = {module_name(p, root): p for folder in FOLDERS for p in package_files(folder, root)}
    graph: dict[str, list[tuple[str, int, Path]]] = {}
    for module, path in sources.items():
        edges: dict[tuple[str, int], Path] = {}
        for imp in imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
            name = imp.name
            while name and name not in sources:  # `from pkg.mod import Symbol` names pkg.mod.Symbol
                name = name.rpartition(".")[0]
            # A module's own packages are imported before it anyway: `from pkg import sibling` is no cycle.
            if name.startswith("fedledger.") and name != module and not module.startswith(name + "."):
                edges[(name, imp.line)] = path
        graph[module] = [(name, line, p) for (name, line), p in sorted(edges.items())]
    return graph


def upward_imports(graph: Mapping[str, Iterable[tuple[str, int, Path]]]) -> list[str]:
    """Each import that points up a layer, or sideways without leave, as `file:line: a -> b`."""
    bad = []
    for module, edges in graph.items():
        own = module.split(".")[1]
        for target, line, path in edges:
            other = target.split(".")[1]
            if other == own or (other in FOLDERS and _layer(other) > _layer(own)):
                continue
            if other in FOLDERS and _layer(other) == _layer(own) and (own, other) in ALLOWED_SIDEWAYS:
                continue
            bad.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: {module} -> {target}")
    return sorted(bad)


def cycles(graph: Mapping[str, Iterable[tuple[str, int, Path]]]) -> list[list[str]]:
    """The module-level import cycles (strongly connected components of more than one module), sorted."""
    adjacency = {m: sorted({t for t, _, _ in edges if t in graph}) for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    # Tarjan's algorithm, iterative: the graph has ~300 modules and recursion would be fine, but a
    # deep chain of imports should never be what makes this test fail.
    for start in sorted(adjacency):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if i < len(adjacency[node]):
                work.append((node, i + 1))
                nxt = adjacency[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
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
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found)


GRAPH = _graph()


def test_every_folder_is_in_a_layer_and_the_package() -> None:
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "fedledger"}
    assert folders == set(FOLDERS), "a new top-level package needs a layer here and a link in fedledger/"
    for folder in FOLDERS:
        link = ROOT / "fedledger" / folder
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve(), link
    assert len(GRAPH) > 250


def test_no_import_points_up_or_sideways() -> None:
    assert upward_imports(GRAPH) == []


def test_no_import_cycle() -> None:
    assert cycles(GRAPH) == []


def test_client_and_node_never_import_each_other() -> None:
    crossing = [(m, t) for m, edges in GRAPH.items() for t, _, _ in edges
                if {m.split(".")[1], t.split(".")[1]} == {"client", "node"}]
    assert crossing == []


@pytest.mark.parametrize(("files", "upward", "cyclic"), [
    ({"sdk/a.py": "from fedledger.client.b import x\n", "client/b.py": "x = 1\n"}, 1, 0),
    ({"node/a.py": "def f():\n    import fedledger.client.b\n", "client/b.py": ""}, 1, 0),
    ({"sdk/a.py": "from . import b\n", "sdk/b.py": "from fedledger.sdk import a\n"}, 0, 1),
    ({"client/a.py": "from fedledger.sdk.b import y\n", "sdk/b.py": "y = 2\n"}, 0, 0),
])
def test_the_checks_catch_what_they_should(tmp_path: Path, files: dict[str, str], upward: int, cyclic: int) -> None:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text, encoding="utf-8")
    graph = _graph(tmp_path)
    assert len(upward_imports(graph)) == upward
    assert len(cycles(graph)) == cyclic
