"""The joiner's [statesync] config section (localnet/statesync.py), without starting any process."""

from __future__ import annotations

import tomllib

import pytest

from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.statesync import render_statesync

TEMPLATE = """moniker = "x"

[statesync]
enable = false
rpc_servers = ""
trust_height = 0
trust_hash = ""
trust_period = "168h0m0s"

[blocksync]
version = "v0"
"""


def test_render_statesync_sets_the_root_of_trust() -> None:
    text = render_statesync(TEMPLATE, ["http://127.0.0.1:1", "http://127.0.0.1:2"], 42, "AB" * 32, "24h")
    cfg = tomllib.loads(text)["statesync"]
    assert cfg["enable"] is True and cfg["trust_height"] == 42 and cfg["trust_hash"] == "AB" * 32
    assert cfg["rpc_servers"] == "127.0.0.1:1,127.0.0.1:2" and cfg["trust_period"] == "24h"
    assert tomllib.loads(text)["blocksync"]["version"] == "v0"  # other sections untouched


def test_render_statesync_needs_two_rpc_servers() -> None:
    with pytest.raises(LocalnetError, match="two rpc_servers"):
        render_statesync(TEMPLATE, ["http://127.0.0.1:1"], 1, "AB" * 32)
