"""`fedledger.toml`: the keys, home, node and store that every command would otherwise repeat.

The file is `--config PATH`, else `fedledger.toml` in the working directory, else none. It fills
click's default map, so a value on the command line still wins, then an environment variable
($FEDLEDGER_NODE, ...), then the file, then the built-in default:

    home = "~/.fedledger-org1"              # --home
    node = "http://10.0.0.2:26657"          # --node
    localnet = ".localnet"                  # --localnet
    store = "kubo:http://127.0.0.1:5001"    # --store
    key = "client0"                         # --key, for every command that takes one

    [commands."client run"]                 # any command's own options, by option name
    task = "digits"
    rounds = 3

A misspelt key, a command that does not exist or an option it does not have is an error that
names what is allowed: a config file that silently does nothing is worse than none.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

__all__ = ["CONFIG_NAME", "GLOBAL_KEYS", "default_map", "find_config", "load_config"]

CONFIG_NAME = "fedledger.toml"
# The root group's options a config file may set, by the name its table uses.
GLOBAL_KEYS = ("home", "localnet", "node", "store")
_ALLOWED = (*GLOBAL_KEYS, "commands", "key")


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The config file in use: `explicit` (which must exist), else ./fedledger.toml if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise click.UsageError(f"config file {explicit} does not exist")
        return explicit
    found = (cwd or Path.cwd()) / CONFIG_NAME
    return found if found.is_file() else None


def load_config(path: Path) -> dict[str, Any]:
    """The TOML table in `path`, or a usage error that says what is wrong with it."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise click.UsageError(f"config file {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(_ALLOWED))
    if unknown:
        raise click.UsageError(f"config file {path}: unknown key(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(_ALLOWED)}")
    for name in (*GLOBAL_KEYS, "key"):
        if name in data and not isinstance(data[name], str):
            raise click.UsageError(f"config file {path}: {name} must be a string, not {type(data[name]).__name__}")
    if not isinstance(data.get("commands", {}), dict):
        raise click.UsageError(f"config file {path}: [commands] must be a table of command tables")
    return data


def _walk(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    for name in sorted(group.list_commands(ctx)):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, ctx, (*prefix, name))


def _option_param(cmd: click.Command, option: str) -> click.Parameter | None:
    """The parameter that `--option` (or `--option-name` spelt with underscores) sets on `cmd`."""
    flag = "--" + option.replace("_", "-")
    for param in cmd.params:
        if isinstance(param, click.Option) and flag in (*param.opts, *param.secondary_opts):
            return param
    return None


def _section(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for name in path:
        tree = tree.setdefault(name, {})
    return tree


def default_map(root: click.Group, ctx: click.Context, data: dict[str, Any], source: Path) -> dict[str, Any]:
    """click's default map for `root` from a loaded config (`source` names the file in errors)."""
    tree: dict[str, Any] = {name: data[name] for name in GLOBAL_KEYS if name in data}
    commands = dict(_walk(root, ctx))
    if "key" in data:
        for path, keyed in commands.items():
            param = _option_param(keyed, "key")
            if param is not None and param.name is not None:
                _section(tree, path)[param.name] = data["key"]
    for spelled, options in sorted(data.get("commands", {}).items()):
        path = tuple(spelled.split())
        found = commands.get(path)
        if found is None:
            raise click.UsageError(f"config file {source}: no command `fedledger {spelled}`")
        if not isinstance(options, dict):
            raise click.UsageError(f"config file {source}: [commands.\"{spelled}\"] must be a table")
        for option, value in sorted(options.items()):
            param = _option_param(found, option)
            if param is None or param.name is None:
                known = sorted(o.lstrip("-") for p in found.params if isinstance(p, click.Option) for o in p.opts
                               if o.startswith("--"))
                raise click.UsageError(f"config file {source}: `fedledger {spelled}` has no option --{option}; "
                                       f"it has: {', '.join(known)}")
            _section(tree, path)[param.name] = value
    return tree
