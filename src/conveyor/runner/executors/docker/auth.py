"""Registry credentials for image pulls, resolved as gitlab-runner does (``helpers/docker/auth``).

Sources, first match by registry host wins:

1. the job's ``DOCKER_AUTH_CONFIG`` variable (a Docker ``config.json`` document);
2. the runner's own: ``DOCKER_AUTH_CONFIG`` in its environment, else ``~/.docker/config.json``;
3. the job payload's ``credentials`` of type ``registry`` (GitLab's registry with the job token,
   the dependency proxy).

An image's registry is its first path component when that has a ``.`` or ``:`` or is
``localhost``; else Docker Hub (``docker.io``, also written ``index.docker.io`` or
``https://index.docker.io/v1/``). ``auths`` entries take ``auth`` (base64 ``user:password``) or
``username``/``password``; credential helpers (``credsStore``, ``credHelpers``) need binaries a
job runner should not run, and are skipped. The chosen credentials go to the Docker API as the
``X-Registry-Auth`` header of the pull (base64url JSON), never into the job log.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
JOB_SOURCE = "$DOCKER_AUTH_CONFIG"
PAYLOAD_SOURCE = "job payload (GitLab Registry)"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    server: str
    source: str  # where they came from, for the job log ("Authenticating with credentials from ...")

    def header(self) -> str:
        """``X-Registry-Auth``: base64url of Docker's AuthConfig JSON."""
        body = {"username": self.username, "password": self.password, "serveraddress": self.server}
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def registry_of(image: str) -> str:
    """The registry host (with port) an image reference is pulled from."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return _hostname(first)
    return DOCKER_HUB


def _hostname(address: str) -> str:
    """``https://host:port/v1/`` -> ``host:port``; Docker Hub's names -> ``docker.io``."""
    host = address.strip()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


def from_config(document: str | Mapping[str, Any], source: str) -> dict[str, Credentials]:
    """The ``auths`` of a Docker ``config.json`` (text or parsed) by registry host; bad entries skipped."""
    try:
        data = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return {}
    auths = data.get("auths") if isinstance(data, Mapping) else None
    found: dict[str, Credentials] = {}
    for address, entry in (auths or {}).items() if isinstance(auths, Mapping) else ():
        if not isinstance(entry, Mapping):
            continue
        username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                username, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                continue
        if username:
            host = _hostname(str(address))
            found.setdefault(host, Credentials(username, password, host, source))
    return found


def from_payload(credentials: Sequence[Mapping[str, Any]]) -> dict[str, Credentials]:
    found: dict[str, Credentials] = {}
    for entry in credentials:
        if str(entry.get("type", "")).lower() != "registry" or not entry.get("url"):
            continue
        host = _hostname(str(entry["url"]))
        found.setdefault(host, Credentials(str(entry.get("username") or ""), str(entry.get("password") or ""), host, PAYLOAD_SOURCE))
    return found


def runner_config(environ: Mapping[str, str] | None = None, home: Path | None = None) -> dict[str, Credentials]:
    """The runner's own credentials: ``DOCKER_AUTH_CONFIG`` in its environment, else its
    ``~/.docker/config.json``."""
    environ = os.environ if environ is None else environ
    if environ.get("DOCKER_AUTH_CONFIG"):
        return from_config(environ["DOCKER_AUTH_CONFIG"], "$DOCKER_AUTH_CONFIG")
    path = (home or Path.home()) / ".docker" / "config.json"
    try:
        return from_config(path.read_text(encoding="utf-8"), str(path))
    except OSError:
        return {}


def resolve(
    image: str,
    job_variables: Mapping[str, str],
    payload_credentials: Sequence[Mapping[str, Any]],
    runner: Mapping[str, Credentials] | None = None,
) -> Credentials | None:
    """The credentials to pull ``image`` with, or None (anonymous)."""
    host = registry_of(image)
    sources = [
        from_config(job_variables["DOCKER_AUTH_CONFIG"], JOB_SOURCE) if job_variables.get("DOCKER_AUTH_CONFIG") else {},
        runner if runner is not None else runner_config(),
        from_payload(payload_credentials),
    ]
    for found in sources:
        if host in found:
            return found[host]
    return None
