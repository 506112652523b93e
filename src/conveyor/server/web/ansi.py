"""Terminal rendering of log lines on the server: ``static/ansi.js`` in Python, step for step.

The job page's first rows are rendered here, so its first paint already holds the log's last
lines; the viewer then adopts those rows instead of building them again. Both renderers must make
the same DOM (``tests/e2e/test_log_rows_parity.py`` renders a corpus both ways and compares), so
this module follows the JavaScript's semantics where they differ from Python's: a line is handled
as UTF-16 code units (``String.length``, the OSC limit), numbers as doubles (section times).
Pure: no I/O; imports nothing of the server.
"""

from __future__ import annotations

import re
from itertools import groupby
from dataclasses import dataclass, field
from typing import Any

Style = dict[str, Any]  # keys: fg bg (int: palette, str: "rgb(...)"), b f i u x h inv ctl (True), link (str)
DEFAULT: Style = {}

TIMESTAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z) [0-9a-f]{2}[OE]\+? ?")
SECTION = re.compile(r"section_(start|end):([0-9]+):([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?\r\x1b\[0?K")
OSC_LIMIT = 4096
COLUMNS = 16384
_JS_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # JavaScript's \s
LINK = re.compile(rf"https?://[^{_JS_SPACE}\x00-\x1f\x7f]+", re.IGNORECASE)
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPLIT = re.compile(r"[;:]")
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
_SGR_SEEN: dict[tuple[Any, str], Style] = {}  # (style, parameters) -> style: a log repeats a few colours
_NOT_ESC = re.compile("[\x00-\x1a\x1c-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # CONTROLS but ESC


def units(text: str) -> str:
    """``text`` as UTF-16 code units (astral characters as surrogate pairs), as JavaScript sees it."""
    if text.isascii() or max(text) < "\U00010000":
        return text
    return "".join(c if c < "\U00010000" else chr(0xD800 + ((ord(c) - 0x10000) >> 10)) + chr(0xDC00 + ((ord(c) - 0x10000) & 0x3FF)) for c in text)


def joined(text: str) -> str:
    """UTF-16 code units back to characters; a lone surrogate becomes U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _pairs(text: str) -> str:
    """UTF-16 code units with each surrogate pair joined into its character (lone ones kept)."""
    return text if text.isascii() else text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def num(value: str | None) -> int | None:
    """ansi.js ``num``: digits as a number, "" as 0, anything else None (NaN)."""
    if value is None or value == "":
        return 0
    return int(value) if value.isascii() and value.isdigit() else None


def _clamp(value: str | None) -> int:
    return max(0, min(255, num(value) or 0))


def _color256(n: int) -> int | str:
    if n < 16:
        return n
    if n < 232:
        v = (0, 95, 135, 175, 215, 255)
        n -= 16
        return f"rgb({v[n // 36]},{v[n // 6 % 6]},{v[n % 6]})"
    g = 8 + (n - 232) * 10
    return f"rgb({g},{g},{g})"


def sgr(style: Style, params: list[str], colon: bool = False) -> Style:
    """SGR parameters to a new style (ansi.js ``sgr``)."""
    s = dict(style)
    p = params or ["0"]
    k = 0
    while k < len(p):
        n = num(p[k])
        if n == 0:
            s = {"link": s["link"]} if "link" in s else {}
        elif n in (1, 2, 3, 4, 7, 8, 9):
            s[{1: "b", 2: "f", 3: "i", 4: "u", 7: "inv", 8: "h", 9: "x"}[n]] = True
        elif n in (21, 22):
            s.pop("b", None)
            s.pop("f", None)
        elif n in (23, 24, 27, 28, 29):
            s.pop({23: "i", 24: "u", 27: "inv", 28: "h", 29: "x"}[n], None)
        elif n is not None and (30 <= n <= 37 or 90 <= n <= 97):
            s["fg"] = n - 30 if n <= 37 else n - 90 + 8
        elif n is not None and (40 <= n <= 47 or 100 <= n <= 107):
            s["bg"] = n - 40 if n <= 47 else n - 100 + 8
        elif n in (39, 49):
            s.pop("fg" if n == 39 else "bg", None)
        elif n in (38, 48):
            key = "fg" if n == 38 else "bg"
            after = p[k + 1] if k + 1 < len(p) else None
            at = lambda i: p[i] if i < len(p) else None  # noqa: E731
            if after == "5":
                s[key] = _color256(_clamp(at(k + 2)))
                k += 2
            elif after == "2":  # 38;2;r;g;b, or 38:2:<colourspace>:r:g:b
                first = k + 2
                if len(p) - first >= 4 and colon:
                    first += 1
                s[key] = f"rgb({_clamp(at(first))},{_clamp(at(first + 1))},{_clamp(at(first + 2))})"
                k = first + 2
        k += 1
    return s if s else DEFAULT


@dataclass
class Section:
    kind: str
    time: float  # JavaScript's Number: a double
    name: str
    options: dict[str, str | None]


@dataclass
class Line:
    ts: str | None = None
    sections: list[Section] = field(default_factory=list)
    runs: list[tuple[str, Style]] = field(default_factory=list)  # (text, style); text as characters


class Terminal:
    """One raw line at a time; the style carries to the next line (ansi.js ``Terminal``)."""

    def __init__(self, style: Style = DEFAULT) -> None:
        self.style = style

    def clone(self) -> Terminal:
        return Terminal(self.style)

    def line(self, raw: str) -> Line:
        """``raw``: one line without its LF, as UTF-16 code units (``units``)."""
        out = Line()
        stamp = TIMESTAMP.match(raw)
        if stamp:
            out.ts = stamp[1]
            raw = raw[stamp.end() :]
        while mark := SECTION.match(raw):
            options: dict[str, str | None] = {}
            for option in filter(None, (mark[4] or "").split(",")):
                parts = option.split("=")
                options[parts[0]] = parts[1] if len(parts) > 1 else None
            out.sections.append(Section(mark[1], float(mark[2]), mark[3], options))
            raw = raw[mark.end() :]
        if not CONTROLS.search(raw):  # most lines: plain text in the current style
            if raw:
                out.runs.append((joined(raw), self.style))
            return out
        if not _NOT_ESC.search(raw) and raw.count("\x1b") == len(_SGR.findall(raw)):  # colours and text only: the cells would be the text in order
            self._sgr_runs(raw, out)
            return out
        cells: list[tuple[str, Style]] = []
        col = 0

        def put(text: str | list[str], style: Style) -> None:  # one cell per item, at the cursor
            nonlocal col
            if len(cells) < col:
                cells.extend([(" ", DEFAULT)] * (col - len(cells)))
            cells[col : col + len(text)] = [(ch, style) for ch in text]
            col += len(text)

        i, n = 0, len(raw)
        while i < n:
            found = CONTROLS.search(raw, i)
            stop = found.start() if found else n
            if stop > i:  # printable text up to the next control: a surrogate pair is one cell
                put(_pairs(raw[i:stop]), self.style)
                i = stop
                continue
            c = ord(raw[i])
            if c == 0x1B:
                i, col = self._escape(raw, i, cells, col)
            elif c == 0x0D:
                col, i = 0, i + 1
            elif c == 0x08:
                col, i = max(0, col - 1), i + 1
            elif c == 0x09:
                put(" " * ((col // 8 + 1) * 8 - col), self.style)
                i += 1
            elif BIDI.match(raw[i]):
                put([f"⟨U+{c:04X}⟩"], {**self.style, "ctl": True})  # one cell showing the marker
                i += 1
            else:  # other C0 and C1 controls: dropped
                i += 1
        out.runs = [(joined("".join(ch for ch, _ in group)), style) for style, group in groupby(cells, key=lambda cell: cell[1])]
        return out

    def _sgr_runs(self, raw: str, out: Line) -> None:
        pieces = _SGR.split(raw)
        runs: list[list[Any]] = []
        for k, piece in enumerate(pieces):
            if k % 2:
                key = (tuple(self.style.items()), piece)
                if key not in _SGR_SEEN:
                    if len(_SGR_SEEN) > 4096:
                        _SGR_SEEN.clear()
                    _SGR_SEEN[key] = sgr(self.style, _SPLIT.split(piece) if piece else [], ":" in piece)
                self.style = _SGR_SEEN[key]
            elif piece and runs and runs[-1][1] == self.style:
                runs[-1][0] += piece
            elif piece:
                runs.append([piece, self.style])
        out.runs = [(joined(text), style) for text, style in runs]

    def _escape(self, raw: str, i: int, cells: list[tuple[str, Style]], col: int) -> tuple[int, int]:
        """One escape sequence at ``raw[i]``: the index after it and the cursor column."""
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        if nxt == "[":
            j = i + 2
            while j < len(raw) and 0x20 <= ord(raw[j]) <= 0x3F:
                j += 1
            params = raw[i + 2 : j]
            if j >= len(raw):
                return len(raw), col
            final = raw[j]
            items = _SPLIT.split(params)
            count = max(1, num(items[0]) or 0)
            if final == "m" and not params.startswith("?"):
                self.style = sgr(self.style, [] if params == "" else items, ":" in params)
            elif final == "K":
                mode = num(items[0]) or 0
                if mode == 0:
                    del cells[col:]
                elif mode == 1:
                    for k in range(min(col + 1, len(cells))):
                        cells[k] = (" ", DEFAULT)
                else:
                    cells.clear()
            elif final == "G":
                col = min(count, COLUMNS) - 1
            elif final == "C":
                col = min(col + count, COLUMNS)
            elif final == "D":
                col = max(0, col - count)
            return j + 1, col
        if nxt == "]":
            j, end, after = i + 2, -1, -1
            while j < len(raw) and j - i < OSC_LIMIT:
                if raw[j] == "\x07":
                    end, after = j, j + 1
                    break
                if raw[j] == "\x1b" and raw[j + 1 : j + 2] == "\\":
                    end, after = j, j + 2
                    break
                j += 1
            if end < 0:  # unterminated: swallowed up to the limit
                return (len(raw) if j >= len(raw) else j), col
            body = raw[i + 2 : end]
            if body.startswith("8;"):
                uri = joined(body[body.find(";", 2) + 1 :])
                style = {k: v for k, v in self.style.items() if k != "link"}
                if LINK.fullmatch(uri):
                    style["link"] = uri
                self.style = style if style else DEFAULT
            return after, col
        if nxt in ("P", "X", "^", "_"):
            stop = raw.find("\x1b\\", i + 2)
            return (min(len(raw), i + OSC_LIMIT) if stop < 0 else stop + 2), col
        if nxt in ("(", ")"):
            return i + 3, col
        return i + 2, col
