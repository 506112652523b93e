"""web/rows.py and web/ansi.py without a browser: escaping, the element budget, unnumbered rows,
cursor moves that must not run away (tests/e2e/test_log_rows_parity.py compares with the viewer)."""

from __future__ import annotations

import time

import pytest

from conveyor.server.web import rows
from conveyor.server.web.ansi import Terminal, units

pytestmark = pytest.mark.unit


def test_hostile_text_and_links_are_escaped_and_only_http_links_kept() -> None:
    text = '<script>x()</script> <img onerror="y()">\n\x1b]8;;https://a.test/?q="1"&r\x1b\\ok\x1b]8;;\x1b\\ \x1b]8;;javascript:z()\x1b\\no\x1b]8;;\x1b\\\n'
    html = rows.render(text, 0, 1).html
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;x()&lt;/script&gt;" in html
    assert 'href="https://a.test/?q=&quot;1&quot;&amp;r"' in html and "javascript:" not in html
    assert html.count("<a ") == 3  # two gutters and the one http link


def test_rows_past_the_element_budget_keep_the_end_and_say_where_they_start() -> None:
    line = "".join(f"\x1b[3{k % 8}mw\x1b[0m" for k in range(20)) + "\n"  # 23 elements a row
    rendered = rows.render(line * 150, 1000, 51)
    assert rendered.nodes <= rows.MAX_NODES and rendered.rows == rows.MAX_NODES // 23
    dropped = 150 - rendered.rows
    assert rendered.first == 51 + dropped and rendered.start == 1000 + dropped * len(line.encode())
    assert rendered.text == line * rendered.rows and 'id="L200"' in rendered.html


def test_unnumbered_rows_have_no_anchors_and_timestamps_show_the_toggle() -> None:
    rendered = rows.render("2026-01-02T03:04:05.678901Z 00O hello\n", 0, 0)
    assert ' id="L' not in rendered.html and 'href="#L' not in rendered.html and rendered.has_time
    assert '<time datetime="2026-01-02T03:04:05.678901Z" title="2026-01-02T03:04:05.678901Z">03:04:05</time>' in rendered.html


def test_a_cursor_move_far_right_stops_at_the_column_limit() -> None:
    started = time.perf_counter()
    runs = Terminal().line(units("a\x1b[999999999Cb\x1b[99999999999999999999Gc")).runs
    assert time.perf_counter() - started < 1
    assert len(runs[0][0]) == 16385 and runs[0][0].startswith("a ") and runs[0][0].endswith("cb")  # b at 16384, c at 16383


def test_an_astral_character_is_one_cell_and_bidi_controls_show() -> None:
    assert Terminal().line(units("\U0001F600x\rY")).runs[0][0] == "Yx"  # Y overwrites the whole emoji
    runs = Terminal().line(units("\U0001F600x\rY\u202e\x1b[K")).runs
    assert [text for text, _ in runs] == ["Y", "⟨U+202E⟩"] and runs[1][1] == {"ctl": True}
