"""Cases: include (local, wildcards, project, remote, template, nesting, limits, rules, inputs)
and spec:inputs."""

from __future__ import annotations

import pytest

from conveyor.ciconfig import MemoryResolver, PipelineContext
from tests.unit.ciconfig.cases import Case, check, params

pytestmark = pytest.mark.unit

FILES = {
    "ci/build.yml": "build:\n  stage: build\n  script: make\n",
    "ci/test.yml": "test:\n  script: pytest\nvariables:\n  FROM: test\n",
    "ci/sub/deploy.yml": "deploy:\n  stage: deploy\n  script: ship\n",
    "ci/sub/deeper/lint.yml": "lint:\n  script: ruff\n",
    "ci/notes.txt": "not yaml",
    "nested/a.yml": "include: nested/b.yml\na:\n  script: a\n  variables: {WHO: a}\n",
    "nested/b.yml": "b:\n  script: b\n  variables: {WHO: b}\n",
    "loop.yml": "include: loop.yml\n",
    "empty.yml": "",
    "broken.yml": "a:\n  script: [unclosed\n",
    "list.yml": "- a\n",
    "templates/job.yml": (
        "spec:\n  inputs:\n    name: {}\n    stage: {default: test}\n    retries: {type: number, default: 1}\n"
        "    env: {options: [dev, prod], default: dev}\n    flags: {type: array, default: [-v]}\n"
        "    fast: {type: boolean, default: false}\n    version: {regex: '^v\\d+$', default: v1}\n"
        "---\n"
        "'$[[ inputs.name ]]':\n  stage: $[[ inputs.stage ]]\n  retry: $[[ inputs.retries ]]\n"
        "  script:\n    - echo $[[ inputs.env ]] $[[ inputs.version | truncate(0, 1) ]]\n"
        "    - $[[ inputs.flags ]]\n"
        "  variables:\n    FAST: $[[ inputs.fast ]]\n"
    ),
    "override.yml": "job:\n  script: from-include\n  variables: {A: include, B: include}\n  tags: [a, b]\n",
    "merge-default.yml": "default:\n  image: ruby\n  before_script: [setup]\n",
    "vars/prod.yml": "prod:\n  script: prod\n",
}
RESOLVER = MemoryResolver(
    FILES,
    projects={
        ("group/shared", None): {"ci/lint.yml": "shared-lint:\n  script: lint\n",
                                 "ci/nested.yml": "include: ci/lint.yml\nshared-b:\n  script: b\n"},
        ("group/shared", "v1"): {"ci/lint.yml": "shared-lint:\n  script: lint-v1\n"},
    },
    remotes={"https://example.com/ci.yml": "remote:\n  script: from-remote\n"},
)
R = {"resolver": RESOLVER}


def with_context(**kwargs: object) -> dict[str, object]:
    return {"resolver": RESOLVER, "context": PipelineContext(**kwargs)}  # type: ignore[arg-type]


def many(count: int) -> MemoryResolver:
    files = {f"f{i}.yml": f"j{i}:\n  script: x\n" for i in range(count)}
    return MemoryResolver(files)


CASES = [
    Case("local-string", "include: ci/build.yml\nmain:\n  script: x\n",
         {"build": {"stage": "build", "script": ["make"]}, "main": {}}, R),
    Case("local-leading-slash", "include: /ci/build.yml\nmain:\n  script: x\n", ["build", "main"], R),
    Case("local-hash-list", "include:\n  - local: ci/build.yml\n  - local: ci/test.yml\n",
         {"build": {}, "test": {"variables": {"FROM": "test"}}}, R),
    Case("included-globals-apply", "include: ci/test.yml\nmain:\n  script: x\n",
         {"test": {"variables": {"FROM": "test"}}, "main": {"variables": {"FROM": "test"}}}, R),
    Case("wildcard-one-level", "include: 'ci/*.yml'\n", ["build", "test"], R),
    Case("wildcard-recursive", "include: 'ci/**.yml'\n", ["build", "lint", "test", "deploy"], R),
    Case("wildcard-subdirectories-only", "include: 'ci/**/*.yml'\n", ["lint", "deploy"], R),
    Case("wildcard-no-match", "include: 'none/*.yml'\nj:\n  script: x\n",
         [(1, "Local file `none/*.yml` does not exist!")], R),
    Case("local-missing", "include: ci/nope.yml\nj:\n  script: x\n",
         [(1, "Local file `ci/nope.yml` does not exist!")], R),
    Case("local-not-yaml", "include: ci/notes.txt\nj:\n  script: x\n",
         [(1, "Included file `ci/notes.txt` does not have YAML extension!")], R),
    Case("local-traversal", "include: ../secret.yml\nj:\n  script: x\n",
         [(1, "Local file `../secret.yml` does not exist!")], R),
    Case("local-dot-slash", "include: ./ci/build.yml\n", ["build"], R),
    Case("local-inner-traversal", "include: ci/../../secret.yml\nj:\n  script: x\n",
         [(1, "Local file `ci/../../secret.yml` does not exist!")], R),
    Case("local-empty", "include: empty.yml\nj:\n  script: x\n",
         [(1, "Local file `empty.yml` is empty!")], R),
    Case("local-not-a-mapping", "include: list.yml\nj:\n  script: x\n",
         [(1, "Included file `list.yml` does not have valid YAML syntax!")], R),
    Case("nested-includes-merge-in-order", "include: nested/a.yml\n", {"a": {"variables": {"WHO": "a"}},
                                                                        "b": {"variables": {"WHO": "b"}}}, R),
    Case("main-file-wins", """
        include: override.yml
        job:
          variables: {B: main}
          tags: [c]
        """, {"job": {"script": ["from-include"], "variables": {"A": "include", "B": "main"},
                      "tags": ["c"]}}, R),
    Case("later-include-wins", "include: [override.yml, ci/build.yml]\njob:\n  script: main\n",
         {"job": {"script": ["main"]}, "build": {}}, R),
    Case("included-default", "include: merge-default.yml\nj:\n  script: x\n",
         {"j": {"image": {"name": "ruby"}, "script": ["setup", "x"]}}, R),
    Case("include-loop-hits-limit", "include: loop.yml\nj:\n  script: x\n",
         [(1, "Maximum of 150 nested includes are allowed!")], R),
    Case("include-150-allowed", "include: [" + ", ".join(f"f{i}.yml" for i in range(150)) + "]\n",
         [f"j{i}" for i in range(150)], {"resolver": many(150)}),
    Case("include-151-refused", "include: [" + ", ".join(f"f{i}.yml" for i in range(151)) + "]\n",
         [(1, "Maximum of 150 nested includes are allowed!")], {"resolver": many(151)}),
    Case("include-yaml-error-in-file", "include: broken.yml\nj:\n  script: x\n",
         [(3, "(did not find expected ',' or ']' while parsing a flow sequence at line 2 column 11)")], R),
    Case("project-file", "include:\n  project: group/shared\n  file: ci/lint.yml\n",
         {"shared-lint": {"script": ["lint"]}}, R),
    Case("project-ref-and-list", "include:\n  project: group/shared\n  ref: v1\n  file: [ci/lint.yml]\n",
         {"shared-lint": {"script": ["lint-v1"]}}, R),
    Case("project-nested-local", "include:\n  project: group/shared\n  file: ci/nested.yml\n",
         ["shared-lint", "shared-b"], R),
    Case("project-unknown", "include: {project: other/x, file: a.yml}\nj:\n  script: x\n",
         [(1, "Project `other/x` not found or access denied! Make sure any includes in the "
              "pipeline configuration are correctly defined.")], R),
    Case("project-missing-file", "include: {project: group/shared, file: nope.yml}\nj:\n  script: x\n",
         [(1, "Project `group/shared` file `nope.yml` does not exist!")], R),
    Case("project-bad-ref", "include: {project: group/shared, ref: v9, file: a.yml}\nj:\n  script: x\n",
         [(1, "Project `group/shared` reference `v9` does not exist!")], R),
    Case("remote", "include: https://example.com/ci.yml\n", {"remote": {"script": ["from-remote"]}}, R),
    Case("remote-hash", "include:\n  remote: https://example.com/ci.yml\n", ["remote"], R),
    Case("remote-404", "include: {remote: 'https://example.com/none.yml'}\nj:\n  script: x\n",
         [(1, "Remote file `https://example.com/none.yml` could not be fetched because of HTTP code "
              "`404` error!")], R),
    Case("remote-bad-address", "include: {remote: 'ftp://example.com/a.yml'}\nj:\n  script: x\n",
         [(1, "Remote file `ftp://example.com/a.yml` does not have a valid address!")], R),
    Case("remote-integrity-mismatch",
         "include: {remote: 'https://example.com/ci.yml', integrity: 'sha256-AAAA'}\nj:\n  script: x\n",
         [(1, "Remote file `https://example.com/ci.yml` failed the integrity check!")], R),
    Case("template-without-source", "include: {template: Auto-DevOps.gitlab-ci.yml}\nj:\n  script: x\n",
         [(1, "Template file `Auto-DevOps.gitlab-ci.yml` cannot be included: no template source is "
              "configured (set CONVEYOR_CI_TEMPLATES_DIR to a directory holding GitLab's "
              "lib/gitlab/ci/templates)")], R),
    Case("component-refused", "include: {component: gitlab.com/a/b/c@1}\nj:\n  script: x\n",
         [(1, "Component 'gitlab.com/a/b/c@1' - the component path is not supported")], R),
    Case("two-accessors", "include: {local: a.yml, remote: 'https://x/a.yml'}\nj:\n  script: x\n",
         [(1, 'Include `{"local":"a.yml","remote":"https://x/a.yml"}` needs to match exactly one accessor!')], R),
    Case("include-unknown-key", "include: {local: a.yml, when: always}\nj:\n  script: x\n",
         [(1, "include config contains unknown keys: when")], R),
    Case("include-bad-type", "include: 3\nj:\n  script: x\n",
         [(1, "include config should be a hash, a string or an array")], R),
    Case("include-variables-in-path", "include: vars/$ENV.yml\n",
         ["prod"], with_context(variables={"ENV": "prod"})),
    Case("include-rules-if-true", """
        include:
          - local: ci/build.yml
            rules:
              - if: $CI_COMMIT_BRANCH == "main"
        j:
          script: x
        """, ["build", "j"], R),
    Case("include-rules-if-false", """
        include:
          - local: ci/build.yml
            rules:
              - if: $CI_COMMIT_BRANCH == "release"
        j:
          script: x
        """, ["j"], R),
    Case("include-rules-never", """
        include:
          - local: ci/build.yml
            rules:
              - if: $CI_COMMIT_BRANCH
                when: never
              - when: always
        j:
          script: x
        """, ["j"], R),
    Case("include-rules-exists", """
        include:
          - local: ci/build.yml
            rules:
              - exists: [Makefile]
        j:
          script: x
        """, ["build", "j"], with_context(repository_files=("Makefile", "src/a.c"))),
    Case("include-rules-bad-when", """
        include:
          - local: ci/build.yml
            rules: [{when: manual}]
        j:
          script: x
        """, [(3, "include:rules:rule when should be one of: never, always")], R),
    Case("include-rules-bad-key", """
        include:
          - local: ci/build.yml
            rules: [{allow_failure: true}]
        j:
          script: x
        """, [(3, "include:rules:rule config contains unknown keys: allow_failure")], R),
    # --- spec:inputs ----------------------------------------------------------------------------
    Case("inputs-defaults", "include:\n  - local: templates/job.yml\n    inputs: {name: unit}\n",
         {"unit": {"stage": "test", "retry_max": 1, "script": ["echo dev v", "-v"],
                   "variables": {"FAST": "false"}}}, R),
    Case("inputs-given", """
        include:
          - local: templates/job.yml
            inputs:
              name: deploy-prod
              stage: deploy
              retries: 2
              env: prod
              flags: [-x, -y]
              fast: true
              version: v22
        """, {"deploy-prod": {"stage": "deploy", "retry_max": 2,
                              "script": ["echo prod v", "-x", "-y"], "variables": {"FAST": "true"}}}, R),
    Case("inputs-required", "include: {local: templates/job.yml}\n",
         [(1, "`name` input: required value has not been provided")], R),
    Case("inputs-option", "include: {local: templates/job.yml, inputs: {name: a, env: qa}}\n",
         [(1, "`env` input: `qa` cannot be used because it is not in the list of allowed options")], R),
    Case("inputs-type", "include: {local: templates/job.yml, inputs: {name: a, retries: many}}\n",
         [(1, "`retries` input: provided value is not a number")], R),
    Case("inputs-boolean-type", "include: {local: templates/job.yml, inputs: {name: a, fast: 'yes'}}\n",
         [(1, "`fast` input: provided value is not a boolean")], R),
    Case("inputs-array-type", "include: {local: templates/job.yml, inputs: {name: a, flags: -v}}\n",
         [(1, "`flags` input: provided value is not an array")], R),
    Case("inputs-regex", "include: {local: templates/job.yml, inputs: {name: a, version: '1.0'}}\n",
         [(1, "`version` input: provided value does not match required RegEx pattern")], R),
    Case("inputs-unknown", "include: {local: templates/job.yml, inputs: {name: a, colour: red}}\n",
         [(1, "unknown input arguments: colour")], R),
    Case("inputs-without-spec", "include: {local: ci/build.yml, inputs: {a: b}}\n",
         [(1, "Given inputs not defined in the `spec` section of the included configuration file")], R),
    Case("inputs-main-file", """
        spec:
          inputs:
            target: {default: world}
        ---
        hello:
          script: echo hello $[[ inputs.target ]]
        """, {"hello": {"script": ["echo hello world"]}}),
    Case("inputs-unknown-key", """
        spec:
          inputs:
            target: {default: world}
        ---
        hello:
          script: echo $[[ inputs.other ]]
        """, [(2, "unknown interpolation key: `other`")]),
    Case("inputs-bad-type-spec", """
        spec:
          inputs:
            target: {type: date}
        ---
        hello:
          script: x
        """, [(2, "unknown input specification for `target` (valid types: array, boolean, number, string)")]),
]


@params(CASES)
def test_case(case: Case) -> None:
    check(case)


def test_issues_name_the_file_that_holds_the_problem() -> None:
    from conveyor import ciconfig, pipeline

    resolver = MemoryResolver({
        "jobs.yml": "x:\n  script: x\n  needs: [ghost]\ny:\n  script: y\n  colour: red\n",
    })
    config_text = "include: jobs.yml\nz:\n  script: z\n  stage: nope\n"
    with pytest.raises(ciconfig.ConfigError) as caught:
        pipeline.build(ciconfig.load(config_text, resolver=resolver))
    assert [(i.file, i.line, i.message) for i in caught.value.issues] == [
        ("jobs.yml", 6, "jobs:y config contains unknown keys: colour"),
        (".gitlab-ci.yml", 4, "z job: chosen stage nope does not exist; available stages are "
                              ".pre, build, test, deploy, .post"),
    ]
    with pytest.raises(ciconfig.ConfigError) as caught:
        pipeline.build(ciconfig.load("include: jobs.yml\n", resolver=MemoryResolver(
            {"jobs.yml": "x:\n  script: x\n  needs: [ghost]\n"})))
    assert [(i.file, i.line, i.message) for i in caught.value.issues] == [
        ("jobs.yml", 3, "x job: undefined need: ghost"),
    ]
