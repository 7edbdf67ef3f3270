"""`fedledger gov propose add-validator | remove-validator | set-power`: validator set changes as proposals.

Each command builds one governance action (add_validator, remove_validator, set_validator_power,
see abci_app/modules/governance/actions.py) and submits it like `gov propose --action`; the
organizations then vote with `fedledger gov vote`, and a passed change reaches CometBFT's
validator set two blocks after its deadline. A validator key is given as CometBFT writes it:
the base64 public key, a `priv_validator_key.json`, or a node home that holds one.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fedledger.abci_app.errors import ConfigError
from fedledger.apps.context import pass_ctx
from fedledger.sdk.errors import ClientError

if TYPE_CHECKING:
    from fedledger.apps.context import Ctx

__all__ = ["VALSET_COMMANDS", "ValidatorKeyError", "add_validator_action", "remove_validator_action",
           "set_power_action", "validator_pub_key"]


class ValidatorKeyError(ClientError, ConfigError):
    """A validator key or organization file given to `gov propose` cannot be read or is not an Ed25519 key."""

    error_code = "VALIDATOR_KEY"


def _key_file(path: Path) -> Path:
    if path.is_dir():
        return path / "config" / "priv_validator_key.json"
    return path


def validator_pub_key(value: str) -> str:
    """The base64 Ed25519 public key `value` names: the key itself, a priv_validator_key.json, or a node home."""
    path = Path(value)
    if path.exists():
        file = _key_file(path)
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            pub = doc["pub_key"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValidatorKeyError(f"{file} is not a CometBFT priv_validator_key.json: {exc}") from exc
        if not isinstance(pub, dict) or pub.get("type") != "tendermint/PubKeyEd25519":
            raise ValidatorKeyError(f"{file}: pub_key is not a tendermint/PubKeyEd25519 key")
        value = str(pub.get("value", ""))
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidatorKeyError(f"{value[:60]!r} is neither a file nor a base64 Ed25519 public key") from exc
    if len(raw) != 32:
        raise ValidatorKeyError(f"{value[:60]!r} decodes to {len(raw)} bytes; an Ed25519 public key has 32")
    return base64.b64encode(raw).decode("ascii")


def add_validator_action(pub_key: str, power: int, organization: str | None = None,
                         new_organization: Path | None = None, weight: int | None = None) -> dict[str, Any]:
    """The add_validator action: for a registered organization, or with a new one read from a JSON file."""
    if (organization is None) == (new_organization is None):
        raise ValidatorKeyError("give exactly one of --organization and --new-organization")
    action: dict[str, Any] = {"type": "add_validator", "pub_key": validator_pub_key(pub_key), "power": power}
    if organization is not None:
        action["organization"] = organization
    else:
        assert new_organization is not None
        try:
            action["new_organization"] = json.loads(new_organization.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidatorKeyError(f"--new-organization {new_organization}: {exc}") from exc
    if weight is not None:
        action["weight"] = weight
    return action


def remove_validator_action(pub_key: str, remove_organization: bool = False) -> dict[str, Any]:
    """The remove_validator action (with remove_organization, its organization goes too)."""
    action: dict[str, Any] = {"type": "remove_validator", "pub_key": validator_pub_key(pub_key)}
    if remove_organization:
        action["remove_organization"] = True
    return action


def set_power_action(pub_key: str, power: int) -> dict[str, Any]:
    """The set_validator_power action."""
    return {"type": "set_validator_power", "pub_key": validator_pub_key(pub_key), "power": power}


def _submit(c: Ctx, key_name: str | None, title: str, action: dict[str, Any]) -> None:
    out = c.admin_submitter(key_name).send("submit_proposal", {"title": title, "action": action})
    click.echo(f"proposal {out.attr('fl', 'proposal')} ({action['type']}) submitted; voting closes at height "
               f"{out.attr('fl', 'deadline')}; a passed change reaches CometBFT two blocks after that")


_KEY_HELP = "The validator's key: base64 Ed25519 public key, a priv_validator_key.json, or a node home."
_ADMIN_HELP = "Admin key (default: the localnet's development admin)."


@click.command("add-validator")
@click.option("--pub-key", required=True, help=_KEY_HELP)
@click.option("--power", type=int, required=True, help="Voting power (less than 1/3 of the new total).")
@click.option("--organization", default=None, help="A registered organization that runs it.")
@click.option("--new-organization", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON file of a new organization (as in identity genesis: id, issuers, admins, ...).")
@click.option("--weight", type=int, default=None, help="The new organization's governance weight.")
@click.option("--key", "key_name", default=None, help=_ADMIN_HELP)
@click.option("--title", default=None, help="Proposal title (default: what it does).")
@pass_ctx
def add_validator(c: Ctx, pub_key: str, power: int, organization: str | None, new_organization: Path | None,
                  weight: int | None, key_name: str | None, title: str | None) -> None:
    """Propose a new validator, for a registered organization or with a new one."""
    action = add_validator_action(pub_key, power, organization, new_organization, weight)
    _submit(c, key_name, title or f"add validator {action['pub_key'][:12]} with power {power}", action)


@click.command("remove-validator")
@click.option("--pub-key", required=True, help=_KEY_HELP)
@click.option("--remove-organization", is_flag=True, help="Remove the organization that runs it as well.")
@click.option("--key", "key_name", default=None, help=_ADMIN_HELP)
@click.option("--title", default=None, help="Proposal title (default: what it does).")
@pass_ctx
def remove_validator(c: Ctx, pub_key: str, remove_organization: bool, key_name: str | None,
                     title: str | None) -> None:
    """Propose to take a validator out of the set."""
    action = remove_validator_action(pub_key, remove_organization)
    _submit(c, key_name, title or f"remove validator {action['pub_key'][:12]}", action)


@click.command("set-power")
@click.option("--pub-key", required=True, help=_KEY_HELP)
@click.option("--power", type=int, required=True, help="The new voting power (at least 1).")
@click.option("--key", "key_name", default=None, help=_ADMIN_HELP)
@click.option("--title", default=None, help="Proposal title (default: what it does).")
@pass_ctx
def set_power(c: Ctx, pub_key: str, power: int, key_name: str | None, title: str | None) -> None:
    """Propose a validator's new voting power."""
    action = set_power_action(pub_key, power)
    _submit(c, key_name, title or f"set validator {action['pub_key'][:12]} power to {power}", action)


VALSET_COMMANDS = (add_validator, remove_validator, set_power)
