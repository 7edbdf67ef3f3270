"""Checks that FedLedger's ABCI schema matches CometBFT v0.38 on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from fedledger.abci_app.proto import build as proto_build
from fedledger.abci_app.proto import types as pb


def _go_module_dir(module: str) -> Path | None:
    """Source directory of a Go module version, downloaded through the Go module proxy if needed."""
    import json
    import shutil
    import subprocess

    go = shutil.which("go")
    if go is None:
        return None
    proc = subprocess.run([go, "mod", "download", "-json", module], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None
    return Path(json.loads(proc.stdout)["Dir"])


# The upstream schema of the pinned CometBFT (and the gogoproto options it imports), to compare ours with.
_COMET = _go_module_dir("github.com/cometbft/cometbft@v0.38.26")
_GOGO = _go_module_dir("github.com/cosmos/gogoproto@v1.7.0")
UPSTREAM_PROTO = (_COMET / "proto") if _COMET else Path("/nonexistent")
GOGO_ROOT = _GOGO if _GOGO else Path("/nonexistent")

FieldKey = tuple[str, int, int, int, str, str]


def _compile_set(include: list[Path], files: list[str], out: Path) -> descriptor_pb2.FileDescriptorSet:
    from grpc_tools import protoc

    args = ["protoc", *(f"--proto_path={p}" for p in include), "--include_imports",
            f"--descriptor_set_out={out}", *files]
    assert protoc.main(args) == 0, f"protoc failed on {files}"
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


EnumKey = tuple[str, int]
Walked = tuple[dict[str, list[FieldKey]], dict[str, list[EnumKey]]]


def _walk(fds: descriptor_pb2.FileDescriptorSet) -> Walked:
    """Map every message/enum full name to a canonical list of its fields/values."""
    messages: dict[str, list[FieldKey]] = {}
    enums: dict[str, list[EnumKey]] = {}

    def visit(prefix: str, msgs: list[descriptor_pb2.DescriptorProto],
              ens: list[descriptor_pb2.EnumDescriptorProto]) -> None:
        for en in ens:
            enums[f"{prefix}.{en.name}"] = sorted((v.name, v.number) for v in en.value)
        for msg in msgs:
            name = f"{prefix}.{msg.name}"
            fields = []
            for f in msg.field:
                oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else ""
                fields.append((f.name, f.number, f.type, f.label, f.type_name, oneof))
            messages[name] = sorted(fields, key=lambda k: k[1])
            visit(name, list(msg.nested_type), list(msg.enum_type))

    for file in fds.file:
        if file.package.startswith("google."):
            continue
        visit("." + file.package, list(file.message_type), list(file.enum_type))
    return messages, enums


def _closure(messages: dict[str, list[FieldKey]], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in messages:
            continue
        seen.add(name)
        stack.extend(f[4] for f in messages[name] if f[4])
    return seen


@pytest.mark.skipif(not (UPSTREAM_PROTO / "tendermint" / "abci" / "types.proto").is_file()
                    or not GOGO_ROOT.is_dir(), reason="no Go toolchain to fetch the CometBFT v0.38.26 sources")
def test_schema_matches_upstream_v0_38(tmp_path: Path) -> None:
    wkt = proto_build._well_known_include()
    upstream = _compile_set([UPSTREAM_PROTO, GOGO_ROOT, wkt],
                            ["tendermint/abci/types.proto", "tendermint/version/types.proto"],
                            tmp_path / "upstream.pb")
    ours = _compile_set([proto_build.PROTO_DIR, wkt],
                        sorted(p.name for p in proto_build.PROTO_DIR.glob("*.proto")), tmp_path / "ours.pb")
    up_msgs, up_enums = _walk(upstream)
    our_msgs, our_enums = _walk(ours)

    # Everything CometBFT can put on the ABCI socket must exist in our schema ...
    needed = _closure(up_msgs, [".tendermint.abci.Request", ".tendermint.abci.Response"])
    assert len(needed) > 50
    assert sorted(needed - set(our_msgs)) == []
    # ... and every message and enum we define must be identical on the wire to its upstream twin.
    for name, fields in our_msgs.items():
        assert name in up_msgs, f"{name} does not exist upstream"
        assert fields == up_msgs[name], f"{name} differs from upstream"
    for name, values in our_enums.items():
        assert values == up_enums.get(name), f"enum {name} differs from upstream"


def test_request_and_response_oneofs_cover_v0_38_calls() -> None:
    req_fields = {f.name: f.number for f in pb.Request.DESCRIPTOR.oneofs_by_name["value"].fields}
    resp_fields = {f.name: f.number for f in pb.Response.DESCRIPTOR.oneofs_by_name["value"].fields}
    assert req_fields == {
        "echo": 1, "flush": 2, "info": 3, "init_chain": 5, "query": 6, "check_tx": 8, "commit": 11,
        "list_snapshots": 12, "offer_snapshot": 13, "load_snapshot_chunk": 14, "apply_snapshot_chunk": 15,
        "prepare_proposal": 16, "process_proposal": 17, "extend_vote": 18, "verify_vote_extension": 19,
        "finalize_block": 20,
    }
    assert resp_fields == {
        "exception": 1, "echo": 2, "flush": 3, "info": 4, "init_chain": 6, "query": 7, "check_tx": 9,
        "commit": 12, "list_snapshots": 13, "offer_snapshot": 14, "load_snapshot_chunk": 15,
        "apply_snapshot_chunk": 16, "prepare_proposal": 17, "process_proposal": 18, "extend_vote": 19,
        "verify_vote_extension": 20, "finalize_block": 21,
    }


def test_known_wire_bytes() -> None:
    # Hand-assembled encodings: Request.check_tx is field 8 (tag 0x42), its tx field 1 (tag 0x0a).
    assert pb.Request(check_tx=pb.RequestCheckTx(tx=b"ab")).SerializeToString() == b"\x42\x04\x0a\x02ab"
    # Response.finalize_block is field 21 (tag 0xaa 0x01), app_hash is field 5 (tag 0x2a).
    resp = pb.Response(finalize_block=pb.ResponseFinalizeBlock(app_hash=b"\x01"))
    assert resp.SerializeToString() == b"\xaa\x01\x03\x2a\x01\x01"
    # ResponseCommit.retain_height is field 3 (tag 0x18).
    assert pb.ResponseCommit(retain_height=7).SerializeToString() == b"\x18\x07"


def test_rewrite_imports_only_touches_local_modules() -> None:
    src = "import abci_pb2 as abci__pb2\nimport other_pb2 as o\nfrom google.protobuf import x_pb2 as y\n"
    out = proto_build.rewrite_imports(src, {"abci_pb2"})
    assert out.splitlines() == [
        "from fedledger.abci_app.proto import abci_pb2 as abci__pb2",
        "import other_pb2 as o",
        "from google.protobuf import x_pb2 as y",
    ]


def test_build_into_other_folder(tmp_path: Path) -> None:
    generated = proto_build.build(out_dir=tmp_path)
    names = sorted(p.name for p in generated)
    assert "abci_pb2.py" in names and "abci_pb2.pyi" in names
    text = (tmp_path / "abci_pb2.py").read_text()
    assert "from fedledger.abci_app.proto import tendermint_types_pb2" in text
    assert "\nimport tendermint_types_pb2" not in text
