"""Reading a source file's imports with ast, for the tests that hold the code to its layering rules.

Every form counts: `import a.b`, `from a import b` (both `a` and `a.b`), relative imports,
imports inside functions, and `importlib.import_module("a")` / `__import__("a")` with a literal.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Import", "imports_of", "module_name", "package_files"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Import:
    """One imported module name and the line that imports it."""

    name: str
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    """The installed name of a repository file: fedledger/<folder> links to the folder <folder>."""
    parts = list(path.resolve().relative_to(root.resolve()).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["fedledger", *parts])


def imports_of(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every module name `source` (the code of `module`) imports, with its line."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append(Import(name, node.lineno))
            found.extend(Import(f"{name}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append(Import(node.args[0].value, node.lineno))
    return found


def package_files(folder: str, root: Path = ROOT) -> list[Path]:
    """The Python files of one top-level folder, generated protobuf modules left out."""
    return sorted(p for p in (root / folder).rglob("*.py") if not p.name.endswith("_pb2.py"))
