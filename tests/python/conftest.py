"""Shared set-up: the orchestr8 binary under test and a library made of the fixture collections."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def binary() -> str:
    path = os.environ.get("ORCHESTR8_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        path = str(Path(target) / "release" / "orchestr8")
    assert Path(path).exists(), f"build orchestr8 first: {path} is missing"
    return path


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> dict:
    """Three fixture roots and a private index directory."""
    index = tmp_path_factory.mktemp("index")
    roots = [str(FIXTURES / name) for name in ("v5", "mixed", "claude-code")]
    args = ["serve"]
    for root in roots:
        args += ["--dir", root]
    env = dict(os.environ, ORCHESTR8_INDEX_DIR=str(index), ORCHESTR8_LOG="info")
    env.pop("ORCHESTR8_DIRS", None)
    return {"bin": binary(), "args": args, "env": env, "roots": roots}


@pytest.fixture()
def outside_file(tmp_path) -> Path:
    """A file outside every library root that no request may read."""
    secret = tmp_path / "secret.md"
    secret.write_text("---\nname: secret\ndescription: must never be served\n---\nTOP SECRET\n")
    return secret


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
