"""Cases: the forms real pipelines use most (issue 21), with GitLab's results and texts.

Lists that an alias or a ``!reference`` nests inside ``rules``, ``workflow:rules``, ``needs``,
``cache`` and scripts are flattened (GitLab's composable arrays); ``needs`` naming
``parallel:matrix`` instances, ``optional``, ``artifacts``, ``pipeline:job`` and ``project``;
``dependencies`` on the same stage; ``variables`` with null values; the editor schema no longer
refusing what GitLab's entry validators accept; ``include: template:`` and ``${VAR}`` paths.
"""

from __future__ import annotations

import hashlib

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


FORWARD = {"yaml_variables": True, "pipeline_variables": False}
TRIGGERS = [
    Case("trigger-project-string", "t: {trigger: g/p}\n",
         {"t": {"trigger": {"project": "g/p", "strategy": None, "forward": FORWARD}, "script": []}}),
    Case("trigger-child", "t: {trigger: {include: c.yml, strategy: depend, forward: {pipeline_variables: true}}}\n",
         {"t": {"trigger": {"include": [{"local": "c.yml"}], "strategy": "depend",
                            "forward": {"yaml_variables": True, "pipeline_variables": True}}}}),
    Case("trigger-project-branch", "t:\n  trigger: {project: g/p, branch: $B, strategy: mirror}\n  variables: {A: 1}\n",
         {"t": {"trigger": {"project": "g/p", "branch": "$B", "strategy": "mirror", "forward": FORWARD},
                "variables": {"A": "1"}}}),
    Case("trigger-matrix", "t: {trigger: g/p, parallel: {matrix: [{P: [a, b]}]}}\n",
         {"t: [a]": {"variables": {"P": "a"}}, "t: [b]": {"variables": {"P": "b"}}}),
    Case("trigger-dynamic", "gen: {stage: build, script: x}\nt: {trigger: {include: [{artifact: g.yml, job: gen}]}}\n",
         {"gen": {}, "t": {"trigger": {"include": [{"artifact": "g.yml", "job": "gen"}], "strategy": None, "forward": FORWARD}}}),
    Case("trigger-child-inputs", "t: {trigger: {include: [c.yml, {local: d.yml}], inputs: {stage: build}}}\n",
         {"t": {"trigger": {"include": [{"local": "c.yml", "inputs": {"stage": "build"}}, {"local": "d.yml", "inputs": {"stage": "build"}}],
                            "strategy": None, "forward": FORWARD}}}),
    Case("trigger-project-inputs", "t: {trigger: {project: g/p, inputs: {n: 1}}}\n",
         {"t": {"trigger": {"project": "g/p", "inputs": {"n": 1}, "strategy": None, "forward": FORWARD}}}),
    Case("trigger-inputs-twice", "t: {trigger: {include: [{local: c.yml, inputs: {a: 1}}], inputs: {a: 2}}}\n",
         [(1, "jobs:t:trigger inputs cannot be used together with include:inputs")]),
    Case("trigger-too-many-includes", "t: {trigger: {include: [a.yml, b.yml, c.yml, d.yml]}}\n",
         [(1, "jobs:t:trigger:include config is too long (maximum is 3)")]),
    Case("trigger-needs-only", "a: {script: x}\nt: {needs: [a]}\n",
         [(2, "jobs:t config should contain either a trigger or a needs:pipeline")]),
    Case("trigger-bad-strategy", "t: {trigger: {project: g/p, strategy: wait}}\n",
         [(1, "jobs:t:trigger strategy should be depend or mirror")]),
    Case("trigger-number", "t: {trigger: 5}\n", [(1, "jobs:t:trigger has to be either a string or a hash")]),
    Case("trigger-no-project", "t: {trigger: {branch: x}}\n", [(1, "jobs:t:trigger project can't be blank")]),
    Case("trigger-unknown-key", "t: {trigger: {project: a, foo: 1}}\n", [(1, "jobs:t:trigger config contains unknown keys: foo")]),
    Case("trigger-image", "t: {trigger: g/p, image: x}\n", [(1, "jobs:t config contains unknown keys: image")]),
    Case("trigger-with-script", "t: {trigger: g/p, script: x}\n", [(1, "jobs:t config contains unknown keys: trigger")]),
    Case("trigger-delayed", "t: {trigger: g/p, when: delayed}\n",
         [(1, "jobs:t when should be one of: on_success, on_failure, always, manual")]),
    Case("trigger-exit-codes", "t: {trigger: g/p, allow_failure: {exit_codes: 1}}\n",
         [(1, "jobs:t allow_failure should be a boolean value")]),
    Case("trigger-parallel-number", "t: {trigger: g/p, parallel: 3}\n",
         [(1, 'jobs:t:parallel config cannot use "parallel: <number>".')]),
    Case("trigger-forward-type", "t: {trigger: {project: g/p, forward: {yaml_variables: 'no'}}}\n",
         [(1, "jobs:t:trigger:forward yaml_variables should be a boolean value")]),
    Case("trigger-artifact-without-job", "t: {trigger: {include: [{artifact: g.yml}]}}\n",
         [(1, "jobs:t:trigger:include config must specify the job where to fetch the artifact from")]),
    Case("trigger-artifact-unknown-job", "t: {trigger: {include: [{artifact: g.yml, job: nope}]}}\n",
         [(1, "t job: undefined dependency: nope")]),
    Case("trigger-needs-pipeline", "t: {trigger: g/p, needs: [{pipeline: '1', job: a}]}\n",
         [(1, "jobs:t:needs config uses invalid types: cross_dependency")]),
    Case("artifact-include-outside-child", "include: [{artifact: g.yml, job: gen}]\nj: {script: x}\n",
         [(1, "Including configs from artifacts is only allowed when triggering child pipelines")]),
]
CHILD = PipelineContext(source="parent_pipeline")
ARTIFACTS = MemoryResolver(artifacts={("gen", "g.yml"): "child: {script: x}\n", ("gen", "empty.yml"): ""})
ARTIFACT_INCLUDES = [
    Case("artifact-include", "include: [{artifact: g.yml, job: gen}]\n", ["child"],
         {"context": CHILD, "resolver": ARTIFACTS}),
    Case("artifact-include-no-job", "include: [{artifact: g.yml, job: other}]\n",
         [(1, "Job `other` not found in parent pipeline or does not have artifacts!")], {"context": CHILD, "resolver": ARTIFACTS}),
    Case("artifact-include-empty", "include: [{artifact: empty.yml, job: gen}]\n",
         [(1, "File `empty.yml` is empty!")], {"context": CHILD, "resolver": ARTIFACTS}),
]


@params(FLATTENING + NEEDS + VALUES + INCLUDES + TRIGGERS + ARTIFACT_INCLUDES)
def test_case(case: Case) -> None:
    check(case)


COMPONENT_PROJECTS = {
    ("g/comp", ref): {"templates/lint.yml": f"spec:\n  inputs:\n    stage: {{default: test}}\n---\nlint-{ref}:\n  stage: $[[ inputs.stage ]]\n  script: lint\n"}
    for ref in ("1.0.0", "1.1.0", "1.1.1", "1.2.0", "2.0.0", "2.0.1", "2.1.0", "2.2.0-rc1", "main")
}
COMPONENT_PROJECTS[("g/dir", "main")] = {
    "templates/build/template.yml": "include: [{local: helper.yml}]\nbuild-it: {script: make}\n",
    "helper.yml": "helper: {script: help}\n",
}
COMPONENT_PROJECTS[("g/dir", None)] = COMPONENT_PROJECTS[("g/dir", "main")]
COMPONENT_PROJECTS[("g/p/a", "1")] = {"templates/b.yml": "b-job: {script: b}\n"}
COMPONENT_CONTEXT = PipelineContext(server_url="https://ci.example.com", project_path="g/app", sha="c" * 40)
OWN = MemoryResolver(projects={**COMPONENT_PROJECTS, ("g/app", "c" * 40): {"templates/own.yml": "own: {script: x}\n"}})
C = {"resolver": OWN, "context": COMPONENT_CONTEXT}
HOST = "ci.example.com"


def _component(address: str, extra: str = "") -> str:
    return f"include:\n  - component: {address}\n{extra}"


COMPONENTS = [
    Case("component-own-project", _component("$CI_SERVER_FQDN/$CI_PROJECT_PATH/own@$CI_COMMIT_SHA"), ["own"], C),
    Case("component-tag-with-inputs", _component(f"{HOST}/g/comp/lint@1.1.0", "    inputs: {stage: build}\n"),
         {"lint-1.1.0": {"stage": "build"}}, C),
    Case("component-latest", _component(f"{HOST}/g/comp/lint@~latest"), ["lint-2.1.0"], C),
    Case("component-major", _component(f"{HOST}/g/comp/lint@1"), ["lint-1.2.0"], C),
    Case("component-minor", _component(f"{HOST}/g/comp/lint@1.1"), ["lint-1.1.1"], C),
    Case("component-branch", _component(f"{HOST}/g/comp/lint@main"), ["lint-main"], C),
    Case("component-template-dir-nested-local", _component(f"{HOST}/g/dir/build@main"), ["helper", "build-it"], C),
    Case("component-nested-project-path", _component(f"{HOST}/g/p/a/b@1"), ["b-job"], C),
    Case("component-other-host", _component("gitlab.com/g/comp/lint@1.0.0"),
         [(2, "Component 'gitlab.com/g/comp/lint@1.0.0' - the component path is not supported")], C),
    Case("component-no-version", _component(f"{HOST}/g/comp/lint"),
         [(2, f"Component '{HOST}/g/comp/lint' - the component path is not supported")], C),
    Case("component-unknown-ref", _component(f"{HOST}/g/comp/lint@nope"),
         [(2, f"Component '{HOST}/g/comp/lint@nope' - content not found")], C),
    Case("component-missing-file", _component(f"{HOST}/g/comp/other@main"),
         [(2, f"Component '{HOST}/g/comp/other@main' - content not found")], C),
    Case("component-unknown-project", _component(f"{HOST}/g/none/lint@main"),
         [(2, f"Component '{HOST}/g/none/lint@main' - content not found")], C),
    Case("component-latest-without-versions", _component(f"{HOST}/g/dir/build@~latest"),
         [(2, f"Component '{HOST}/g/dir/build@~latest' - The ~latest version reference is not supported for "
              "non-catalog resources. Use a tag, branch, or commit SHA instead.")], C),
    Case("component-partial-without-versions", _component(f"{HOST}/g/dir/build@3"),
         [(2, f"Component '{HOST}/g/dir/build@3' - The partial semantic version reference is not supported "
              "for non-catalog resources. Use a tag, branch, or commit SHA instead.")], C),
]


@params(COMPONENTS)
def test_component(case: Case) -> None:
    check(case)


BLOBS = {"Gemfile.lock": "b1", "yarn.lock": "b2"}
COMMITS = {"Gemfile.lock": "c1", "yarn.lock": "c1"}


def _hashes(kind: str, paths: list[str]) -> list[str | None]:
    return [(BLOBS if kind == "files" else COMMITS).get(path) for path in paths]


HASHED = {"context": PipelineContext(file_hashes=_hashes)}
CACHE_ENTRY = {"untracked": False, "policy": "pull-push", "paths": ["vendor"], "when": "on_success", "fallback_keys": []}
CACHE_KEYS = [
    Case("cache-key-files", "j:\n  script: x\n  cache: {key: {files: [Gemfile.lock, yarn.lock]}, paths: [vendor]}\n",
         {"j": {"cache": [{"key": hashlib.sha1(b"b1-b2").hexdigest(), **CACHE_ENTRY}]}}, HASHED),
    Case("cache-key-files-prefix", "j:\n  script: x\n  cache: {key: {files: [yarn.lock], prefix: $CI_JOB_NAME}, paths: [vendor]}\n",
         {"j": {"cache": [{"key": "$CI_JOB_NAME-" + hashlib.sha1(b"b2").hexdigest(), **CACHE_ENTRY}]}}, HASHED),
    Case("cache-key-files-commits", "j:\n  script: x\n  cache: {key: {files_commits: [Gemfile.lock, yarn.lock]}, paths: [vendor]}\n",
         {"j": {"cache": [{"key": hashlib.sha1(b"c1").hexdigest(), **CACHE_ENTRY}]}}, HASHED),
    Case("cache-key-files-missing", "j:\n  script: x\n  cache: {key: {files: [none.lock], prefix: p}, paths: [vendor]}\n",
         {"j": {"cache": [{"key": "p-default", **CACHE_ENTRY}]}}, HASHED),
    Case("cache-key-too-many-files", "j:\n  script: x\n  cache: {key: {files: [a, b, c]}, paths: [vendor]}\n",
         [(3, "jobs:j:cache:key:files config has too many entries (maximum 2)")]),
]


@params(CACHE_KEYS)
def test_cache_key(case: Case) -> None:
    check(case)


STOPPER = "stop:\n  script: x\n  when: manual\n  environment: {name: review, action: stop}\n"
ON_STOP = [
    Case("on-stop-valid", "a:\n  script: x\n  environment: {name: review, on_stop: stop}\n" + STOPPER, ["a", "stop"]),
    Case("on-stop-undefined", "a:\n  script: x\n  environment: {name: review, on_stop: nope}\n",
         [(1, "a job: on_stop job nope is not defined")]),
    Case("on-stop-no-environment", "a:\n  script: x\n  environment: {name: review, on_stop: b}\nb: {script: x}\n",
         [(1, "a job: on_stop job b does not have environment defined")]),
    Case("on-stop-other-environment", "a:\n  script: x\n  environment: {name: other, on_stop: stop}\n" + STOPPER,
         [(1, "a job: on_stop job stop have different environment name")]),
    Case("on-stop-not-stopping", "a:\n  script: x\n  environment: {name: review, on_stop: b}\nb:\n  script: x\n  environment: review\n",
         [(1, "a job: on_stop job b needs to have action stop defined")]),
]


@params(ON_STOP)
def test_on_stop(case: Case) -> None:
    check(case)


def _project_files(project: str, ref: str | None) -> list[str] | None:
    trees = {("g/tools", None): ["Dockerfile"], ("g/tools", "v2"): ["Dockerfile", "ci/lint.yml"]}
    return trees.get((project, ref))


OTHER = {"context": PipelineContext(project_files=_project_files, variables={"TOOLS": "g/tools"})}
EXISTS_PROJECT = [
    Case("exists-project-default-branch", "a:\n  script: x\n  rules:\n    - exists: {paths: [Dockerfile], project: $TOOLS}\n"
         "b:\n  script: x\n  rules:\n    - exists: {paths: [ci/*.yml], project: g/tools}\n", ["a"], OTHER),
    Case("exists-project-ref", "b:\n  script: x\n  rules:\n    - exists: {paths: [ci/*.yml], project: g/tools, ref: v2}\n", ["b"], OTHER),
    Case("exists-unknown-project", "a:\n  script: x\n  rules:\n    - exists: {paths: [x], project: g/none}\n    - when: never\n"
         "b: {script: x}\n", ["b"], OTHER),
    Case("exists-ref-without-project", "a:\n  script: x\n  rules:\n    - exists: {paths: [x], ref: main}\n",
         [(4, "jobs:a:rules:rule:exists ref requires project")]),
]


@params(EXISTS_PROJECT)
def test_exists_project(case: Case) -> None:
    check(case)
