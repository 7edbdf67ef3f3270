"""The package's exception classes, found by importing every module, the family behind each code, and docs/ERRORS.md.

Shared by tests/unit/test_errors.py (every class is in the family, and the doc is what
`errors_doc()` renders) and the CLI tests (the exit status a printed `[CODE]` must come with).
Regenerate the doc with `python -m tests.errorcodes > docs/ERRORS.md`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

import fedledger
from fedledger.abci_app.errors import EXIT_STATUS, Family, FedLedgerError

__all__ = ["errors_doc", "exception_classes", "exit_status_of"]

# Modules that cannot be imported on their own (generated code, scripts); none defines an exception.
SKIP = re.compile(r"_pb2$|\.proto\.build$|__main__$")


@functools.cache
def exception_classes() -> tuple[type[BaseException], ...]:
    """Every exception class defined in a fedledger module, sorted by qualified name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(fedledger.__path__, "fedledger."):
        if SKIP.search(info.name):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return tuple(found[k] for k in sorted(found))


def exit_status_of(code: str) -> int:
    """The CLI exit status that goes with a printed error code."""
    for cls in exception_classes():
        if issubclass(cls, FedLedgerError) and vars(cls).get("error_code") == code:
            return EXIT_STATUS[cls.family]
    raise KeyError(f"no FedLedger error has the code {code!r}")


FAMILY_MEANING = {
    Family.GENERAL: "a failure of the client that fits no narrower family",
    Family.CONFIG: "a setting, file, argument or input you gave is wrong: fix it and rerun",
    Family.CHAIN: "the chain refused a tx or has no such record: the ledger's rules said no",
    Family.NETWORK: "a node, store or public chain did not answer: retry, or check the service",
    Family.STORE: "the content store or the chain's state store failed or lacks data",
    Family.CRYPTO: "a signature, proof, hash or credential does not verify: treat the data as forged",
    Family.LOCALNET: "installing or supervising the local network's processes failed",
    Family.PROTOCOL: "an update, share, payload or message breaks the protocol's rules",
}

_INTRO = """# Errors: one family, stable codes, exit statuses

Every exception FedLedger raises on purpose derives from `FedLedgerError`
(`fedledger.abci_app.errors`). Each names a **family** and a stable **code**. The CLI prints one
red line, `error: <message> [<CODE>]`, and exits with the family's status; a program embedding
FedLedger catches a family base (`ConfigError`, `ChainRejectedError`, `UnavailableError`,
`StorageError`, `VerificationError`, `ProtocolError`, `LocalnetError`) or `FedLedgerError`.
Anything else that escapes is a bug and keeps its traceback.

`tests/unit/test_errors.py` imports every module and fails if an exception class is outside
the family, lacks its own code, repeats a code, or if this file is not what
`python -m tests.errorcodes` renders.

## Families

| family | exit status | meaning |
| --- | --- | --- |
"""

_MIDDLE = """
Click's own usage errors (an unknown option, a missing argument) print click's `Error: …` and
exit with 2, like the config family.

## Codes

| code | family | exit | class | meaning |
| --- | --- | --- | --- | --- |
"""


def errors_doc() -> str:
    """docs/ERRORS.md as the code defines it: the families, then every code sorted by family and code."""
    order = {family: i for i, family in enumerate(Family)}
    rows = sorted((c for c in exception_classes() if issubclass(c, FedLedgerError)),
                  key=lambda c: (order[c.family], c.error_code))
    families = "".join(f"| {f.value} | {EXIT_STATUS[f]} | {FAMILY_MEANING[f]} |\n" for f in Family)
    codes = "".join(
        f"| `{c.error_code}` | {c.family.value} | {EXIT_STATUS[c.family]} | "
        f"`{c.__module__.removeprefix('fedledger.')}.{c.__qualname__}` | "
        f"{(c.__doc__ or '').strip().splitlines()[0].replace('|', '/')} |\n" for c in rows)
    return _INTRO + families + _MIDDLE + codes


if __name__ == "__main__":
    print(errors_doc(), end="")
