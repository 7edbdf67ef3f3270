"""abci_app's import boundaries: modules reach each other only through keeper and records; nothing off-chain.

Imports are read with `ast` from the source files (tests/imports.py), so the test sees every
import, including relative ones and ones inside functions, without importing anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tests.imports import imports_of

ABCI = Path(__file__).resolve().parents[2] / "abci_app"
MODULES = ABCI / "modules"
PREFIX = "fedledger.abci_app.modules."
#: What one module may import of another.
PUBLIC = frozenset({"keeper", "records"})
#: Files under modules/ that belong to no module (what a module is, shared field checks, the module order).
NEUTRAL = frozenset({"base", "fields", "registry", "__init__"})
#: Off-chain packages (first dotted parts) consensus code must never import.
OFF_CHAIN = ("fedledger.client", "fedledger.node", "fedledger.ipfs", "fedledger.localnet", "fedledger.bench",
             "fedledger.sdk", "fedledger.apps", "torch", "httpx", "ipfshttpclient", "websockets", "web3", "ray")


def imported_names(source: str, own: str = "x") -> list[tuple[int, str]]:
    """(line, dotted name) for every import in `source` (a file of module `own`), as tests/imports.py reads them."""
    return [(imp.line, imp.name) for imp in imports_of(source, f"{PREFIX}{own}.file")]


def _reaches_in(own: str, name: str) -> bool:
    """True if dotted `name` is another module's internals as seen from module `own`."""
    if not name.startswith(PREFIX):
        return False
    parts = name[len(PREFIX):].split(".")
    if parts[0] == own or parts[0] in NEUTRAL:
        return False
    # The bare package counts too (`from ...modules import x`): what it leads to is x's internals.
    return len(parts) < 2 or parts[1] not in PUBLIC


def boundary_violations(own: str, source: str) -> list[tuple[int, str]]:
    """(line, name) of each import by module `own` of another module's internals (anything but keeper/records).

    `from fedledger.abci_app.modules.x import keys` reaches into x as much as importing
    `fedledger.abci_app.modules.x.keys` does, so both count; so does `from fedledger.abci_app.modules import x`.
    """
    flagged = {(line, name) for line, name in imported_names(source, own) if _reaches_in(own, name)}
    # `from a import b` is read as both a and a.b. Where a is a module's package, the import is of b
    # (say its keys); where a is already a file inside the module (its hooks), the import is of a.
    out = set()
    for line, name in flagged:
        parent = name.rpartition(".")[0]
        is_package = len(name[len(PREFIX):].split(".")) == 1
        if (line, parent) in flagged and len(parent[len(PREFIX):].split(".")) != 1:
            continue  # a.b where a, a file of the module, is reported
        if is_package and any(other.startswith(name + ".") for ln, other in flagged if ln == line):
            continue  # the package of `from package import file`: the file is reported
        out.add((line, name))
    return sorted(out)


def off_chain_imports(source: str) -> list[tuple[int, str]]:
    """(line, name) of each import of an off-chain package."""
    return [(line, name) for line, name in imported_names(source)
            if any(name == p or name.startswith(p + ".") for p in OFF_CHAIN)]


def _module_files() -> Iterator[tuple[str, Path]]:
    for pkg in sorted(p for p in MODULES.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        for path in sorted(pkg.rglob("*.py")):
            yield pkg.name, path


def test_the_checker_flags_reaching_into_internals() -> None:
    # A self-check, so that a checker broken into accepting everything cannot pass the real test.
    assert boundary_violations("lifecycle", "from fedledger.abci_app.modules.federation import keys\n") == [
        (1, "fedledger.abci_app.modules.federation.keys")]
    assert boundary_violations("secagg", "import fedledger.abci_app.modules.federation.handlers as h\n") == [
        (1, "fedledger.abci_app.modules.federation.handlers")]
    assert boundary_violations("secagg", "def f():\n    from fedledger.abci_app.modules.reputation.hooks "
                                         "import score_at\n") == [(2, "fedledger.abci_app.modules.reputation.hooks")]
    assert boundary_violations("anchor", "from fedledger.abci_app.modules import identity\n") == [
        (1, "fedledger.abci_app.modules.identity")]
    assert boundary_violations("secagg", "from fedledger.abci_app.modules.federation.keeper import load_task\n"
                                         "from fedledger.abci_app.modules.federation.records import TaskRecord\n"
                                         "from fedledger.abci_app.modules.secagg import keys\n"
                                         "from fedledger.abci_app.modules.base import Module\n") == []
    assert off_chain_imports("import torch\nfrom fedledger.node.robust import median\nimport json\n") == [
        (1, "torch"), (2, "fedledger.node.robust"), (2, "fedledger.node.robust.median")]


def test_modules_reach_each_other_only_through_keeper_and_records() -> None:
    found = []
    for own, path in _module_files():
        for line, name in boundary_violations(own, path.read_text()):
            found.append(f"{path.relative_to(ABCI.parent)}:{line}: module {own} imports {name}; "
                         f"use {'.'.join(name.split('.')[:4])}.keeper (or .records) instead")
    assert not found, "\n".join(found)


def test_abci_app_imports_nothing_off_chain() -> None:
    found = [f"{path.relative_to(ABCI.parent)}:{line}: imports {name}"
             for path in sorted(ABCI.rglob("*.py")) for line, name in off_chain_imports(path.read_text())]
    assert not found, "\n".join(found)


def test_records_files_stay_light() -> None:
    # Off-chain code imports the record types; they must not drag in handlers, the EVM or crypto.
    for path in sorted(MODULES.glob("*/records.py")):
        for line, name in imported_names(path.read_text()):
            ok = name.split(".")[0] in ("__future__", "typing") or (
                name.startswith(PREFIX) and name[len(PREFIX):].split(".")[1:2] == ["records"])
            assert ok, f"{path.relative_to(ABCI.parent)}:{line}: a records file imports {name}"
