"""The CLI reads well: fitted tables off a terminal, --version, shell completion, fedledger.toml and its errors."""

from __future__ import annotations

import io
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from fedledger.apps.cli import _register_late_commands, cli
from fedledger.apps.config_file import default_map, load_config
from fedledger.localnet.cometbft import COMETBFT_VERSION
from fedledger.sdk.term import interactive, natural_width, print_fitted, working

_register_late_commands()

HEADERS = ("round", "status", "commits", "opened at", "closed at", "version", "decision", "test accuracy",
           "commit latency p50", "max ε spent")
ROW = ("1", "promoted", "8", "12", "20", "1", "promoted", "85.1%", "230 ms", "0.50 / 4.0")


def _table() -> Table:
    tab = Table(title="task t: 8 clients")
    for h in HEADERS:
        tab.add_column(h)
    tab.add_row(*ROW)
    return tab


def test_off_a_terminal_a_table_keeps_every_header_and_figure_whole() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80)  # what rich gives a pipe
    assert not interactive(console)
    print_fitted(console, _table())
    text = out.getvalue()
    assert "…" not in text
    header_line = next(line for line in text.splitlines() if "round" in line)
    row_line = next(line for line in text.splitlines() if "85.1%" in line)
    for h in HEADERS:
        assert h in header_line
    for v in ROW:
        assert v in row_line
    assert max(len(line) for line in text.splitlines()) > 80  # it really was wider than the pipe's 80
    assert console.width == 80  # and the console was put back


def test_the_same_table_on_a_narrow_terminal_is_squeezed_to_the_terminal() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=True, record=True)
    assert interactive(console)
    print_fitted(console, _table())
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" in text  # what the issue saw, now only where a terminal is this narrow


def test_natural_width_is_bounded() -> None:
    tab = Table()
    tab.add_column("x")
    tab.add_row("y" * 5000)
    assert natural_width(Console(file=io.StringIO()), tab, limit=300) == 300


def test_working_prints_its_message_off_a_terminal() -> None:
    out = io.StringIO()
    with working(Console(file=out), "starting 4 validators…"):
        pass
    assert "starting 4 validators…" in out.getvalue()


def test_version_names_the_package_and_the_pinned_cometbft() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("fedledger ")
    assert f"CometBFT v{COMETBFT_VERSION}" in result.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0
    assert "_FEDLEDGER_COMPLETE" in result.output


def test_completion_completes_subcommands() -> None:
    """The script's protocol really answers: `fedledger loc<TAB>` offers localnet."""
    from click.shell_completion import ShellComplete

    comp = ShellComplete(cli, {}, "fedledger", "_FEDLEDGER_COMPLETE")
    assert "localnet" in [c.value for c in comp.get_completions([], "loc")]
    assert "status" in [c.value for c in comp.get_completions(["localnet"], "sta")]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fedledger.toml"
    path.write_text(text)
    return path


def test_config_supplies_node_and_the_command_line_and_env_win(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDLEDGER_NODE", raising=False)
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, 'node = "http://127.0.0.1:9"\n')
    runner = CliRunner()
    from_file = runner.invoke(cli, ["query", "task", "t"])
    assert from_file.exit_code != 0 and "127.0.0.1:9" in from_file.output
    flag = runner.invoke(cli, ["--node", "http://127.0.0.1:8", "query", "task", "t"])
    assert "127.0.0.1:8" in flag.output and "127.0.0.1:9" not in flag.output
    env = runner.invoke(cli, ["query", "task", "t"], env={"FEDLEDGER_NODE": "http://127.0.0.1:7"})
    assert "127.0.0.1:7" in env.output and "127.0.0.1:9" not in env.output


def test_explicit_config_home_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "org1"
    cfg = _write(tmp_path / "", f'home = "{home}"\nkey = "alice"\nnode = "http://127.0.0.1:9"\n')
    runner = CliRunner()
    created = runner.invoke(cli, ["--config", str(cfg), "keys", "create", "bob"])
    assert created.exit_code == 0, created.output
    assert (home / "keys").is_dir()
    # --key comes from the file: the key store (in the file's home) is asked for alice.
    out = runner.invoke(cli, ["--config", str(cfg), "availability", "--task", "t"])
    assert out.exit_code != 0 and "no key named 'alice'" in out.output and str(home) in out.output


def test_key_reaches_every_command_with_a_key_option() -> None:
    ctx = click.Context(cli)
    tree = default_map(cli, ctx, {"key": "k"}, Path("x.toml"))
    assert tree["client"]["run"]["key_name"] == "k"
    assert tree["availability"]["key_name"] == "k"
    assert "keys" not in tree  # keys create/show take a NAME argument, not --key


def test_command_tables_set_options_by_their_flag(tmp_path: Path) -> None:
    path = _write(tmp_path, '[commands."client run"]\ntask = "digits"\nnoise-multiplier = "2"\n')
    tree = default_map(cli, click.Context(cli), load_config(path), path)
    assert tree["client"]["run"] == {"task_id": "digits", "noise_multiplier": "2"}


@pytest.mark.parametrize(("text", "message"), [
    ("nodes = 1\n", "unknown key(s) nodes"),
    ("node = 1\n", "node must be a string"),
    ("x = [", "is not valid TOML"),
    ('[commands."client runn"]\nx = 1\n', "no command `fedledger client runn`"),
    ('[commands."client run"]\nx = 1\n', "has no option --x; it has: clip-norm"),
    ("commands = 3\n", "must be a table"),
])
def test_a_bad_config_is_an_error_that_says_what_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            text: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, text)
    result = CliRunner().invoke(cli, ["keys", "list"])
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "keys", "list"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_no_localnet_names_both_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEDLEDGER_NODE", raising=False)
    monkeypatch.delenv("FEDLEDGER_LOCALNET", raising=False)
    result = CliRunner().invoke(cli, ["query", "task", "t"])
    assert result.exit_code != 0
    assert "fedledger localnet up" in result.output and "--node URL" in result.output
