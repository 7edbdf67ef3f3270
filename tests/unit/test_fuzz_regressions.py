"""Regression tests for crashes `fedledger bench fuzz` found: each bad body now gets a registered code."""

from __future__ import annotations

from typing import Any

import pytest

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.anchor.msgs import RecordAnchor


def _anchor(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"scheme": "fedledger-checkpoint-v1", "public_chain_id": 1, "contract": "0x" + "a" * 40,
                            "tx_hash": "0x" + "b" * 64, "block_number": 5, "block_hash": "0x" + "c" * 64,
                            "root": "0x" + "d" * 64, "from_height": 1, "to_height": 2}
    body.update(over)
    return body


@pytest.mark.parametrize("scheme", [{"x": 1}, [], ["fedledger-checkpoint-v1"], 7, None])
def test_record_anchor_with_an_unhashable_or_non_string_scheme_is_invalid_body(scheme: Any) -> None:
    # Used to raise TypeError (unhashable type: 'dict') out of CheckTx and FinalizeBlock.
    with pytest.raises(TxError) as err:
        RecordAnchor.parse(_anchor(scheme=scheme))
    assert err.value.code == Code.INVALID_BODY and "scheme" in err.value.log


def test_record_anchor_with_the_known_scheme_still_parses() -> None:
    assert RecordAnchor.parse(_anchor()).scheme == "fedledger-checkpoint-v1"
