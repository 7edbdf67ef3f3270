"""RDF helpers for ecdsa-sd-2023: RDFC-1.0 canonical N-Quads and blank-node relabeling.

The cryptosuite signs each canonical N-Quad separately, after renaming its canonical blank-node
labels (c14n0, c14n1, ...) through a label map (HMAC-derived labels) so that a disclosed subset
reveals nothing about the shape of the withheld rest. Relabeling works on parsed terms, never on
raw text, so a literal that happens to contain "_:c14n0" is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.did.ecdsa_sd.contexts import UnknownContextError, document_loader
from fedledger.abci_app.did.ecdsa_sd.offline_pyld import URDNA2015, jsonld

__all__ = ["canonical_nquads", "parse_nquad", "relabel_nquad", "relabel_sorted", "split_nquads"]

# One N-Quads term: an IRI, a blank node, or a literal with optional datatype or language tag.
_TERM = re.compile(r'\s*(<[^>]*>|_:[A-Za-z0-9_\-.]+|"(?:[^"\\]|\\.)*"(?:\^\^<[^>]*>|@[A-Za-z0-9\-]+)?)')


def _unwrap_unknown_context(exc: BaseException) -> None:
    # pyld wraps a loader's exception in JsonLdErrors; surface ours so the caller sees the real reason.
    seen: set[int] = set()
    cause: object = exc
    while isinstance(cause, BaseException) and id(cause) not in seen:
        if isinstance(cause, UnknownContextError):
            raise cause from exc
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__ or getattr(cause, "cause", None)


def canonical_nquads(document: Mapping[str, Any], max_blank_nodes: int | None = None) -> list[str]:
    """RDFC-1.0 (URDNA2015) canonical N-Quads of a JSON-LD document, one '\\n'-terminated quad each.

    max_blank_nodes bounds canonicalization's work: its worst case (many indistinguishable blank
    nodes) grows factorially, so a verifier in consensus refuses such a document before hashing it.
    """
    options = {"documentLoader": document_loader, "produceGeneralizedRdf": False}
    try:
        dataset = jsonld.to_rdf(dict(document), options)
    except jsonld.JsonLdError as exc:
        _unwrap_unknown_context(exc)
        raise
    if max_blank_nodes is not None:
        labels = {
            term["value"]
            for triples in dataset.values()
            for triple in triples
            for term in triple.values()
            if isinstance(term, dict) and term.get("type") == "blank node"
        }
        labels |= {name for name in dataset if name.startswith("_:")}
        if len(labels) > max_blank_nodes:
            raise ValueError(f"{len(labels)} blank nodes; at most {max_blank_nodes} are canonicalized here")
    text = URDNA2015().main(dataset, {"format": "application/n-quads"})
    return split_nquads(str(text))


def split_nquads(text: str) -> list[str]:
    """Split an N-Quads document into its quads, each keeping its terminating newline."""
    return [line + "\n" for line in text.split("\n") if line]


def parse_nquad(quad: str) -> tuple[str, ...]:
    """The terms of one N-Quad (subject, predicate, object[, graph]) as written, raising ValueError if malformed."""
    body = quad.rstrip("\n")
    if not body.endswith(" ."):
        raise ValueError(f"not an N-Quad: {quad!r}")
    body = body[:-2]
    terms: list[str] = []
    pos = 0
    while pos < len(body):
        match = _TERM.match(body, pos)
        if match is None:
            raise ValueError(f"unparsable N-Quad term at {pos}: {quad!r}")
        terms.append(match.group(1))
        pos = match.end()
    if len(terms) not in (3, 4):
        raise ValueError(f"an N-Quad has 3 or 4 terms: {quad!r}")
    return tuple(terms)


def relabel_nquad(quad: str, labels: Mapping[str, str]) -> str:
    """Rename the blank nodes of one quad: _:X becomes _:labels[X]; every label must be mapped."""
    out: list[str] = []
    pos = 0
    body = quad.rstrip("\n")
    if not body.endswith(" ."):
        raise ValueError(f"not an N-Quad: {quad!r}")
    body = body[:-2]
    while pos < len(body):
        match = _TERM.match(body, pos)
        if match is None:
            raise ValueError(f"unparsable N-Quad term at {pos}: {quad!r}")
        term = match.group(1)
        if term.startswith("_:"):
            label = term[2:]
            if label not in labels:
                raise KeyError(label)
            term = "_:" + labels[label]
        out.append(term)
        pos = match.end()
    return " ".join(out) + " .\n"


def relabel_sorted(quads: list[str], labels: Mapping[str, str]) -> list[str]:
    """Relabel every quad and sort the result (code-point order, as the cryptosuite specifies)."""
    return sorted(relabel_nquad(q, labels) for q in quads)
