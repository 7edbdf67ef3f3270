"""A localnet pins one development SRS: made once per machine, copied into each net, and passed to validators."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fedledger.localnet.zk_srs import DEV_SRS_LOGROWS, SRS_FILE, dev_zk_section, net_srs_path


def test_each_net_gets_the_cached_srs_and_pins_its_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ezkl")
    monkeypatch.setenv("FEDLEDGER_CACHE", str(tmp_path / "cache"))
    assert net_srs_path(tmp_path / "a") is None
    a = dev_zk_section(tmp_path / "a")
    b = dev_zk_section(tmp_path / "b")
    assert a is not None and a == b and a["srs_logrows"] == DEV_SRS_LOGROWS
    path = net_srs_path(tmp_path / "a")
    assert path == tmp_path / "a" / SRS_FILE
    assert hashlib.sha256(path.read_bytes()).hexdigest() == a["srs_sha256"]
    # a net whose SRS file was swapped refuses it instead of pinning the wrong one
    (tmp_path / "b" / SRS_FILE).write_bytes(b"not an srs")
    from fedledger.sdk.zk.errors import ZkSRSError

    with pytest.raises(ZkSRSError, match="expected"):
        dev_zk_section(tmp_path / "b")
