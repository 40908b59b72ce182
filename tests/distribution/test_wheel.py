"""The wheel that ``pip install`` gets: it builds, twine accepts it, and it carries the
licence, the embedded data with its notice, ``py.typed`` and the console command."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "symopt"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build/ directory)."""
    pytest.importorskip("build", reason="the test extra installs build")
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path_factory.mktemp("dist")
    # No isolation: the build backend is the environment's setuptools (>= 77, for the
    # licence expression; the test extra installs it), so nothing is downloaded.
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                           "--outdir", str(dist), str(source)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels = list(dist.glob("symopt-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_twine_accepts_the_wheel(wheel):
    pytest.importorskip("twine", reason="the test extra installs twine")
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout


def test_wheel_carries_licence_notice_data_and_py_typed(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(zf.read(f"{dist_info}/METADATA"))
        licence = zf.read(f"{dist_info}/licenses/LICENSE").decode()
        notice = zf.read(f"{dist_info}/licenses/symopt/lab/datasets/NOTICE").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        shipped_notice = zf.read("symopt/lab/datasets/NOTICE").decode()
    # the data, its notice beside it, and the typing marker are in the package itself
    for path in ["symopt/py.typed", "symopt/lab/datasets/fashion-mnist-subset.npz",
                 "symopt/lab/datasets/README.md", "symopt/lab/datasets/NOTICE",
                 "symopt/lab/cli.py", "symopt/lab/compare.py"]:
        assert path in names, path
    assert (ROOT / "symopt/lab/datasets/NOTICE").read_text() == shipped_notice == notice
    assert "Copyright © 2017 Zalando SE" in notice
    assert licence.startswith("MIT License") and "symopt developers" in licence
    # the licence as an SPDX expression with its files (core metadata 2.4)
    assert metadata["License-Expression"] == "MIT"
    assert sorted(metadata.get_all("License-File")) == ["LICENSE", "symopt/lab/datasets/NOTICE"]
    import symopt

    assert metadata["Version"] == symopt.__version__
    assert "[console_scripts]" in entry_points
    assert "symopt = symopt.lab.cli:main" in entry_points
    # the peers are lower bounds: no exact pin pulls a particular (CUDA) torch build
    requires = metadata.get_all("Requires-Dist")
    torch = [r.split(";")[0] for r in requires if r.startswith("torch")]
    assert torch == ["torch>=2.1"], torch
    # no test, example or build output slipped in
    assert not [n for n in names if n.startswith(("tests/", "examples/", "build/"))]
