"""Zero-knowledge proofs of inference with ezkl: SRS files, per-version circuit setups, proving and verifying.

- srs.py: a dev SRS (ezkl gen_srs: random, NOT for production) or an operator's ceremony SRS by path,
  each with its sha256; the chain pins one SRS of its largest logrows (a larger SRS serves smaller
  circuits: measured). Nothing downloads.
- setup.py: CircuitSetup for (task, version, input mode) from ONNX bytes: deterministic settings,
  compiled circuit, vk and pk cached on disk. Params are fixed, so the vk sha256 is the commitment
  to the model's parameters (the artifact sha256 is recorded beside it).
- proof.py: prove(setup, x) -> Proof (bytes, instances, outputs as fixed-point ints, input hash);
  verify_proof with the validators' own verifier (abci_app/modules/zk/verifier.py).
- submission.py: the node-signed submit_inference_proof body.
"""
