"""Cases: the forms real pipelines use most (issue 21), with GitLab's results and texts.

Lists that an alias or a ``!reference`` nests inside ``rules``, ``workflow:rules``, ``needs``,
``cache`` and scripts are flattened (GitLab's composable arrays); ``needs`` naming
``parallel:matrix`` instances, ``optional``, ``artifacts``, ``pipeline:job`` and ``project``;
``dependencies`` on the same stage; ``variables`` with null values; the editor schema no longer
refusing what GitLab's entry validators accept; ``include: template:`` and ``${VAR}`` paths.
"""

from __future__ import annotations

import pytest

from conveyor.ciconfig import MemoryResolver, PipelineContext
from tests.unit.ciconfig.cases import Case, check, params

pytestmark = pytest.mark.unit

GO = {"context": PipelineContext(variables={"A": "1"})}
UNDEFINED_NEED_NOT_ADDED = (
    "'t' job needs 'x' job, but 'x' does not exist in the pipeline. This might be because of the "
    "only, except, or rules keywords. To need a job that sometimes does not exist in the "
    "pipeline, use needs:optional."
)
MATRIX = "b: {stage: build, script: x, parallel: {matrix: [{P: [aws, gcp], S: [mon, app]}]}}\n"


def _nested_rules(levels: int) -> str:
    return "j:\n  script: x\n  rules: " + "[" * levels + "{when: always}" + "]" * levels + "\n"


def _nested_script(levels: int) -> str:
    return "j:\n  script: " + "[" * levels + "x" + "]" * levels + "\n"


FLATTENING = [
    Case("script-reference", """
        .a: {script: [one, two]}
        j: {script: [!reference [.a, script], three]}
        """, {"j": {"script": ["one", "two", "three"]}}),
    Case("script-10-levels", _nested_script(10), {"j": {"script": ["x"]}}),
    Case("script-11-levels", _nested_script(11),
         [(2, "jobs:j:script config should be a string or a nested array of strings up to 10 levels deep")]),
    Case("rules-reference", """
        .r:
          rules: [{if: $A == "1", when: manual}, {if: $B}]
        j:
          rules: [!reference [.r, rules], {when: never}]
          script: x
        """, {"j": {"when": "manual"}}, GO),
    Case("rules-alias-list", """
        .r: &r
          - if: $A
            when: never
        j:
          rules: [*r, {when: always}]
          script: x
        k: {script: y}
        """, ["k"], GO),
    Case("rules-10-levels", _nested_rules(10), ["j"]),
    Case("rules-11-levels", _nested_rules(11),
         [(3, "jobs:j rules should be an array containing hashes and arrays of hashes")]),
    Case("workflow-rules-reference", """
        .r:
          rules: [{if: $A == "2"}, {when: never}]
        workflow:
          rules: [[[!reference [.r, rules]]]]
        j: {script: x}
        """, [(None, "Pipeline filtered out by workflow rules.")], GO),
    Case("needs-reference", """
        .n: {needs: [a, b]}
        a: {stage: build, script: x}
        b: {stage: build, script: x}
        c: {stage: build, script: x}
        j: {needs: [!reference [.n, needs], c], script: x}
        """, {"a": {}, "b": {}, "c": {}, "j": {"needs": ["a", "b", "c"]}}),
    Case("cache-reference", """
        .c:
          cache: [{key: a, paths: [x]}]
        j:
          cache: [!reference [.c, cache], {key: b, paths: [y]}]
          script: x
        """, {"j": {"cache": [
            {"key": "a", "untracked": False, "policy": "pull-push", "paths": ["x"], "when": "on_success", "fallback_keys": []},
            {"key": "b", "untracked": False, "policy": "pull-push", "paths": ["y"], "when": "on_success", "fallback_keys": []},
        ]}}),
    Case("cache-alias-hash-in-list", """
        .c: &c {key: a, paths: [x]}
        j:
          cache: [*c]
          script: x
        """, {"j": {"cache": [
            {"key": "a", "untracked": False, "policy": "pull-push", "paths": ["x"], "when": "on_success", "fallback_keys": []},
        ]}}),
    Case("matrix-no-nesting", """
        .m: {list: [{P: [a]}]}
        j:
          script: x
          parallel: {matrix: [!reference [.m, list]]}
        """, [(5, "jobs:j:parallel:matrix config should be an array of hashes")]),
    Case("reference-missing", "j: {script: [!reference [.missing, script]]}\n",
         [(1, '!reference [".missing", "script"] could not be found')]),
]

NEEDS = [
    Case("matrix-one", MATRIX + "t: {needs: [{job: b, parallel: {matrix: [{P: aws, S: app}]}}], script: x}\n",
         {"b: [aws, mon]": {}, "b: [aws, app]": {}, "b: [gcp, mon]": {}, "b: [gcp, app]": {},
          "t": {"needs": ["b: [aws, app]"]}}),
    Case("matrix-list", MATRIX + "t: {needs: [{job: b, parallel: {matrix: [{P: aws, S: [mon, app]}]}}], script: x}\n",
         {"b: [aws, mon]": {}, "b: [aws, app]": {}, "b: [gcp, mon]": {}, "b: [gcp, app]": {},
          "t": {"needs": ["b: [aws, mon]", "b: [aws, app]"]}}),
    Case("matrix-wrong-order", MATRIX + "t: {needs: [{job: b, parallel: {matrix: [{S: app, P: aws}]}}], script: x}\n",
         [(2, "t job: undefined need: b: [app, aws]")]),
    Case("matrix-partial", MATRIX + "t: {needs: [{job: b, parallel: {matrix: [{P: aws}]}}], script: x}\n",
         [(2, "t job: undefined need: b: [aws]")]),
    Case("matrix-all", MATRIX + "t: {needs: [b], script: x}\n",
         {"b: [aws, mon]": {}, "b: [aws, app]": {}, "b: [gcp, mon]": {}, "b: [gcp, app]": {},
          "t": {"needs": ["b: [aws, mon]", "b: [aws, app]", "b: [gcp, mon]", "b: [gcp, app]"]}}),
    Case("matrix-on-parallel-number", "n: {stage: build, script: x, parallel: 3}\n"
         "t: {needs: [{job: n, parallel: {matrix: [{X: 1}]}}], script: x}\n",
         [(2, "t job: undefined need: n: [1]")]),
    Case("matrix-on-plain-job-ignored", "a: {stage: build, script: x}\n"
         "t: {needs: [{job: a, parallel: {matrix: [{X: 1}]}}], script: x}\n", {"a": {}, "t": {"needs": ["a"]}}),
    Case("need-parallel-number", "a: {stage: build, script: x}\nt: {needs: [{job: a, parallel: 2}], script: x}\n",
         [(2, 'jobs:t:needs config cannot use "parallel: <number>".')]),
    Case("optional-absent", "x: {stage: build, script: x, rules: [{when: never}]}\n"
         "t: {needs: [{job: x, optional: true}], script: x}\n", {"t": {"needs": []}}),
    Case("not-optional-absent", "x: {stage: build, script: x, rules: [{when: never}]}\n"
         "t: {needs: [x], script: x}\n", [(2, UNDEFINED_NEED_NOT_ADDED)]),
    Case("artifacts-false", "a: {stage: build, script: x}\nc: {stage: build, script: x}\n"
         "t: {needs: [{job: a, artifacts: false}, c], script: x}\n",
         {"a": {}, "c": {}, "t": {"needs": ["a", "c"], "dependencies": ["c"]}}),
    Case("dependencies-not-in-needs", "a: {stage: build, script: x}\nc: {stage: build, script: x}\n"
         "t: {needs: [a], dependencies: [c], script: x}\n",
         [(3, "jobs:t dependencies the c should be part of needs")]),
    Case("pipeline-job", "t: {needs: [{pipeline: $PARENT_PIPELINE_ID, job: build}], script: x}\n",
         {"t": {"needs": [], "cross_needs": [{"pipeline": "$PARENT_PIPELINE_ID", "job": "build", "artifacts": True}]}}),
    Case("project-job", "a: {stage: build, script: x}\n"
         "t: {needs: [a, {project: g/p, job: build, ref: main, artifacts: false}], script: x}\n",
         {"a": {}, "t": {"needs": ["a"], "cross_needs": [{"project": "g/p", "ref": "main", "job": "build", "artifacts": False}]}}),
    Case("pipeline-without-job", "t: {needs: [{pipeline: g/p}], script: x}\n",
         [(1, "jobs:t:needs config uses invalid types: bridge")]),
    Case("project-without-ref", "t: {needs: [{project: g/p, job: build}], script: x}\n",
         [(1, "jobs:t:needs:need ref can't be blank")]),
    Case("pipeline-unknown-key", "t: {needs: [{pipeline: '1', job: b, optional: true}], script: x}\n",
         [(1, "jobs:t:needs:need config contains unknown keys: optional")]),
    Case("cross-needs-limit", "t:\n  script: x\n  needs:\n" + "".join(f"    - {{pipeline: '1', job: j{i}}}\n" for i in range(6)),
         [(3, "jobs:t:needs config must be less than or equal to 5")]),
    Case("dependencies-same-stage", "a: {script: x}\nb: {script: x, dependencies: [a]}\n",
         {"a": {}, "b": {"dependencies": ["a"]}}),
    Case("dependencies-later-stage", "a: {stage: deploy, script: x}\nb: {script: x, dependencies: [a]}\n",
         [(2, "b job: dependency a is not defined in current or prior stages")]),
]

VALUES = [
    Case("variables-null", """
        variables: {A: null, B: x}
        j:
          variables: {B: null, C: ~}
          script: x
        """, {"j": {"variables": {"A": "", "B": "", "C": ""}}}),
    Case("rules-variables-null", "j:\n  script: x\n  rules: [{if: $X, variables: {A: null}}]\n",
         [(3, "jobs:j:rules:rule:variables:a config must be a string")]),
    Case("annotations-list", "a: {script: x, artifacts: {reports: {annotations: [a.json, b.json]}}}\n",
         {"a": {"artifacts": [{"name": "annotations", "untracked": False, "paths": ["a.json", "b.json"],
                               "exclude": [], "when": "always", "artifact_type": "annotations",
                               "artifact_format": "raw", "expire_in": None}]}}),
    Case("artifacts-empty-paths", "a: {script: x, artifacts: {paths: [], when: always}}\n",
         {"a": {"artifacts": []}}),
]

TEMPLATES = MemoryResolver(
    {"ci/prod.yml": "prod: {script: prod}\n"},
    templates={
        "Workflows/Branch-Pipelines.gitlab-ci.yml": "workflow:\n  rules:\n    - if: $CI_COMMIT_TAG\n"
        "    - if: $CI_COMMIT_BRANCH\n",
        "Jobs/Lint.gitlab-ci.yml": "lint: {script: lint}\n",
        "Lint.gitlab-ci.yml": "include: {template: Jobs/Lint.gitlab-ci.yml}\n",
    },
)
T = {"resolver": TEMPLATES}
ENV = {"resolver": TEMPLATES, "context": PipelineContext(project_variables={"ENV": "prod"})}
INCLUDES = [
    Case("template", "include: [{template: Workflows/Branch-Pipelines.gitlab-ci.yml}, {template: Lint.gitlab-ci.yml}]\n"
         "j: {script: x}\n", ["lint", "j"], T),
    Case("template-missing", "include: {template: Nope.gitlab-ci.yml}\nj: {script: x}\n",
         [(1, "Included file `Nope.gitlab-ci.yml` is empty or does not exist!")], T),
    Case("template-bad-name", "include: {template: ../secrets.yml}\nj: {script: x}\n",
         [(1, "Template file `../secrets.yml` is not a valid location!")], T),
    Case("local-braced-variable", "include: {local: 'ci/${ENV}.yml'}\nj: {script: x}\n", ["prod", "j"], ENV),
    Case("local-yaml-variable-not-used", "variables: {F: ci/prod}\ninclude: {local: $F.yml}\nj: {script: x}\n",
         [(2, "Local file `$F.yml` does not exist!")], ENV),
]


@params(FLATTENING + NEEDS + VALUES + INCLUDES)
def test_case(case: Case) -> None:
    check(case)
