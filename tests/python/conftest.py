"""Shared set-up: the orchestr8 binary under test and a library made of the fixture collections."""

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from mcp import StdioServerParameters

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


@pytest.fixture(scope="session")
def http_url(library):
    """`orchestr8 serve --http 127.0.0.1:0` over the same library, and its URL."""
    args = ["serve", "--http", "127.0.0.1:0"] + library["args"][1:]
    proc = subprocess.Popen([library["bin"], *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=library["env"], text=True)
    url = None
    for line in proc.stderr:
        found = re.search(r"url=(http://\S+/mcp)", line)
        if found:
            url = found.group(1)
            break
    assert url, "the HTTP server did not say where it listens"
    # Keep draining stderr so the server never blocks on a full pipe.
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    assert proc.stdout.read() == "", "nothing may be written to stdout"


@pytest.fixture(params=["stdio", "http"])
def server(request, library):
    """What a client connects to: the binary over stdio, or the HTTP server's URL."""
    if request.param == "http":
        return request.getfixturevalue("http_url")
    return StdioServerParameters(command=library["bin"], args=library["args"], env=library["env"])
