"""`fedledger did …` and `fedledger vc …`: did:key identities from local keys, and admission credentials."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from fedledger.abci_app.did.didkey import DIDKeyError, did_document, did_from_private_key
from fedledger.abci_app.did.jcs import JCSError, loads
from fedledger.abci_app.did.vc import (
    ANY_ORGANIZATION,
    ROLES,
    CredentialError,
    TimeFormatError,
    format_time,
    issue_admission_credential,
    parse_time,
    verify_credential,
)
from fedledger.abci_app.errors import ConfigError
from fedledger.apps.context import fail, report
from fedledger.sdk.errors import KeyStoreError
from fedledger.sdk.keys import Key, KeyStore, default_home

__all__ = ["did", "vc"]

_SECONDS_PER_DAY = 86400


def _store() -> KeyStore:
    """The key store of the root command's home (its ctx.obj.home), else $FEDLEDGER_HOME or ~/.fedledger."""
    obj = click.get_current_context().find_root().obj
    home = getattr(obj, "home", None)
    return KeyStore(Path(home) if home is not None else default_home())


def _now() -> int:
    # The CLI is the one place that reads the clock; the library only ever receives a time.
    return int(datetime.now(UTC).timestamp())


# ----------------------------------------------------------------------------- did
@click.group()
def did() -> None:
    """did:key identities of local Ed25519 keys."""


@did.command("create")
@click.argument("name")
def did_create(name: str) -> None:
    """Create key NAME (or reuse the existing one) and print its did:key."""
    store = _store()
    try:
        key: Key = store.load(name) if name in store.names() else store.create(name)
    except KeyStoreError as exc:
        report(exc)
    click.echo(did_from_private_key(key.private))


@did.command("show")
@click.argument("name")
@click.option("--document", is_flag=True, help="Print the DID document (JSON) instead of the DID.")
def did_show(name: str, document: bool) -> None:
    """Print the did:key of local key NAME."""
    try:
        key = _store().load(name)
    except KeyStoreError as exc:
        report(exc)
    identifier = did_from_private_key(key.private)
    click.echo(json.dumps(did_document(identifier), indent=2) if document else identifier)


# ----------------------------------------------------------------------------- vc
@click.group()
def vc() -> None:
    """Issue and verify FedLedger admission credentials (W3C VC 2.0, eddsa-jcs-2022)."""


@vc.command("issue")
@click.option("--issuer", "issuer_name", required=True, help="Local key that signs (the issuer's did:key).")
@click.option("--subject", required=True, help="DID of the participant being admitted.")
@click.option("--org", "organization", required=True, help="Organization the subject belongs to.")
@click.option("--role", type=click.Choice(ROLES), required=True, help="Role granted.")
@click.option("--task", "tasks", multiple=True, help="Task the subject may join (repeatable).")
@click.option("--valid-days", type=click.IntRange(min=1), default=365, show_default=True,
              help="Days the credential stays valid, from now.")
@click.option("--id", "credential_id", default=None, help="Credential id (default: a fresh urn:uuid).")
@click.option("--status", "status_id", default=None, help="Id of its entry in the revocation list (credentialStatus).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the credential to FILE instead of printing it.")
def vc_issue(issuer_name: str, subject: str, organization: str, role: str, tasks: tuple[str, ...], valid_days: int,
             credential_id: str | None, status_id: str | None, out: Path | None) -> None:
    """Issue an admission credential for SUBJECT, signed by the local key ISSUER."""
    try:
        key = _store().load(issuer_name)
    except KeyStoreError as exc:
        report(exc)
    start = _now()
    try:
        credential = issue_admission_credential(
            key.private, did_from_private_key(key.private), subject, organization, role, list(tasks),
            format_time(start), format_time(start + valid_days * _SECONDS_PER_DAY),
            credential_id or f"urn:uuid:{uuid.uuid4()}", credential_status=status_id)
    except (CredentialError, TimeFormatError) as exc:
        report(exc)
    text = json.dumps(credential, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        report(ConfigError(f"cannot write {out}: {exc.strerror or exc}"))
    click.echo(f"wrote {credential['id']} to {out}", err=True)


def _read_credential(path: str) -> Any:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        report(ConfigError(f"cannot read {path}: {exc.strerror or exc}"))
    try:
        return loads(data)
    except JCSError as exc:
        fail(f"MALFORMED: {path} is not an acceptable credential: {exc} [{exc.error_code}]", exc.exit_status)


@vc.command("verify")
@click.argument("file", metavar="FILE")
@click.option("--at", "at", default=None, help="Check validity at this ISO 8601 time (default: now).")
@click.option("--issuer", "issuers", multiple=True,
              help="Trusted issuer DID (repeatable); without it any issuer whose proof verifies is accepted.")
@click.option("--json", "as_json", is_flag=True, help="Print the claims as JSON.")
def vc_verify(file: str, at: str | None, issuers: tuple[str, ...], as_json: bool) -> None:
    """Verify the credential in FILE ('-' for stdin): exit 0 and print its claims, or the reason and its status."""
    try:
        now = format_time(parse_time(at)) if at is not None else format_time(_now())
    except TimeFormatError as exc:
        fail(f"--at: {exc} [{exc.error_code}]", exc.exit_status)
    credential = _read_credential(file)
    trusted = {issuer: ANY_ORGANIZATION for issuer in issuers} if issuers else None
    try:
        verified = verify_credential(credential, now, trusted)
    except (CredentialError, DIDKeyError) as exc:
        report(exc)
    claims = verified.claims()
    if as_json:
        click.echo(json.dumps(claims, indent=2, sort_keys=True))
        return
    click.echo(f"valid at {now}")
    for name, value in claims.items():
        shown = ", ".join(value) if isinstance(value, list) else ("-" if value is None else value)
        click.echo(f"  {name}: {shown}")
