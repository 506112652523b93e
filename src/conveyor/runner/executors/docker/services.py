"""Job services: sidecar containers on a per-job network, reachable by their aliases.

GitLab's default aliases for an image ``registry.example.com/group/db:16`` are the name without
the tag with ``/`` turned into ``__`` and into ``-`` (``registry.example.com__group__db``,
``registry.example.com-group-db``); ``alias`` (comma or space separated) adds more. Services get
the job's variables (as GitLab passes them) plus their own ``variables``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from conveyor.runner.executors.docker import containers
from conveyor.runner.executors.docker.api import DockerAPI


def aliases(service: Mapping[str, Any]) -> list[str]:
    name = str(service.get("name", ""))
    base = name.split("@", 1)[0]
    head, _, tag = base.rpartition(":")
    if head and "/" not in tag:
        base = head
    found = [base.replace("/", "__"), base.replace("/", "-")]
    found += [a for a in re.split(r"[,\s]+", str(service.get("alias") or "")) if a]
    return list(dict.fromkeys(found))


def service_env(job_env: Mapping[str, str], service: Mapping[str, Any]) -> dict[str, str]:
    env = dict(job_env)
    for variable in service.get("variables") or []:
        if isinstance(variable, Mapping) and "key" in variable:
            env[str(variable["key"])] = str(variable.get("value", ""))
    return env


async def create_network(api: DockerAPI, job_id: int) -> str:
    name = f"conveyor-job-{job_id}-{secrets.token_hex(4)}"
    await api.call("POST", "/networks/create", body={"Name": name, "Driver": "bridge",
                                                     "Labels": {containers.LABEL: str(job_id)}})  # fmt: skip
    return name


async def remove_network(api: DockerAPI, name: str) -> None:
    await api.call("DELETE", f"/networks/{name}", ok=(200, 204, 404))


def spec(
    service: Mapping[str, Any], *, job_id: int, index: int, network: str, env: Mapping[str, str]
) -> containers.ContainerSpec:
    command = service.get("command") or []
    entrypoint = service.get("entrypoint")
    return containers.ContainerSpec(
        name=f"conveyor-job-{job_id}-svc-{index}-{secrets.token_hex(3)}",
        image=str(service["name"]),
        cmd=[str(part) for part in command],
        entrypoint=[str(part) for part in entrypoint] if entrypoint else None,
        env=service_env(env, service),
        job_id=job_id,
        network=network,
        aliases=aliases(service),
        role="service",
    )
