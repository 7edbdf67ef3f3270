"""The inference module: admitted inference nodes, task tiers, signed receipts, agreement tallies and slashing."""
