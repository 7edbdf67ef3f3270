"""The FEDLEDGER_NO_SKIP=1 guard itself: pytest runs tiny test files with the guard and without it.

Every way to skip is tried, each in its own file: a module-level `pytest.importorskip` and
`pytest.skip(..., allow_module_level=True)` (collection time, which the per-test hook never saw),
a skip mark, a skip in a fixture and in the test body. Without the variable they all skip; with it
each is a failure or a collection error and pytest exits non-zero. An xfail stays an xfail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.imports import ROOT

FILES = {
    "test_importorskip.py": "import pytest\npytest.importorskip('no_such_module_fedledger')\n"
                            "def test_a():\n    pass\n",
    "test_module_skip.py": "import pytest\npytest.skip('not here', allow_module_level=True)\n"
                           "def test_b():\n    pass\n",
    "test_marked.py": "import pytest\n@pytest.mark.skip(reason='marked')\ndef test_c():\n    pass\n"
                      "@pytest.mark.skipif(True, reason='cond')\ndef test_d():\n    pass\n",
    "test_in_fixture.py": "import pytest\n@pytest.fixture\ndef f():\n    pytest.skip('in fixture')\n"
                          "def test_e(f):\n    pass\n",
    "test_in_body.py": "import pytest\ndef test_f():\n    pytest.skip('in body')\n",
    "test_xfail.py": "import pytest\n@pytest.mark.xfail(reason='known', strict=True)\ndef test_g():\n"
                     "    assert False\n",
}


def run_pytest(folder: Path, no_skip: bool) -> tuple[int, str, str]:
    """pytest's exit code, summary line and whole output on `folder`, with only the guard's hooks installed.

    --continue-on-collection-errors: pytest would stop at the collection errors, and we want every count.
    """
    for name, source in FILES.items():
        (folder / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "FEDLEDGER_NO_SKIP"}
    env["PYTHONPATH"] = str(ROOT)
    if no_skip:
        env["FEDLEDGER_NO_SKIP"] = "1"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.no_skip", "-p", "no:cacheprovider",
                           "--continue-on-collection-errors", "--rootdir", str(folder), "-c", os.devnull, str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout.strip().splitlines()[-1], proc.stdout


def counts(summary: str) -> dict[str, int]:
    """{'failed': 4, 'error': 2, ...} from pytest's last line."""
    return {word.rstrip("s"): int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}


def test_without_the_variable_every_way_skips(tmp_path: Path) -> None:
    code, summary, _ = run_pytest(tmp_path, no_skip=False)
    assert code == 0, summary
    assert counts(summary) == {"skipped": 6, "xfailed": 1}, summary


def test_with_the_variable_every_skip_fails(tmp_path: Path) -> None:
    code, summary, output = run_pytest(tmp_path, no_skip=True)
    assert code != 0, summary
    # The skip in the body fails the test; a failed setup (the marks, the fixture) is reported as an error,
    # and so are the two module-level skips, as collection errors.
    assert counts(summary) == {"failed": 1, "xfailed": 1, "error": 5}, summary
    for reason in ("no_such_module_fedledger", "not here"):
        assert re.search(rf"skipped at collection under FEDLEDGER_NO_SKIP=1: .*{reason}", output), (reason, output)
    for reason in ("marked", "cond", "in fixture", "in body"):
        assert re.search(rf"skipped under FEDLEDGER_NO_SKIP=1: .*Skipped: {reason}", output), (reason, output)
