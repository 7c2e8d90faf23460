"""The docs' command blocks, run as a reader copies them: on a fresh copy of the project after `make demo`.

Each page runs in one shell session of its own, its blocks in the order the
page gives them (``export``ed variables carry over from block to block), its
background servers stopped when the page is done. A block must exit 0, and
what it prints on stdout must be the output the page shows under it. The shown
figures come from the models trained on the TLC files in ../shared, so outputs
are compared only where that folder is present; the blocks run either way.
The markers: tests/docs_blocks.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.docs_blocks import DOCS, ROOT, RUNNABLE, Block, matches, page

SHARED = ROOT.parent / "shared"
# What `make setup` and `make localstack-setup` build: linked, not rebuilt, into the copy.
BUILT = (".venv", ".tools", ".localstack")
BLOCK_TIMEOUT = 600
# The variables a reader's fresh terminal has; nothing from the test run leaks into a block.
KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "USER", "TMPDIR", "PYENV_ROOT")


@pytest.fixture(scope="module")
def project(tmp_path_factory, phase) -> Path:
    """A copy of the project's tracked files, after `make demo`'s training step, as a reader has it."""
    root = tmp_path_factory.mktemp("docs") / "main"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)  # mtimes kept, so make sees the setup as done
    for name in BUILT:
        (root / name).symlink_to(ROOT / name)
    if SHARED.exists():
        (root.parent / "shared").symlink_to(SHARED)
    with phase("docs: train as make demo does"):
        trained = subprocess.run(
            [str(root / ".venv/bin/python"), "-m", "scripts.demo", "train"],
            cwd=root,
            env=_reader_environment(),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    return root


def _reader_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}


class Session:
    """One page's shell: each block a bash process that starts from the variables the previous ones exported."""

    def __init__(self, root: Path, state: Path) -> None:
        self.root = root
        self.state = state
        state.touch()

    def script(self, block: Block) -> str:
        return f'source "{self.state}"\nset -eo pipefail\n{block.text}\nexport -p > "{self.state}"\n'

    def run(self, block: Block) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", self.script(block)],
            cwd=self.root,
            env=_reader_environment(),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    def background(self, block: Block, log: Path, cleanup: ExitStack) -> None:
        with log.open("w") as log_file:
            process = subprocess.Popen(
                ["bash", "-c", f'source "{self.state}"\n{block.text}'],
                cwd=self.root,
                env=_reader_environment(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        cleanup.callback(_stop, process)
        deadline = time.monotonic() + 120
        while not _accepting(block.port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{block.where}: nothing listens on port {block.port}:\n{log.read_text(errors='replace')}")
            time.sleep(0.5)


def _accepting(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen) -> None:
    """As Ctrl-C in the reader's terminal would, then harder if that does not end it."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


RUN_PAGES = [path for path in DOCS if any(block.kind in RUNNABLE for block in page(path))]


@pytest.mark.parametrize("path", RUN_PAGES)
def test_the_pages_command_blocks_work_as_shown(path, project, tmp_path, phase):
    blocks = [block for block in page(path, project) if block.kind in RUNNABLE]
    session = Session(project, tmp_path / "exported")
    with ExitStack() as cleanup, phase(f"docs: {path}"):
        for number, block in enumerate(blocks):
            if block.kind == "background":
                session.background(block, tmp_path / f"background-{number}.log", cleanup)
                continue
            result = session.run(block)
            said = f"{block.where} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr (its end)\n"
            said += result.stderr[-3000:]
            assert result.returncode == 0, said
            if block.output is not None and SHARED.exists():
                shown = matches(block.output.text, result.stdout)
                assert shown, f"{block.output.where}: the page shows\n{block.output.text}\nbut {said}"
