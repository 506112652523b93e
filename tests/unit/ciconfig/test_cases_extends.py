"""Cases: anchors and merge keys, extends (deep merge, null, multi-level, limits), !reference,
default: and inherit, hidden jobs, global keywords."""

from __future__ import annotations

import pytest

from tests.unit.ciconfig.cases import Case, check, params

pytestmark = pytest.mark.unit


def chain(levels: int) -> str:
    """A job extending through ``levels`` hidden ancestors."""
    text = ".t0:\n  script: x\n"
    for i in range(1, levels):
        text += f".t{i}:\n  extends: .t{i - 1}\n"
    return text + f"job:\n  extends: .t{levels - 1}\n"


CASES = [
    # --- YAML anchors -----------------------------------------------------------------------------
    Case("anchor-merge-key", """
        .base: &base
          stage: build
          variables: {A: base, B: base}
        job:
          <<: *base
          script: x
          variables: {A: job}
        """, {"job": {"stage": "build", "variables": {"A": "job"}}}),
    Case("anchor-script-list", """
        .setup: &setup [echo one, echo two]
        job:
          script: [*setup, echo three]
        """, {"job": {"script": ["echo one", "echo two", "echo three"]}}),
    Case("anchor-undefined", "job:\n  script: *nope\n",
         [(2, "(found undefined alias 'nope')")]),
    # --- extends ----------------------------------------------------------------------------------
    Case("extends-deep-merge", """
        .base:
          stage: build
          script: base
          variables: {A: base, B: base}
          artifacts: {paths: [a], when: always}
        job:
          extends: .base
          variables: {B: job}
          artifacts: {paths: [b]}
        """, {"job": {"stage": "build", "script": ["base"], "variables": {"A": "base", "B": "job"},
                      "artifacts": [{"name": "artifacts", "untracked": False, "paths": ["b"],
                                     "exclude": [], "when": "always", "artifact_type": "archive",
                                     "artifact_format": "zip", "expire_in": None}]}}),
    Case("extends-arrays-replaced", """
        .base:
          script: [a, b]
          tags: [x, y]
        job:
          extends: .base
          tags: [z]
        """, {"job": {"script": ["a", "b"], "tags": ["z"]}}),
    Case("extends-list-order", """
        .one:
          script: one
          variables: {V: one, ONE: "1"}
        .two:
          script: two
          variables: {V: two}
        job:
          extends: [.one, .two]
        """, {"job": {"script": ["two"], "variables": {"V": "two", "ONE": "1"}}}),
    Case("extends-multi-level", """
        .a:
          script: a
          variables: {LEVEL: a, A: "1"}
        .b:
          extends: .a
          variables: {LEVEL: b}
        job:
          extends: .b
          stage: build
        """, {"job": {"script": ["a"], "stage": "build", "variables": {"LEVEL": "b", "A": "1"}}}),
    Case("extends-null-removes", """
        .base:
          script: x
          variables: {A: "1"}
          after_script: [cleanup]
        job:
          extends: .base
          variables: null
          after_script: null
        """, {"job": {"variables": {}, "after_script": []}}),
    Case("extends-empty-hash-keeps", """
        .base:
          script: x
          variables: {A: "1"}
        job:
          extends: .base
          variables: {}
        """, {"job": {"variables": {"A": "1"}}}),
    Case("extends-visible-job", "a:\n  script: a\n  stage: build\nb:\n  extends: a\n",
         {"a": {"stage": "build"}, "b": {"stage": "build", "script": ["a"]}}),
    Case("extends-11-levels", chain(10), {"job": {"script": ["x"]}}),
    Case("extends-too-deep", chain(11), [(23, "job: nesting too deep in `extends`")]),
    Case("extends-circular", ".a:\n  extends: .b\n.b:\n  extends: .a\njob:\n  extends: .a\n  script: x\n",
         [(1, ".a: circular dependency detected in `extends`")]),
    Case("extends-self", "job:\n  extends: job\n  script: x\n",
         [(1, "job: circular dependency detected in `extends`")]),
    Case("extends-unknown", "job:\n  extends: .nope\n  script: x\n",
         [(1, "job: unknown keys in `extends` (.nope)")]),
    Case("extends-invalid-base", ".base: [a]\njob:\n  extends: .base\n  script: x\n",
         [(2, "job: invalid base hashes in `extends` (.base)")]),
    Case("extends-default-not-on-hidden", """
        default:
          image: ruby
        .base:
          script: x
        job:
          extends: .base
        """, {"job": {"image": {"name": "ruby"}}}),
    # --- !reference -------------------------------------------------------------------------------
    Case("reference-script", """
        .setup:
          script: [echo a, echo b]
        job:
          script:
            - !reference [.setup, script]
            - echo c
        """, {"job": {"script": ["echo a", "echo b", "echo c"]}}),
    Case("reference-after-extends", """
        .base:
          variables: {A: "1"}
        .child:
          extends: .base
        job:
          script: x
          variables: !reference [.child, variables]
        """, {"job": {"variables": {"A": "1"}}}),
    Case("reference-nested", """
        .one:
          script: [one]
        .two:
          script: [!reference [.one, script], two]
        job:
          script: [!reference [.two, script], three]
        """, {"job": {"script": ["one", "two", "three"]}}),
    Case("reference-scalar", ".vars:\n  image: alpine\njob:\n  image: !reference [.vars, image]\n  script: x\n",
         {"job": {"image": {"name": "alpine"}}}),
    Case("reference-missing", "job:\n  script: !reference [.nope, script]\n",
         [(2, '!reference [".nope", "script"] could not be found')]),
    Case("reference-circular", """
        job-1:
          script:
            - !reference [job-2, script]
        job-2:
          script:
            - !reference [job-1, script]
        """, [(4, '!reference ["job-2", "script"] is part of a circular chain')]),
    Case("reference-too-deep", "".join(
        f".r{i}:\n  s: [!reference [.r{i + 1}, s]]\n" for i in range(11)) + ".r11:\n  s: [x]\njob:\n  script: !reference [.r0, s]\n",
        [(22, '!reference [".r11", "s"] is nested more than 10 levels deep')]),
    # --- default: and inherit ---------------------------------------------------------------------
    Case("default-keys", """
        default:
          image: ruby:3
          services: [redis]
          before_script: [bundle]
          after_script: [cleanup]
          tags: [docker]
          retry: 1
          interruptible: true
          cache: {key: k}
          artifacts: {paths: [log]}
        job:
          script: test
        """, {"job": {"image": {"name": "ruby:3"}, "services": [{"name": "redis"}],
                      "script": ["bundle", "test"], "after_script": ["cleanup"], "tags": ["docker"],
                      "retry_max": 1, "interruptible": True}}),
    Case("default-replaced-not-merged", """
        default:
          before_script: [a]
          tags: [docker]
        job:
          before_script: [b]
          tags: [shell]
          script: x
        """, {"job": {"script": ["b", "x"], "tags": ["shell"]}}),
    Case("inherit-default-false", """
        default:
          image: ruby
          before_script: [a]
        job:
          inherit: {default: false}
          script: x
        """, {"job": {"image": None, "script": ["x"]}}),
    Case("inherit-default-list", """
        default:
          image: ruby
          before_script: [a]
        job:
          inherit: {default: [image]}
          script: x
        """, {"job": {"image": {"name": "ruby"}, "script": ["x"]}}),
    Case("inherit-variables-false", """
        variables: {A: "1", B: "2"}
        job:
          inherit: {variables: false}
          variables: {C: "3"}
          script: x
        """, {"job": {"variables": {"C": "3"}}}),
    Case("inherit-variables-list", """
        variables: {A: "1", B: "2"}
        job:
          inherit: {variables: [B]}
          script: x
        """, {"job": {"variables": {"B": "2"}}}),
    Case("inherit-unknown-key", "job:\n  inherit: {image: false}\n  script: x\n",
         [(2, "jobs:job:inherit config contains unknown keys: image")]),
    Case("inherit-unknown-default", "job:\n  inherit: {default: [colour]}\n  script: x\n",
         [(2, "jobs:job:inherit:default config contains unknown values: colour")]),
    Case("default-unknown-key", "default:\n  stage: build\njob:\n  script: x\n",
         [(2, "default config contains unknown keys: stage")]),
    Case("default-not-hash", "default: [a]\njob:\n  script: x\n", [(1, "default config should be a hash")]),
    Case("before-script-twice", "before_script: [a]\ndefault:\n  before_script: [b]\njob:\n  script: x\n",
         [(1, "before_script is defined in top-level and `default:` entry")]),
    # --- hidden jobs and global keywords ----------------------------------------------------------
    Case("hidden-jobs-not-run", ".hidden:\n  script: x\n.template: {stage: build}\nvisible:\n  script: y\n",
         ["visible"]),
    Case("only-hidden-jobs", ".hidden:\n  script: x\n", [(None, "jobs config should contain at least one visible job")]),
    Case("stages-custom", "stages: [lint, build]\na:\n  stage: build\n  script: x\nb:\n  stage: lint\n  script: x\n",
         {"a": {"stage_idx": 2}, "b": {"stage_idx": 1}}),
    Case("stages-nested", "stages: [[a, b], c]\nj:\n  stage: c\n  script: x\n", {"j": {"stage_idx": 3}}),
    Case("stage-unknown", "stages: [build]\nj:\n  stage: test\n  script: x\n",
         [(3, "j job: chosen stage test does not exist; available stages are .pre, build, .post")]),
    Case("stages-not-list", "stages: build\nj:\n  script: x\n", [(1, "stages config should be an array of strings")]),
    Case("pre-and-post", "last:\n  stage: .post\n  script: x\nfirst:\n  stage: .pre\n  script: x\nmid:\n  script: x\n",
         ["first", "mid", "last"]),
    Case("job-missing-script", "job:\n  stage: test\n",
         [(1, "jobs job config should implement the script:, run:, or trigger: keyword")]),
    Case("job-unknown-key", "job:\n  script: x\n  colour: red\n", [(3, "jobs:job config contains unknown keys: colour")]),
    Case("job-when-never-outside-rules", "job:\n  script: x\n  when: never\n",
         [(3, "jobs:job when should be one of: on_success, on_failure, always, manual, delayed")]),
    Case("job-when-manual", "job:\n  script: x\n  when: manual\n", {"job": {"when": "manual", "allow_failure": True}}),
    Case("job-timeout", "job:\n  script: x\n  timeout: 1h 30m\n", {"job": {"timeout": 5400}}),
    Case("job-timeout-bad", "job:\n  script: x\n  timeout: forever\n", [(3, "jobs:job:timeout config should be a duration")]),
    Case("job-tags", "job:\n  script: x\n  tags: [docker, $RUNNER]\nvariables: {RUNNER: big}\n",
         {"job": {"tags": ["docker", "big"]}}),
    Case("job-script-too-deep", "job:\n  script: " + "[" * 11 + "x" + "]" * 11 + "\n",
         [(2, "jobs:job:script config should be a string or a nested array of strings up to 10 levels deep")]),
]


@params(CASES)
def test_case(case: Case) -> None:
    check(case)
