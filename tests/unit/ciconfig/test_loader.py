"""ciconfig.load: document shape, global keywords, stages, default:, variables, errors."""

from __future__ import annotations

import textwrap

import pytest

from conveyor import ciconfig
from conveyor.protocol import ConveyorError, When
from tests.unit.ciconfig.helpers import issues, load

pytestmark = pytest.mark.unit


# --- basics ---------------------------------------------------------------------------------------


def test_minimal_file_gives_default_stages_and_test_stage() -> None:
    config = load("build:\n  script: make\n")
    assert config.stages == [".pre", "build", "test", "deploy", ".post"]
    assert config.variables == {}
    assert config.filename == ".gitlab-ci.yml"
    job = config.jobs["build"]
    assert (job.name, job.stage, job.script, job.line) == ("build", "test", ["make"], 1)
    assert (job.before_script, job.after_script, job.needs) == ([], [], None)
    assert (job.when, job.allow_failure, job.timeout, job.variables) == (
        When.ON_SUCCESS,
        False,
        None,
        {},
    )


def test_jobs_keep_file_order() -> None:
    config = load("zeta:\n  script: z\nalpha:\n  script: a\nmid:\n  script: m\n")
    assert list(config.jobs) == ["zeta", "alpha", "mid"]


# --- top-level keywords --------------------------------------------------------------------------


def test_hidden_jobs_are_not_jobs_and_need_no_script() -> None:
    config = load(".hidden:\n  stage: nowhere\n.other: 3\njob:\n  script: x\n")
    assert list(config.jobs) == ["job"]


def test_missing_include_is_reported_at_the_include() -> None:
    found = issues(
        """
        workflow:
          rules: [{when: always}]
        include: other.yml
        job:
          script: x
        """
    )
    assert found == [(4, "Local file `other.yml` does not exist!")]


def test_global_image_services_and_cache_are_accepted() -> None:
    config = load(
        """
        image: python:3.12
        services: [postgres:16]
        cache: {paths: [.cache]}
        job:
          script: x
        """
    )
    assert list(config.jobs) == ["job"]


def test_no_visible_job() -> None:
    found = issues("variables: {A: b}\n.hidden:\n  script: x\n")
    assert found == [(None, "jobs config should contain at least one visible job")]


@pytest.mark.parametrize(
    ("name", "messages"),
    [
        ("image", ["image config contains unknown keys: script", "image name can't be blank"]),
        ("services", ["services config should be a array"]),
        ("cache", ["cache config contains unknown keys: script"]),
    ],
)
def test_reserved_names_image_services_cache_are_global_keywords(
    name: str, messages: list[str]
) -> None:
    found = issues(f"{name}:\n  script: echo\njob:\n  script: x\n")
    assert found == [(1, message) for message in messages]


def test_reserved_name_variables_is_the_keyword() -> None:
    config = load("variables:\n  script: echo\njob:\n  script: x\n")
    assert (list(config.jobs), config.variables) == (["job"], {"script": "echo"})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("stages", "stages config should be an array of strings"),
        ("include", "include config contains unknown keys: script"),
        (
            "before_script",
            "before_script config should be a string or a nested array of strings "
            "up to 10 levels deep",
        ),
        (
            "after_script",
            "after_script config should be a string or a nested array of strings "
            "up to 10 levels deep",
        ),
    ],
)
def test_reserved_names_are_keywords_not_jobs(name: str, message: str) -> None:
    assert issues(f"{name}:\n  script: echo\njob:\n  script: x\n") == [(1, message)]


def test_non_mapping_job() -> None:
    found = issues("job: echo hi\nok:\n  script: x\n")
    assert found == [(1, "jobs job config should implement the script:, run:, or trigger: keyword")]


def test_numeric_job_names_are_text() -> None:
    config = load("123:\n  script: x\n")
    assert list(config.jobs) == ["123"]


@pytest.mark.parametrize(("key", "shown"), [("true", "true"), ("no", "false"), ("~", "null")])
def test_unquoted_boolean_or_null_job_names_are_refused(key: str, shown: str) -> None:
    found = issues(f"{key}:\n  script: x\nok:\n  script: y\n")
    assert found == [(1, f"jobs:{shown} job name must be a string; quote it")]


def test_quoted_true_is_a_job_name() -> None:
    assert list(load("'true':\n  script: x\n").jobs) == ["true"]


# --- stages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        ("[lint, build]", [".pre", "lint", "build", ".post"]),
        ("[.post, build, .pre]", [".pre", "build", ".post"]),
        ("[build, build, test]", [".pre", "build", "test", ".post"]),
        ("[[lint, [build]], test]", [".pre", "lint", "build", "test", ".post"]),
        ("[]", [".pre", ".post"]),
    ],
)
def test_stages_with_edges(stages: str, expected: list[str]) -> None:
    stage = next(s for s in expected if not s.startswith(".")) if len(expected) > 2 else ".pre"
    config = load(f"stages: {stages}\njob:\n  stage: {stage}\n  script: x\n")
    assert config.stages == expected


@pytest.mark.parametrize("value", ["build", "{build: 1}", "[build, 3]"])
def test_stages_must_be_an_array_of_strings(value: str) -> None:
    found = issues(f"stages: {value}\njob:\n  script: x\n")
    assert found == [(1, "stages config should be an array of strings")]


def test_unknown_stage_points_at_the_stage_key() -> None:
    found = issues(
        """
        stages: [build, deploy]
        job:
          script: x
          stage: tests
        """
    )
    assert found == [
        (
            5,
            "job job: chosen stage tests does not exist; "
            "available stages are .pre, build, deploy, .post",
        )
    ]


def test_default_stage_test_must_exist_when_stages_are_set() -> None:
    found = issues("stages: [build]\njob:\n  script: x\n")
    assert found == [
        (2, "job job: chosen stage test does not exist; available stages are .pre, build, .post")
    ]


def test_pre_and_post_are_always_available() -> None:
    config = load(
        "stages: [build]\nfirst:\n  stage: .pre\n  script: x\nlast:\n  stage: .post\n"
        "  script: y\nmid:\n  stage: build\n  script: z\n"
    )
    assert [job.stage for job in config.jobs.values()] == [".pre", ".post", "build"]


# --- default: and deprecated globals -------------------------------------------------------------


def test_default_scripts() -> None:
    config = load(
        """
        default:
          before_script: [echo before]
          after_script: echo after
          image: alpine
          tags: [docker]
          timeout: 1h
        job:
          script: x
        """
    )
    assert config.default == ciconfig.DefaultConfig(
        ["echo before"], ["echo after"], tags=["docker"], image={"name": "alpine"}
    )


def test_deprecated_global_scripts_act_as_default() -> None:
    config = load("before_script: [a, [b]]\nafter_script: c\njob:\n  script: x\n")
    assert config.default == ciconfig.DefaultConfig(["a", "b"], ["c"])


def test_no_default_gives_empty_scripts() -> None:
    assert load("job:\n  script: x\n").default == ciconfig.DefaultConfig([], [])


def test_global_and_default_script_together_is_an_error() -> None:
    found = issues("before_script: [a]\ndefault:\n  before_script: [b]\njob:\n  script: x\n")
    assert found == [(1, "before_script is defined in top-level and `default:` entry")]


def test_default_errors() -> None:
    assert issues("default: [a]\njob:\n  script: x\n") == [(1, "default config should be a hash")]
    found = issues("default:\n  image: a\n  script: [x]\njob:\n  script: x\n")
    assert found == [(3, "default config contains unknown keys: script")]
    found = issues("default:\n  after_script: {a: 1}\njob:\n  script: x\n")
    assert found == [
        (
            2,
            "default:after_script config should be a string or a nested array of strings "
            "up to 10 levels deep",
        )
    ]


# --- variables -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ("plain", "plain"),
        ("'quoted: yes'", "quoted: yes"),
        ("1", "1"),
        ("0x1F", "31"),
        ("1.5", "1.5"),
        ("1.0", "1.0"),
        ("1.0e+20", "1.0e+20"),
        ("true", "true"),
        ("no", "false"),
        ("''", ""),
        (".inf", "Infinity"),
        ("{value: from-hash, description: shown in the form}", "from-hash"),
        ("{value: 8080}", "8080"),
        ("{description: no value}", ""),
        ("{value: b, options: [a, b]}", "b"),
        ("{value: x, expand: false}", "x"),
    ],
)
def test_global_variable_values(yaml_value: str, expected: str) -> None:
    config = load(f"variables:\n  VAR: {yaml_value}\njob:\n  script: x\n")
    assert config.variables == {"VAR": expected}


def test_a_null_variable_is_empty() -> None:
    assert load("variables:\n  VAR:\njob:\n  script: x\n").variables == {"VAR": ""}


def test_variable_names_may_be_numbers() -> None:
    assert load("variables:\n  1: one\njob:\n  script: x\n").variables == {"1": "one"}


@pytest.mark.parametrize(
    ("yaml_value", "message"),
    [
        ("[a, b]", "variables:VAR variable definition must be either a string or a hash"),
        ("{value: x, secret: y}", "variables:VAR config uses invalid data keys: secret"),
        ("{value: [x]}", "variables:VAR config value must be a string"),
        ("{value: c, options: [a, b]}", "variables:VAR config value must be present in options"),
    ],
)
def test_invalid_global_variables(yaml_value: str, message: str) -> None:
    assert issues(f"variables:\n  OK: 1\n  VAR: {yaml_value}\njob:\n  script: x\n") == [
        (3, message)
    ]


def test_global_variables_must_be_a_hash() -> None:
    found = issues("variables: [A]\njob:\n  script: x\n")
    assert found == [
        (1, "variables config should be a hash of key value pairs, value can be a hash")
    ]


def test_null_variables_mean_none() -> None:
    assert load("variables:\njob:\n  script: x\n").variables == {}


# --- errors --------------------------------------------------------------------------------------


def test_every_issue_is_reported_at_once() -> None:
    text = textwrap.dedent(
        """
        variables:
          A: [1]
        first:
          script: [1]
          colour: blue
        second:
          stage: nope
          script: x
        third:
          stage: build
        """
    )
    with pytest.raises(ciconfig.ConfigError) as caught:
        ciconfig.load(text)
    error = caught.value
    assert [(issue.line, issue.job, issue.key) for issue in error.issues] == [
        (3, None, "variables"),
        (6, "first", "colour"),
        (5, "first", "script"),
        (8, "second", "stage"),
        (10, "third", None),
    ]
    assert str(error).splitlines() == [str(issue) for issue in error.issues]
    assert str(error).splitlines()[0].startswith(".gitlab-ci.yml:3: variables:A ")


def test_config_error_is_a_conveyor_error_and_issue_is_frozen() -> None:
    issue = ciconfig.ConfigIssue("bad", "f.yml", None)
    error = ciconfig.ConfigError([issue])
    assert isinstance(error, ConveyorError)
    assert str(error) == "f.yml: bad"
    assert str(ciconfig.ConfigIssue("bad", "f.yml", 3, job="j", key="k")) == "f.yml:3: bad"
    with pytest.raises(AttributeError):
        issue.line = 4  # type: ignore[misc]
