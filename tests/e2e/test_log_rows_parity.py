"""The job page's server-rendered log rows (``web/rows.py``) against the real viewer's
(``static/log-viewer.js``, ``static/ansi.js``) in headless Chromium: one corpus (colours 16/256/
truecolor, styles, ``\\r`` progress, erase-line, cursor moves, nested and collapsed sections,
hostile HTML, OSC 8, invalid UTF-8, timestamps, bidi and C0/C1 controls) rendered both ways must
give the same DOM; the viewer keeps the server's elements (no row built again), its state
matches the one it builds itself, and a running job's tail carries on from the adopted rows.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Admin
from tests.plugins.chromium import ARGS, CHROMIUM
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")
INFO = {"name": "gitlab-runner", "version": "17.0.0", "executor": "shell", "features": {"trace_checksum": True}}
ESC = "\x1b"
CORPUS = "".join([
    "plain first line & \"quotes\" 'single'\n",
    f"{ESC}[31mred{ESC}[0m {ESC}[1;32mbold green{ESC}[0m {ESC}[38;5;208m256 orange{ESC}[0m {ESC}[38;5;3mbasic via 256{ESC}[0m"
    f" {ESC}[38;2;1;2;3mtruecolor{ESC}[48;2;250;0;10m on red{ESC}[0m {ESC}[38:2::10:20:30mcolon form{ESC}[m\n",
    f"{ESC}[1;3;4;9mstyles{ESC}[22;23m less{ESC}[0m {ESC}[2mfaint{ESC}[0m {ESC}[7minverse{ESC}[27m {ESC}[8mhidden{ESC}[28m {ESC}[7;31;44mboth{ESC}[0m\n",
    f"{ESC}[33mcarried style\nto the next line{ESC}[0m\n",
    f"{ESC}[+1mbad param{ESC}[1.5mstill{ESC}[0m {ESC}[38;5mshort 256{ESC}[0m {ESC}[38;2;300;-1;7mclamped{ESC}[0m\n",
    "progress 10%\rprogress 50%\rprogress 100%\x1b[K\n",
    "downloading 0%\r\x1b[2Kdone\n",
    "abcdef\x1b[3D\x1b[1KXY\x1b[5G!\x1b[2C?\tTAB\bB\n",
    "far\x1b[999999999C|\x1b[999999999G#\n",
    "section_start:1700000000:outer[collapsed=true]\r\x1b[0K\x1b[36;1mOuter header\x1b[0;m\n",
    "inside the collapsed outer\n",
    "section_start:1700000003:inner\r\x1b[0Kinner header with \x1b]8;;https://example.com/a?b=1&c=\"2\"\x1b\\a link\x1b]8;;\x1b\\\n",
    "inside inner\n",
    "section_end:1700000065:inner\r\x1b[0Ksection_start:1700000065:next[hide_duration=true, collapsed=false]\r\x1b[0Knext header\n",
    "section_end:1700000070:outer\r\x1b[0K\n",
    "section_end:1700000071:never_opened\r\x1b[0Kafter an unknown end\n",
    "section_start:1:<b>x</b> fake marker\n",
    "<script>window.__pwned=1</script> <img src=x onerror=\"window.__pwned=2\"> <iframe src=\"javascript:1\"></iframe>\n",
    "\x1b]8;;javascript:window.__pwned=3\x1b\\evil link\x1b]8;;\x1b\\ and \x1b]8;;https://example.com/ok\x1b\\good link\x1b]8;;\x1b\\ after\n",
    "\x1b]0;HACKED TITLE\x07\x1b]52;c;aGFja2Vk\x07\x1bPdcs stuff\x1b\\\x1b_apc stuff\x1b\\\x1b[?1049h\x1b(Bafter escapes\n",
    "bidi \u202eevil\u202c nul\x00 bel\x07 c1\u0085 end \U0001F600 astral \u00a0nbsp\n",
    "unterminated osc \x1b]8;;https://example.com/x \U0001F600 to the end\n",
    "2026-01-02T03:04:05.678901Z 00O stamped line\n",
    "2026-01-02T03:04:06.000001Z 01E+\x1b[31mstamped red continuation\x1b[0m\n",
    "section_start:1700000100:last[collapsed=true]\r\x1b[0Kthe last section, still open\n",
    "inside the last section\n",
])
INVALID = b"invalid utf8 \xff\xfe here \xe2\x82 cut\n"
PARTIAL = "section_end:1700000160:last\r\x1b[0Kpartial \x1b[32mgreen"  # no line feed yet


class Runner:
    """The runner API by hand (what gitlab-runner sends): take a job, append, finish."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url + "/api/v4", timeout=30)
        self.token = token

    def take(self) -> dict:
        for _ in range(50):
            response = self.http.post("/jobs/request", json={"info": INFO, "token": self.token, "system_id": "s_parity"})
            if response.status_code == 201:
                job = response.json()
                self.update(job, "running")
                return job
        raise AssertionError("no job handed out")

    def update(self, job: dict, state: str, trace: bytes | None = None) -> httpx.Response:
        output = {} if trace is None else {"checksum": f"crc32:{zlib.crc32(trace):08x}", "bytesize": len(trace)}
        return self.http.put(f"/jobs/{job['id']}", json={"info": INFO, "token": job["token"], "state": state, "output": output},
                             headers={"JOB-TOKEN": job["token"]})

    def append(self, job: dict, data: bytes, start: int) -> None:
        response = self.http.patch(f"/jobs/{job['id']}/trace", content=data, headers={
            "JOB-TOKEN": job["token"], "Content-Range": f"{start}-{start + len(data) - 1}", "Content-Type": "text/plain"})
        assert response.status_code == 202, response.text

    def finish(self, job: dict, trace: bytes) -> None:
        for _ in range(40):
            if self.update(job, "success", trace).status_code != 202:
                return
        raise AssertionError("the final update was not accepted")


@pytest.fixture
def jobs(server_process, admin: Admin, tmp_path) -> Iterator[dict]:  # noqa: ANN001
    make_repo(tmp_path / "repo", "done:\n  script: [x]\nlive:\n  script: [x]\n")
    project = admin.project(str(tmp_path / "repo"))
    admin.pipeline(project["id"])
    runner = Runner(server_process.url, admin.runner_token())
    log = CORPUS.encode() + INVALID
    taken = {job["job_info"]["name"]: job for job in (runner.take(), runner.take())}
    runner.append(taken["done"], log, 0)
    runner.finish(taken["done"], log)
    running = log + PARTIAL.encode()
    runner.append(taken["live"], running, 0)
    yield {"project": project["id"], "runner": runner, "done": taken["done"], "live": taken["live"], "offset": len(running)}
    runner.http.close()


STATE = """() => { const v = conveyorLog; return JSON.stringify({first: v.first, start: v.start, end: v.end, size: v.size,
  partial: v.partial, provisional: v.provisional, hasTime: v.hasTime, style: v.term.style, nodes: v.nodes,
  open: v.open.map(s => [s.name, s.closed, s.rows.length]), sections: [...v.sections.entries()].map(([n, s]) => [n, s.name, s.end, s.rows.length]),
  rows: v.rows.map(r => [r.no, r.bytes, r.nodes, r.raw, r.secs.map(s => s.name)]), partialRow: v.partialRow && v.partialRow.nodes,
  time: !document.getElementById('btn-time').hidden, ssr: document.getElementById('log-pane').classList.contains('ssr')}); }"""
KEEP = """window.__violations = []; document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective));
document.addEventListener('readystatechange', () => { if (document.readyState === 'interactive') {
  const lines = document.getElementById('log-lines'); if (lines) window.__served = Array.from(lines.children); } });"""


def client_rendered(route) -> None:  # noqa: ANN001
    """The job page as it was before rows were rendered on the server: the viewer builds them."""
    response = route.fetch()
    body = re.sub(r'(<div class="log-lines" id="log-lines">).*?(</div>\s*<button type="button" class="log-more" id="log-later")',
                  r"\1\2", response.text(), count=1, flags=re.S)
    body = body.replace('"rendered":true', '"rendered":false').replace("log-pane ssr", "log-pane")
    route.fulfill(response=response, body=body)


def opened(context, url: str, client: bool = False):  # noqa: ANN001, ANN201
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    if client:
        page.route(url, client_rendered)
    page.goto(url)
    try:
        page.wait_for_function("() => window.conveyorLog && conveyorLog.rows.length > 0", timeout=10000)
    except playwright_api.TimeoutError:
        raise AssertionError(f"the viewer did not start: {errors}") from None
    assert errors == []
    return page


def test_server_rows_are_the_viewers_rows_and_the_tail_goes_on(server_process, jobs) -> None:  # noqa: ANN001
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(base_url=server_process.url, viewport={"width": 1400, "height": 900})
        context.add_init_script(KEEP)
        page = context.new_page()
        page.goto("/-/login")
        page.fill("#token", ROOT_TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url("**/-/")
        page.close()
        base = f"/-/projects/{jobs['project']}/jobs/"

        for name in ("done", "live"):
            served = opened(context, base + str(jobs[name]["id"]))
            built = opened(context, base + str(jobs[name]["id"]), client=True)
            assert served.evaluate("window.__served.length") > 20
            assert built.evaluate("window.__served.length") == 0
            # the viewer kept every element the server sent, in order, and built none
            assert served.evaluate("window.__served.every((el, i) => el === document.getElementById('log-lines').children[i])"
                                   " && window.__served.length === document.getElementById('log-lines').children.length")
            html = served.evaluate("document.getElementById('log-lines').outerHTML")
            assert html == built.evaluate("document.getElementById('log-lines').outerHTML")
            assert served.evaluate(STATE) == built.evaluate(STATE)
            for page in (served, built):
                assert page.evaluate("window.__pwned") is None
                assert page.evaluate("window.__violations") == []
                assert page.title().endswith("Conveyor") and "HACKED" not in page.title()
            assert 'style="color: rgb(255, 135, 0);"' in html and "fg3" in html and "<script>" not in html
            assert served.locator(".sec-head .fold[aria-expanded=false]").count() == 2
            served.locator(".sec-head .fold").first.click()  # adopted behaviour: a section folds and unfolds
            assert served.locator(".sec-head .fold").first.get_attribute("aria-expanded") == "true"
            if name == "live":
                rest = b" and more\nthe line after\n"
                jobs["runner"].append(jobs["live"], rest, jobs["offset"])
                served.wait_for_selector(".ln:has-text('the line after')")
                text = served.inner_text("#log-lines")
                assert text.count("partial green and more") == 1 and text.count("the line after") == 1
            served.close()
            built.close()

        # before any script runs, the page already shows the log's last lines at the pane's foot
        still = browser.new_context(base_url=server_process.url, viewport={"width": 1400, "height": 900},
                                    storage_state=context.storage_state(), java_script_enabled=False)
        page = still.new_page()
        page.goto(base + str(jobs["done"]["id"]))
        pane = page.locator("#log-pane").bounding_box()
        last = page.locator("#log-lines > .ln:not(.folded)").last  # the rest is in a collapsed section
        box = last.bounding_box()
        assert box is not None and pane is not None
        assert pane["y"] < box["y"] and box["y"] + box["height"] <= pane["y"] + pane["height"] + 1
        assert "the last section, still open" in last.inner_text()
        still.close()
        browser.close()
