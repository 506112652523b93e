"""Image pull policies, as gitlab-runner applies them (``[runners.docker] pull_policy``).

* ``always``: pull every time; ``if-not-present``: use a local image, pull only when missing;
  ``never``: only a local image.
* The job's ``image.pull_policy`` must be a subset of the configured (allowed) list; when it is
  absent the configured list applies. Policies are tried in order: ``["always", "if-not-present"]``
  pulls, and falls back to the local image when the registry cannot be reached.
* Every failure ends the job with ``image_pull_failure``.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.protocol.enums import FailureReason
from conveyor.runner.executors.base import Output
from conveyor.runner.executors.docker import auth
from conveyor.runner.executors.docker.api import DockerAPI, DockerError
from conveyor.runner.trace import ansi


def effective(allowed: Sequence[str], requested: Sequence[str] | str | None) -> list[str]:
    """The policies to try for one image.

    Raises:
        DockerError: the job asks for a policy the runner does not allow.
    """
    wanted = [requested] if isinstance(requested, str) else list(requested or [])
    if not wanted:
        return list(allowed)
    refused = [policy for policy in wanted if policy not in allowed]
    if refused:
        raise DockerError(
            f"pull_policy {refused} is not allowed by the runner (allowed: {list(allowed)})",
            reason=FailureReason.IMAGE_PULL_FAILURE,
        )
    return wanted


def split(image: str) -> tuple[str, str]:
    """``(name, tag)``; a digest stays in the name, the tag defaults to ``latest``."""
    if "@" in image:
        return image, ""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, "latest"
    return name, tag


async def exists(api: DockerAPI, image: str) -> bool:
    response = await api.call("GET", f"/images/{image}/json", ok=(200, 404))
    return response.status_code == 200


async def pull(api: DockerAPI, image: str, credentials: auth.Credentials | None = None) -> None:
    name, tag = split(image)
    params = {"fromImage": name, **({"tag": tag} if tag else {})}
    headers = {"X-Registry-Auth": credentials.header()} if credentials else None
    async for event in api.json_lines("POST", "/images/create", params, headers):
        error = event.get("error") or (event.get("errorDetail") or {}).get("message")
        if error:
            raise DockerError(f"pulling {image}: {error}", reason=FailureReason.IMAGE_PULL_FAILURE)
    if not await exists(api, image):
        raise DockerError(f"pulling {image} finished without the image", reason=FailureReason.IMAGE_PULL_FAILURE)


async def ensure(
    api: DockerAPI, image: str, policies: Sequence[str], log: Output | None, credentials: auth.Credentials | None = None
) -> None:
    """Make ``image`` available locally following ``policies`` in order, pulling with
    ``credentials`` (``auth.resolve``) when given.

    Raises:
        DockerError: with ``image_pull_failure`` when no policy succeeded.
    """
    errors = []
    for policy in policies:
        try:
            if policy != "always" and await exists(api, image):
                _say(log, ansi.plain(f"Using locally found image {image} ..."))
                return
            if policy == "never":
                errors.append(f"image {image} is not present locally and the pull policy is never")
                continue
            if credentials is not None:
                _say(log, ansi.plain(f"Authenticating with credentials from {credentials.source}"))
            _say(log, ansi.plain(f"Pulling docker image {image} ..."))
            await pull(api, image, credentials)
            return
        except DockerError as exc:
            errors.append(str(exc))
            _say(log, ansi.warning(f"Failed to pull image with policy \"{policy}\": {exc}"))
    raise DockerError("; ".join(errors) or f"no pull policy for {image}", reason=FailureReason.IMAGE_PULL_FAILURE)


def _say(log: Output | None, text: str) -> None:
    if log is not None:
        log(text.encode())
