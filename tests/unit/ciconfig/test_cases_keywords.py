"""Cases: image, services, artifacts, cache, retry, interruptible, resource_group, delayed jobs,
allow_failure:exit_codes, environment, coverage, dependencies, and their ``default:`` forms."""

from __future__ import annotations

import pytest

from tests.unit.ciconfig.cases import Case, check, params

pytestmark = pytest.mark.unit

ARCHIVE = {"untracked": False, "exclude": [], "when": "on_success", "artifact_type": "archive",
           "artifact_format": "zip", "expire_in": None, "name": "artifacts"}

CASES = [
    # --- image ----------------------------------------------------------------------------------
    Case("image-string", "j:\n  image: ruby:3.3\n  script: x\n",
         {"j": {"image": {"name": "ruby:3.3"}}}),
    Case("image-hash", """
        j:
          image:
            name: ruby:3.3
            entrypoint: ['']
            pull_policy: if-not-present
            docker: {user: dave, platform: arm64/v8}
          script: x
        """, {"j": {"image": {"name": "ruby:3.3", "entrypoint": [""],
                               "pull_policy": ["if-not-present"],
                               "executor_opts": {"docker": {"user": "dave", "platform": "arm64/v8"}}}}}),
    Case("image-pull-policy-list", "j:\n  image: {name: a, pull_policy: [always, never]}\n  script: x\n",
         {"j": {"image": {"name": "a", "pull_policy": ["always", "never"]}}}),
    Case("image-default", "default:\n  image: alpine\nj:\n  script: x\nk:\n  image: debian\n  script: y\n",
         {"j": {"image": {"name": "alpine"}}, "k": {"image": {"name": "debian"}}}),
    Case("image-global-deprecated", "image: alpine\nj:\n  script: x\n",
         {"j": {"image": {"name": "alpine"}}}),
    Case("image-none", "j:\n  script: x\n", {"j": {"image": None, "services": []}}),
    Case("image-global-and-default", "image: a\ndefault:\n  image: b\nj:\n  script: x\n",
         [(1, "image is defined in top-level and `default:` entry")]),
    Case("image-bad-type", "j:\n  image: [a]\n  script: x\n",
         [(2, "jobs:j:image config should be a hash or a string")]),
    Case("image-unknown-key", "j:\n  image: {name: a, tag: b}\n  script: x\n",
         [(2, "jobs:j:image config contains unknown keys: tag")]),
    Case("image-no-name", "j:\n  image: {entrypoint: [a]}\n  script: x\n",
         [(2, "jobs:j:image name can't be blank")]),
    Case("image-entrypoint-string", "j:\n  image: {name: a, entrypoint: sh}\n  script: x\n",
         [(2, "jobs:j:image entrypoint should be an array of strings")]),
    Case("image-pull-policy-bad", "j:\n  image: {name: a, pull_policy: sometimes}\n  script: x\n",
         [(2, "jobs:j:image:pull_policy config is not included in the list")]),
    Case("image-pull-policy-bad-list", "j:\n  image: {name: a, pull_policy: [always, maybe]}\n  script: x\n",
         [(2, "jobs:j:image:pull_policy config contains unknown values: maybe")]),
    Case("image-docker-unknown", "j:\n  image: {name: a, docker: {memory: 1g}}\n  script: x\n",
         [(2, "jobs:j:image:docker config contains unknown keys: memory")]),
    Case("default-image-error", "default:\n  image: {}\nj:\n  script: x\n",
         [(2, "default:image name can't be blank")]),
    # --- services -------------------------------------------------------------------------------
    Case("services-strings", "j:\n  services: [postgres:16, redis]\n  script: x\n",
         {"j": {"services": [{"name": "postgres:16"}, {"name": "redis"}]}}),
    Case("services-hash", """
        j:
          services:
            - name: postgres:16
              alias: db
              entrypoint: [docker-entrypoint.sh]
              command: [postgres, -c, fsync=off]
              variables: {POSTGRES_PASSWORD: secret, PORT: 5432}
          script: x
        """, {"j": {"services": [{"name": "postgres:16", "alias": "db",
                                  "entrypoint": ["docker-entrypoint.sh"],
                                  "command": ["postgres", "-c", "fsync=off"],
                                  "variables": [{"key": "POSTGRES_PASSWORD", "value": "secret"},
                                                {"key": "PORT", "value": "5432"}]}]}}),
    Case("services-default-replaced", """
        default:
          services: [redis]
        a:
          script: x
        b:
          services: [postgres]
          script: x
        """, {"a": {"services": [{"name": "redis"}]}, "b": {"services": [{"name": "postgres"}]}}),
    Case("services-not-list", "j:\n  services: redis\n  script: x\n",
         [(2, "jobs:j:services config should be a array")]),
    Case("services-bad-item", "j:\n  services: [[redis]]\n  script: x\n",
         [(2, "jobs:j:services:service config should be a hash or a string")]),
    Case("services-bad-alias", "j:\n  services: [{name: a, alias: [b]}]\n  script: x\n",
         [(2, "jobs:j:services:service alias should be a string")]),
    Case("services-bad-command", "j:\n  services: [{name: a, command: run}]\n  script: x\n",
         [(2, "jobs:j:services:service command should be an array of strings")]),
    Case("services-unknown-key", "j:\n  services: [{name: a, port: 1}]\n  script: x\n",
         [(2, "jobs:j:services:service config contains unknown keys: port")]),
    # --- artifacts ------------------------------------------------------------------------------
    Case("artifacts-paths", "j:\n  artifacts: {paths: [dist/, '*.log']}\n  script: x\n",
         {"j": {"artifacts": [{**ARCHIVE, "paths": ["dist/", "*.log"]}]}}),
    Case("artifacts-full", """
        j:
          script: x
          artifacts:
            name: "$CI_JOB_NAME"
            paths: [out]
            exclude: [out/*.tmp]
            untracked: true
            when: always
            expire_in: 1 week
        """, {"j": {"artifacts": [{**ARCHIVE, "name": "$CI_JOB_NAME", "paths": ["out"],
                                   "exclude": ["out/*.tmp"], "untracked": True, "when": "always",
                                   "expire_in": "1 week"}]}}),
    Case("artifacts-reports", """
        j:
          script: x
          artifacts:
            paths: [a]
            reports:
              junit: report.xml
              dotenv: [build.env]
        """, {"j": {"artifacts": [
            {**ARCHIVE, "paths": ["a"]},
            {"name": "junit", "untracked": False, "paths": ["report.xml"], "exclude": [],
             "when": "always", "artifact_type": "junit", "artifact_format": "gzip", "expire_in": None},
            {"name": "dotenv", "untracked": False, "paths": ["build.env"], "exclude": [],
             "when": "always", "artifact_type": "dotenv", "artifact_format": "gzip", "expire_in": None},
        ]}}),
    Case("artifacts-reports-only", "j:\n  script: x\n  artifacts: {reports: {codequality: cq.json}}\n",
         {"j": {"artifacts": [{"name": "codequality", "untracked": False, "paths": ["cq.json"],
                               "exclude": [], "when": "always", "artifact_type": "codequality",
                               "artifact_format": "raw", "expire_in": None}]}}),
    Case("artifacts-expire-never", "j:\n  script: x\n  artifacts: {paths: [a], expire_in: never}\n",
         {"j": {"artifacts": [{**ARCHIVE, "paths": ["a"], "expire_in": "never"}]}}),
    Case("artifacts-default", "default:\n  artifacts: {paths: [a]}\nj:\n  script: x\n",
         {"j": {"artifacts": [{**ARCHIVE, "paths": ["a"]}]}}),
    Case("artifacts-not-hash", "j:\n  script: x\n  artifacts: [a]\n",
         [(3, "jobs:j:artifacts config should be a hash")]),
    Case("artifacts-unknown", "j:\n  script: x\n  artifacts: {paths: [a], keep: 1}\n",
         [(3, "jobs:j:artifacts config contains unknown keys: keep")]),
    Case("artifacts-when", "j:\n  script: x\n  artifacts: {paths: [a], when: never}\n",
         [(3, "jobs:j:artifacts when should be one of: on_success, on_failure, always")]),
    Case("artifacts-paths-string", "j:\n  script: x\n  artifacts: {paths: a}\n",
         [(3, "jobs:j:artifacts paths should be an array of strings")]),
    Case("artifacts-expire-bad", "j:\n  script: x\n  artifacts: {paths: [a], expire_in: soon}\n",
         [(3, "jobs:j:artifacts expire_in should be a duration")]),
    Case("artifacts-untracked-bad", "j:\n  script: x\n  artifacts: {untracked: yes please}\n",
         [(3, "jobs:j:artifacts untracked should be a boolean value")]),
    Case("artifacts-report-unknown", "j:\n  script: x\n  artifacts: {reports: {xunit: a}}\n",
         [(3, "jobs:j:artifacts:reports config contains unknown keys: xunit")]),
    Case("artifacts-report-bad", "j:\n  script: x\n  artifacts: {reports: {junit: {a: b}}}\n",
         [(3, "jobs:j:artifacts:reports junit should be an array of strings or a string")]),
    # --- cache ----------------------------------------------------------------------------------
    Case("cache-hash", "j:\n  script: x\n  cache: {key: gems, paths: [vendor/]}\n",
         {"j": {"cache": [{"key": "gems", "untracked": False, "policy": "pull-push",
                           "paths": ["vendor/"], "when": "on_success", "fallback_keys": []}]}}),
    Case("cache-defaults", "j:\n  script: x\n  cache: {paths: [a]}\n",
         {"j": {"cache": [{"key": "default", "untracked": False, "policy": "pull-push",
                           "paths": ["a"], "when": "on_success", "fallback_keys": []}]}}),
    Case("cache-list", """
        j:
          script: x
          cache:
            - {key: a, paths: [a], policy: pull, when: always, fallback_keys: [main-a]}
            - {key: b, untracked: true, policy: push}
        """, {"j": {"cache": [
            {"key": "a", "untracked": False, "policy": "pull", "paths": ["a"], "when": "always",
             "fallback_keys": ["main-a"]},
            {"key": "b", "untracked": True, "policy": "push", "paths": [], "when": "on_success",
             "fallback_keys": []}]}}),
    Case("cache-policy-variable", "j:\n  script: x\n  cache: {key: a, policy: $POLICY}\n",
         {"j": {"cache": [{"key": "a", "untracked": False, "policy": "$POLICY", "paths": [],
                           "when": "on_success", "fallback_keys": []}]}}),
    Case("cache-global", "cache: {key: k, paths: [p]}\nj:\n  script: x\nk:\n  script: x\n  cache: []\n",
         {"j": {"cache": [{"key": "k", "untracked": False, "policy": "pull-push", "paths": ["p"],
                           "when": "on_success", "fallback_keys": []}]}, "k": {"cache": []}}),
    Case("cache-too-many", "j:\n  script: x\n  cache: [{key: a}, {key: b}, {key: c}, {key: d}, {key: e}]\n",
         [(3, "jobs:j:cache config no more than 4 caches can be created")]),
    Case("cache-policy-bad", "j:\n  script: x\n  cache: {policy: fetch}\n",
         [(3, "jobs:j:cache policy should be a variable or one of: pull-push, push, pull")]),
    Case("cache-when-bad", "j:\n  script: x\n  cache: {when: never}\n",
         [(3, "jobs:j:cache when should be one of: on_success, on_failure, always")]),
    Case("cache-key-slash", "j:\n  script: x\n  cache: {key: a/b}\n",
         [(3, 'jobs:j:cache:key config cannot contain the "/" character')]),
    Case("cache-key-dots", "j:\n  script: x\n  cache: {key: '..'}\n",
         [(3, 'jobs:j:cache:key config cannot be "." or ".."')]),
    Case("cache-unknown", "j:\n  script: x\n  cache: {key: a, path: [b]}\n",
         [(3, "jobs:j:cache config contains unknown keys: path")]),
    Case("cache-fallback-too-many", "j:\n  script: x\n  cache: {fallback_keys: [a, b, c, d, e, f]}\n",
         [(3, "jobs:j:cache fallback_keys has to many entries (maximum 5)")]),
    Case("cache-key-files-too-many", "j:\n  script: x\n  cache: {key: {files: [a, b, c]}}\n",
         [(3, "jobs:j:cache:key:files config has too many entries (maximum 2)")]),
    # --- retry ----------------------------------------------------------------------------------
    Case("retry-int", "j:\n  script: x\n  retry: 2\n",
         {"j": {"retry_max": 2, "retry_when": ["always"], "retry_exit_codes": []}}),
    Case("retry-hash", "j:\n  script: x\n  retry: {max: 1, when: [script_failure, api_failure], exit_codes: 137}\n",
         {"j": {"retry_max": 1, "retry_when": ["script_failure", "api_failure"], "retry_exit_codes": [137]}}),
    Case("retry-when-string", "j:\n  script: x\n  retry: {max: 2, when: runner_system_failure}\n",
         {"j": {"retry_max": 2, "retry_when": ["runner_system_failure"]}}),
    Case("retry-default", "default:\n  retry: 1\nj:\n  script: x\nk:\n  script: x\n  retry: 0\n",
         {"j": {"retry_max": 1}, "k": {"retry_max": 0}}),
    Case("retry-none", "j:\n  script: x\n", {"j": {"retry_max": 0, "retry_when": ["always"]}}),
    Case("retry-too-many", "j:\n  script: x\n  retry: 3\n",
         [(3, "retry config must be less than or equal to 2")]),
    Case("retry-negative", "j:\n  script: x\n  retry: -1\n",
         [(3, "retry config must be greater than or equal to 0")]),
    Case("retry-string", "j:\n  script: x\n  retry: twice\n",
         [(3, "retry config has to be either an integer or a hash")]),
    Case("retry-when-unknown", "j:\n  script: x\n  retry: {when: flaky}\n",
         [(3, "retry when is not included in the list")]),
    Case("retry-when-unknown-list", "j:\n  script: x\n  retry: {when: [always, flaky]}\n",
         [(3, "retry when contains unknown values: flaky")]),
    Case("retry-max-too-big", "j:\n  script: x\n  retry: {max: 5}\n",
         [(3, "retry max must be less than or equal to 2")]),
    Case("retry-unknown-key", "j:\n  script: x\n  retry: {max: 1, delay: 5}\n",
         [(3, "retry config contains unknown keys: delay")]),
    # --- interruptible, resource_group, delayed, allow_failure:exit_codes -----------------------
    Case("interruptible", "default:\n  interruptible: true\nj:\n  script: x\nk:\n  script: x\n  interruptible: false\n",
         {"j": {"interruptible": True}, "k": {"interruptible": False}}),
    Case("interruptible-bad", "j:\n  script: x\n  interruptible: sometimes\n",
         [(3, "jobs:j:interruptible config should be a boolean value")]),
    Case("resource-group", "j:\n  script: x\n  resource_group: production\n",
         {"j": {"resource_group": "production"}}),
    Case("resource-group-bad", "j:\n  script: x\n  resource_group: [a]\n",
         [(3, "jobs:j resource_group should be a string")]),
    Case("delayed", "j:\n  script: x\n  when: delayed\n  start_in: 10 minutes\n",
         {"j": {"when": "delayed", "start_in": 600}}),
    Case("delayed-seconds", "j:\n  script: x\n  when: delayed\n  start_in: '5'\n",
         {"j": {"start_in": 5}}),
    Case("delayed-too-long", "j:\n  script: x\n  when: delayed\n  start_in: 8 days\n",
         [(4, "jobs:j start_in should not exceed the limit")]),
    Case("delayed-bad-duration", "j:\n  script: x\n  when: delayed\n  start_in: later\n",
         [(4, "jobs:j start_in should be a duration")]),
    Case("start-in-without-delayed", "j:\n  script: x\n  start_in: 5 minutes\n",
         [(3, "jobs:j start_in must be blank")]),
    Case("allow-failure-exit-codes", "j:\n  script: x\n  allow_failure: {exit_codes: [1, 137]}\n",
         {"j": {"allow_failure": False, "allow_failure_exit_codes": [1, 137]}}),
    Case("allow-failure-exit-code", "j:\n  script: x\n  allow_failure: {exit_codes: 3}\n",
         {"j": {"allow_failure": False, "allow_failure_exit_codes": [3]}}),
    # --- environment, coverage, dependencies ----------------------------------------------------
    Case("environment-string", "j:\n  script: x\n  environment: production\n",
         {"j": {"environment": {"name": "production", "action": "start"}}}),
    Case("environment-hash", """
        j:
          script: x
          environment:
            name: review/$CI_COMMIT_REF_SLUG
            url: https://$CI_COMMIT_REF_SLUG.example.com
            on_stop: stop
            auto_stop_in: 1 day
            deployment_tier: development
        stop:
          script: x
          when: manual
          environment: {name: review/$CI_COMMIT_REF_SLUG, action: stop}
        """, {"j": {"environment": {"name": "review/main",
                                    "url": "https://main.example.com",
                                    "on_stop": "stop", "auto_stop_in": "1 day",
                                    "deployment_tier": "development", "action": "start"}},
              "stop": {"environment": {"name": "review/main", "action": "stop"}}}),
    Case("environment-bad-type", "j:\n  script: x\n  environment: [a]\n",
         [(3, "jobs:j:environment config should be a hash or a string")]),
    Case("environment-no-name", "j:\n  script: x\n  environment: {url: 'https://x'}\n",
         [(3, "jobs:j:environment name can't be blank")]),
    Case("environment-bad-name", "j:\n  script: x\n  environment: 'prod!'\n",
         [(3, "jobs:j:environment name can contain only letters, digits, '-', '_', '/', '$', "
              "'{', '}', '.', and spaces, but it cannot start or end with '/'")]),
    Case("environment-bad-action", "j:\n  script: x\n  environment: {name: a, action: deploy}\n",
         [(3, "jobs:j:environment action should be start, prepare, stop, verify or access")]),
    Case("environment-bad-tier", "j:\n  script: x\n  environment: {name: a, deployment_tier: prod}\n",
         [(3, "jobs:j:environment deployment_tier must be one of production, staging, testing, "
              "development, other")]),
    Case("environment-unknown", "j:\n  script: x\n  environment: {name: a, region: eu}\n",
         [(3, "jobs:j:environment config contains unknown keys: region")]),
    Case("coverage", "j:\n  script: x\n  coverage: '/Total: (\\d+\\.\\d+)%/'\n",
         {"j": {"coverage": "Total: (\\d+\\.\\d+)%"}}),
    Case("coverage-no-slashes", "j:\n  script: x\n  coverage: 'Total: \\d+'\n",
         [(3, "jobs:j:coverage config must be a regular expression")]),
    Case("dependencies", "a:\n  stage: build\n  script: x\nb:\n  script: x\n  dependencies: [a]\n",
         {"a": {"dependencies": None}, "b": {"dependencies": ["a"]}}),
    Case("dependencies-empty", "a:\n  script: x\n  dependencies: []\n", {"a": {"dependencies": []}}),
    Case("dependencies-undefined", "a:\n  script: x\n  dependencies: [nope]\n",
         [(1, "a job: undefined dependency: nope")]),
    Case("dependencies-same-stage", "a:\n  script: x\nb:\n  script: x\n  dependencies: [a]\n",
         {"a": {}, "b": {"dependencies": ["a"]}}),
    Case("dependencies-not-in-needs", """
        a:
          stage: build
          script: x
        c:
          stage: build
          script: x
        b:
          script: x
          needs: [a]
          dependencies: [a, c]
        """, [(11, "jobs:b dependencies the c should be part of needs")]),
    Case("dependencies-bad", "a:\n  script: x\n  dependencies: a\n",
         [(3, "jobs:a dependencies should be an array of strings")]),
]


@params(CASES)
def test_case(case: Case) -> None:
    check(case)
