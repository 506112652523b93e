"""Shared-cache object names (gitlab-runner's ``generateObjectName``) and SigV4 presigned URLs
(AWS's published example: moto, the tests' S3, does not check signatures)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.runner.config import _cache
from conveyor.runner.errors import SettingsError
from conveyor.runner.files import s3cache
from conveyor.runner.settings import S3CacheSettings

pytestmark = pytest.mark.unit

AWS = S3CacheSettings(server_address="s3.amazonaws.com", access_key="AKIAIOSFODNN7EXAMPLE",
                      secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", bucket_name="examplebucket")  # fmt: skip


def test_presigned_get_matches_the_aws_example() -> None:
    """docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html: GET test.txt."""
    url = s3cache.presign(AWS, "GET", "test.txt", 86400, now=datetime(2013, 5, 24, tzinfo=UTC))
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_path_style_elsewhere_and_plain_http_when_insecure() -> None:
    minio = S3CacheSettings(server_address="minio.internal:9000", access_key="a", secret_key="b", bucket_name="cache", insecure=True)
    url = s3cache.presign(minio, "PUT", "ci/project/7/key with space", 60)
    assert url.startswith("http://minio.internal:9000/cache/ci/project/7/key%20with%20space?X-Amz-Algorithm=")


@pytest.mark.parametrize(
    ("path", "shared", "key", "expected"),
    [
        ("", True, "default-protected", "project/7/default-protected"),
        ("ci", False, "default-protected", "ci/runner/t1_abcde/project/7/default-protected"),
        ("ci/", True, "job/main", "ci/project/7/job/main"),
        ("", True, "a/../b", "project/7/b"),
    ],
)
def test_object_names(path: str, shared: bool, key: str, expected: str) -> None:
    settings = S3CacheSettings(server_address="s3", access_key="a", secret_key="b", bucket_name="c", path=path, shared=shared)
    assert s3cache.object_name(settings, "t1_abcde", 7, key) == expected


def test_a_key_outside_the_project_is_refused() -> None:
    settings = S3CacheSettings(server_address="s3", access_key="a", secret_key="b", bucket_name="c")
    with pytest.raises(s3cache.CacheKeyError, match="Please remove `../` from cache key"):
        s3cache.object_name(settings, "t", 7, "../8/x")


def test_config_in_gitlab_runners_spelling() -> None:
    parsed = _cache({"Type": "s3", "Path": "p", "Shared": True, "s3": {
        "ServerAddress": "s3.amazonaws.com", "AccessKey": "a", "SecretKey": "b", "BucketName": "c", "BucketLocation": "eu-west-1"}})
    assert parsed == S3CacheSettings("s3.amazonaws.com", "a", "b", "c", "eu-west-1", path="p", shared=True)
    assert _cache({}) is None
    with pytest.raises(SettingsError, match="Type 'gcs' is not supported"):
        _cache({"Type": "gcs"})
    with pytest.raises(SettingsError, match=r"unknown keys \['s3.Region'\]"):
        _cache({"Type": "s3", "s3": {"Region": "x"}})
    with pytest.raises(SettingsError, match="needs access_key"):
        _cache({"Type": "s3", "s3": {"ServerAddress": "s", "BucketName": "c", "SecretKey": "b"}})
