"""The docker executor against a real engine (Podman's Docker API) and the fake coordinator."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from pathlib import Path

import pytest

from conveyor.runner import run
from conveyor.runner.executors import default_executors
from conveyor.runner.settings import DockerSettings, RunnerSettings
from tests.integration.runner.fake_coordinator import Coordinator, eventually, job_payload

pytestmark = pytest.mark.integration


@pytest.fixture
def docker_settings(settings: RunnerSettings, podman) -> RunnerSettings:  # noqa: ANN001
    docker = DockerSettings(host=podman.host, image=podman.image, pull_policy=("if-not-present",), stop_grace=2)
    return dataclasses.replace(settings, executor="docker", docker=docker)


def docker_job(job_id: int, script: list[str], **extra: object) -> dict:
    payload = job_payload(job_id, script, **{k: v for k, v in extra.items() if k in ("after_script", "timeout",
                                                                                      "variables")})  # fmt: skip
    payload.update({k: v for k, v in extra.items() if k in ("image", "services")})
    return payload


async def test_script_runs_in_the_image_with_the_project_mounted(
    coordinator: Coordinator, docker_settings: RunnerSettings, podman  # noqa: ANN001
) -> None:
    coordinator.add_job(docker_job(
        5001,
        ["echo in $(cat /etc/hostname | wc -c) chars", "pwd", "echo $CI_PROJECT_DIR", "echo made > out.txt",
         "ls /bin/bash || echo no bash", "echo secret $SECRET", "sleep 2; echo after quiet"],
        after_script=['echo "after: $CI_JOB_STATUS"'],
        variables=[{"key": "SECRET", "value": "d0cker-s3cret", "public": False, "masked": True}],
    ))  # fmt: skip
    await run(docker_settings, max_jobs=1, executors=default_executors())

    job = coordinator.job(5001)
    text = coordinator.trace(5001).decode()
    assert job.status == "success", text
    assert "Using Docker executor with image localhost/conveyor-busybox:test" in text
    assert "Using locally found image" in text
    assert text.count("\n/builds/group/demo\n") == 2  # pwd and CI_PROJECT_DIR: the container's path
    assert "no bash" in text and "secret [MASKED]" in text and "d0cker" not in text
    assert "after quiet\n" in text and "after: success\n" in text
    assert next(docker_settings.builds_dir.rglob("group/demo/out.txt")).read_text() == "made\n"
    assert podman.containers() == []  # every container removed after the job


async def test_exit_code_timeout_and_pull_failure(
    coordinator: Coordinator, docker_settings: RunnerSettings, podman  # noqa: ANN001
) -> None:
    coordinator.add_job(docker_job(5002, ["echo failing", "exit 7"]))
    coordinator.add_job(docker_job(5003, ["echo started", "sleep 300"], timeout=2))
    coordinator.add_job(docker_job(5004, ["true"], image={"name": "localhost/not-here:1", "pull_policy": ["never"]}))
    coordinator.add_job(docker_job(5005, ["true"], image={"name": "localhost/not-here:1", "pull_policy": ["always"]}))
    await run(dataclasses.replace(docker_settings, docker=dataclasses.replace(
        docker_settings.docker, pull_policy=("if-not-present", "never"))), max_jobs=4, executors=default_executors())

    assert (coordinator.job(5002).final["failure_reason"], coordinator.job(5002).final["exit_code"]) == (
        "script_failure", 7)  # fmt: skip
    assert coordinator.job(5003).final["failure_reason"] == "job_execution_timeout"
    assert "execution took longer than 2s" in coordinator.trace(5003).decode()
    assert coordinator.job(5004).final["failure_reason"] == "runner_system_failure"  # image_pull_failure mapped
    assert "is not present locally and the pull policy is never" in coordinator.trace(5004).decode()
    assert "is not allowed by the runner" in coordinator.trace(5005).decode()
    assert podman.containers() == []


async def test_cancel_stops_the_container_and_runs_after_script(
    coordinator: Coordinator, docker_settings: RunnerSettings, podman  # noqa: ANN001
) -> None:
    coordinator.add_job(docker_job(5006, ["echo started", "sleep 300"], after_script=['echo "after: $CI_JOB_STATUS"']))
    runner = asyncio.create_task(run(docker_settings, max_jobs=1, executors=default_executors()))
    await eventually(lambda: b"started\n" in coordinator.trace(5006), what="script running", timeout=60)
    coordinator.set_status(5006, "canceling")
    await runner
    text = coordinator.trace(5006).decode()
    assert "script canceled externally" in text and "after: canceled\n" in text
    assert coordinator.job(5006).status == "canceled"
    assert podman.containers() == []


async def test_services_are_reachable_by_alias_and_removed(
    coordinator: Coordinator, docker_settings: RunnerSettings, podman  # noqa: ANN001
) -> None:
    service = {"name": podman.image, "alias": "web",
               "command": ["sh", "-c", "echo hello-from-$GREETING > /tmp/index.html; httpd -f -p 8080 -h /tmp"],
               "variables": [{"key": "GREETING", "value": "service"}]}  # fmt: skip
    coordinator.add_job(docker_job(5007, [
        "for i in $(seq 1 50); do wget -qO- http://web:8080/ && exit 0; sleep 0.2; done; exit 1",
    ], services=[service]))  # fmt: skip
    await run(docker_settings, max_jobs=1, executors=default_executors())
    text = coordinator.trace(5007).decode()
    assert coordinator.job(5007).status == "success", text
    assert "hello-from-service" in text
    assert podman.containers() == [] and podman.networks() == []


async def test_the_script_waits_for_services_and_warns_as_gitlab_runner_on_timeout(
    coordinator: Coordinator, docker_settings: RunnerSettings, podman  # noqa: ANN001
) -> None:
    """The script starts once the service accepts connections (one try, no retry loop: it listens
    after 1 s); a service that never listens gets gitlab-runner's warning after the timeout (2 s),
    and the job goes on."""
    late = {"name": podman.image, "alias": "web",
            "command": ["sh", "-c", "echo late > /tmp/index.html; sleep 1; httpd -f -p 8080 -h /tmp"],
            "variables": [{"key": "HEALTHCHECK_TCP_PORT", "value": "8080"}]}  # fmt: skip
    deaf = {"name": podman.image, "alias": "deaf", "command": ["sh", "-c", "echo never listening; sleep 300"],
            "variables": [{"key": "HEALTHCHECK_TCP_PORT", "value": "9999"}]}  # fmt: skip
    coordinator.add_job(docker_job(5010, ["wget -qO- http://web:8080/"], services=[late]))
    coordinator.add_job(docker_job(5011, ["echo went on"], services=[deaf]))
    docker = dataclasses.replace(docker_settings.docker, wait_for_services_timeout=2)
    await run(dataclasses.replace(docker_settings, docker=docker), max_jobs=2, executors=default_executors())
    ready = coordinator.trace(5010).decode()
    assert coordinator.job(5010).status == "success", ready
    assert "Waiting for services to be up and running (timeout 2 seconds)..." in ready and "late\n" in ready
    assert "probably didn't start properly" not in ready
    warned = coordinator.trace(5011).decode()
    assert coordinator.job(5011).status == "success", warned
    assert "\x1b[0;33m*** WARNING:\x1b[0;m Service conveyor-job-5011-svc-0-" in warned
    assert " probably didn't start properly.\n\nHealth check error:\nservice \"conveyor-job-5011-svc-0-" in warned
    assert '-wait-for-service" timeout\n\nHealth check container logs:\n' in warned
    assert "waiting for TCP connection to " in warned and ":9999..." in warned
    assert "Service container logs:\n" in warned and "Z never listening\n" in warned
    assert warned.index("*********") < warned.index("went on")
    assert podman.containers() == [] and podman.networks() == []


@pytest.fixture
def registry_engine(podman, tmp_path: Path):  # noqa: ANN001, ANN201
    """The session's Podman storage behind a second API service that may pull from the test
    registry over plain HTTP (``insecure`` in its own registries.conf), and that registry."""
    import contextlib
    import subprocess

    from tests.plugins import registry as registries
    from tests.plugins.podman import stop, wait_for_api

    with contextlib.contextmanager(registries.serve)(podman.root / "rootfs") as served:
        conf = tmp_path / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "{served.host}"\ninsecure = true\n')
        sock, log = tmp_path / "podman.sock", tmp_path / "service.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                                    env={**podman.env, "CONTAINERS_REGISTRIES_CONF": str(conf)},
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for_api(f"unix://{sock}", proc, log)
            yield f"unix://{sock}", served
        finally:
            stop(proc)
            podman.cli("rmi", "-f", served.image, check=False)


async def test_pull_with_registry_credentials(
    coordinator: Coordinator, docker_settings: RunnerSettings, registry_engine, podman  # noqa: ANN001
) -> None:
    """A real pull from a registry that wants Basic auth: the job's DOCKER_AUTH_CONFIG, the
    payload's registry credentials; without them the pull fails with image_pull_failure."""
    host, served = registry_engine
    token = base64.b64encode(f"{served.username}:{served.password}".encode()).decode()
    auth_config = json.dumps({"auths": {served.host: {"auth": token}}})
    coordinator.add_job(docker_job(5020, ["echo pulled and ran"], image={"name": served.image},
                                   variables=[{"key": "DOCKER_AUTH_CONFIG", "value": auth_config, "public": False, "masked": False}]))  # fmt: skip
    anonymous = docker_job(5021, ["echo should not run"], image={"name": served.image})
    coordinator.add_job(anonymous)
    docker = dataclasses.replace(docker_settings.docker, host=host, pull_policy=("always",))
    await run(dataclasses.replace(docker_settings, docker=docker), max_jobs=2, executors=default_executors())
    text = coordinator.trace(5020).decode()
    assert coordinator.job(5020).status == "success", text
    assert "Authenticating with credentials from $DOCKER_AUTH_CONFIG" in text and "pulled and ran\n" in text
    assert served.password not in text and token not in text
    assert f"Basic {token}" in served.seen
    failed = coordinator.trace(5021).decode()
    assert coordinator.job(5021).final["failure_reason"] == "runner_system_failure", failed  # image_pull_failure mapped
    assert "Authenticating" not in failed
    # the payload's credentials (GitLab's registry with the job token) do the same
    podman.cli("rmi", "-f", served.image, check=False)
    payload = docker_job(5022, ["echo payload credentials"], image={"name": served.image})
    payload["credentials"] = [{"type": "registry", "url": served.host, "username": served.username, "password": served.password}]
    coordinator.add_job(payload)
    await run(dataclasses.replace(docker_settings, docker=docker), max_jobs=1, executors=default_executors())
    text = coordinator.trace(5022).decode()
    assert coordinator.job(5022).status == "success", text
    assert "Authenticating with credentials from job payload (GitLab Registry)" in text
