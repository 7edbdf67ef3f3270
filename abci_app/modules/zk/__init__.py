"""The zk module: registered ezkl circuits per model version, and inference proofs verified in consensus."""
