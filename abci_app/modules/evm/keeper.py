"""The EVM keeper: the `set_policy_contract` governance action (parse, check, execute), the only EVM use of others."""

from __future__ import annotations

from fedledger.abci_app.modules.evm.gov import check_set_policy, execute_set_policy, parse_set_policy

__all__ = ["check_set_policy", "execute_set_policy", "parse_set_policy"]
