"""DockerExecutor: runs the job's script stages in containers of the job image.

``prepare`` pulls the image per the pull policy (with registry credentials, ``auth.py``),
creates a per-job network when the job has ``services``, starts them on it and waits until they
accept connections (``health.py``). Each script stage then runs in a fresh container with the
project directory mounted at ``/builds/<project>`` and the temporary directory beside it; the
same bash text as the shell executor runs under ``bash`` if the image has it, else ``sh``.
``get_sources`` and ``cleanup_file_variables`` run on the runner's host (like gitlab-runner's
helper image, without needing git in the job image), on the same bind-mounted directories.
Timeout and cancel stop the container (SIGTERM, SIGKILL after ``stop_grace``); ``cleanup``
removes every container and the network, also after a failed ``prepare``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path, PurePosixPath

import structlog

from conveyor.protocol.enums import FailureReason
from conveyor.runner.errors import ExecutorError
from conveyor.runner.executors.base import Executor, ExecutorContext, ExitResult, Output
from conveyor.runner.executors.docker import auth, containers, health, pull, services
from conveyor.runner.executors.docker.api import DockerAPI, DockerError
from conveyor.runner.executors.shell import ShellExecutor
from conveyor.runner.settings import DockerSettings
from conveyor.runner.trace import ansi

log = structlog.get_logger(__name__)
BUILDS = PurePosixPath("/builds")
LAUNCHER = 'if command -v bash >/dev/null 2>&1; then exec bash "$0"; else exec sh "$0"; fi'


class DockerExecutor(Executor):
    name = "docker"
    host_stages = frozenset({"get_sources", "cleanup_file_variables"})

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self._settings = context.docker or DockerSettings()
        self._api: DockerAPI | None = None
        self._host = ShellExecutor(context, kill_grace=self._settings.stop_grace)
        self._network = ""
        self._containers: list[str] = []
        self._image = ""

    def job_path(self, host_path: Path) -> Path:
        """``/builds/<project>``: each job has its own mounts, so no slot directory is needed."""
        relative = host_path.relative_to(self.context.builds_dir)
        return Path(BUILDS / relative.as_posix())

    async def prepare(self) -> None:
        job = self.context.job
        image = job.image or {}
        self._image = str(image.get("name") or self._settings.image)
        if not self._image:
            raise ExecutorError("the job has no image and the runner no default image",
                                FailureReason.RUNNER_CONFIGURATION_ERROR)  # fmt: skip
        await self._host.prepare()
        for path in (self.context.project_dir, self.context.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._api = DockerAPI(self._settings, self.context.keepalive)
        self._say(ansi.plain(f"Using Docker executor with image {self._image} ..."))
        await pull.ensure(self._api, self._image, pull.effective(self._settings.pull_policy, image.get("pull_policy")),
                          self.context.log, self._credentials(self._image))  # fmt: skip
        if job.services:
            await self._start_services()

    async def _start_services(self) -> None:
        assert self._api is not None
        job = self.context.job
        self._network = await services.create_network(self._api, job.id)
        env = {v.key: v.value for v in job.variables if v.public}
        started: list[tuple[str, dict]] = []
        for index, service in enumerate(job.services):
            name = str(service.get("name", ""))
            self._say(ansi.plain(f"Starting service {name} ..."))
            policies = pull.effective(self._settings.pull_policy, service.get("pull_policy"))
            await pull.ensure(self._api, name, policies, self.context.log, self._credentials(name))
            spec = services.spec(service, job_id=job.id, index=index, network=self._network, env=env)
            container = await containers.create(self._api, spec)
            self._containers.append(container)
            await containers.start(self._api, container)
            started.append((container, service))
        timeout = self._settings.wait_for_services_timeout
        if timeout < 0:
            return
        if not health.reachable(self._settings.host):
            self._say(ansi.warning("Not waiting for services: the runner dials them from its host, "
                                   f"and the Docker host {self._settings.host} is another machine"))  # fmt: skip
            return
        self._say(ansi.plain(f"Waiting for services to be up and running (timeout {timeout:g} seconds)..."))
        warnings = await asyncio.gather(*(
            health.check(self._api, container, service, self._network, timeout or 30.0, self.context.keepalive)
            for container, service in started
        ))  # fmt: skip
        for text in warnings:
            if text and self.context.log is not None:
                self.context.log(text.encode())

    def _credentials(self, image: str) -> auth.Credentials | None:
        job = self.context.job
        return auth.resolve(image, {v.key: v.value for v in job.variables}, job.credentials)

    async def run(
        self,
        script: str,
        *,
        stage: str,
        timeout: float,
        output: Output,
        cancel: asyncio.Event | None = None,
    ) -> ExitResult:
        if stage in self.host_stages:
            return await self._host.run(script, stage=stage, timeout=timeout, output=output, cancel=cancel)
        if self._api is None:
            raise ExecutorError("the docker executor was not prepared")
        script_path = self.context.tmp_dir / "scripts" / f"{stage}.sh"
        script_path.parent.mkdir(parents=True, exist_ok=True)
        script_path.write_text(script, encoding="utf-8")
        container = await containers.create(self._api, self._stage_spec(stage, self.job_path(script_path)))
        self._containers.append(container)
        try:
            return await self._run_container(container, timeout, output, cancel)
        finally:
            with contextlib.suppress(DockerError):
                await containers.remove(self._api, container)
                self._containers.remove(container)

    def _stage_spec(self, stage: str, script: Path) -> containers.ContainerSpec:
        job = self.context.job
        image = job.image or {}
        entrypoint = image.get("entrypoint")
        options = (image.get("executor_opts") or {}).get("docker") or {}
        binds = [f"{path}:{self.job_path(path)}" for path in (self.context.project_dir, self.context.tmp_dir)]
        return containers.ContainerSpec(
            name=f"conveyor-job-{job.id}-{stage.replace('_', '-')}-{secrets.token_hex(3)}",
            image=self._image,
            cmd=["sh", "-c", LAUNCHER, str(script)],
            entrypoint=[str(p) for p in entrypoint] if entrypoint else None,
            binds=binds,
            working_dir=str(self.job_path(self.context.project_dir)),
            network=self._network,
            user=str(options.get("user") or ""),
            privileged=self._settings.privileged,
            job_id=job.id,
        )

    async def _run_container(
        self, container: str, timeout: float, output: Output, cancel: asyncio.Event | None
    ) -> ExitResult:
        assert self._api is not None
        await containers.start(self._api, container)
        logs = asyncio.create_task(containers.stream_logs(self._api, container, output))
        exited = asyncio.create_task(containers.wait(self._api, container))
        canceled = asyncio.create_task(cancel.wait()) if cancel is not None else None
        waiting = {exited} | ({canceled} if canceled else set())
        try:
            done, _ = await asyncio.wait(waiting, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
            if exited not in done:
                await containers.stop(self._api, container, exited, self._settings.stop_grace)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(logs), timeout=self._settings.stop_grace)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(containers.stop(self._api, container, exited, 1.0))
            raise
        finally:
            logs.cancel()
            if canceled is not None:
                canceled.cancel()
            if not exited.done():
                exited.cancel()
        stopped = exited not in done
        was_canceled = stopped and canceled is not None and canceled in done
        if not exited.done() or exited.cancelled() or exited.exception() is not None:
            if not stopped:
                raise ExecutorError(f"lost the container of the stage: {exited.exception()}")
            code = 137
        else:
            code = exited.result()
        return ExitResult(exit_code=code, timed_out=stopped and not was_canceled, canceled=was_canceled)

    async def cleanup(self) -> None:
        await self._host.cleanup()
        if self._api is None:
            return
        for container in list(self._containers):
            with contextlib.suppress(DockerError):
                await containers.remove(self._api, container)
        self._containers.clear()
        if self._network:
            with contextlib.suppress(DockerError):
                await services.remove_network(self._api, self._network)
            self._network = ""
        await self._api.aclose()
        self._api = None

    def _say(self, text: str) -> None:
        if self.context.log is not None:
            self.context.log(text.encode())
