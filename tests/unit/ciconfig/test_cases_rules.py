"""Cases: rules (if, changes, exists, when, allow_failure, variables, needs, start_in),
only/except, workflow:rules and workflow:name."""

from __future__ import annotations

import pytest

from conveyor.ciconfig import PipelineContext
from tests.unit.ciconfig.cases import Case, check, params

pytestmark = pytest.mark.unit


def ctx(**kwargs: object) -> dict[str, object]:
    return {"context": PipelineContext(**kwargs)}  # type: ignore[arg-type]


TAG = ctx(ref="v1.2.0", tag=True)
SCHEDULE = ctx(source="schedule")
MR = ctx(source="merge_request_event", ref="feature")
FEATURE = ctx(ref="feature/login")
PUSHED = ctx(changed_files=("src/app.py", "docs/index.md"), repository_files=("src/app.py", "Dockerfile", "docs/index.md"))


def job(rules: str, extra: str = "") -> str:
    return f"job:\n  script: x\n{extra}  rules:\n{rules}other:\n  script: y\n"


CASES = [
    # --- rules:if ---------------------------------------------------------------------------------
    Case("if-branch-true", job('    - if: $CI_COMMIT_BRANCH == "main"\n'), ["job", "other"]),
    Case("if-branch-false", job('    - if: $CI_COMMIT_BRANCH == "main"\n'), ["other"], FEATURE),
    Case("if-no-match-not-added", job('    - if: $NOPE\n'), ["other"]),
    Case("if-presence", job("    - if: $CI_COMMIT_TAG\n"), ["job", "other"], TAG),
    Case("if-null", job("    - if: $CI_COMMIT_TAG == null\n"), ["job", "other"]),
    Case("if-not-equal", job("    - if: $CI_PIPELINE_SOURCE != 'schedule'\n"), ["other"], SCHEDULE),
    Case("if-regex", job("    - if: $CI_COMMIT_REF_NAME =~ /^feature\\//\n"), ["job", "other"], FEATURE),
    Case("if-regex-flag", job("    - if: $CI_COMMIT_REF_NAME =~ /^FEATURE/i\n"), ["job", "other"], FEATURE),
    Case("if-not-regex", job("    - if: $CI_COMMIT_REF_NAME !~ /^feature/\n"), ["other"], FEATURE),
    Case("if-and-or-parens", job(
        '    - if: ($CI_COMMIT_BRANCH == "x" || $CI_COMMIT_BRANCH == "main") && $CI_PIPELINE_SOURCE == "push"\n'),
        ["job", "other"]),
    Case("if-and-binds-tighter", job('    - if: $NOPE && $NOPE || $CI\n'), ["job", "other"]),
    Case("if-job-variable", job("    - if: $DEPLOY == 'yes'\n", "  variables: {DEPLOY: 'yes'}\n"),
         ["job", "other"]),
    Case("if-global-variable", "variables: {FLAG: 'true'}\n" + job("    - if: $FLAG == 'true'\n"), ["job", "other"]),
    Case("if-pipeline-variable", job("    - if: $RUN_IT\n"), ["job", "other"], ctx(variables={"RUN_IT": "1"})),
    Case("if-empty-variable-is-false", job("    - if: $E\n", "  variables: {E: ''}\n"), ["other"]),
    Case("if-invalid", job("    - if: ${CI} == 'true'\n"), [(4, "jobs:job:rules:rule if invalid expression syntax")]),
    Case("first-rule-wins", job("    - if: $CI\n      when: manual\n    - when: always\n"),
         {"job": {"when": "manual"}, "other": {}}),
    Case("when-never", job("    - if: $CI\n      when: never\n    - when: always\n"), ["other"]),
    Case("rule-only-when", job("    - when: always\n"), {"job": {"when": "always"}, "other": {}}),
    Case("rule-uses-job-when", job("    - if: $CI\n", "  when: on_failure\n"), {"job": {"when": "on_failure"}, "other": {}}),
    Case("rules-manual-is-blocking", job("    - when: manual\n"),
         {"job": {"when": "manual", "allow_failure": False}, "other": {}}),
    Case("rules-manual-allow-failure", job("    - when: manual\n      allow_failure: true\n"),
         {"job": {"when": "manual", "allow_failure": True}, "other": {}}),
    Case("rules-allow-failure-overrides", job("    - if: $CI\n      allow_failure: true\n"),
         {"job": {"allow_failure": True}, "other": {}}),
    Case("rules-delayed", job("    - when: delayed\n      start_in: 1 hour\n"),
         {"job": {"when": "delayed", "start_in": 3600}, "other": {}}),
    Case("rules-delayed-without-start-in", job("    - when: delayed\n"),
         [(4, "jobs:job:rules:rule start_in should be a duration")]),
    Case("rules-variables", job("    - if: $CI\n      variables: {A: rule}\n", "  variables: {A: job, B: job}\n"),
         {"job": {"variables": {"A": "rule", "B": "job"}}, "other": {}}),
    Case("rules-needs", """
        build:
          stage: build
          script: x
        lint:
          stage: build
          script: x
        test:
          script: x
          needs: [build]
          rules:
            - if: $CI
              needs: [lint]
        """, {"build": {}, "lint": {}, "test": {"needs": ["lint"]}}),
    Case("rules-needs-undefined", "test:\n  script: x\n  rules:\n    - needs: [ghost]\n",
         [(4, "test job: undefined need: ghost")]),
    Case("rules-interruptible", job("    - if: $CI\n      interruptible: true\n"),
         {"job": {"interruptible": True}, "other": {}}),
    Case("rules-bad-when", job("    - when: later\n"),
         [(4, "jobs:job:rules:rule when should be one of: on_success, on_failure, always, never, manual, delayed")]),
    Case("rules-unknown-key", job("    - if: $CI\n      stage: x\n"),
         [(4, "jobs:job:rules:rule config contains unknown keys: stage")]),
    Case("rules-not-array", "job:\n  script: x\n  rules: {if: $CI}\n",
         [(3, "jobs:job:rules config should be an array of hashes")]),
    Case("rules-blank", "job:\n  script: x\n  rules: []\n", [(3, "jobs:job:rules config can't be blank")]),
    Case("rules-with-only", "job:\n  script: x\n  only: [main]\n  rules: [{when: always}]\n",
         [(4, "jobs:job config key may not be used with `rules`: only")]),
    Case("rules-start-in-outside", "job:\n  script: x\n  when: delayed\n  start_in: 1h\n  rules: [{when: always}]\n",
         [(5, "jobs:job config key may not be used with `rules`: start_in")]),
    # --- rules:changes and rules:exists ----------------------------------------------------------
    Case("changes-match", job("    - changes: ['src/**/*']\n"), ["job", "other"], PUSHED),
    Case("changes-no-match", job("    - changes: ['lib/*']\n"), ["other"], PUSHED),
    Case("changes-brace", job("    - changes: ['**/*.{md,txt}']\n"), ["job", "other"], PUSHED),
    Case("changes-one-level", job("    - changes: ['*.py']\n"), ["other"], PUSHED),
    Case("changes-paths-form", job("    - changes:\n        paths: [docs/*]\n"), ["job", "other"], PUSHED),
    Case("changes-true-for-schedules", job("    - changes: ['lib/*']\n"), ["job", "other"],
         ctx(source="schedule", changed_files=())),
    Case("changes-true-for-tags", job("    - changes: ['lib/*']\n"), ["job", "other"],
         ctx(ref="v1", tag=True, changed_files=())),
    Case("changes-compare-to", job("    - changes:\n        paths: [lib/*]\n        compare_to: main\n"),
         ["job", "other"], ctx(changed_files=(), compare_to=lambda ref: ["lib/a.rb"] if ref == "main" else None)),
    Case("changes-variable-in-path", job("    - changes: [$DIR/*]\n", "  variables: {DIR: docs}\n"),
         ["job", "other"], PUSHED),
    Case("changes-too-many", job("    - changes: [" + ", ".join(f"p{i}" for i in range(51)) + "]\n"),
         [(4, "jobs:job:rules:rule:changes config has too many entries (maximum 50)")]),
    Case("exists-match", job("    - exists: [Dockerfile]\n"), ["job", "other"], PUSHED),
    Case("exists-glob", job("    - exists: ['**/*.py']\n"), ["job", "other"], PUSHED),
    Case("exists-no-match", job("    - exists: [Makefile]\n"), ["other"], PUSHED),
    Case("exists-directory", job("    - exists: [docs/]\n"), ["job", "other"], PUSHED),
    Case("exists-and-if", job("    - if: $NOPE\n      exists: [Dockerfile]\n"), ["other"], PUSHED),
    # --- only / except ----------------------------------------------------------------------------
    Case("default-only-branches-tags", "job:\n  script: x\n", ["job"], TAG),
    Case("default-only-not-mr", "job:\n  script: x\nmr:\n  script: x\n  only: [merge_requests]\n", ["mr"], MR),
    Case("only-branch-name", "job:\n  script: x\n  only: [main]\nother:\n  script: y\n", ["job", "other"]),
    Case("only-branch-name-other", "job:\n  script: x\n  only: [main]\nother:\n  script: y\n", ["other"], FEATURE),
    Case("only-regex", "job:\n  script: x\n  only: ['/^feature\\/.*/']\nother:\n  script: y\n", ["job", "other"], FEATURE),
    Case("only-tags", "job:\n  script: x\n  only: [tags]\nother:\n  script: y\n", ["other"]),
    Case("only-tags-on-tag", "job:\n  script: x\n  only: [tags]\nother:\n  script: y\n", ["job", "other"], TAG),
    Case("only-schedules", "job:\n  script: x\n  only: [schedules]\nother:\n  script: y\n", ["job", "other"], SCHEDULE),
    Case("except-branch", "job:\n  script: x\n  except: [main]\nother:\n  script: y\n", ["other"]),
    Case("except-tags", "job:\n  script: x\n  except: [tags]\nother:\n  script: y\n", ["job", "other"]),
    Case("only-variables", "job:\n  script: x\n  only:\n    variables: [$RELEASE == 'yes']\nother:\n  script: y\n",
         ["job", "other"], ctx(variables={"RELEASE": "yes"})),
    Case("only-refs-and-variables", "job:\n  script: x\n  only:\n    refs: [main]\n    variables: [$NOPE]\nother:\n  script: y\n",
         ["other"]),
    Case("only-changes", "job:\n  script: x\n  only:\n    changes: [docs/*]\nother:\n  script: y\n", ["job", "other"], PUSHED),
    Case("except-changes", "job:\n  script: x\n  except:\n    changes: [docs/*]\nother:\n  script: y\n", ["other"], PUSHED),
    Case("only-bad", "job:\n  script: x\n  only: 3\n",
         [(3, "jobs:job:only has to be either an array of conditions or a hash")]),
    Case("only-unknown-key", "job:\n  script: x\n  only: {branches: [main]}\n",
         [(3, "jobs:job:only config contains unknown keys: branches")]),
    # --- workflow ---------------------------------------------------------------------------------
    Case("workflow-rules-match", "workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH\njob:\n  script: x\n", ["job"]),
    Case("workflow-rules-no-match", "workflow:\n  rules:\n    - if: $CI_COMMIT_TAG\njob:\n  script: x\n",
         [(None, "Pipeline filtered out by workflow rules.")]),
    Case("workflow-rules-never", "workflow:\n  rules:\n    - if: $CI\n      when: never\n    - when: always\njob:\n  script: x\n",
         [(None, "Pipeline filtered out by workflow rules.")]),
    Case("workflow-variables", """
        variables: {ENV: dev, KEEP: k}
        workflow:
          rules:
            - if: $CI_COMMIT_BRANCH == "main"
              variables: {ENV: prod}
        job:
          script: x
        override:
          script: x
          variables: {ENV: job}
        """, {"job": {"variables": {"ENV": "prod", "KEEP": "k"}}, "override": {"variables": {"ENV": "job", "KEEP": "k"}}}),
    Case("workflow-name", "workflow:\n  name: 'Pipeline for $CI_COMMIT_REF_NAME '\njob:\n  script: x\n",
         {"job": {"predefined_variables": {"CI_PIPELINE_NAME": "Pipeline for main"}}}),
    Case("workflow-bad-when", "workflow:\n  rules: [{when: manual}]\njob:\n  script: x\n",
         [(2, "workflow:rules:rule when should be one of: never, always")]),
    Case("workflow-unknown-key", "workflow:\n  stages: [a]\njob:\n  script: x\n",
         [(2, "workflow config contains unknown keys: stages")]),
    Case("workflow-auto-cancel", "workflow:\n  auto_cancel: {on_new_commit: sometimes}\njob:\n  script: x\n",
         [(2, "workflow:auto_cancel on new commit must be one of: conservative, interruptible, none")]),
    Case("nothing-to-run", job("    - when: never\n").replace("other:\n  script: y\n", ""),
         [(None, "Pipeline will not run for the selected trigger. The rules configuration prevented "
                 "any jobs from being added to the pipeline.")]),
]


@params(CASES)
def test_case(case: Case) -> None:
    check(case)
