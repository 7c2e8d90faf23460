"""``s3://bucket/key`` locations, in one place for models and batch files alike.

Every S3 call goes through boto3, which honours AWS_ENDPOINT_URL (LocalStack)
and moto; boto3 is imported only when a location really is in S3, so a local
run never pays for it.
"""

from __future__ import annotations

from typing import Any

from model_service.errors import InputNotFound, InvalidSetting

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket"})
"""The error codes S3 answers for an object or bucket that is not there (HeadObject's is a bare 404)."""


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def split(uri: str, *, key_required: bool = True) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be a prefix, and empty unless ``key_required``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not is_s3(uri) or not bucket or (key_required and not key):
        raise InvalidSetting(f"{uri}: an S3 location is s3://bucket/key")
    return bucket, key


def client() -> Any:
    import boto3

    return boto3.client("s3")


def is_not_found(error: Exception) -> bool:
    """Whether a botocore ClientError says the object or its bucket does not exist."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code") in NOT_FOUND_CODES


def read(s3: Any, uri: str) -> bytes:
    """The object's bytes, or InputNotFound naming it."""
    from botocore.exceptions import ClientError

    bucket, key = split(uri)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            raise InputNotFound(f"{uri}: no such object") from None
        raise
    return body


def download(s3: Any, uri: str, path: str) -> None:
    """Copy the object to a local file, or InputNotFound naming it."""
    from botocore.exceptions import ClientError

    bucket, key = split(uri)
    try:
        s3.download_file(bucket, key, path)
    except ClientError as exc:
        if is_not_found(exc):
            raise InputNotFound(f"{uri}: no such object") from None
        raise


def exists(s3: Any, uri: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, key = split(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True
