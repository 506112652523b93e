"""Static files under content-hashed URLs, imports between ES modules rewritten to them."""

from __future__ import annotations

import re

import pytest

from conveyor.server.errors import NotFound
from conveyor.server.web import assets

pytestmark = pytest.mark.unit


def test_module_imports_carry_the_imported_files_versions() -> None:
    body = assets.asset("log-viewer.js").body.decode()
    imports = re.findall(r'from "(\./[^"]+)"', body)
    assert imports == [f"./ansi.js?v={assets.asset('ansi.js').version}", f"./live.js?v={assets.asset('live.js').version}"]
    assert assets.url("log-viewer.js") == f"/-/static/log-viewer.js?v={assets.asset('log-viewer.js').version}"
    assert len(assets.asset("web.css").version) == 12 and assets.asset("web.css").media_type.startswith("text/css")


@pytest.mark.parametrize("name", ["../render.py", "nope.js", "icons.html", "sub/x.js"])
def test_only_the_static_folders_own_files(name: str) -> None:
    with pytest.raises(NotFound):
        assets.asset(name)
