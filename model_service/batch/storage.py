"""Batch files, local or ``s3://``: read a copy, write in full or not at all.

S3 goes through boto3, which honours AWS_ENDPOINT_URL (LocalStack) and moto;
pyarrow's own S3 filesystem would need the endpoint passed separately and
escapes moto. An input in S3 is downloaded to a temporary file and an output is
uploaded once complete, which costs local disk the size of both, not memory.

An output never exists half-written: locally it is written under a unique
temporary name beside its target and renamed over it when complete (a rename is
atomic within a directory); in S3 an object is replaced only when its upload
completes, and boto3 aborts a multipart upload that fails.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from model_service import s3
from model_service.errors import InputNotFound, UnsafeOutput

TEMPORARY_PREFIXES = ("batch-input-", "batch-output-")


def exists(path: str) -> bool:
    """Whether a file or S3 object is there (a backfill skips months whose output exists)."""
    return s3.exists(s3.client(), path) if s3.is_s3(path) else Path(path).is_file()


def refuse_unsafe_output(input_path: str, output_path: str) -> None:
    """Refuse an output that is the input (it would be replaced by its own predictions) or a directory."""
    if s3.is_s3(input_path) and s3.is_s3(output_path):
        same = s3.split(input_path) == s3.split(output_path)
    elif s3.is_s3(input_path) or s3.is_s3(output_path):
        same = False
    else:
        source, target = Path(input_path), Path(output_path)
        same = source.resolve() == target.resolve() or (
            source.exists() and target.exists() and os.path.samefile(source, target)
        )
    if same:
        raise UnsafeOutput(f"{output_path}: the output is the input file; write the predictions elsewhere")
    directory = s3.split(output_path)[1].endswith("/") if s3.is_s3(output_path) else Path(output_path).is_dir()
    if directory:
        raise UnsafeOutput(f"{output_path}: the output is a directory; give a file name")


@contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local file holding ``path``'s bytes, for as long as the block runs."""
    if not s3.is_s3(path):
        if not Path(path).is_file():
            raise InputNotFound(f"{path}: no such file")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=TEMPORARY_PREFIXES[0]) as tmp:
        local = Path(tmp) / Path(s3.split(path)[1]).name
        s3.download(s3.client(), path, str(local))
        yield str(local)


@contextmanager
def complete_output(path: str) -> Iterator[str]:
    """A temporary local file to write; it becomes ``path`` only if the block ends without an error."""
    if s3.is_s3(path):
        bucket, key = s3.split(path)
        with tempfile.TemporaryDirectory(prefix=TEMPORARY_PREFIXES[1]) as tmp:
            local = Path(tmp) / Path(key).name
            yield str(local)
            s3.client().upload_file(str(local), bucket, key)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique name, so two runs writing the same output never share a partial file; created by the
    # writer, so the output gets the usual permissions (mkstemp's would be owner-only).
    partial = str(target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial"))
    try:
        yield partial
        with open(partial, "rb") as written:
            os.fsync(written.fileno())  # on disk before the rename, so a crash cannot leave an empty file
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def remove_leftover_copies() -> int:
    """Delete the S3 copies a killed run left in the temporary directory; returns how many.

    A Lambda run that times out is killed before its temporary directories are
    removed, and /tmp outlives it in the same execution environment: a few such
    runs would fill the function's ephemeral storage. Only safe where no other
    run shares the directory, as at a Lambda container's start.
    """
    import shutil

    leftovers = [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(TEMPORARY_PREFIXES)]
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return len(leftovers)
