"""RFC 8785 JSON Canonicalization Scheme (JCS): the byte form that eddsa-jcs-2022 hashes and signs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.errors import ProtocolError

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "JCSError", "canonicalize", "loads"]

# JCS serializes numbers the way ECMAScript does, i.e. as IEEE-754 doubles. An integer is
# reproduced digit for digit only within the doubles' exact range, so that is all we accept.
MAX_SAFE_INTEGER = 2**53 - 1

# Nesting deep enough for any credential; deeper input is garbage and must not reach Python's
# recursion limit (an unhelpful RecursionError) in the chain's admission handler.
MAX_DEPTH = 32

# ECMAScript's JSON.stringify (QuoteJSONString), which RFC 8785 section 3.2.2.2 adopts: the
# two-character escapes, \u00xx (lower-case hex) for the other C0 controls, everything else
# (including '/', DEL and all non-ASCII) written as itself.
_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
_ESCAPES = {code: _SHORT_ESCAPES.get(code, f"\\u{code:04x}") for code in [*range(0x20), 0x22, 0x5C]}
_TRANSLATION = str.maketrans({chr(code): text for code, text in _ESCAPES.items()})


class JCSError(ProtocolError):
    """A value that JCS cannot (or FedLedger will not) canonicalize, or JSON text that is not acceptable."""

    error_code = "JCS"


def _string(value: str, where: str) -> str:
    # RFC 8785 requires I-JSON (RFC 7493): strings are valid Unicode, so a lone surrogate (which
    # a Python str can hold, e.g. from json.loads('"\\ud800"')) is an error, not something to escape.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        raise JCSError(f"{where}: string holds a lone surrogate (U+{code:04X}), not valid Unicode") from exc
    return '"' + value.translate(_TRANSLATION) + '"'


def _utf16_key(key: str) -> bytes:
    # RFC 8785 section 3.2.3: members are ordered by the UTF-16 code units of their names.
    # Big-endian UTF-16 bytes compare exactly as the sequence of code units does.
    return key.encode("utf-16-be")


def _serialize(value: Any, out: list[str], where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise JCSError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise JCSError(f"{where}: integer {value} is outside ±(2^53-1), which JCS cannot represent exactly")
        # For a safe integer the ECMAScript Number serialization is its plain decimal form.
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise JCSError(f"{where}: non-integer number {value!r}; FedLedger identity documents use integers only")
    elif isinstance(value, str):
        out.append(_string(value, where))
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise JCSError(f"{where}: object key {key!r} is not a string")
            _string(key, where)
        out.append("{")
        for index, key in enumerate(sorted(value, key=_utf16_key)):
            if index:
                out.append(",")
            out.append(_string(key, where))
            out.append(":")
            _serialize(value[key], out, f"{where}.{key}", depth + 1)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _serialize(item, out, f"{where}[{index}]", depth + 1)
        out.append("]")
    else:
        raise JCSError(f"{where}: {type(value).__name__} is not a JSON value")


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value.

    Supported: None, bool, str, int, Mapping (str keys) and list/tuple. Numbers are restricted to
    integers in ±(2^53-1), which JCS (ECMAScript number serialization) writes as plain decimals;
    floats are refused with JCSError, because FedLedger credentials and proofs use no non-integer
    numbers and the shortest-round-trip double formatting is then never needed.
    """
    out: list[str] = []
    _serialize(value, out, "$", 0)
    return "".join(out).encode("utf-8")


def _reject_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise JCSError(f"duplicate object key {key!r}")
        result[key] = item
    return result


def _reject_float(text: str) -> Any:
    raise JCSError(f"non-integer number {text}; FedLedger identity documents use integers only")


def _reject_constant(text: str) -> Any:
    raise JCSError(f"{text} is not JSON")


def loads(text: str | bytes) -> Any:
    """Parse JSON text strictly enough that its value can be canonicalized.

    Refuses duplicate keys (I-JSON), numbers with a fraction or exponent, NaN/Infinity, integers
    outside ±(2^53-1), nesting deeper than MAX_DEPTH and invalid UTF-8, each with a JCSError.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_reject_pairs, parse_float=_reject_float,
                           parse_constant=_reject_constant)
    except JCSError:
        raise
    except UnicodeDecodeError as exc:
        raise JCSError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise JCSError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise JCSError("JSON nested too deeply") from exc
    except ValueError as exc:
        # Python refuses integers with more than 4300 digits (int max str digits) with a plain ValueError.
        raise JCSError(f"not acceptable JSON: {exc}") from exc
    canonicalize(value)  # range and depth checks, with a path to the offending value
    return value
