"""The defense must not know the attack: no defense-path module imports the attacker's triggers or attacks.

The check parses each file's source with ast rather than grepping it. It resolves relative imports
and ``from package import module`` forms, and it catches imports nested in functions as well as
``importlib.import_module("...")`` or ``__import__("...")`` calls with a literal name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imports import imports_of, module_name

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("fedledger.apps.experiment.triggers", "fedledger.apps.experiment.attacks")
# Beyond node/: the harness's on-chain evaluation path, and the real evaluator's callers (the CLI's
# `evaluator run`, the demo). fullstack.py is left out on purpose: it builds the attackers too.
DEFENSE_FILES = ("apps/experiment/onchain.py", "apps/cli.py", "apps/demo.py")


def _imported(path: Path) -> set[str]:
    """Every module name the file imports (for `from a import b`, both a and a.b)."""
    return {imp.name for imp in imports_of(path.read_text(encoding="utf-8"), module_name(path, ROOT),
                                           path.name == "__init__.py")}


def _defense_files() -> list[Path]:
    # node/ holds the services and rules; sdk/ the protocol libraries they run (SecAgg+, DP, the model).
    files = sorted((ROOT / "node").rglob("*.py")) + sorted((ROOT / "sdk").rglob("*.py"))
    assert len(files) > 40, "node/ and sdk/ look empty: is ROOT right?"
    return files + [ROOT / f for f in DEFENSE_FILES]


def _offending(path: Path) -> list[str]:
    return sorted(n for n in _imported(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))


@pytest.mark.parametrize("path", _defense_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_defense_module_does_not_import_the_attack(path: Path) -> None:
    assert _offending(path) == [], f"{path.relative_to(ROOT)} imports the attacker's code"


def test_the_check_catches_every_import_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_root = tmp_path
    (fake_root / "apps" / "experiment").mkdir(parents=True)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", fake_root)
    forms = {
        "plain.py": "import fedledger.apps.experiment.triggers\n",
        "from_module.py": "from fedledger.apps.experiment.attacks import attack_data\n",
        "from_package.py": "from fedledger.apps.experiment import triggers\n",
        "relative.py": "from . import attacks\n",
        "relative_dots.py": "from ..experiment.triggers import Trigger\n",
        "nested.py": "def f():\n    import fedledger.apps.experiment.attacks as a\n    return a\n",
        "dynamic.py": "import importlib\nimportlib.import_module('fedledger.apps.experiment.triggers')\n",
    }
    for name, source in forms.items():
        path = fake_root / "apps" / "experiment" / name
        path.write_text(source, encoding="utf-8")
        assert _offending(path), name
    fine = fake_root / "apps" / "experiment" / "fine.py"
    fine.write_text("from fedledger.apps.experiment.metrics import backdoor_asr\n# triggers\n", encoding="utf-8")
    assert _offending(fine) == []
