"""S3-compatible stores (AWS, MinIO, moto...) through obstore's ``S3Store``.

Credentials and endpoint come from settings, never from the process environment behind the
operator's back: obstore's ``S3Store`` would read ``AWS_*`` variables on its own, so everything we
know is passed explicitly and wins over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from obstore.store import S3Store


@dataclass(frozen=True)
class S3Options:
    """Connection settings for an S3-compatible store (the bucket comes from the URL)."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    allow_http: bool = False
    timeout: int = 30  # seconds for one request, connect to last byte; a timed-out request is retried
    retry_timeout: int = 60  # seconds after the first try of a request when obstore stops retrying it
    pool_idle_timeout: int = 30  # seconds an idle connection may be reused; below every NAT's idle timeout


def s3_store(url: str, options: S3Options) -> S3Store:
    """An ``S3Store`` for ``s3://bucket[/prefix]`` with ``options`` applied.

    Requests have a deadline (``timeout``) and a read timeout, so a connection that dies silently
    (a NAT dropping it, a server killed mid-upload) surfaces as an error the archiver retries,
    rather than hanging. obstore exposes no TCP keepalive knob: an idle pooled connection is
    dropped after ``pool_idle_timeout`` instead, before a NAT forgets its flow, so it is never
    reused dead; a request that dies anyway is bounded by the deadline and retried.
    """
    config: dict[str, object] = {}
    if options.endpoint:
        config["endpoint"] = options.endpoint
        config["virtual_hosted_style_request"] = False  # local servers: http://host:port/bucket/key
    if options.region:
        config["region"] = options.region
    if options.access_key_id:
        config["access_key_id"] = options.access_key_id
    if options.secret_access_key:
        config["secret_access_key"] = options.secret_access_key
    client = {
        "allow_http": options.allow_http,
        "timeout": timedelta(seconds=options.timeout),
        "read_timeout": timedelta(seconds=options.timeout),
        "connect_timeout": timedelta(seconds=min(options.timeout, 5)),
        "pool_idle_timeout": timedelta(seconds=options.pool_idle_timeout),
    }
    retry = {
        "max_retries": 10,
        "retry_timeout": timedelta(seconds=options.retry_timeout),
        "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
    }
    return S3Store.from_url(url, config=config, client_options=client, retry_config=retry)  # type: ignore[arg-type]
