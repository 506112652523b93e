"""pipeline.build: defaults, variables, rules: when never, stage order, needs validation."""

from __future__ import annotations

import textwrap

import pytest

from conveyor import ciconfig, pipeline
from conveyor.protocol import JobSpec, When

pytestmark = pytest.mark.unit


def build(text: str) -> list[JobSpec]:
    return pipeline.build(ciconfig.load(textwrap.dedent(text)))


def specs(text: str) -> dict[str, JobSpec]:
    return {spec.name: spec for spec in build(text)}


def issues(text: str) -> list[tuple[int | None, str]]:
    config = ciconfig.load(textwrap.dedent(text))  # the YAML itself must be valid
    with pytest.raises(ciconfig.ConfigError) as caught:
        pipeline.build(config)
    return [(issue.line, issue.message) for issue in caught.value.issues]


def test_a_full_spec() -> None:
    [spec] = build(
        """
        variables: {GLOBAL: g}
        default:
          before_script: [echo before]
          after_script: [echo after]
        compile:
          stage: build
          script: [make]
          variables: {LOCAL: l}
          when: always
          allow_failure: true
          timeout: 2h
        """
    )
    assert spec == JobSpec(
        name="compile",
        stage="build",
        stage_idx=1,
        script=["echo before", "make"],
        after_script=["echo after"],
        variables={"GLOBAL": "g", "LOCAL": "l"},
        needs=None,
        when=When.ALWAYS,
        allow_failure=True,
        timeout=7200,
    )


@pytest.mark.parametrize(
    ("job_keys", "script", "after_script"),
    [
        ("", ["default before", "run"], ["default after"]),
        ("before_script: [own before]", ["own before", "run"], ["default after"]),
        ("after_script: [own after]", ["default before", "run"], ["own after"]),
        ("before_script: []\n  after_script: []", ["run"], []),
    ],
)
def test_job_scripts_replace_default_without_merging(
    job_keys: str, script: list[str], after_script: list[str]
) -> None:
    [spec] = build(
        "default:\n  before_script: [default before]\n  after_script: [default after]\n"
        f"job:\n  script: run\n  {job_keys}\n"
    )
    assert (spec.script, spec.after_script) == (script, after_script)


def test_deprecated_global_before_script_applies_to_jobs() -> None:
    [spec] = build("before_script: [setup]\njob:\n  script: run\n")
    assert spec.script == ["setup", "run"]


def test_job_variables_override_global_variables() -> None:
    result = specs(
        """
        variables: {SHARED: global, ONLY_GLOBAL: g}
        a:
          script: x
          variables: {SHARED: job, ONLY_JOB: j}
        b:
          script: x
        """
    )
    assert result["a"].variables == {"SHARED": "job", "ONLY_GLOBAL": "g", "ONLY_JOB": "j"}
    assert result["b"].variables == {"SHARED": "global", "ONLY_GLOBAL": "g"}


def test_when_never_jobs_are_not_added() -> None:
    assert list(specs("a:\n  script: x\nb:\n  script: y\n  rules: [{when: never}]\n")) == ["a"]


def test_stage_order_then_file_order() -> None:
    result = build(
        """
        stages: [lint, build, deploy]
        ship:
          stage: deploy
          script: x
        last:
          stage: .post
          script: x
        compile:
          stage: build
          script: x
        check:
          stage: lint
          script: x
        first:
          stage: .pre
          script: x
        compile2:
          stage: build
          script: x
        """
    )
    assert [(spec.name, spec.stage, spec.stage_idx) for spec in result] == [
        ("first", ".pre", 0),
        ("check", "lint", 1),
        ("compile", "build", 2),
        ("compile2", "build", 2),
        ("ship", "deploy", 3),
        ("last", ".post", 4),
    ]


def test_needs_are_resolved_to_names() -> None:
    result = specs(
        """
        a: {stage: build, script: x}
        b: {stage: test, script: x, needs: [a]}
        c: {stage: test, script: x, needs: []}
        d: {stage: test, script: x}
        e: {stage: deploy, script: x, needs: [{job: b}, {job: c, optional: true}]}
        """
    )
    assert {name: spec.needs for name, spec in result.items()} == {
        "a": None,
        "b": ["a"],
        "c": [],
        "d": None,
        "e": ["b", "c"],
    }


def test_need_in_the_same_stage_is_allowed() -> None:
    assert specs("a: {script: x}\nb: {script: x, needs: [a]}\n")["b"].needs == ["a"]


def test_optional_needs_to_missing_or_never_jobs_are_dropped() -> None:
    result = specs(
        """
        a: {stage: build, script: x, rules: [{when: never}]}
        b:
          script: x
          needs:
            - {job: a, optional: true}
            - {job: ghost, optional: true}
        """
    )
    assert result["b"].needs == []


def test_undefined_need_points_at_the_need() -> None:
    found = issues(
        """
        a:
          script: x
        b:
          script: x
          needs:
            - a
            - ghost
        """
    )
    assert found == [(8, "b job: undefined need: ghost")]


def test_need_in_a_later_stage() -> None:
    found = issues(
        """
        early:
          stage: build
          script: x
          needs: [late]
        late:
          stage: deploy
          script: x
        """
    )
    assert found == [(5, "early job: need late is not defined in current or prior stages")]


def test_duplicate_needs() -> None:
    found = issues(
        """
        a: {stage: build, script: x}
        b: {stage: build, script: x}
        c:
          script: x
          needs: [a, b, a, {job: b, optional: true}]
        """
    )
    assert found == [(6, "c has the following needs duplicated: a, b.")]


def test_needs_cycles() -> None:
    found = issues(
        """
        a: {script: x, needs: [c]}
        b: {script: x, needs: [a]}
        c: {script: x, needs: [b]}
        d: {script: x, needs: [d]}
        e: {script: x, needs: [a]}
        """
    )
    assert found == [
        (2, 'The pipeline has circular dependencies: topological sort failed: ["a", "b", "c"]'),
        (5, "The pipeline has circular dependencies: self-dependency: d"),
    ]


def test_need_on_a_job_that_is_not_added() -> None:
    found = issues(
        """
        a: {stage: build, script: x, rules: [{when: never}]}
        b:
          script: x
          needs: [a]
        """
    )
    assert found == [(5, "'b' job needs 'a' job, but 'a' does not exist in the pipeline. This might be because of the only, except, or rules keywords. To need a job that sometimes does not exist in the pipeline, use needs:optional.")]


def test_needs_of_jobs_not_added_are_still_validated() -> None:
    found = issues("keep: {script: x}\ngone: {script: x, rules: [{when: never}], needs: [ghost]}\n")
    assert found == [(2, "gone job: undefined need: ghost")]


def test_need_name_too_long() -> None:
    name = "n" * 129
    found = issues(f"{name}: {{stage: build, script: x}}\nb: {{script: x, needs: ['{name}']}}\n")
    assert found == [(2, f"b job: need `{name}` name is too long (maximum is 128 characters)")]


@pytest.mark.parametrize(
    "text",
    [
        "a: {stage: .pre, script: x}\nb: {stage: .post, script: x}\n",
        "a: {script: x, rules: [{when: never}]}\n",
        "a: {stage: .pre, script: x}\nb: {script: x, rules: [{when: never}]}\n",
    ],
)
def test_a_pipeline_with_nothing_outside_pre_and_post_is_not_created(text: str) -> None:
    assert issues(text) == [(None, pipeline.NOTHING_TO_RUN)]
    assert pipeline.NOTHING_TO_RUN == (
        "Pipeline will not run for the selected trigger. "
        "The rules configuration prevented any jobs from being added to the pipeline."
    )


def test_pre_and_post_jobs_run_with_others() -> None:
    result = build("a: {stage: .post, script: x}\nb: {script: x}\nc: {stage: .pre, script: x}\n")
    assert [spec.name for spec in result] == ["c", "b", "a"]


def test_every_needs_issue_at_once() -> None:
    found = issues(
        """
        a: {stage: build, script: x, needs: [ghost]}
        b: {stage: build, script: x, needs: [c]}
        c: {stage: deploy, script: x, needs: [a, a]}
        """
    )
    assert [message for _, message in found] == [
        "a job: undefined need: ghost",
        "b job: need c is not defined in current or prior stages",
        "c has the following needs duplicated: a.",
    ]


def test_build_uses_the_config_filename() -> None:
    config = ciconfig.load("a: {script: x, needs: [ghost]}\n", filename="ci/pipeline.yml")
    with pytest.raises(ciconfig.ConfigError) as caught:
        pipeline.build(config)
    assert str(caught.value) == "ci/pipeline.yml:1: a job: undefined need: ghost"


def test_job_rules_see_who_made_the_pipeline_and_workflow_does_not() -> None:
    """GITLAB_USER_* are pipeline-level (GitLab's job rules see them, config variables hold none)."""
    text = textwrap.dedent("""
        workflow:
          rules:
            - if: $GITLAB_USER_LOGIN
              when: never
            - when: always
        mine: {script: x, rules: [{if: $GITLAB_USER_LOGIN == "ada"}]}
        theirs: {script: x, rules: [{if: $GITLAB_USER_LOGIN == "bob"}]}
    """)
    context = ciconfig.PipelineContext(user_variables={"GITLAB_USER_LOGIN": "ada", "GITLAB_USER_ID": "42"})
    found = [spec.name for spec in pipeline.build(ciconfig.load(text, context=context))]
    assert found == ["mine"]
