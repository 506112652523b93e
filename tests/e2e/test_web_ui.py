"""The web UI in a real browser (Debian's headless Chromium through Playwright) against a real
server process and a real runner process: one server, one runner, one browser for the module.

Each test proves several things, in the order a person would meet them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Admin
from tests.plugins.chromium import ARGS, CHROMIUM
from tests.plugins.live import ROOT_TOKEN, ServerProcess
from tests.plugins.repos import make_repo
from tests.plugins.services import free_port

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")

# A log that exercises the renderer: colours, a progress bar, sections (one collapsed), hostile
# content, a needle near the top and near the end, and enough lines to overflow the DOM window.
RENDER = r"""#!/usr/bin/env python3
import sys, time
w = sys.stdout.write
w("plain first line\n")
w("\x1b[31mred\x1b[0m \x1b[1;32mbold green\x1b[0m \x1b[38;5;208m256 orange\x1b[0m \x1b[38;2;1;2;3mtruecolor\x1b[0m\n")
w("progress 10%\rprogress 50%\rprogress 100%\x1b[K\n")
w("downloading 0%\r\x1b[2Kdone\n")
w("section_start:%d:prepare[collapsed=true]\r\x1b[0Kprepare the thing\n" % int(time.time() - 5))
w("inside collapsed section\n")
w("section_end:%d:prepare\r\x1b[0K\n" % int(time.time()))
w("section_start:%d:build\r\x1b[0Kbuild it\n" % int(time.time() - 2))
w("inside open section\n")
w("section_end:%d:build\r\x1b[0K\n" % int(time.time()))
w("NEEDLE-7 near the top\n")
w("<script>window.__pwned=1</script> <img src=x onerror=\"window.__pwned=2\"> <iframe src=\"javascript:1\"></iframe>\n")
w("\x1b]8;;javascript:window.__pwned=3\x1b\\evil link\x1b]8;;\x1b\\ and \x1b]8;;https://example.com/ok\x1b\\good link\x1b]8;;\x1b\\\n")
w("\x1b]0;HACKED TITLE\x07\x1b]52;c;aGFja2Vk\x07\x1bPdcs stuff\x1b\\\x1b_apc stuff\x1b\\\x1b[?1049hafter escapes\n")
w("bidi \u202eevil\u202c nul\x00 bel\x07 c1\u0085 end\n")
sys.stdout.flush()
sys.stdout.buffer.write(b"invalid utf8 \xff\xfe here\n")
sys.stdout.buffer.flush()
w("section_start:1:<b>x</b> fake marker\n")
w("2026-01-02T03:04:05.678901Z 00O stamped line\n")
w("huge " + "x" * 500_000 + "\n")  # under the runner's 4 MiB output limit
w("ERROR: the first error line\n")
for i in range(21, 30001):
    w("line %06d %s\n" % (i, "NEEDLE-7 near the end" if i == 29000 else "fatal: far away" if i == 20000 else "filler text for the window"))
"""

REPORT = "<html><script>document.title = document.cookie</script></html>"

PIPELINE = """
stages: [build, test, deploy]
build:
  stage: build
  script:
    - for i in $(seq 1 40); do echo "tick $i"; sleep 0.1; done
render:
  stage: build
  script: [python3 render.py]
slow:
  stage: build
  when: manual
  allow_failure: true
  script:
    - echo "slow job started"
    - for i in $(seq 1 600); do echo "waiting $i"; sleep 0.2; done
test:
  stage: test
  needs: [build]
  script: [echo test]
lint:
  stage: test
  script: [echo lint]
  artifacts:
    paths: [report.html]
deploy:
  stage: deploy
  needs: [build, test]
  when: manual
  script: [echo "deploying A=$A B=$B"]
"""


class Web:
    def __init__(self, server: ServerProcess, admin: Admin, project: dict, pipeline: dict) -> None:
        self.server, self.admin, self.project, self.pipeline = server, admin, project, pipeline
        self.url = server.url

    def jobs(self) -> dict[str, dict]:
        return self.admin.jobs(self.project["id"], self.pipeline["id"])

    def job_url(self, name: str) -> str:
        return f"{self.url}/-/projects/{self.project['id']}/jobs/{self.jobs()[name]['id']}"

    def wait_job(self, job_id: int, statuses: set[str], timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.admin.http.get(f"/projects/{self.project['id']}/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} not in {statuses}")


@pytest.fixture(scope="module")
def web(postgres, template_db, redis_server, tmp_path_factory) -> Iterator[Web]:  # noqa: ANN001
    from tests.plugins.live import RunnerProcess

    import redis

    tmp = tmp_path_factory.mktemp("web")
    name = f"web_{os.getpid()}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": postgres.url(name),
        "CONVEYOR_REDIS_URL": redis_server.url,
        "CONVEYOR_OBJECT_STORE_URL": (tmp / "objects").as_uri(),
        "CONVEYOR_DATA_DIR": str(tmp / "server-data"),
        "CONVEYOR_INITIAL_ROOT_TOKEN": ROOT_TOKEN,
        "CONVEYOR_SAVEPOINT_POLICY": "raise",
        "CONVEYOR_TRACE_UPDATE_INTERVAL": "1",
        "CONVEYOR_TRACE_UPDATE_INTERVAL_WATCHED": "1",
        "CONVEYOR_LONG_POLL_TIMEOUT": "5",
        "CONVEYOR_SWEEP_INTERVAL": "1",
    }
    server = ServerProcess(env, free_port(), tmp / "server.log")
    server.start()
    admin = Admin(server.url)
    make_repo(tmp / "repo", PIPELINE, {"render.py": RENDER, "report.html": REPORT})
    project = admin.project(str(tmp / "repo"))
    runner = RunnerProcess(server.url, admin.runner_token(), tmp / "builds", tmp / "runner.log", check_interval=0.2)
    pipeline = admin.pipeline(project["id"])
    try:
        yield Web(server, admin, project, pipeline)
    finally:
        runner.stop()
        admin.http.close()
        server.stop()
        postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert server.savepoints_seen == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser, web):  # noqa: ANN001, ANN201
    """A browser context signed in through the login form (bad token first)."""
    ctx = browser.new_context(base_url=web.url, viewport={"width": 1400, "height": 900})
    ctx.add_init_script(
        "window.__violations = []; document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective));"
        "window.__clipboard = 0; if (navigator.clipboard) navigator.clipboard.writeText = () => { window.__clipboard++; return Promise.resolve(); };"
    )
    page = ctx.new_page()
    page.goto("/-/runners")
    assert page.url.startswith(f"{web.url}/-/login?next=/-/runners")
    axe_clean(page)
    page.fill("#token", "glpat-wrong")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "Invalid personal access token"
    page.fill("#token", ROOT_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/-/runners")
    cookie = next(c for c in ctx.cookies() if c["name"] == "conveyor_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.close()
    yield ctx
    ctx.close()


def watch_errors(page) -> list[str]:  # noqa: ANN001
    """Uncaught exceptions and console errors of the page, to assert none happened."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def wait_line(page, text: str, timeout: float = 30000) -> None:  # noqa: ANN001
    """Wait until a visible log row shows ``text``; say what the viewer held if none does."""
    try:
        page.wait_for_selector(f".ln:has-text('{text}')", timeout=timeout)
    except playwright_api.TimeoutError:
        state = page.evaluate(
            "() => JSON.stringify({end: conveyorLog.end, size: conveyorLog.size, ended: conveyorLog.ended,"
            " streaming: !!conveyorLog.stream, rows: conveyorLog.rows.length, partial: conveyorLog.partial,"
            " text: document.getElementById('log-lines').innerText.slice(-600)})"
        )
        raise AssertionError(f"no row shows {text!r}; viewer: {state}") from None


def axe_clean(page) -> None:  # noqa: ANN001
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def test_pages_live_status_actions_and_csrf(context, web) -> None:  # noqa: ANN001
    page = context.new_page()
    errors = watch_errors(page)
    response = page.goto("/-/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    script = page.locator("script[type=module]").first.get_attribute("src")  # hashed: cached for good
    assert page.request.get(script).headers["cache-control"] == "public, max-age=31536000, immutable"
    assert page.request.get(script.split("?")[0]).headers["cache-control"] == "no-cache"
    assert page.get_by_role("link", name=re.compile("repo")).count() == 1
    axe_clean(page)

    page.click("text=repo")
    row = page.locator("tbody tr").first
    pipeline = web.pipeline
    assert f"#{pipeline['id']}" in row.inner_text() and pipeline["sha"][:8] in row.inner_text()
    assert "main" in row.inner_text() and "push" in row.inner_text()
    assert page.locator("thead th").nth(5).inner_text() == "Triggered by"
    assert row.locator("td").nth(5).inner_text() == "Administrator"  # the admin token's user made it
    axe_clean(page)
    page.goto(f"/-/projects/{web.project['id']}/pipelines?status=success")
    assert "No pipelines match" in page.inner_text("tbody")

    page.goto(f"/-/projects/{web.project['id']}/pipelines/{pipeline['id']}")
    stages = page.locator(".stage h2").all_inner_texts()
    assert [s.lower() for s in stages] == ["build", "test", "deploy"]
    edges = {(p.get_attribute("data-source"), p.get_attribute("data-target")) for p in page.locator(".edges path").all()}
    assert edges == {("build", "test"), ("test", "deploy")}  # build -> deploy is transitive: dropped
    page.focus(".job[data-name=test] a")
    assert "lit" in page.get_attribute(".job[data-name=build]", "class")
    assert "dim" in page.get_attribute(".job[data-name=lint]", "class")
    axe_clean(page)

    # live: the build job finishes and its card turns green without a navigation
    page.evaluate("window.__nav = 1")
    page.wait_for_function("() => document.querySelector('.job[data-name=build] .badge').dataset.status === 'success'", timeout=30000)
    assert page.evaluate("window.__nav") == 1

    # CSRF: a form without the token, and one posted from another origin, are both refused
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    cancel = f"{web.url}/-/projects/{web.project['id']}/pipelines/{pipeline['id']}/cancel"
    assert httpx.post(cancel, cookies=cookies, data={}).status_code == 403
    token = page.get_attribute("input[name=csrf_token]", "value")
    forged = httpx.post(cancel, cookies=cookies, data={"csrf_token": token},
                        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403 and "cross-site" in forged.text
    assert web.admin.http.get(f"/projects/{web.project['id']}/pipelines/{pipeline['id']}").json()["status"] != "canceled"

    # play the manual job with variables from its page, once test has passed
    web.wait_job(web.jobs()["deploy"]["id"], {"manual"})
    page.wait_for_selector(".job[data-name=deploy] button.play")  # hidden while created (build ran); shown live
    assert page.evaluate("window.__nav") == 1
    page.goto(f"/-/projects/{web.project['id']}/jobs/{web.jobs()['deploy']['id']}")
    page.locator("input[name=key]").nth(0).fill("A")
    page.locator("input[name=value]").nth(0).fill("1")
    page.locator("input[name=key]").nth(1).fill("B")
    page.locator("input[name=value]").nth(1).fill("x y")
    page.click("text=Run job")
    wait_line(page, "deploying A=1 B=x y")

    # artifacts: listed on the job page, downloaded as attachments, never rendered on this origin
    page.goto(web.job_url("lint"))
    link = page.locator(".artifacts a")
    assert link.count() == 1
    download = page.request.get(link.get_attribute("href"))
    assert download.ok and download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-security-policy"].startswith("sandbox")
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.body()[:2] == b"PK"  # the zip the runner uploaded
    axe_clean(page)

    # a reporter signed in through the form: the log renders, no action buttons, their name in the header
    rita = web.admin.http.post("/users", json={"email": "rita@x.org", "username": "rita", "name": "Rita"}).json()
    rita_token = web.admin.http.post(f"/users/{rita['id']}/personal_access_tokens", json={"name": "web", "scopes": ["api"]}).json()
    web.admin.http.post(f"/projects/{web.project['id']}/members", json={"user_id": rita["id"], "access_level": 20}).raise_for_status()
    reporter = context.browser.new_context(base_url=web.url)
    as_rita = reporter.new_page()
    as_rita.goto(web.job_url("lint"))
    as_rita.fill("#token", rita_token["token"])
    as_rita.click("button[type=submit]")
    wait_line(as_rita, "$ echo lint")
    assert as_rita.get_by_role("button", name="Retry").count() == 0 and as_rita.locator("a[href='/-/runners']").count() == 0
    assert as_rita.inner_text(".who") == "Signed in as rita"
    axe_clean(as_rita)
    reporter.close()

    page.goto("/-/runners")
    assert "online" in page.inner_text("tbody")
    axe_clean(page)
    page.emulate_media(color_scheme="dark")  # the dark theme passes the same checks
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
    axe_clean(page)
    page.goto(web.job_url("lint"))
    axe_clean(page)
    assert page.evaluate("window.__violations") == []
    assert errors == []
    page.close()


def test_live_log_reconnects_every_byte_once_then_cancel_and_retry(context, web) -> None:  # noqa: ANN001
    page = context.new_page()
    errors = watch_errors(page)
    page.on("dialog", lambda dialog: dialog.accept())
    slow_url = web.job_url("slow")
    page.goto(slow_url)
    page.click("text=Run job")
    wait_line(page, "slow job started")

    # follow mode: on at the bottom; scrolling up pauses it (new lines counted, view kept); End resumes
    wait_line(page, "waiting 30")
    assert page.get_attribute("#btn-follow", "aria-pressed") == "true"
    assert page.evaluate("(p => p.scrollHeight - p.scrollTop - p.clientHeight)(document.getElementById('log-pane'))") < 24
    page.evaluate("document.getElementById('log-pane').scrollTop = 0")
    page.wait_for_selector("#btn-follow[aria-pressed=false]")
    page.wait_for_selector("#new-lines:not([hidden])")
    assert page.evaluate("document.getElementById('log-pane').scrollTop") == 0
    page.focus("#log-pane")
    page.keyboard.press("End")
    page.wait_for_selector("#btn-follow[aria-pressed=true]")
    page.wait_for_function("() => (p => p.scrollHeight - p.scrollTop - p.clientHeight < 24)(document.getElementById('log-pane'))")

    # cancel stops the running job; the page shows it without a reload
    page.click("button:has-text('Cancel')")
    page.wait_for_function("() => document.body.dataset.status === 'canceled'", timeout=30000)
    assert "favicon-canceled" in page.get_attribute("#favicon", "href")
    assert document_title(page).startswith("canceled")

    # retry starts a new job: a new page, a new id, running again
    page.click("button:has-text('Retry')")
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    assert page.url != slow_url
    wait_line(page, "slow job started")
    page.click("button:has-text('Cancel')")
    page.wait_for_function("() => document.body.dataset.status === 'canceled'", timeout=30000)

    # the build job again (retry), watched live; the server is killed and restarted mid-stream
    build = web.jobs()["build"]
    page.goto(f"/-/projects/{web.project['id']}/jobs/{build['id']}")
    token = page.get_attribute("input[name=csrf_token]", "value")
    page.click("button:has-text('Retry')")
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    new_id = int(page.url.rsplit("/", 1)[1])
    wait_line(page, "tick 3")
    web.server.kill()
    web.server.start()
    web.wait_job(new_id, {"success"})
    page.wait_for_function("() => document.body.dataset.status === 'success'", timeout=30000)
    raw = web.admin.trace(web.project["id"], new_id).decode()
    shown = page.evaluate("conveyorLog.rows.map(r => r.raw + '\\n').join('') + conveyorLog.partial")
    assert shown == raw
    assert "tick 40" in page.inner_text("#log-lines")

    # an action that fails shows GitLab's message on the page it came from
    again = page.request.post(f"{web.url}/-/projects/{web.project['id']}/jobs/{build['id']}/retry",
                              form={"csrf_token": token}, headers={"Origin": web.url})
    assert again.ok and again.url.endswith(f"/jobs/{build['id']}")
    assert "403 Forbidden - Job is not retryable" in again.text()
    assert [e for e in errors if "net::ERR_" not in e] == []  # the killed server broke a response or two
    page.close()


def document_title(page) -> str:  # noqa: ANN001
    return page.evaluate("document.title")


def test_log_rendering_sections_search_deep_link_and_hostile_content(context, web) -> None:  # noqa: ANN001
    render = web.jobs()["render"]
    web.wait_job(render["id"], {"success"})
    raw = web.admin.trace(web.project["id"], render["id"]).split(b"\n")
    top = raw.index(b"plain first line") + 1  # the runner's own lines come first

    def row(k: int) -> str:
        """The row of the k-th line render.py printed (1-based)."""
        return f"#L{top + k - 1}"

    page = context.new_page()
    errors = watch_errors(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    url = f"/-/projects/{web.project['id']}/jobs/{render['id']}"
    page.goto(url)
    last = len(raw) - (1 if raw[-1] == b"" else 0)
    page.wait_for_selector(f"#L{last}")
    assert [u for u in requested if "/log/" in u] == []  # the page carried its tail: no second request
    assert page.evaluate("performance.getEntriesByName('conveyor:log:painted').length") == 1
    title = document_title(page)
    rows = page.evaluate("conveyorLog.rows.length")
    assert 100 <= rows <= 600  # opened at the tail the page carried: a window, not the whole log
    assert page.locator(row(11)).count() == 0

    # search the whole log: the hit near the top is outside the loaded window
    page.fill("#log-q", "needle-7")
    page.press("#log-q", "Enter")
    page.wait_for_selector(f"{row(11)}.hl")
    assert page.inner_text("#search-count").startswith("1 of 2")
    page.press("#log-q", "Enter")
    far = top - 1 + raw[top - 1:].index(b"line 029000 NEEDLE-7 near the end") + 1
    page.wait_for_selector(f"#L{far}.hl")

    # top of the log: colours, progress bar, sections, hostile content rendered inert
    page.goto(url + "#L1")
    page.wait_for_selector("#L1.hl")
    assert page.evaluate(f"getComputedStyle(document.querySelector('{row(2)} .fg1')).color") == "rgb(231, 76, 60)"
    assert page.locator(f"{row(2)} .fg10.b").count() == 1  # bold green: the bright one
    assert page.evaluate(f"[...document.querySelectorAll('{row(2)} span')].some(s => s.style.color === 'rgb(1, 2, 3)')")
    assert page.inner_text(f"{row(3)} .txt") == "progress 100%"
    assert page.inner_text(f"{row(4)} .txt") == "done"
    assert page.is_hidden(row(6))  # collapsed=true
    assert page.get_attribute(f"{row(5)} .fold", "aria-expanded") == "false"
    assert page.inner_text(f"{row(5)} .sec-dur") == "00:05"
    page.click(f"{row(5)} .fold")
    assert page.is_visible(row(6))
    page.click(f"{row(5)} .fold")
    assert page.is_hidden(row(6))
    assert page.is_visible(row(9)) and page.inner_text(f"{row(8)} .sec-dur") == "00:02"

    pane = page.locator("#log-pane")
    assert page.evaluate("window.__pwned") is None
    assert pane.locator("script, img, iframe").count() == 0
    links = pane.locator(".txt a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.com/ok"
    assert "noopener" in links.get_attribute("rel")
    assert "evil link" in page.inner_text(row(13))
    assert page.inner_text(f"{row(14)} .txt") == "after escapes"
    assert "⟨U+202E⟩" in page.inner_text(row(15))
    assert "\ufffd" in page.inner_text(row(16))
    assert page.inner_text(f"{row(17)} .txt") == "section_start:1:<b>x</b> fake marker"
    assert page.inner_text(f"{row(18)} .txt") == "stamped line"
    assert page.get_attribute(f"{row(18)} time", "datetime") == "2026-01-02T03:04:05.678901Z"

    # a 500 kB line loads in range-sized steps when scrolled to; shown capped once whole
    page.wait_for_function(
        "sel => (document.querySelector(sel)?.textContent || '').endsWith('400005 more characters in this line (see Raw)')",
        arg=f"{row(19)} .txt",
    )
    assert page.text_content(f"{row(19)} .txt").startswith("huge xxx")

    # keyboard: Ctrl+F in the log goes to the search box; t hides timestamps, w wraps
    page.focus("#log-pane")
    page.keyboard.press("Control+f")
    assert page.evaluate("document.activeElement.id") == "log-q"
    page.focus("#log-pane")
    page.keyboard.press("t")
    assert page.is_hidden(f"{row(18)} time") and page.get_attribute("#btn-time", "aria-pressed") == "false"
    page.keyboard.press("w")
    assert "wrap" in page.get_attribute("#log-pane", "class")
    assert document_title(page) == title
    assert page.evaluate("window.__clipboard") == 0
    assert page.evaluate("window.__violations") == []

    # a deep link far into the log opens at its line, highlighted; the DOM stays bounded
    middle = top + 15000
    page.goto(f"{url}#L{middle}")
    page.wait_for_selector(f"#L{middle}.hl")
    assert page.locator(f"#L{middle}").is_visible()
    assert page.inner_text(f"#L{middle} .txt") == raw[middle - 1].decode()
    assert page.evaluate("document.getElementsByTagName('*').length") < 3000
    axe_clean(page)
    assert errors == []
    page.close()


SCROLL_THROUGH = """async () => {
  const pane = document.getElementById('log-pane'); let most = 0; let loads = 0;
  const settle = async () => { await new Promise(r => setTimeout(r, 0)); while (conveyorLog.loading) await new Promise(r => setTimeout(r, 5)); };
  while (conveyorLog.end < conveyorLog.size && loads++ < 1000) {
    pane.scrollTop = pane.scrollHeight; pane.dispatchEvent(new Event('scroll'));
    await settle();
    most = Math.max(most, document.getElementsByTagName('*').length);
  }
  for (let up = 0; up < 5; up++) {  // and back up: loads above drop rows below
    pane.scrollTop = 0; pane.dispatchEvent(new Event('scroll'));
    await settle();
    most = Math.max(most, document.getElementsByTagName('*').length);
  }
  return most;
}"""


def test_log_window_stays_bounded_and_next_error_jumps_across_the_log(context, web) -> None:  # noqa: ANN001
    render = web.jobs()["render"]
    web.wait_job(render["id"], {"success"})
    raw = web.admin.trace(web.project["id"], render["id"]).split(b"\n")
    last = len(raw) - (1 if raw[-1] == b"" else 0)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"/-/projects/{web.project['id']}/jobs/{render['id']}#L1")
    page.wait_for_selector("#L1.hl")

    # the whole log, top to bottom and back up a little: the page never holds 3,000 elements
    most = page.evaluate(SCROLL_THROUGH)
    assert most < 3000, most
    assert page.evaluate("conveyorLog.first + conveyorLog.rows.length - 1") < last  # came back up
    assert page.evaluate("conveyorLog.rows.every((r, i) => r.no === conveyorLog.first + i && r.el.id === 'L' + r.no)")

    # next error (e / the button), across what is loaded; previous with Shift+E
    first_error = raw.index(b"ERROR: the first error line") + 1
    far_error = next(n for n, line in enumerate(raw, 1) if line.endswith(b"fatal: far away"))
    page.goto("about:blank")  # the same URL again would be no navigation at all
    page.goto(f"/-/projects/{web.project['id']}/jobs/{render['id']}#L1")
    page.wait_for_selector("#L1.hl")
    page.focus("#log-pane")
    page.keyboard.press("e")
    page.wait_for_selector(f"#L{first_error}.hl")
    page.click("#btn-error")
    page.wait_for_selector(f"#L{far_error}.hl")  # outside the window: loaded around it
    assert page.inner_text("#log-status").startswith(f"Error 2 of ")
    page.focus("#log-pane")
    page.keyboard.press("Shift+E")
    page.wait_for_selector(f"#L{first_error}.hl")
    assert page.evaluate("document.getElementsByTagName('*').length") < 3000
    assert errors == []
    page.close()


def test_a_range_asked_before_a_jump_is_dropped_when_it_arrives(context, web) -> None:  # noqa: ANN001
    """Regression (a CI flake of the test above under load): a later range still on its way when
    a jump replaced the window was rendered after it, so the jumped-to line vanished."""
    render = web.jobs()["render"]
    web.wait_job(render["id"], {"success"})
    raw = web.admin.trace(web.project["id"], render["id"]).split(b"\n")
    far_error = next(n for n, line in enumerate(raw, 1) if line.endswith(b"fatal: far away"))
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"/-/projects/{web.project['id']}/jobs/{render['id']}#L1")
    page.wait_for_selector("#L1.hl")
    held = []
    page.route(re.compile(r"/range\?"), lambda route: held.append(route))  # answered only after the jump
    page.evaluate("() => { const p = document.getElementById('log-pane'); p.scrollTop = p.scrollHeight; p.dispatchEvent(new Event('scroll')); }")
    page.wait_for_function("() => conveyorLog.loading")  # the later range is on its way
    page.wait_for_timeout(100)
    assert held, "the later range was not asked for"
    assert far_error > page.evaluate("conveyorLog.first + conveyorLog.rows.length")  # outside the window
    page.evaluate(f"() => {{ location.hash = '#L{far_error}'; }}")
    page.wait_for_selector(f"#L{far_error}.hl")
    for route in held:
        route.continue_()
    page.wait_for_function("() => !conveyorLog.loading")
    page.wait_for_timeout(300)  # the old range's answer has had its chance to render
    assert page.is_visible(f"#L{far_error}.hl")
    window = page.evaluate("conveyorLog.rows.map(r => [r.no, r.raw])")
    assert window[0][0] <= far_error <= window[-1][0]
    assert all(text == raw[no - 1].decode() for no, text in window), "rows not the log's lines at their numbers"
    # and the window's byte offsets are the log's: the old range appended nothing after it
    ends = page.evaluate("[conveyorLog.start, conveyorLog.end]")
    assert ends == [sum(len(line) + 1 for line in raw[: window[0][0] - 1]), sum(len(line) + 1 for line in raw[: window[-1][0]])]
    assert errors == []
    page.close()
