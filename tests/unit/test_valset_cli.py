"""`fedledger gov propose add-validator | remove-validator | set-power`: the actions they build and submit."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fedledger.abci_app.errors import EXIT_STATUS, Family
from fedledger.abci_app.modules.governance.actions import parse_action
from fedledger.apps.cli import _register_late_commands, cli
from fedledger.apps.context import Ctx
from fedledger.apps.valset_cli import (
    ValidatorKeyError,
    add_validator_action,
    remove_validator_action,
    set_power_action,
    validator_pub_key,
)

_register_late_commands()

KEY = base64.b64encode(bytes(range(32))).decode("ascii")


def key_file(tmp_path: Path, value: str = KEY, kind: str = "tendermint/PubKeyEd25519") -> Path:
    home = tmp_path / "node"
    (home / "config").mkdir(parents=True)
    path = home / "config" / "priv_validator_key.json"
    path.write_text(json.dumps({"address": "AB", "pub_key": {"type": kind, "value": value},
                                "priv_key": {"type": "tendermint/PrivKeyEd25519", "value": "secret"}}))
    return home


def test_a_key_is_read_from_base64_a_key_file_or_a_node_home(tmp_path: Path) -> None:
    home = key_file(tmp_path)
    assert validator_pub_key(KEY) == KEY
    assert validator_pub_key(str(home)) == KEY
    assert validator_pub_key(str(home / "config" / "priv_validator_key.json")) == KEY


@pytest.mark.parametrize("value", ["not-a-key!", base64.b64encode(b"short").decode()])
def test_bad_keys_are_one_clear_error(value: str) -> None:
    with pytest.raises(ValidatorKeyError, match="base64|bytes"):
        validator_pub_key(value)


def test_a_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidatorKeyError, match="PubKeyEd25519"):
        validator_pub_key(str(key_file(tmp_path, kind="tendermint/PubKeySecp256k1")))
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(ValidatorKeyError, match="not a CometBFT"):
        validator_pub_key(str(tmp_path / "junk.json"))


def test_the_built_actions_are_what_the_chain_parses(tmp_path: Path) -> None:
    org = tmp_path / "org.json"
    org.write_text(json.dumps({"id": "org-e", "issuers": ["did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"],
                               "enrollment_cap": 5}))
    actions = [add_validator_action(KEY, 3, organization="org-a"),
               add_validator_action(KEY, 3, new_organization=org, weight=2),
               remove_validator_action(KEY, remove_organization=True), set_power_action(KEY, 9)]
    for action in actions:
        assert parse_action(action)["type"] == action["type"]
    with pytest.raises(ValidatorKeyError, match="exactly one"):
        add_validator_action(KEY, 3)


class FakeSubmitter:
    """Records what would be sent; answers like a committed tx."""

    sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, tx_type: str, body: dict[str, Any]) -> Any:
        FakeSubmitter.sent.append((tx_type, body))
        return type("Out", (), {"attr": staticmethod(lambda t, k: {"proposal": "7", "deadline": "42"}[k]),
                                "height": 30})()


def test_the_commands_submit_proposals(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Ctx, "admin_submitter", lambda self, key_name: FakeSubmitter())
    FakeSubmitter.sent.clear()
    runner = CliRunner()
    home = key_file(tmp_path)
    res = runner.invoke(cli, ["gov", "propose", "add-validator", "--pub-key", str(home), "--power", "5",
                              "--organization", "org-a"])
    assert res.exit_code == 0, res.output
    assert "proposal 7 (add_validator) submitted" in res.output
    res = runner.invoke(cli, ["gov", "propose", "set-power", "--pub-key", KEY, "--power", "4", "--title", "t"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["gov", "propose", "remove-validator", "--pub-key", KEY, "--remove-organization"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["gov", "propose", "--title", "x", "--action", '{"type": "rollback", "task_id": "t"}'])
    assert res.exit_code == 0, res.output
    assert [(t, b["action"]["type"]) for t, b in FakeSubmitter.sent] == [
        ("submit_proposal", "add_validator"), ("submit_proposal", "set_validator_power"),
        ("submit_proposal", "remove_validator"), ("submit_proposal", "rollback")]
    assert FakeSubmitter.sent[1][1]["title"] == "t"
    assert FakeSubmitter.sent[2][1]["action"] == {"type": "remove_validator", "pub_key": KEY,
                                                  "remove_organization": True}


def test_bad_input_is_one_line_and_the_config_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Ctx, "admin_submitter", lambda self, key_name: FakeSubmitter())
    runner = CliRunner()
    res = runner.invoke(cli, ["gov", "propose", "set-power", "--pub-key", "nope!", "--power", "4"])
    assert res.exit_code == EXIT_STATUS[Family.CONFIG] and "VALIDATOR_KEY" in res.output
    res = runner.invoke(cli, ["gov", "propose", "--title", "x"])
    assert res.exit_code == 2 and "subcommand" in res.output
