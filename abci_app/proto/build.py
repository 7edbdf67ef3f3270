"""Compile FedLedger's ABCI protobuf schema into importable ``*_pb2`` modules (``make proto``)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

__all__ = ["PACKAGE", "PROTO_DIR", "ProtoBuildError", "build", "main", "rewrite_imports"]

#: Directory holding the ``.proto`` sources; the generated modules are written next to them.
PROTO_DIR = Path(__file__).resolve().parent

#: Python package under which the generated modules are imported.
PACKAGE = "fedledger.abci_app.proto"

# protoc names a generated module after its .proto file and imports sibling modules as top-level
# names ("import abci_pb2"), which only works when the output folder is on sys.path.
_BARE_IMPORT = re.compile(r"^import (?P<module>\w+_pb2) as (?P<alias>\w+)$", re.MULTILINE)

# protoc's stubs annotate message-valued arguments with a bare ``Mapping``, which mypy --strict
# reports as a missing type argument; that is the generator's style, not a bug in our code.
_STUB_HEADER = '# mypy: disable-error-code="type-arg"\n'


class ProtoBuildError(RuntimeError):
    """Raised when the schema cannot be compiled (protoc missing or reporting an error)."""


def rewrite_imports(source: str, local_modules: set[str]) -> str:
    """Turn protoc's bare imports of sibling ``*_pb2`` modules into imports from :data:`PACKAGE`.

    Imports of modules that are not in ``local_modules`` (e.g. ``google.protobuf`` ones, which
    protoc already writes as ``from google.protobuf import ...``) are left untouched.
    """

    def replace(match: re.Match[str]) -> str:
        module = match.group("module")
        if module not in local_modules:
            return match.group(0)
        return f"from {PACKAGE} import {module} as {match.group('alias')}"

    return _BARE_IMPORT.sub(replace, source)


def _well_known_include() -> Path:
    """Return the folder with google/protobuf/*.proto shipped by grpcio-tools."""
    try:
        root = resources.files("grpc_tools") / "_proto"
    except ModuleNotFoundError as exc:
        raise ProtoBuildError(
            "grpcio-tools is not installed; install the dev extra (pip install -e '.[dev]')"
        ) from exc
    path = Path(str(root))
    if not (path / "google" / "protobuf" / "timestamp.proto").is_file():
        raise ProtoBuildError(f"grpcio-tools ships no well-known .proto files under {path}")
    return path


def build(proto_dir: Path = PROTO_DIR, out_dir: Path | None = None) -> list[Path]:
    """Compile every ``.proto`` in ``proto_dir`` into ``out_dir`` (default: ``proto_dir``).

    Returns the generated ``.py`` and ``.pyi`` paths in sorted order.
    """
    try:
        from grpc_tools import protoc
    except ImportError as exc:
        raise ProtoBuildError(
            "grpcio-tools is not installed; install the dev extra (pip install -e '.[dev]')"
        ) from exc

    target = proto_dir if out_dir is None else out_dir
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted(p.name for p in proto_dir.glob("*.proto"))
    if not sources:
        raise ProtoBuildError(f"no .proto files found in {proto_dir}")

    args = [
        "grpc_tools.protoc",
        f"--proto_path={proto_dir}",
        f"--proto_path={_well_known_include()}",
        f"--python_out={target}",
        f"--pyi_out={target}",
        *sources,
    ]
    status = protoc.main(args)
    if status != 0:
        raise ProtoBuildError(f"protoc failed with exit status {status} (see its messages above)")

    local_modules = {Path(name).stem + "_pb2" for name in sources}
    generated: list[Path] = []
    for module in sorted(local_modules):
        for suffix in (".py", ".pyi"):
            path = target / (module + suffix)
            if not path.is_file():
                raise ProtoBuildError(f"protoc reported success but did not write {path}")
            text = path.read_text(encoding="utf-8")
            fixed = rewrite_imports(text, local_modules)
            if suffix == ".pyi" and not fixed.startswith(_STUB_HEADER):
                fixed = _STUB_HEADER + fixed
            if fixed != text:
                path.write_text(fixed, encoding="utf-8")
            generated.append(path)
    return generated


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m fedledger.abci_app.proto.build", description=__doc__
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: next to the .proto files)"
    )
    options = parser.parse_args(argv)
    try:
        generated = build(PROTO_DIR, options.out)
    except ProtoBuildError as exc:
        print(f"proto build failed: {exc}", file=sys.stderr)
        return 1
    for path in generated:
        print(f"generated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
