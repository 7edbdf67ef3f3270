"""zkDPS: zero-knowledge proofs that a training contribution is within the task's clip bound.

- circuit.py: the norm-bound ONNX graph for (clip C, dimension d), built deterministically with
  onnx.helper, and the exact fixed-point bound it enforces (the quantization slack stated there).
- prover.py: NormCircuit (the ezkl setup through sdk/zk, once per task) and prove_norm(update) ->
  the proof that travels with the commit tx; its body form and the task-param form the chain reads.
- errors.py: the compliance errors (derived from the zk family).
"""
