"""Buildbot doing ``bench/e2e``'s work: one master (its default SQLite database) and W workers,
one builder with one shell step running the same script, builds forced over HTTP.

buildbot-www (the web UI that carries Buildbot's REST API) is not in the bench lock, so the master
serves its force over a small Twisted resource of its own (``MASTER_CFG``): ``POST /force`` calls
the ForceScheduler's ``force()`` in the master process, as the REST API's ``force`` would, and
answers with the build request id. The master records, from its own message queue, when each
build request's build started and finished (``time.time()`` in the master, the same clock as the
benchmark's); ``GET /times`` returns them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent

MASTER_CFG = '''
import json, time
from twisted.internet import defer, endpoints, reactor
from twisted.web import resource, server
from buildbot.plugins import schedulers, steps, util, worker
from buildbot.util import service

WORKERS = {workers}
c = BuildmasterConfig = {{}}
c["workers"] = [worker.Worker(f"w{{i}}", "pass") for i in range(WORKERS)]
c["protocols"] = {{"pb": {{"port": "tcp:{pb_port}:interface=127.0.0.1"}}}}
c["change_source"] = []
c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=["job"])]
factory = util.BuildFactory()
factory.addStep(steps.ShellCommand(command=["sh", "-c", {script!r}]))
c["builders"] = [util.BuilderConfig(name="job", workernames=[f"w{{i}}" for i in range(WORKERS)], factory=factory)]
c["title"] = "bench"
c["buildbotURL"] = "http://127.0.0.1:{http_port}/"
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["buildbotNetUsageData"] = None
c["collapseRequests"] = False  # every forced build runs, as every Conveyor pipeline does

times = {{}}  # build request id -> [started, finished]


class Force(resource.Resource):
    isLeaf = True

    def __init__(self, master):
        super().__init__()
        self.master = master

    def render_GET(self, request):
        return json.dumps(times).encode()

    def render_POST(self, request):
        scheduler = self.master.scheduler_manager.namedServices["force"]
        d = scheduler.force("bench", builderNames=["job"])

        def done(result):
            _bsid, brids = result
            request.write(json.dumps({{"brid": list(brids.values())[0]}}).encode())
            request.finish()

        d.addCallback(done)
        return server.NOT_DONE_YET


class Front(service.BuildbotService):
    name = "bench-front"

    @defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        yield self.master.mq.startConsuming(self.new, ("builds", None, "new"))
        yield self.master.mq.startConsuming(self.finished, ("builds", None, "finished"))
        endpoint = endpoints.TCP4ServerEndpoint(reactor, {http_port}, interface="127.0.0.1")
        self.port = yield endpoint.listen(server.Site(Force(self.master)))

    def new(self, key, build):
        times.setdefault(build["buildrequestid"], [None, None])[0] = time.time()

    def finished(self, key, build):
        times.setdefault(build["buildrequestid"], [None, None])[1] = time.time()

    @defer.inlineCallbacks
    def stopService(self):
        yield self.port.stopListening()
        yield super().stopService()


c["services"] = [Front()]
'''


class Buildbot:
    """A master and ``workers`` worker processes under ``workdir``, started and ready."""

    def __init__(self, workdir: Path, workers: int, script: str, pb_port: int, http_port: int) -> None:
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{http_port}"
        master = workdir / "master"
        workdir.mkdir(parents=True, exist_ok=True)
        _run("buildbot", "create-master", "-r", str(master))
        (master / "master.cfg").write_text(MASTER_CFG.format(workers=workers, pb_port=pb_port, http_port=http_port, script=script))
        self.master = _twistd(master)
        self.workers = []
        for index in range(workers):
            path = workdir / f"w{index}"
            _run("buildbot-worker", "create-worker", "-r", str(path), f"127.0.0.1:{pb_port}", f"w{index}", "pass")
            self.workers.append(_twistd(path))
        self._wait_ready(workers)

    def _wait_ready(self, workers: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        log = self.workdir / "master" / "twistd.log"
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if "BuildMaster startup failed" in text:
                raise RuntimeError(f"buildbot master failed:\n{text[-3000:]}")
            if text.count("worker 'w") >= workers and text.count("attached to") >= workers:
                try:
                    httpx.get(self.url + "/times", timeout=2).raise_for_status()
                    return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise TimeoutError("buildbot master or workers not ready")

    @property
    def master_pid(self) -> int:
        return self.master.pid

    @property
    def worker_pids(self) -> list[int]:
        return [proc.pid for proc in self.workers]

    def times(self) -> dict[int, list[float | None]]:
        return {int(k): v for k, v in json.loads(httpx.get(self.url + "/times", timeout=30).content).items()}

    def stop(self) -> None:
        for proc in [*self.workers, self.master]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.master]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _run(*command: str) -> None:
    done = subprocess.run([str(BIN / command[0]), *command[1:]], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stdout}\n{done.stderr}")


def _twistd(basedir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([str(BIN / "twistd"), "--nodaemon", "--no_save", "--pidfile=", "-y", "buildbot.tac"],
                            cwd=basedir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
