"""The job page's log rows, rendered on the server: the same DOM ``static/log-viewer.js`` builds
(``makeRow``, ``renderWindow``, ``fitWindow``), so the first paint holds the log's last lines and
the viewer adopts the rows (attaches their behaviour, carries on from their byte offset) instead
of building them again. Everything from the log is escaped text; the one attribute taken from it
is an ``http(s)`` OSC 8 link. Colours outside the 16-colour classes cannot be a ``style``
attribute under the page's CSP (``style-src 'self'``): they go in ``data-fg``/``data-bg`` and the
viewer sets them through CSSOM when it adopts the rows. Pure: imports only ``web.ansi``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

import structlog

from conveyor.server.web.ansi import Line, Style, Terminal, units

log = structlog.get_logger(__name__)

MAX_ROWS = 600  # log-viewer.js: rows in the DOM at most
MAX_NODES = 2000  # log-viewer.js: elements in those rows at most
LONG = 100000  # log-viewer.js: characters of a line shown at most


def _js_str(x: float) -> str:
    """``String(x)`` of a JavaScript number."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return str(int(x)) if x.is_integer() and abs(x) < 1e21 else repr(x)


@dataclass
class _Section:
    name: str
    start: float
    options: dict[str, str | None]
    closed: bool
    end: float | None = None
    dur: str = ""

    def duration(self) -> str:
        """log-viewer.js ``sectionDuration``."""
        if self.end is None or self.options.get("hide_duration") == "true":
            return ""
        s = self.end - self.start
        s = s if math.isnan(s) else max(0.0, s)
        minutes = float(math.floor(s / 60)) if math.isfinite(s) else s / 60
        seconds = math.fmod(s, 60) if math.isfinite(s) else math.nan
        return f"{_js_str(minutes).rjust(2, '0')}:{_js_str(seconds).rjust(2, '0')}"


@dataclass
class _Row:
    no: int
    raw: str  # characters (for byte lengths)
    line: Line
    hidden: int
    secs: list[_Section]
    section: _Section | None = None
    nodes: int = 0


@dataclass
class Rendered:
    """Rows' HTML and the window they show (``first`` 0: not numbered yet)."""

    html: str
    text: str
    start: int
    first: int
    rows: int
    nodes: int
    has_time: bool


@dataclass
class _Window:
    first: int
    provisional: bool
    term: Terminal = field(default_factory=Terminal)
    open: list[_Section] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    partial: _Row | None = None
    has_time: bool = False

    def make_row(self, no: int, raw: str, term: Terminal) -> _Row:
        """log-viewer.js ``makeRow`` without the DOM: what the row shows and which sections hold it."""
        code = units(raw)
        visible, hidden = code, 0
        if len(code) > LONG:
            cr = code.rfind("\r")
            visible = code[cr + 1 :] if cr >= 0 and len(code) - cr - 1 <= LONG else code[:LONG]
            hidden = len(code) - len(visible)
        line = term.line(visible)
        if line.ts:
            self.has_time = True
        for sec in line.sections:
            if sec.kind != "end":
                continue
            names = [s.name for s in self.open]
            if sec.name in names:
                at = len(names) - 1 - names[::-1].index(sec.name)
                for s in self.open[at:]:
                    s.end = sec.time
                    s.dur = s.duration()
                del self.open[at:]
        row = _Row(no, raw, line, hidden, list(self.open))
        starts = [s for s in line.sections if s.kind == "start"]
        if starts:
            sec = starts[-1]
            row.section = _Section(sec.name, sec.time, sec.options, sec.options.get("collapsed") == "true")
            self.open.append(row.section)
        row.nodes = 3 + (1 if line.ts else 0) + sum(1 for _, style in line.runs if style) + (1 if hidden else 0) + (2 if row.section else 0)
        return row

    def append(self, text: str) -> None:
        """log-viewer.js ``appendText`` into an empty window."""
        pieces = text.split("\n")
        partial = pieces.pop()
        no = self.first
        for raw in pieces:
            self.rows.append(self.make_row(no, raw, self.term))
            no += 1
        if partial:  # shown now, parsed again once its line feed comes: leaves no trace in the state
            opened = list(self.open)
            self.partial = self.make_row(no, partial, self.term.clone())
            self.open = opened

    def nodes(self) -> int:
        return sum(r.nodes for r in self.rows) + (self.partial.nodes if self.partial else 0)

    def html(self) -> str:
        return "".join(_row_html(row, self.provisional) for row in self.rows + ([self.partial] if self.partial else []))


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _runs_html(runs: list[tuple[str, Style]]) -> str:
    out = []
    for text, style in runs:
        if not style:
            out.append(escape(text, quote=False))
            continue
        link = style.get("link")
        attrs = [f' href="{_attr(link)}" rel="noopener noreferrer nofollow" target="_blank" title="{_attr(link)}"'] if link else []
        fg, bg = style.get("fg"), style.get("bg")
        if style.get("inv"):
            fg, bg = (7 if bg is None else bg), (0 if fg is None else fg)
        if isinstance(fg, int) and style.get("b") and fg < 8:
            fg += 8
        classes = [f"fg{fg}"] if isinstance(fg, int) else []
        classes += [f"bg{bg}"] if isinstance(bg, int) else []
        classes += [key for key in ("b", "f", "i", "u", "x", "h", "ctl") if style.get(key)]
        if classes:
            attrs.append(f' class="{" ".join(classes)}"')
        if isinstance(fg, str):
            attrs.append(f' data-fg="{_attr(fg)}"')
        if isinstance(bg, str):
            attrs.append(f' data-bg="{_attr(bg)}"')
        tag = "a" if link else "span"
        out.append(f"<{tag}{''.join(attrs)}>{escape(text, quote=False)}</{tag}>")
    return "".join(out)


def _row_html(row: _Row, provisional: bool) -> str:
    classes = ["ln"]
    if row.section:
        classes += ["sec-head"] + (["closed"] if row.section.closed else [])
    if any(s.closed for s in row.secs):
        classes.append("folded")
    if provisional:
        head = f'<div class="{" ".join(classes)}"><a class="no" tabindex="-1"></a>'
    else:
        head = f'<div class="{" ".join(classes)}" id="L{row.no}" data-line="{row.no}"><a class="no" tabindex="-1" href="#L{row.no}">{row.no}</a>'
    ts = row.line.ts
    time = f'<time datetime="{ts}" title="{ts}">{ts[11:19]}</time>' if ts else ""
    more = f'<span class="more"> … {row.hidden} more characters in this line (see Raw)</span>' if row.hidden else ""
    txt = f'<span class="txt">{_runs_html(row.line.runs)}{more}</span>'
    if row.section:
        expanded = "false" if row.section.closed else "true"
        txt = f'<button type="button" class="fold" aria-expanded="{expanded}">{txt}<span class="sec-dur">{escape(row.section.dur)}</span></button>'
    return f"{head}{time}{txt}</div>"


def _window(text: str, first: int) -> _Window:
    window = _Window(first, provisional=first == 0)
    window.append(text)
    return window


def render(text: str, start: int, first: int) -> Rendered | None:
    """The rows ``log-viewer.js`` ``renderWindow`` makes of ``text`` (whole lines from byte
    ``start``, the first numbered ``first``) at the window's end; None past ``MAX_ROWS`` lines
    (the viewer cuts those: the page lets it render them)."""
    if text.count("\n") + 1 > MAX_ROWS:
        return None
    window = _window(text, first)
    if window.nodes() > MAX_NODES and window.rows:  # fitWindow("end"): the rows at the end that fit
        rows = window.rows
        a, n = len(rows) - 1, rows[-1].nodes + (window.partial.nodes if window.partial else 0)
        while a > 0 and len(rows) - a < MAX_ROWS and n + rows[a - 1].nodes <= MAX_NODES:
            a -= 1
            n += rows[a].nodes
        skipped = sum(len(r.raw.encode("utf-8")) + 1 for r in rows[:a])
        text = "".join(r.raw + "\n" for r in rows[a:]) + (text.rsplit("\n", 1)[-1] if window.partial else "")
        start, first = start + skipped, first and first + a
        window = _window(text, first)
    return Rendered(window.html(), text, start, first, len(window.rows), window.nodes(), window.has_time)


def adopt(tail: dict[str, Any]) -> tuple[dict[str, Any], Rendered | None]:
    """The job page's inline tail with its rows rendered: the data the viewer adopts them with.
    Should rendering fail, the page goes without (the viewer renders the tail itself)."""
    try:
        rendered = render(tail["text"], tail["start"], tail["first"])
    except Exception:  # noqa: BLE001 (a page without server rows beats no page)
        log.exception("log_rows_failed")
        rendered = None
    if rendered is None:
        return tail, None
    return {**tail, "text": rendered.text, "start": rendered.start, "first": rendered.first, "rendered": True}, rendered


__all__ = ["Rendered", "adopt", "render"]
