"""`fedledger attest …`: what a TEE guest must bind into its SEV-SNP report, and submitting the evidence.

`attest binding` prints the 32 bytes a guest puts first in its report_data (the DID and its key,
see abci_app/attest/verify.py), so an operator inside a real SEV-SNP VM can request a report
that binds its member key. `attest submit` sends the report and its VCEK (and optionally the ASK
and ARK) to the chain, which verifies them at block time and records the verdict, refused or
not, with its reason. This machine has no TEE: evidence is verified, never produced, here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click

from fedledger.abci_app.attest.report import REPORT_SIZE
from fedledger.abci_app.attest.verify import binding_digest
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.apps.context import Ctx, pass_ctx

__all__ = ["attest"]

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _report_bytes(path: Path) -> bytes:
    """A report file as raw bytes: the 1184-byte binary, or its hex text (as AMD's tools and virtee write it)."""
    raw = path.read_bytes()
    if len(raw) == REPORT_SIZE:
        return raw
    try:
        decoded = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise click.BadParameter(f"{path} is neither a {REPORT_SIZE}-byte report nor its hex text",
                                 param_hint="--report") from None
    if len(decoded) != REPORT_SIZE:
        raise click.BadParameter(f"{path} holds {len(decoded)} bytes; an SEV-SNP report has {REPORT_SIZE}",
                                 param_hint="--report")
    return decoded


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


@click.group()
def attest() -> None:
    """TEE evidence (AMD SEV-SNP) as a policy input: binding data and submission."""


@attest.command("binding")
@click.option("--key", "key_name", required=True, help="The member key the report must bind.")
@pass_ctx
def attest_binding(c: Ctx, key_name: str) -> None:
    """Print the hex a guest puts in report_data[0:32] so that its report binds KEY's DID and key."""
    key = c.keys.load(key_name)
    did = did_from_private_key(key.private)
    click.echo(json.dumps({"did": did, "report_data_prefix": binding_digest(did, bytes.fromhex(key.public_hex)).hex()},
                          indent=2))


@attest.command("submit")
@click.option("--key", "key_name", required=True, help="The member key whose DID the evidence is for.")
@click.option("--report", "report_path", type=_FILE, required=True, help="The SEV-SNP report (binary or hex).")
@click.option("--vcek", "vcek_path", type=_FILE, required=True, help="The chip's VCEK certificate (DER).")
@click.option("--ask", "ask_path", type=_FILE, default=None, help="The ASK (DER); default: AMD's pinned one.")
@click.option("--ark", "ark_path", type=_FILE, default=None, help="The ARK (DER); must equal AMD's pinned one.")
@pass_ctx
def attest_submit(c: Ctx, key_name: str, report_path: Path, vcek_path: Path, ask_path: Path | None,
                  ark_path: Path | None) -> None:
    """Send the evidence; the chain verifies it at block time and records the verdict with its reason."""
    key = c.keys.load(key_name)
    did = did_from_private_key(key.private)
    body: dict[str, str] = {"did": did, "report": base64.b64encode(_report_bytes(report_path)).decode("ascii"),
                            "vcek_cert": _b64(vcek_path)}
    if ask_path is not None:
        body["ask_cert"] = _b64(ask_path)
    if ark_path is not None:
        body["ark_cert"] = _b64(ark_path)
    result = c.submitter(key_name).send("submit_attestation", body)
    from fedledger.sdk.chainview import ChainView

    record = ChainView(c.rpc()).get(f"/attestation/{did}")
    click.echo(f"attestation for {did[:32]}… at height {result.height}: {record['verdict']}"
               + (f" ({record['reason']}: {record.get('detail', '')})" if record["verdict"] != "valid" else
                  f", expires at {record['expires_at']}"))
