"""A command whose optional package is missing stops in one line naming the extra to install.

Each entry point runs in a fresh interpreter with the package hidden (``sys.modules[name] = None``
makes every import of it fail as if it were not installed), through the real ``overseer`` CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from overseer.errors import missing_package

REPO = Path(__file__).resolve().parents[2]


def _run_hidden(hidden: tuple[str, ...], argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"for name in {hidden!r}: sys.modules[name] = None\n"
        "from overseer.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OVERSEER_CACHE_DIR": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("hidden", "argv", "extra"), [
    ("inspect_ai", ["audit", "run", "--runs-dir", "runs"], "inspect"),
    ("inspect_ai", ["audit", "elicit", "--runs-dir", "runs"], "inspect"),
    ("inspect_ai", ["organisms", "alignment-faking", "--runs-dir", "runs"], "inspect"),
    ("inspect_ai", ["organisms", "reward-tampering", "--runs-dir", "runs"], "inspect"),
    ("ray", ["w2s", "sweep", "--config", str(REPO / "configs" / "offline_ladder.yaml"), "--ray", "--out", "runs"],
     "ray"),
])
def test_a_missing_extra_is_one_line_naming_it(hidden: str, argv: list[str], extra: str, tmp_path: Path) -> None:
    done = _run_hidden((hidden,), argv, tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: ") and f'pip install -e ".[{extra}]"' in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_core_pillars_need_no_optional_package(tmp_path: Path) -> None:
    """Weak-to-strong, self-correction, prover-verifier games, poisoning and implants import without them."""
    code = (
        "import sys\n"
        "for name in ('inspect_ai', 'ray'): sys.modules[name] = None\n"
        "import overseer.w2s, overseer.selfcorrect, overseer.pvg, overseer.organisms.poison, "
        "overseer.organisms.implants\n"
        "from overseer.cli.main import main\n"
        "sys.exit(main(['pvg', 'run', '--help']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_the_extra_is_read_from_the_installed_metadata() -> None:
    inspect = missing_package(ModuleNotFoundError("No module named 'inspect_ai.model'", name="inspect_ai.model"),
                              "overseer audit run")
    assert inspect is not None and str(inspect).endswith('pip install -e ".[inspect]"')
    core = missing_package(ModuleNotFoundError("No module named 'trl'", name="trl"), "overseer pvg run")
    assert core is not None and "reinstall Overseer" in str(core)
    # a module that is none of Overseer's requirements is a bug: no advice, the traceback stays
    assert missing_package(ModuleNotFoundError("No module named 'nope'", name="nope"), "overseer w2s run") is None
