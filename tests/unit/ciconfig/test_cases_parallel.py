"""Cases: parallel, parallel:matrix (names, variables, limits), needs (DAG, optional,
artifacts, matrix), dependencies on parallel jobs, and variables (precedence, raw)."""

from __future__ import annotations

import pytest

from conveyor.ciconfig import PipelineContext
from tests.unit.ciconfig.cases import Case, check, params

pytestmark = pytest.mark.unit

MATRIX = """
deploy:
  stage: deploy
  script: deploy $PROVIDER $STACK
  parallel:
    matrix:
      - PROVIDER: aws
        STACK: [monitoring, app1]
      - PROVIDER: gcp
        STACK: data
"""

CASES = [
    Case("parallel-names", "rspec:\n  script: x\n  parallel: 3\n", ["rspec 1/3", "rspec 2/3", "rspec 3/3"]),
    Case("parallel-node-variables", "rspec:\n  script: x\n  parallel: 2\n",
         {"rspec 1/2": {"predefined_variables": {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"}},
          "rspec 2/2": {"predefined_variables": {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "2"}}}),
    Case("parallel-one", "rspec:\n  script: x\n  parallel: 1\n", ["rspec 1/1"]),
    Case("parallel-zero", "rspec:\n  script: x\n  parallel: 0\n",
         [(3, "jobs:rspec:parallel config must be greater than or equal to 1")]),
    Case("parallel-too-many", "rspec:\n  script: x\n  parallel: 201\n",
         [(3, "jobs:rspec:parallel config must be less than or equal to 200")]),
    Case("parallel-bad", "rspec:\n  script: x\n  parallel: lots\n",
         [(3, "jobs:rspec:parallel should be an integer or a hash")]),
    Case("matrix-names", MATRIX, ["deploy: [aws, monitoring]", "deploy: [aws, app1]", "deploy: [gcp, data]"]),
    Case("matrix-variables", MATRIX, {
        "deploy: [aws, monitoring]": {"variables": {"PROVIDER": "aws", "STACK": "monitoring"},
                                      "predefined_variables": {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}},
        "deploy: [aws, app1]": {"variables": {"PROVIDER": "aws", "STACK": "app1"}},
        "deploy: [gcp, data]": {"variables": {"PROVIDER": "gcp", "STACK": "data"}}}),
    Case("matrix-overrides-job-variables", """
        test:
          script: x
          variables: {PY: "3.11", OTHER: o}
          parallel:
            matrix:
              - PY: ["3.12", "3.13"]
        """, {"test: [3.12]": {"variables": {"PY": "3.12", "OTHER": "o"}},
              "test: [3.13]": {"variables": {"PY": "3.13", "OTHER": "o"}}}),
    Case("matrix-numbers", "t:\n  script: x\n  parallel:\n    matrix:\n      - V: [1, 2.5]\n", ["t: [1]", "t: [2.5]"]),
    Case("matrix-duplicate-names", "t:\n  script: x\n  parallel:\n    matrix:\n      - A: [x]\n      - B: [x]\n",
         {"t: [x]": {"variables": {"B": "x"}}}),
    Case("matrix-too-many", "t:\n  script: x\n  parallel:\n    matrix:\n      - A: [" + ", ".join(str(i) for i in range(15)) + "]\n        B: [" + ", ".join(str(i) for i in range(14)) + "]\n",
         [(3, "jobs:t:parallel:matrix config generates too many jobs (maximum is 200)")]),
    Case("matrix-not-list", "t:\n  script: x\n  parallel:\n    matrix: {A: x}\n",
         [(3, "jobs:t:parallel:matrix config should be an array of hashes")]),
    Case("matrix-bad-name", "t:\n  script: x\n  parallel:\n    matrix:\n      - A-B: [x]\n",
         [(3, "jobs:t:parallel:matrix variables config uses invalid names: A-B")]),
    Case("matrix-unknown-key", "t:\n  script: x\n  parallel: {matrix: [{A: x}], max: 2}\n",
         [(3, "jobs:t:parallel config contains unknown keys: max")]),
    Case("needs-parallel-all", """
        build:
          stage: build
          script: x
          parallel: 2
        test:
          script: x
          needs: [build]
        """, {"build 1/2": {}, "build 2/2": {}, "test": {"needs": ["build 1/2", "build 2/2"]}}),
    Case("needs-matrix-subset", MATRIX + """
verify:
  stage: .post
  script: x
  needs:
    - job: deploy
      parallel:
        matrix:
          - PROVIDER: aws
            STACK: app1
""", {"deploy: [aws, monitoring]": {}, "deploy: [aws, app1]": {}, "deploy: [gcp, data]": {},
      "verify": {"needs": ["deploy: [aws, app1]"]}}),
    Case("needs-expanded-name", "b:\n  stage: build\n  script: x\n  parallel: 2\nt:\n  script: x\n  needs: ['b 2/2']\n",
         {"b 1/2": {}, "b 2/2": {}, "t": {"needs": ["b 2/2"]}}),
    Case("dependencies-parallel", "b:\n  stage: build\n  script: x\n  parallel: 2\nt:\n  script: x\n  dependencies: [b]\n",
         {"b 1/2": {}, "b 2/2": {}, "t": {"dependencies": ["b 1/2", "b 2/2"]}}),
    Case("needs-empty-list", "a:\n  stage: deploy\n  script: x\n  needs: []\n", {"a": {"needs": []}}),
    Case("needs-none", "a:\n  script: x\n", {"a": {"needs": None}}),
    Case("needs-undefined", "a:\n  script: x\n  needs: [ghost]\n", [(3, "a job: undefined need: ghost")]),
    Case("needs-later-stage", "a:\n  stage: build\n  script: x\n  needs: [b]\nb:\n  stage: test\n  script: x\n",
         [(4, "a job: need b is not defined in current or prior stages")]),
    Case("needs-duplicated", "a:\n  stage: build\n  script: x\nb:\n  script: x\n  needs: [a, a]\n",
         [(6, "b has the following needs duplicated: a.")]),
    Case("needs-cycle", "a:\n  script: x\n  needs: [b]\nb:\n  script: x\n  needs: [a]\n",
         [(1, 'The pipeline has circular dependencies: topological sort failed: ["a", "b"]')]),
    Case("needs-optional-missing", "a:\n  script: x\n  needs: [{job: ghost, optional: true}]\n", {"a": {"needs": []}}),
    Case("needs-not-added", """
        a:
          stage: build
          script: x
          rules: [{if: $NOPE}]
        b:
          script: x
          needs: [a]
        """, [(8, "'b' job needs 'a' job, but 'a' does not exist in the pipeline. This might be because of the only, except, or rules keywords. To need a job that sometimes does not exist in the pipeline, use needs:optional.")]),
    Case("needs-optional-not-added", """
        a:
          stage: build
          script: x
          rules: [{if: $NOPE}]
        b:
          script: x
          needs: [{job: a, optional: true}]
        """, {"b": {"needs": []}}),
    Case("needs-artifacts-false", """
        a:
          stage: build
          script: x
        b:
          stage: build
          script: x
        c:
          script: x
          needs: [a, {job: b, artifacts: false}]
        """, {"a": {}, "b": {}, "c": {"needs": ["a", "b"], "dependencies": ["a"]}}),
    Case("needs-artifacts-default", "a:\n  stage: build\n  script: x\nc:\n  script: x\n  needs: [a]\n",
         {"a": {}, "c": {"needs": ["a"], "dependencies": None}}),
    Case("needs-not-a-list", "a:\n  script: x\n  needs: b\n",
         [(3, "jobs:a:needs config can only be an array of job names or hashes")]),
    Case("needs-empty-entry", "a:\n  script: x\n  needs: ['']\n", [(3, "jobs:a:needs entries cannot be empty")]),
    Case("needs-artifacts-flag", "b:\n  stage: build\n  script: x\na:\n  script: x\n  needs: [{job: b, artifacts: maybe}]\n",
         [(6, "jobs:a:needs:need artifacts should be a boolean value")]),
    # --- variables ----------------------------------------------------------------------------
    Case("variables-precedence", """
        variables: {G: global, J: global, R: global}
        job:
          script: x
          variables: {J: job, R: job}
          rules:
            - variables: {R: rule}
        """, {"job": {"variables": {"G": "global", "J": "job", "R": "rule"}}}),
    Case("variables-pipeline-wins", "variables: {A: yaml}\njob:\n  script: x\n  variables: {B: yaml}\n",
         {"job": {"variables": {"A": "pipe", "B": "yaml"}}},
         {"context": PipelineContext(variables={"A": "pipe"})}),
    Case("variables-raw", "variables:\n  A: {value: $B, expand: false}\njob:\n  script: x\n",
         {"job": {"variables": {"A": "$B"}, "raw_variables": ["A"]}}),
    Case("variables-global-hash", "variables:\n  ENV: {value: dev, description: where, options: [dev, prod]}\njob:\n  script: x\n",
         {"job": {"variables": {"ENV": "dev"}}}),
    Case("variables-option-mismatch", "variables:\n  ENV: {value: qa, options: [dev, prod]}\njob:\n  script: x\n",
         [(2, "variables:ENV config value must be present in options")]),
    Case("variables-job-description", "job:\n  script: x\n  variables:\n    A: {value: a, description: no}\n",
         [(4, "jobs:job:variables:A config uses invalid data keys: description")]),
    Case("variables-not-hash", "variables: [a]\njob:\n  script: x\n",
         [(1, "variables config should be a hash of key value pairs, value can be a hash")]),
    Case("variables-scalars", "variables: {N: 1, F: 1.5, B: true}\njob:\n  script: x\n",
         {"job": {"variables": {"N": "1", "F": "1.5", "B": "true"}}}),
    Case("environment-expanded", "variables: {STAGE: prod}\njob:\n  script: x\n  environment: deploy/$STAGE\n",
         {"job": {"environment": {"name": "deploy/prod", "action": "start"},
                  "predefined_variables": {"CI_ENVIRONMENT_NAME": "deploy/prod",
                                           "CI_ENVIRONMENT_SLUG": "deploy-prod-1a7b4d",
                                           "CI_ENVIRONMENT_ACTION": "start",
                                           "CI_ENVIRONMENT_TIER": "production"}}}),  # GitLab's guess_tier
    Case("resource-group-expanded", "job:\n  script: x\n  resource_group: deploy-$CI_COMMIT_REF_SLUG\n",
         {"job": {"resource_group": "deploy-main"}}),
]


@params(CASES)
def test_case(case: Case) -> None:
    check(case)
