"""Job keywords: script forms, unknown and unsupported keys, when, allow_failure, timeout, needs."""

from __future__ import annotations

import textwrap

import pytest

from conveyor import ciconfig
from conveyor.ciconfig.model import Need
from conveyor.protocol import When

pytestmark = pytest.mark.unit

SCRIPT_TYPE = "config should be a string or a nested array of strings up to 10 levels deep"


def job(body: str, name: str = "job") -> ciconfig.JobConfig:
    text = f"{name}:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    return ciconfig.load(text).jobs[name]


def issues(body: str, name: str = "job") -> list[tuple[int | None, str]]:
    text = f"{name}:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    with pytest.raises(ciconfig.ConfigError) as caught:
        ciconfig.load(text)
    return [(issue.line, issue.message) for issue in caught.value.issues]


def nested(depth: int) -> str:
    """A script list nested ``depth`` arrays deep, the outer list included."""
    return "[" * depth + "echo deep" + "]" * depth


# --- scripts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo one", ["echo one"]),
        ("[echo one, echo two]", ["echo one", "echo two"]),
        ("[a, [b, [c, [d]]], e]", ["a", "b", "c", "d", "e"]),
        ("|\n    line one\n    line two", ["line one\nline two\n"]),
        ("['echo \"quoted: colon\"']", ['echo "quoted: colon"']),
        (nested(10), ["echo deep"]),
    ],
)
def test_script_forms(script: str, expected: list[str]) -> None:
    assert job(f"script: {script}\n").script == expected


@pytest.mark.parametrize(
    "script", [nested(11), "[echo, 3]", "[echo, true]", "{run: x}", "[[echo, {a: b}]]", "42"]
)
def test_script_type_errors(script: str) -> None:
    assert issues(f"stage: build\nscript: {script}\n") == [(3, f"jobs:job:script {SCRIPT_TYPE}")]


@pytest.mark.parametrize("key", ["before_script", "after_script"])
def test_before_and_after_script_type_errors(key: str) -> None:
    assert issues(f"script: x\n{key}: {nested(11)}\n") == [(3, f"jobs:job:{key} {SCRIPT_TYPE}")]


@pytest.mark.parametrize("script", ["", "''", "[]"])
def test_blank_script(script: str) -> None:
    assert issues(f"stage: build\nscript: {script}\n") == [(3, "jobs:job script can't be blank")]


def test_missing_script() -> None:
    assert issues("stage: build\n", name="compile") == [
        (1, "jobs compile config should implement the script:, run:, or trigger: keyword")
    ]


def test_job_scripts_and_inheritance_markers() -> None:
    own = job("script: x\nbefore_script: [a, [b]]\nafter_script: c\n")
    assert (own.before_script, own.after_script) == (["a", "b"], ["c"])
    empty = job("script: x\nbefore_script: []\nafter_script: []\n")
    assert (empty.before_script, empty.after_script) == ([], [])
    inherit = job("script: x\nbefore_script:\nafter_script: null\n")
    assert (inherit.before_script, inherit.after_script) == ([], [])
    defaults = ciconfig.load("default:\n  before_script: d\njob:\n  script: x\n  before_script:\n")
    assert defaults.jobs["job"].before_script == ["d"]


# --- keys ----------------------------------------------------------------------------------------


def test_unknown_keys_use_gitlab_text_and_first_key_line() -> None:
    found = issues("script: x\ncolour: blue\nsize: 3\n", name="build")
    assert found == [(3, "jobs:build config contains unknown keys: colour, size")]


@pytest.mark.parametrize(
    "key_and_value",
    [
        "tags: [docker]",
        "image: alpine",
        "image: {name: alpine, entrypoint: ['']}",
        "services: [postgres]",
        "artifacts: {paths: [dist]}",
        "cache: {key: x, paths: [.cache]}",
        "dependencies: []",
        "retry: 2",
        "interruptible: true",
        "environment: production",
        "coverage: '/\\d+%/'",
        "resource_group: prod",
    ],
)
def test_accepted_and_ignored_keys(key_and_value: str) -> None:
    assert job(f"script: x\n{key_and_value}\n").script == ["x"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("extends", "job: unknown keys in `extends` (a)"),
        ("rules", "jobs:job:rules:rule config should be a hash"),
        ("parallel", "jobs:job:parallel should be an integer or a hash"),
        ("inherit", "jobs:job:inherit config should be a hash"),
    ],
)
def test_keys_with_invalid_values(key: str, message: str) -> None:
    assert issues(f"script: x\n{key}: [a]\n") == [(3 if key != "extends" else 1, message)]


def test_extends_without_script_reports_the_missing_parent() -> None:
    found = issues("extends: .base\nstage: build\n")
    assert found == [(1, "job: unknown keys in `extends` (.base)")]


def test_run_is_not_supported_yet_and_trigger_makes_a_bridge() -> None:
    assert job("trigger: other/project\n").trigger == {
        "project": "other/project", "strategy": None, "forward": {"yaml_variables": True, "pipeline_variables": False},
    }
    assert issues("run: [{name: a}]\n") == [(2, "jobs:job:run keyword is not supported yet")]


def test_stage_must_be_a_string() -> None:
    assert issues("script: x\nstage: [build]\n") == [
        (3, "jobs:job:stage config should be a string")
    ]


def test_long_job_name() -> None:
    name = "j" * 256
    assert issues("script: x\n", name=name) == [
        (1, f"jobs:{name} name is too long (maximum is 255 characters)")
    ]
    assert job("script: x\n", name="j" * 255).name == "j" * 255


def test_job_names_may_contain_spaces_colons_and_slashes() -> None:
    config = ciconfig.load("'deploy: prod/eu 1':\n  script: x\n")
    assert list(config.jobs) == ["deploy: prod/eu 1"]


# --- variables -----------------------------------------------------------------------------------


def test_job_variables() -> None:
    found = job("script: x\nvariables:\n  A: 1\n  B: false\n  C: {value: c, expand: false}\n")
    assert found.variables == {"A": "1", "B": "false", "C": "c"}


def test_job_variables_do_not_take_a_description() -> None:
    found = issues("script: x\nvariables:\n  A: {value: a, description: d}\n")
    assert found == [(4, "jobs:job:variables:A config uses invalid data keys: description")]


def test_job_variables_must_be_a_hash() -> None:
    assert issues("script: x\nvariables: [A]\n") == [
        (3, "jobs:job:variables config should be a hash of key value pairs, value can be a hash")
    ]


# --- when and allow_failure ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "when", "allow_failure"),
    [
        (None, When.ON_SUCCESS, False),
        ("on_success", When.ON_SUCCESS, False),
        ("on_failure", When.ON_FAILURE, False),
        ("always", When.ALWAYS, False),
        ("manual", When.MANUAL, True),
    ],
)
def test_when_and_default_allow_failure(value: str | None, when: When, allow_failure: bool) -> None:
    found = job("script: x\n" + (f"when: {value}\n" if value else ""))
    assert (found.when, found.allow_failure) == (when, allow_failure)


@pytest.mark.parametrize("value", ["sometimes", "[manual]", "true"])
def test_invalid_when(value: str) -> None:
    assert issues(f"script: x\nwhen: {value}\n") == [
        (3, "jobs:job when should be one of: on_success, on_failure, always, manual, delayed")
    ]


def test_delayed_needs_start_in() -> None:
    assert issues("script: x\nwhen: delayed\n") == [(1, "jobs:job start_in should be a duration")]
    delayed = job("script: x\nwhen: delayed\nstart_in: 30 minutes\n")
    assert (delayed.when, delayed.start_in) == (When.DELAYED, 1800)


@pytest.mark.parametrize(
    ("value", "when", "expected"),
    [
        ("true", "on_success", True),
        ("false", "on_success", False),
        ("false", "manual", False),
        ("true", "manual", True),
        ("{exit_codes: 137}", "on_success", False),
        ("{exit_codes: [1, 2]}", "on_success", False),
    ],
)
def test_allow_failure(value: str, when: str, expected: bool) -> None:
    assert job(f"script: x\nwhen: {when}\nallow_failure: {value}\n").allow_failure is expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes please", "jobs:job allow_failure should be a hash or a boolean value"),
        ("[true]", "jobs:job allow_failure should be a hash or a boolean value"),
        ("{codes: 1}", "jobs:job:allow_failure config contains unknown keys: codes"),
        (
            "{exit_codes: one}",
            "jobs:job:allow_failure exit_codes should be an integer or an array of integers",
        ),
    ],
)
def test_invalid_allow_failure(value: str, message: str) -> None:
    assert issues(f"script: x\nallow_failure: {value}\n") == [(3, message)]


# --- timeout -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1h 30m", 5400),
        ("10 minutes", 600),
        ("'3600'", 3600),
        ("3600", 3600),
        ("3 hours and 30 minutes", 12600),
        ("1:30:00", 5400),
        ("2 days", 172800),
    ],
)
def test_timeout(value: str, seconds: int) -> None:
    assert job(f"script: x\ntimeout: {value}\n").timeout == seconds


@pytest.mark.parametrize("value", ["soon", "''", "0", "-5", "true", "[1h]", "10 parsecs"])
def test_invalid_timeout(value: str) -> None:
    assert issues(f"script: x\ntimeout: {value}\n") == [
        (3, "jobs:job:timeout config should be a duration")
    ]


def test_timeout_limit() -> None:
    assert issues("script: x\ntimeout: 31 days\n") == [
        (3, "jobs:job:timeout config should not exceed the limit")
    ]
    assert job("script: x\ntimeout: 30 days\n").timeout == 30 * 86400


# --- needs ---------------------------------------------------------------------------------------


def test_needs_forms() -> None:
    found = job(
        """
        script: x
        needs:
          - build
          - job: lint
          - {job: docs, optional: true, artifacts: false}
        """
    )
    assert found.needs == [Need("build"), Need("lint"), Need("docs", optional=True, artifacts=False)]
    assert [need.line for need in found.needs or []] == [5, 6, 7]


def test_empty_needs_and_no_needs() -> None:
    assert job("script: x\nneeds: []\n").needs == []
    assert job("script: x\n").needs is None
    assert job("script: x\nneeds:\n").needs is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("build", "jobs:job:needs config can only be an array of job names or hashes"),
        ("{job: build}", "jobs:job:needs config can only be an array of job names or hashes"),
        ("['']", "jobs:job:needs entries cannot be empty"),
        ("[3]", "jobs:job:needs:need has an unsupported type"),
        ("[{job: a, when: x}]", "jobs:job:needs:need config contains unknown keys: when"),
        ("[{optional: true}]", "jobs:job:needs:need has an unsupported type"),
        ("[{job: a, optional: maybe}]", "jobs:job:needs:need optional should be a boolean value"),
        ("[{pipeline: other}]", "jobs:job:needs config uses invalid types: bridge"),
        ("[{pipeline: 5, job: a}]", "jobs:job:needs:need pipeline should be a string"),
        ("[{project: g/p, job: a}]", "jobs:job:needs:need ref can't be blank"),
    ],
)
def test_invalid_needs(value: str, message: str) -> None:
    assert issues(f"script: x\nneeds: {value}\n") == [(3, message)]


def test_invalid_need_entry_points_at_its_own_line() -> None:
    found = issues("script: x\nneeds:\n  - ok\n  - 5\n")
    assert found == [(5, "jobs:job:needs:need has an unsupported type")]


def test_nested_needs_are_flattened_with_their_lines() -> None:
    found = issues("script: x\nneeds:\n  - ok\n  - [fine, 5]\n")
    assert found == [(5, "jobs:job:needs:need has an unsupported type")]
