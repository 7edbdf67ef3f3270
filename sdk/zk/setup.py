"""One version's ezkl circuit: deterministic settings, compiled circuit, vk and pk, cached on disk per version.

Settings are reproducible: scales, visibility and the calibration data are fixed (a seeded grid of
inputs in [0, 1]), the ezkl release is pinned, and the written settings are canonicalized (sorted
keys, compact, no timestamp). Anyone holding the ONNX artifact rebuilds the same settings sha256,
and with the chain's SRS the same vk sha256 (ezkl's setup is deterministic given the SRS).

Params are "fixed": the weights are constants of the circuit, so the vk commits to them. The vk's
sha256 IS the model-parameter commitment; the artifact's sha256 is recorded beside it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import ezkl

from fedledger.abci_app.modules.zk.circuit import CircuitFacts, circuit_facts
from fedledger.abci_app.modules.zk.msgs import INPUT_MODES
from fedledger.abci_app.modules.zk.verifier import run_ezkl
from fedledger.sdk.zk.errors import ZkSetupError
from fedledger.sdk.zk.srs import SrsFile

__all__ = ["CALIBRATION_ROWS", "CALIBRATION_SEED", "LOOKUP_SAFETY_MARGIN", "SCALE", "CircuitSetup",
           "canonical_settings", "run_args"]

SCALE = 13  # fixed-point bits for inputs and params (ezkl's calibration picks 13 for mlp-digits too)
CALIBRATION_SEED = 0
CALIBRATION_ROWS = 16
LOOKUP_SAFETY_MARGIN = 2.0  # ezkl's default; fixed here so that rebuilt settings hash the same


# Fields ezkl fills from hash sets, so their order changes from run to run (measured: required_range_checks
# came out as [[-1,1],[0,16383]] in one build and reversed in the next); they are sets, so sorted here.
_SET_FIELDS = ("required_lookups", "required_range_checks")


def canonical_settings(raw: bytes) -> bytes:
    """ezkl's settings JSON, timestamp dropped, set-valued fields sorted, keys sorted, compact: the hashed bytes.

    The circuit is compiled from these canonical settings, so the vk follows from them too.
    """
    doc = json.loads(raw)
    doc.pop("timestamp", None)
    for name in _SET_FIELDS:
        if isinstance(doc.get(name), list):
            doc[name] = sorted(doc[name], key=lambda item: json.dumps(item, sort_keys=True))
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def run_args(input_mode: str) -> ezkl.PyRunArgs:
    """The fixed ezkl run arguments: input hashed or private, outputs public, params fixed, batch 1."""
    import ezkl

    args = ezkl.PyRunArgs()
    # setattr: ezkl's type hints (.pyi) omit PyRunArgs' properties, though the compiled extension has them all.
    for name, value in (("input_visibility", input_mode), ("output_visibility", "public"),
                        ("param_visibility", "fixed"), ("variables", [("batch", 1)]), ("input_scale", SCALE),
                        ("param_scale", SCALE)):
        setattr(args, name, value)
    return args


def _input_dim(onnx_bytes: bytes) -> int:
    import onnx

    try:
        model = onnx.load_from_string(onnx_bytes)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        return int(np.prod([d.dim_value for d in dims[1:]]))
    except Exception as exc:  # onnx raises DecodeError and friends for junk bytes
        raise ZkSetupError(f"the artifact is not an ONNX model with one [batch, features] input: {exc}") from None


@dataclass(frozen=True)
class CircuitSetup:
    """A version's circuit files (under `folder`) and the hashes the chain records."""

    task_id: str
    version: int
    input_mode: str
    folder: Path
    settings: bytes  # canonical settings JSON
    vk: bytes
    artifact_sha256: str
    srs: SrsFile
    input_dim: int

    @property
    def settings_sha256(self) -> str:
        """sha256 of the canonical settings."""
        return hashlib.sha256(self.settings).hexdigest()

    @property
    def vk_sha256(self) -> str:
        """sha256 of the vk: the commitment to the model's parameters."""
        return hashlib.sha256(self.vk).hexdigest()

    @property
    def facts(self) -> CircuitFacts:
        """Logrows, output count and scale, as the chain reads them."""
        return circuit_facts(self.settings, self.input_mode)

    @property
    def compiled_path(self) -> Path:
        """The compiled circuit."""
        return self.folder / "model.compiled"

    @property
    def pk_path(self) -> Path:
        """The proving key (hundreds of MB: kept on disk, never in memory or on chain)."""
        return self.folder / "pk"

    def register_body(self) -> dict[str, object]:
        """The register_zk_circuit tx body (settings and vk zlib-compressed, so that they fit a 16 KiB tx)."""
        import base64

        return {"task_id": self.task_id, "version": self.version, "input_mode": self.input_mode,
                "settings": base64.b64encode(zlib.compress(self.settings, 9)).decode(),
                "vk": base64.b64encode(zlib.compress(self.vk, 9)).decode()}

    @staticmethod
    def build(task_id: str, version: int, input_mode: str, artifact: bytes, srs: SrsFile,
              cache_dir: Path) -> CircuitSetup:
        """Settings, compiled circuit, vk and pk for one version, reused from `cache_dir` when already built."""
        import ezkl

        if input_mode not in INPUT_MODES:
            raise ZkSetupError(f"input mode must be one of {list(INPUT_MODES)}, got {input_mode!r}")
        artifact_sha = hashlib.sha256(artifact).hexdigest()
        dim = _input_dim(artifact)
        # The folder name binds everything the files depend on: a new artifact or SRS is a new folder.
        folder = Path(cache_dir) / f"{task_id}-v{version}-{input_mode}-{artifact_sha[:16]}-{srs.sha256[:16]}"
        done = folder / "done"
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            onnx_path, settings_path = folder / "model.onnx", folder / "settings.json"
            onnx_path.write_bytes(artifact)
            try:
                run_ezkl(ezkl.gen_settings(str(onnx_path), str(settings_path), py_run_args=run_args(input_mode)))
                calib = np.random.RandomState(CALIBRATION_SEED).rand(CALIBRATION_ROWS, dim).astype(np.float32)
                cal_path = folder / "calibration.json"
                cal_path.write_text(json.dumps({"input_data": [calib.reshape(-1).tolist()]}))
                run_ezkl(ezkl.calibrate_settings(str(cal_path), str(onnx_path), str(settings_path), "resources",
                                                 LOOKUP_SAFETY_MARGIN, [SCALE], [1], srs.logrows))
            except (RuntimeError, ValueError) as exc:
                raise ZkSetupError(f"ezkl could not build settings for this artifact: {exc}") from None
            settings_path.write_bytes(canonical_settings(settings_path.read_bytes()))
            logrows = json.loads(settings_path.read_bytes())["run_args"]["logrows"]
            if logrows > srs.logrows:
                raise ZkSetupError(f"the circuit needs 2^{logrows} rows, the SRS has 2^{srs.logrows}")
            try:
                run_ezkl(ezkl.compile_circuit(str(onnx_path), str(folder / "model.compiled"), str(settings_path)))
                run_ezkl(ezkl.setup(str(folder / "model.compiled"), str(folder / "vk"), str(folder / "pk"),
                                    str(srs.path), None, False))
            except (RuntimeError, ValueError) as exc:
                raise ZkSetupError(f"ezkl could not compile or set up the circuit: {exc}") from None
            done.write_text(artifact_sha)
        return CircuitSetup(task_id=task_id, version=version, input_mode=input_mode, folder=folder,
                            settings=(folder / "settings.json").read_bytes(), vk=(folder / "vk").read_bytes(),
                            artifact_sha256=artifact_sha, srs=srs, input_dim=dim)
