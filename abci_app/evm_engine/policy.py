"""Policy contracts at the chain's decision points: which contract decides, the call, and the recorded outcome.

A decision point (admission, promotion) asks the policy contract that applies (the task's, else
the chain-wide default) with a message call from POLICY_CALLER and a fixed gas budget (the
genesis `policy_gas`). The contract answers `(bool allow, string reason)`. A revert, an
exceptional halt, running out of gas or return data that is not `(bool, string)` is a deny whose
reason says which, so a broken policy can refuse things but never halt the chain. Without a
policy pointer (a chain whose genesis deployed none) the native rules decide alone.

When the decision is applied, the calls' state changes are committed, each call gets a receipt,
its own logs are indexed, and the chain adds one `PolicyDecision` log from POLICY_LOG_ADDRESS
(so `eth_getLogs` shows every decision, denials by revert included) and an `evm_policy` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.evm_engine import keys
from fedledger.abci_app.evm_engine.abi import AbiError, decode_result, encode_call
from fedledger.abci_app.evm_engine.ledger import block_record, hex0x, record_execution
from fedledger.abci_app.evm_engine.params import load_params
from fedledger.abci_app.evm_engine.session import EvmSession, LogEntry, Outcome, TxRejected
from fedledger.abci_app.evm_engine.vm import EvmBlock
from fedledger.abci_app.modules.lifecycle.records import PolicyVerdict

__all__ = [
    "ADMISSION",
    "ADMISSION_SIGNATURE",
    "KINDS",
    "POLICY_CALLER",
    "POLICY_LOG_ADDRESS",
    "POLICY_LOG_TOPIC",
    "PROMOTION",
    "PROMOTION_SIGNATURE",
    "PolicyDecision",
    "PolicySession",
    "admission_calldata",
    "consult_admission",
    "consult_promotion",
    "evm_block",
    "policy_address",
    "promotion_calldata",
    "summary",
]

ADMISSION = "admission"
PROMOTION = "promotion"
KINDS: tuple[str, ...] = (ADMISSION, PROMOTION)
# msg.sender of every policy call, so a policy that keeps state can accept writes from the chain only.
POLICY_CALLER = bytes.fromhex("000000000000000000000000000000000000fed1")
# The address the chain's own PolicyDecision logs carry (it holds no code).
POLICY_LOG_ADDRESS = bytes.fromhex("000000000000000000000000000000000000fed2")
POLICY_LOG_TOPIC = keccak(text="PolicyDecision(string,address,bool,string,uint256)")

ADMISSION_SIGNATURE = "checkAdmission(string,string,string,string,string[],uint64,uint64)"
ADMISSION_TYPES = ("string", "string", "string", "string", "string[]", "uint64", "uint64")
PROMOTION_SIGNATURE = "checkPromotion(string,uint64,uint64,uint64,uint64,uint64,uint64,uint256)"
PROMOTION_TYPES = ("string", "uint64", "uint64", "uint64", "uint64", "uint64", "uint64", "uint256")
_RESULT_TYPES = ("bool", "string")
_MAX_REASON = 200


def admission_calldata(subject: str, issuer: str, organization: str, role: str, tasks: Sequence[str],
                       valid_from: int, valid_until: int) -> bytes:
    """Calldata of AdmissionPolicy.checkAdmission with a credential's claims."""
    return encode_call(ADMISSION_SIGNATURE, ADMISSION_TYPES,
                       [subject, issuer, organization, role, list(tasks), valid_from, valid_until])


def promotion_calldata(task_id: str, version: int, canary_accuracy_ppm: int, backdoor_asr_ppm: int,
                       min_canary_accuracy_ppm: int, max_backdoor_asr_ppm: int, attestations: int,
                       weight: int) -> bytes:
    """Calldata of PromotionPolicy.checkPromotion with a version's quorum metrics and the task's thresholds."""
    return encode_call(PROMOTION_SIGNATURE, PROMOTION_TYPES,
                       [task_id, version, canary_accuracy_ppm, backdoor_asr_ppm, min_canary_accuracy_ppm,
                        max_backdoor_asr_ppm, attestations, weight])


def policy_address(view: Reader, kind: str, task_id: str | None) -> bytes | None:
    """The policy contract of `kind` that applies to `task_id` (its own, else the default); None if none."""
    if task_id is not None:
        own = view.get(keys.policy_key(kind, task_id))
        if own is not None:
            return bytes.fromhex(own.decode("ascii")[2:])
    default = view.get(keys.policy_key(kind, None))
    return bytes.fromhex(default.decode("ascii")[2:]) if default is not None else None


def evm_block(view: Reader, ctx: BlockContext) -> EvmBlock | None:
    """The EVM's view of the block in `ctx`, or None on a chain without EVM parameters."""
    params = load_params(view)
    if params is None:
        return None
    return EvmBlock(height=ctx.height, time_s=ctx.time_ns // 1_000_000_000, block_hash=ctx.block_hash,
                    gas_limit=params.block_gas_limit, chain_id=params.chain_id)


@dataclass(frozen=True)
class PolicyDecision:
    """One policy call's verdict."""

    kind: str
    task_id: str | None
    contract: bytes
    allow: bool
    reason: str
    outcome: Outcome
    calldata: bytes

    def describe(self) -> str:
        """`<kind> policy 0x… allowed|denied: reason`, for tx logs."""
        verdict = "allowed" if self.allow else "denied"
        return f"{self.kind} policy {hex0x(self.contract)} {verdict}: {self.reason}"


def _verdict(outcome: Outcome) -> tuple[bool, str]:
    if not outcome.success:
        return False, f"policy call failed ({outcome.error}): deny"
    try:
        allow, reason = decode_result(_RESULT_TYPES, outcome.output)
    except AbiError:
        return False, f"policy returned {len(outcome.output)} bytes that are not (bool, string): deny"
    text = "".join(ch if ch.isprintable() else "?" for ch in str(reason))[:_MAX_REASON]
    return bool(allow), text


@dataclass
class PolicySession:
    """Policy calls of one decision, run in one EVM session so that each sees the previous ones' effects."""

    view: Reader
    ctx: BlockContext
    gas: int
    session: EvmSession
    decisions: list[PolicyDecision] = field(default_factory=list)

    @staticmethod
    def open(view: Reader, ctx: BlockContext) -> PolicySession | None:
        """A session for `ctx`, or None on a chain without the EVM."""
        block = evm_block(view, ctx)
        params = load_params(view)
        if block is None or params is None:
            return None
        return PolicySession(view=view, ctx=ctx, gas=params.policy_gas, session=EvmSession(view, block))

    def ask(self, kind: str, task_id: str | None, contract: bytes, calldata: bytes) -> PolicyDecision:
        """Call `contract` with the fixed gas budget and turn the outcome into a verdict (deny on any failure)."""
        try:
            outcome = self.session.call(POLICY_CALLER, contract, calldata, self.gas)
        except TxRejected as exc:
            outcome = Outcome(success=False, gas_used=self.gas, output=b"", logs=(), error=str(exc))
        allow, reason = _verdict(outcome)
        decision = PolicyDecision(kind=kind, task_id=task_id, contract=contract, allow=allow, reason=reason,
                                  outcome=outcome, calldata=calldata)
        self.decisions.append(decision)
        return decision

    def record(self, state: Writer) -> list[Event]:
        """Commit the calls' effects into `state` and record each decision (receipt, logs, events)."""
        if not self.decisions:
            return []
        if not self.session.broken:
            self.session.commit(state)
        events: list[Event] = []
        for decision in self.decisions:
            events += _record_one(state, self.ctx, decision)
        return events


def _record_one(state: Writer, ctx: BlockContext, d: PolicyDecision) -> list[Event]:
    position = len(block_record(state, ctx)["txs"])
    call_hash = keccak(b"fedledger-policy-call\n" + ctx.height.to_bytes(8, "big") + position.to_bytes(4, "big")
                       + d.kind.encode("ascii") + d.contract + keccak(d.calldata))
    chain_log = LogEntry(
        address=POLICY_LOG_ADDRESS,
        topics=(POLICY_LOG_TOPIC, d.contract.rjust(32, b"\x00")),
        data=encode(["string", "address", "bool", "string", "uint256"],
                    [d.kind, d.contract, d.allow, d.reason, d.outcome.gas_used]))
    outcome = Outcome(success=d.outcome.success, gas_used=d.outcome.gas_used, output=d.outcome.output,
                      logs=(*d.outcome.logs, chain_log), error=d.outcome.error)
    _, events = record_execution(state, ctx, call_hash, outcome, sender=POLICY_CALLER, to=d.contract,
                                 kind=f"policy:{d.kind}", tx_type=0, gas_counts=False)
    attrs: list[tuple[str, str]] = [("kind", d.kind), ("task", d.task_id or ""), ("contract", hex0x(d.contract)),
                                    ("decision", "allow" if d.allow else "deny"), ("reason", d.reason),
                                    ("gas_used", str(d.outcome.gas_used)), ("call", hex0x(call_hash))]
    return [Event(type="evm_policy", attributes=tuple(attrs)), *events]


def summary(decision: PolicyDecision) -> PolicyVerdict:
    """A decision as a JSON record (for the version record's `decision`)."""
    return {"kind": decision.kind, "contract": hex0x(decision.contract), "allow": decision.allow,
            "reason": decision.reason, "gas_used": decision.outcome.gas_used}


def consult_admission(view: Reader, ctx: BlockContext, *, subject: str, issuer: str, organization: str, role: str,
                      tasks: Sequence[str], valid_from: int, valid_until: int) -> PolicySession | None:
    """Ask the admission policies that apply to a credential; POLICY_DENIED if any denies.

    The policy of each task the credential names applies (the task's own, else the default);
    a credential naming no task is asked of the default. Each distinct contract is asked once,
    in the credential's task order. Returns the session to record when the admission is applied,
    or None when no policy applies.
    """
    contracts: list[tuple[str | None, bytes]] = []
    scopes: list[str | None] = list(tasks) or [None]
    for scope in scopes:
        contract = policy_address(view, ADMISSION, scope)
        if contract is not None and all(contract != c for _, c in contracts):
            contracts.append((scope, contract))
    if not contracts:
        return None
    session = PolicySession.open(view, ctx)
    if session is None:
        return None
    calldata = admission_calldata(subject, issuer, organization, role, tasks, valid_from, valid_until)
    for scope, contract in contracts:
        decision = session.ask(ADMISSION, scope, contract, calldata)
        if not decision.allow:
            raise TxError(Code.POLICY_DENIED, decision.describe())
    return session


def consult_promotion(view: Reader, ctx: BlockContext, task_id: str, version: int,
                      metrics: dict[str, Any]) -> tuple[PolicyDecision, PolicySession] | None:
    """Ask the task's promotion policy about a version whose attestations reached quorum; None without one.

    `metrics` holds canary_accuracy_ppm, backdoor_asr_ppm, min_canary_accuracy_ppm,
    max_backdoor_asr_ppm, attestations and weight (the lifecycle's decision summary).
    """
    contract = policy_address(view, PROMOTION, task_id)
    if contract is None:
        return None
    session = PolicySession.open(view, ctx)
    if session is None:
        return None
    calldata = promotion_calldata(task_id, version, int(metrics["canary_accuracy_ppm"]),
                                  int(metrics["backdoor_asr_ppm"]), int(metrics["min_canary_accuracy_ppm"]),
                                  int(metrics["max_backdoor_asr_ppm"]), int(metrics["attestations"]),
                                  int(metrics["weight"]))
    return session.ask(PROMOTION, task_id, contract, calldata), session
