"""The docs' command blocks say how to run them, and parse as bash; the marker language itself."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.docs_blocks import DocsError, matches, parse, shell_blocks

BLOCKS = shell_blocks()


def _ids(blocks):
    return [block.where for block in blocks]


def test_the_docs_have_runnable_blocks():
    assert [block for block in BLOCKS if block.kind == "run"]


@pytest.mark.parametrize("block", BLOCKS, ids=_ids(BLOCKS))
def test_every_shell_block_says_how_it_is_run(block):
    assert block.kind in ("run", "background", "aws", "docker", "skip"), (
        f"{block.where}: mark the block with <!-- docs: run|background, port=N|aws|docker|skip: why --> above its fence"
    )


@pytest.mark.parametrize("block", BLOCKS, ids=_ids(BLOCKS))
def test_every_shell_block_parses_as_bash(block):
    checked = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
    assert checked.returncode == 0, f"{block.where}: {checked.stderr}"


RUNNABLE = [block for block in BLOCKS if block.kind in ("run", "background")]


@pytest.mark.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))
def test_runnable_blocks_use_the_projects_python(block):
    """A bare ``python`` is whatever the reader's PATH has, which lacks the project's packages."""
    bare = re.compile(r"(?:^|[\s;&|(])(python3?|pip|pytest|gunicorn)\s")
    for line in block.text.splitlines():
        if not line.lstrip().startswith("#"):
            assert not bare.search(line), f"{block.where}: use .venv/bin/... in {line.strip()!r}"


def test_an_output_block_belongs_to_the_run_block_above_it():
    text = "<!-- docs: run -->\n```bash\necho hi\n```\n\n<!-- docs: output -->\n```\nhi\n```\n"
    (block,) = parse(text, "page.md")
    assert block.kind == "run"
    assert block.output is not None
    assert block.output.text == "hi\n"


def test_an_output_block_without_a_run_block_is_an_error():
    with pytest.raises(DocsError, match=re.escape("page.md:2: 'docs: output' must follow")):
        parse("<!-- docs: output -->\n```\nhi\n```\n", "page.md")


def test_a_skip_needs_its_reason():
    with pytest.raises(DocsError, match="needs a reason"):
        parse("<!-- docs: skip -->\n```bash\nmake bench\n```\n", "page.md")


def test_a_background_block_needs_its_port():
    with pytest.raises(DocsError, match="needs the port"):
        parse("<!-- docs: background -->\n```bash\nserve\n```\n", "page.md")


def test_an_unknown_marker_is_an_error():
    with pytest.raises(DocsError, match="unknown marker 'docs: runn'"):
        parse("<!-- docs: runn -->\n```bash\nls\n```\n", "page.md")


def test_an_unclosed_fence_is_an_error():
    with pytest.raises(DocsError, match=re.escape("page.md:1: fence never closed")):
        parse("```bash\nls\n", "page.md")


def test_a_marker_only_applies_to_the_fence_right_below_it():
    (block,) = parse("<!-- docs: run -->\n\n```bash\nls\n```\n", "page.md")
    assert block.kind is None


def test_output_matches_itself():
    assert matches("a\nb\n", "a\nb\n")


def test_output_differing_in_one_line_does_not_match():
    assert not matches("a\nb\n", "a\nc\n")


def test_output_missing_a_line_does_not_match():
    assert not matches("a\nb\n", "a\n")


def test_a_dots_line_stands_for_any_lines():
    assert matches("first\n...\nlast\n", "first\nx\ny\nlast\n")
    assert matches("first\n...\nlast\n", "first\nlast\n")


def test_dots_in_a_line_stand_for_any_text_on_that_line_only():
    assert matches("run ... done\n", "run abc123 done\n")
    assert not matches("run ... done\n", "run abc\n123 done\n")


def test_trailing_spaces_do_not_count():
    assert matches("a  \n", "a\n")
