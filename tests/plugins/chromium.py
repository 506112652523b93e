"""Debian's Chromium for Playwright: where it is and how the browser tests and bench/ui launch it.

Headless, no sandbox (CI runs as root), nothing in the background. Every new tab of Chromium 156
also loads the omnibox popup's WebUI (``chrome://omnibox-popup.top-chrome``) in a renderer of its
own, 1.2-1.4 s of CPU while the page loads (bench/ui's docstring, Method): no page's work, and
on a 2-core machine it slowed every page the tests open, so it is off.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup",
]  # fmt: skip
