"""The command blocks of the docs, with what each says about how to run it.

A reader copies the docs' ``bash`` blocks, so every one carries a marker on the
line just above its fence, and the tests hold each block to its marker:

- ``<!-- docs: run -->``: runs on a fresh clone after ``make demo`` (in the
  order the page gives), and must exit 0. A plain fence right after it, marked
  ``<!-- docs: output -->``, is what the block prints on stdout (stderr, with
  its progress bars, is not compared): a line ``...`` stands for any lines,
  and ``...`` inside a line for any text on it.
- ``<!-- docs: background, port=N -->``: a server the next blocks talk to; it
  is started, waited for on port N, and stopped when the page is done.
- ``<!-- docs: aws -->`` and ``<!-- docs: docker -->``: need an AWS account or
  a Docker engine, which CI has neither of; they are parsed, not run.
- ``<!-- docs: skip: <why> -->``: not run, for the reason given.

tests/unit/test_docs_blocks.py checks the markers; integration-test/test_docs.py
runs the blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The pages a reader follows, in the order the README sends them there.
DOCS = ("README.md", "docs/local-stack.md", "docs/web-and-batch.md", "local_stack/README.md")

KINDS = ("run", "background", "output", "aws", "docker", "skip")
RUNNABLE = ("run", "background")

_MARKER = re.compile(r"^<!--\s*docs:\s*(?P<kind>[a-z]+)\s*(?:[,:]\s*(?P<rest>.*?))?\s*-->\s*$")
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


class DocsError(ValueError):
    """A marker the tests cannot act on, named by file and line."""


@dataclass
class Block:
    """One fenced block of a page and the marker above it (``kind`` is None when unmarked)."""

    path: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    kind: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    output: Block | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def port(self) -> int:
        return int(self.options["port"])


def _options(kind: str, rest: str | None, where: str) -> tuple[dict[str, str], str]:
    if kind == "skip":
        if not rest:
            raise DocsError(f"{where}: 'docs: skip' needs a reason: <!-- docs: skip: why -->")
        return {}, rest
    options = {}
    for item in filter(None, (part.strip() for part in (rest or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise DocsError(f"{where}: option {item!r} is not key=value")
        options[key.strip()] = value.strip()
    if kind == "background" and not options.get("port", "").isdigit():
        raise DocsError(f"{where}: 'docs: background' needs the port it listens on: <!-- docs: background, port=N -->")
    return options, ""


def parse(text: str, path: str) -> list[Block]:
    """Every fenced block of a page; an output block is attached to the run block before it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise DocsError(f"{path}:{index + 1}: fence never closed")
        block = Block(path, index + 1, opening["lang"], "\n".join(lines[index + 1 : end]) + "\n")
        marker = _MARKER.match(lines[index - 1]) if index else None
        if marker:
            block.kind = marker["kind"]
            if block.kind not in KINDS:
                raise DocsError(f"{block.where}: unknown marker 'docs: {block.kind}' (one of {', '.join(KINDS)})")
            block.options, block.reason = _options(block.kind, marker["rest"], block.where)
        if block.kind == "output":
            previous = blocks[-1] if blocks else None
            if previous is None or previous.kind != "run" or previous.output is not None:
                raise DocsError(f"{block.where}: 'docs: output' must follow a 'docs: run' block")
            previous.output = block
        else:
            blocks.append(block)
        index = end + 1
    return blocks


def page(path: str, root: Path = ROOT) -> list[Block]:
    return parse((root / path).read_text(encoding="utf-8"), path)


def shell_blocks(root: Path = ROOT) -> list[Block]:
    """Every bash block of every page, the ones a reader copies into a terminal."""
    return [block for path in DOCS for block in page(path, root) if block.lang == "bash"]


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows, ``...`` standing for what the page leaves out."""
    pattern = []
    for line in expected.rstrip("\n").splitlines():
        if line.strip() == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            pattern.append(r"[^\n]*".join(re.escape(part) for part in line.rstrip().split("...")) + r"[ \t]*\n")
    return re.fullmatch("".join(pattern), actual.rstrip("\n") + "\n") is not None
