"""The privacy keeper: task policies (set by federation and governance) and the debit of each contribution."""

from __future__ import annotations

from fedledger.abci_app.modules.privacy.budget import MICRO, Debit, debit, has_policy, parse_policy, policy, set_policy

__all__ = ["MICRO", "Debit", "debit", "has_policy", "parse_policy", "policy", "set_policy"]
