"""View models: who or what triggered a pipeline."""

from __future__ import annotations

import pytest

from conveyor.server.web import views

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("row", "shown"), [
    ({"source": "push", "user": {"id": 1, "login": "root", "name": "Administrator"}}, "Administrator"),
    ({"source": "web", "user": {"id": 7, "login": "ada", "name": ""}}, "ada"),
    ({"source": "trigger", "user": None, "trigger_id": 4}, "trigger #4"),
    ({"source": "schedule", "user": None, "schedule_id": 9}, "schedule #9"),
    ({"source": "parent_pipeline", "parent_pipeline_id": 12}, "pipeline #12"),
    ({"source": "api"}, "api"),
    ({}, "push"),  # a row from before migration 0009
])
def test_triggerer_is_the_user_else_what_started_it(row: dict, shown: str) -> None:
    assert views.triggerer(row) == shown
