"""JSON pointer selection and skolemized grouping for ecdsa-sd-2023 (spec sections 3.4.x, off-chain).

The issuer groups a credential's canonical N-Quads by which JSON pointers select them (mandatory
vs the rest); the holder does the same for mandatory + selective pointers and reveals only the
selected JSON. Both need stable blank-node identity between the full document and a selection of it,
so every node is first given a temporary URN id (skolemized), selected, and turned back into blank
nodes (deskolemized) before canonicalization.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyld import jsonld
from pyld.canon import URDNA2015
from pyld.nquads import parse_nquads

from fedledger.abci_app.did.ecdsa_sd.contexts import document_loader
from fedledger.abci_app.did.ecdsa_sd.proofvalue import b64url
from fedledger.abci_app.did.ecdsa_sd.rdf import relabel_sorted, split_nquads
from fedledger.abci_app.errors import ConfigError

__all__ = [
    "Group",
    "Grouped",
    "SelectionError",
    "canonical_id_map",
    "canonicalize_and_group",
    "hmac_label_map_factory",
    "parse_pointer",
    "select_json_ld",
]

_SCHEME = "urn:bnid:"
_HOLE = object()  # an unselected slot of a selected array; removed before the selection is returned
LabelMapFactory = Callable[[Mapping[str, str]], dict[str, str]]
_OPTIONS: dict[str, Any] = {"documentLoader": document_loader}


class SelectionError(ConfigError):
    """A JSON pointer that is malformed or selects nothing in the credential."""

    error_code = "SD_POINTER_INVALID"


def parse_pointer(pointer: str) -> list[str | int]:
    """RFC 6901 JSON pointer -> path segments (digit-only segments become array indexes)."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise SelectionError(f"JSON pointer {pointer!r} must start with '/'")
    out: list[str | int] = []
    for raw in pointer[1:].split("/"):
        seg = raw.replace("~1", "/").replace("~0", "~")
        out.append(int(seg) if seg.isdigit() else seg)
    return out


def _initial_selection(source: Any) -> dict[str, Any]:
    # The spec keeps a node's non-blank id and its type so the selection stays about the same node.
    selection: dict[str, Any] = {}
    if isinstance(source, dict):
        node_id = source.get("id")
        if isinstance(node_id, str) and not node_id.startswith("_:"):
            selection["id"] = node_id
        if "type" in source:
            selection["type"] = copy.deepcopy(source["type"])
    return selection


def _child(container: Any, seg: str | int, pointer: str) -> Any:
    if isinstance(container, list) and isinstance(seg, int) and seg < len(container):
        return container[seg]
    if isinstance(container, dict) and str(seg) in container:
        return container[str(seg)]
    raise SelectionError(f"JSON pointer {pointer!r} selects nothing in the credential")


def _get_sel(parent: Any, seg: str | int) -> Any:
    if isinstance(parent, list):
        assert isinstance(seg, int)
        return parent[seg] if seg < len(parent) and parent[seg] is not _HOLE else None
    return parent.get(str(seg))


def _set_sel(parent: Any, seg: str | int, value: Any) -> None:
    if isinstance(parent, list):
        assert isinstance(seg, int)
        parent.extend([_HOLE] * (seg + 1 - len(parent)))
        parent[seg] = value
    else:
        parent[str(seg)] = value


def _drop_holes(value: Any) -> Any:
    if isinstance(value, list):
        return [_drop_holes(v) for v in value if v is not _HOLE]
    if isinstance(value, dict):
        return {k: _drop_holes(v) for k, v in value.items()}
    return value


def select_json_ld(pointers: Sequence[str], document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The spec's selectJsonLd: the part of document the pointers reach (with ids/types on the way)."""
    if not pointers:
        return None
    selection = _initial_selection(dict(document))
    selection["@context"] = copy.deepcopy(document["@context"])
    for pointer in pointers:
        paths = parse_pointer(pointer)
        value: Any = document
        parent_sel: Any = selection
        sel: Any = selection
        for seg in paths:
            parent_sel = sel
            value = _child(value, seg, pointer)
            sel = _get_sel(parent_sel, seg)
            if sel is None:
                sel = [] if isinstance(value, list) else _initial_selection(value)
                _set_sel(parent_sel, seg, sel)
        if isinstance(value, dict):
            merged = dict(sel) if isinstance(sel, dict) else {}
            merged.update(copy.deepcopy(value))
            _set_sel(parent_sel, paths[-1], merged)
        else:
            _set_sel(parent_sel, paths[-1], copy.deepcopy(value))
    result = _drop_holes(selection)
    assert isinstance(result, dict)
    return result


def _skolemize(expanded: Any, counter: list[int]) -> Any:
    if isinstance(expanded, list):
        return [_skolemize(e, counter) for e in expanded]
    if not isinstance(expanded, dict) or "@value" in expanded:
        return copy.deepcopy(expanded)
    node = {k: _skolemize(v, counter) for k, v in expanded.items()}
    if "@list" in expanded or "@set" in expanded:
        return node
    node_id = node.get("@id")
    if node_id is None:
        node["@id"] = f"{_SCHEME}b{counter[0]}"
        counter[0] += 1
    elif isinstance(node_id, str) and node_id.startswith("_:"):
        node["@id"] = _SCHEME + "x" + node_id[2:]
    return node


def _deskolemized_nquads(expanded: Any) -> list[str]:
    text = jsonld.to_rdf(expanded, {"format": "application/n-quads", **_OPTIONS})
    out = []
    for quad in split_nquads(str(text)):
        out.append(_replace_urns(quad))
    return out


def _replace_urns(quad: str) -> str:
    # <urn:bnid:X> appears only as an IRI term we minted; literals cannot contain '<urn:bnid:' + '>'
    # in term position because relabel later re-parses the quad by terms.
    parts = quad.split("<" + _SCHEME)
    rebuilt = parts[0]
    for part in parts[1:]:
        label, _, rest = part.partition(">")
        rebuilt += "_:" + label + rest
    return rebuilt


def canonical_id_map(nquads: Sequence[str]) -> dict[str, str]:
    """RDFC-1.0 over N-Quads; returns input blank-node label -> canonical label (both without '_:')."""
    canon = URDNA2015()
    canon.main(parse_nquads("".join(nquads)), {"format": "application/n-quads"})
    return {k[2:]: v[2:] for k, v in canon.canonical_issuer.existing.items()}


def hmac_label_map_factory(hmac_key: bytes) -> LabelMapFactory:
    """The spec's createHmacIdLabelMapFunction: each canonical label c14nN becomes 'u' + b64url(HMAC(c14nN))."""

    def factory(canonical: Mapping[str, str]) -> dict[str, str]:
        return {
            inp: "u" + b64url(hmac.new(hmac_key, c14n.encode(), hashlib.sha256).digest())
            for inp, c14n in canonical.items()
        }

    return factory


@dataclass(frozen=True)
class Group:
    """Which of the relabeled, sorted canonical quads a group's pointers select (index -> quad)."""

    matching: dict[int, str]
    non_matching: dict[int, str]
    deskolemized_nquads: tuple[str, ...]


@dataclass(frozen=True)
class Grouped:
    """The spec's canonicalizeAndGroup output."""

    groups: dict[str, Group]
    label_map: dict[str, str]  # deskolemized input label -> HMAC label
    nquads: tuple[str, ...]  # relabeled and sorted


def canonicalize_and_group(
    document: Mapping[str, Any], factory: LabelMapFactory, definitions: Mapping[str, Sequence[str]]
) -> Grouped:
    """Skolemize, canonicalize with relabeling, and sort each group's pointers' quads into matching/non-matching."""
    expanded = jsonld.expand(dict(document), dict(_OPTIONS))
    skolem_expanded = _skolemize(expanded, [0])
    skolem_compact = jsonld.compact(skolem_expanded, {"@context": document["@context"]}, dict(_OPTIONS))
    deskolemized = _deskolemized_nquads(skolem_expanded)
    label_map = factory(canonical_id_map(deskolemized))
    nquads = relabel_sorted(deskolemized, label_map)
    index = {q: i for i, q in enumerate(nquads)}
    groups: dict[str, Group] = {}
    for name, pointers in definitions.items():
        selection = select_json_ld(pointers, skolem_compact)
        desk = _deskolemized_nquads(jsonld.expand(selection, dict(_OPTIONS))) if selection else []
        chosen = {index[q] for q in relabel_sorted(desk, label_map)}
        groups[name] = Group(
            matching={i: q for i, q in enumerate(nquads) if i in chosen},
            non_matching={i: q for i, q in enumerate(nquads) if i not in chosen},
            deskolemized_nquads=tuple(desk),
        )
    return Grouped(groups=groups, label_map=label_map, nquads=tuple(nquads))
