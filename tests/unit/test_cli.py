"""Both command lines' error policy: what the user must fix is one line and status 2, a bug keeps its traceback."""

from __future__ import annotations

import argparse

import pytest

from model_service.cli import main, run
from model_service.config import Settings
from model_service.errors import InputNotFound


def parser_running(command) -> object:
    def parser_for(settings: Settings) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.set_defaults(run=lambda args, settings: command())
        return parser

    return parser_for


def test_a_service_error_is_one_line_on_stderr_and_status_2(capsys):
    def missing() -> int:
        raise InputNotFound("data/green_tripdata_2021-03.parquet: no such file")

    assert run(parser_running(missing), []) == 2
    assert capsys.readouterr().err == "error: data/green_tripdata_2021-03.parquet: no such file\n"


@pytest.mark.parametrize("bug", [ValueError("a library's own check"), FileNotFoundError("/etc/missing"), KeyError("x")])
def test_any_other_error_is_not_taken_for_the_users_and_keeps_its_traceback(bug):
    def broken() -> int:
        raise bug

    with pytest.raises(type(bug)):
        run(parser_running(broken), [])


def test_score_without_a_file_or_a_month_says_what_to_give(capsys):
    assert main(["score"]) == 2
    assert "give --input and --output, or --year and --month" in capsys.readouterr().err
