"""`fedledger anchor keystore new|import` and the refusal of private keys on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account

from fedledger.apps.cli import _register_late_commands, cli
from fedledger.node.anchor.config import load_config

_register_late_commands()

KEY = "0x" + "5e" * 32
PASSWORD = "a long enough password"


def _run(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, input=stdin, env={"ANCHOR_PW": PASSWORD, **(env or {})})
    return result.exit_code, result.output


def test_import_from_stdin_gives_a_keystore_the_config_reads(tmp_path: Path) -> None:
    out = tmp_path / "anchor.keystore.json"
    rc, text = _run(["anchor", "keystore", "import", "--out", str(out), "--password-env", "ANCHOR_PW", "--json"],
                    stdin=KEY + "\n")
    assert rc == 0, text
    answer = json.loads(text)
    assert answer == {"keystore": str(out), "address": Account.from_key(KEY).address}
    assert KEY[2:] not in out.read_text() and (out.stat().st_mode & 0o777) == 0o600
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    cfg = load_config(env={"FEDLEDGER_ANCHOR_RPC": "https://rpc.sepolia.example", "FEDLEDGER_ANCHOR_KEYSTORE": str(out),
                           "FEDLEDGER_ANCHOR_PASSWORD_FILE": str(tmp_path / "pw")})
    assert cfg.key == KEY and cfg.key_origin == f"keystore {out}"
    # Importing again over it is refused: the file may hold the only copy of a key.
    rc, text = _run(["anchor", "keystore", "import", "--out", str(out), "--password-env", "ANCHOR_PW"], stdin=KEY)
    assert rc != 0 and "exists; it may hold the only copy" in text and "Traceback" not in text


def test_new_and_import_from_a_key_file(tmp_path: Path) -> None:
    rc, text = _run(["anchor", "keystore", "new", "--out", str(tmp_path / "new.json"), "--password-env", "ANCHOR_PW"])
    assert rc == 0 and "for address 0x" in text and "fund it" in text, text
    assert json.loads((tmp_path / "new.json").read_text())["version"] == 3
    (tmp_path / "raw").write_text(KEY)
    (tmp_path / "pw").write_text(PASSWORD)
    rc, text = _run(["anchor", "keystore", "import", "--out", str(tmp_path / "f.json"), "--key-file",
                     str(tmp_path / "raw"), "--password-file", str(tmp_path / "pw")])
    assert rc == 0 and Account.from_key(KEY).address in text, text


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["import", "--out", "{tmp}/a.json", "--password-env", "ANCHOR_PW"], "not a key", "not a 32-byte hex private key"),
    (["import", "--out", "{tmp}/a.json"], KEY, "no password: give --password-file or --password-env"),
    (["new", "--out", "{tmp}/a.json", "--password-env", "UNSET_PW"], None, "names $UNSET_PW, which is not set"),
    (["new", "--out", "{tmp}/a.json", "--password-env", "SHORT"], None, "at least 8 characters"),
])
def test_keystore_errors_are_one_line(tmp_path: Path, args: list[str], stdin: str | None, message: str) -> None:
    rc, text = _run(["anchor", "keystore", *[a.format(tmp=tmp_path) for a in args]], stdin=stdin,
                    env={"SHORT": "short"})
    assert rc != 0 and message in text and "Traceback" not in text, text
    assert not (tmp_path / "a.json").exists()
    assert KEY[2:] not in text


@pytest.mark.parametrize("args", [
    ["anchor", "keystore", "import", "--out", "x.json", KEY],
    ["anchor", "run", "--key", KEY[2:], "--once"],
    ["anchor", "deploy", f"--config={KEY}"],
])
def test_a_raw_key_on_the_command_line_is_refused(tmp_path: Path, args: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, text = _run(args)
    assert rc != 0 and "looks like a raw private key; keys are never given on the command line" in text, text
    assert KEY[2:] not in text and not (tmp_path / "x.json").exists()
