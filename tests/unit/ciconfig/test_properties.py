"""Property tests: whatever the input, ``load`` and ``build`` end with a result or a
``ConfigError`` (never another exception), within a time and memory bound measured here.

The bounds are generous multiples of what this machine needs for a large valid configuration
(measured once per session), so a slow shared machine does not make them flaky, while an
exponential blow-up (alias bombs, ``!reference``/``extends`` fan-out, deep nesting) would.
"""

from __future__ import annotations

import functools
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor import ciconfig, pipeline

pytestmark = pytest.mark.unit

SETTINGS = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
KEYWORDS = [
    "script", "stage", "stages", "variables", "needs", "rules", "if", "when", "extends", "include",
    "local", "default", "image", "services", "artifacts", "cache", "paths", "parallel", "matrix",
    "only", "except", "changes", "exists", "retry", "inherit", "workflow", "tags", "dependencies",
    "environment", "before_script", "after_script", "allow_failure", "start_in", "timeout", "spec",
    "inputs", "job", ".hidden", "build", "test", "$CI_COMMIT_BRANCH == 'main'", "never", "always",
]
FILES = {"a.yml": "a:\n  script: x\n", "b.yml": "include: a.yml\nb:\n  extends: a\n"}


@functools.lru_cache(maxsize=1)
def budget() -> tuple[float, int]:
    """(seconds, bytes) allowed per input: 50x a 500-job configuration's cost, at least 5 s and
    256 MiB."""
    text = "".join(
        f"job{i}:\n  stage: test\n  script: [echo {i}]\n  variables: {{A: b}}\n"
        f"  rules:\n    - if: $CI_COMMIT_BRANCH == 'main'\n" for i in range(500)
    )
    seconds, peak = measure(lambda: pipeline.build(ciconfig.load(text)))
    return max(50 * seconds, 5.0), max(50 * peak, 256 * 1024 * 1024)


def measure(action: Callable[[], Any]) -> tuple[float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        action()
    except ciconfig.ConfigError:
        pass
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, peak


def load_and_build(text: str) -> None:
    config = ciconfig.load(text, resolver=ciconfig.MemoryResolver(FILES))
    pipeline.build(config)


def check_bounded(text: str) -> None:
    seconds, peak = measure(lambda: load_and_build(text))
    allowed_seconds, allowed_bytes = budget()
    assert seconds < allowed_seconds, f"{seconds:.2f} s for {text[:200]!r}"
    assert peak < allowed_bytes, f"{peak} bytes for {text[:200]!r}"


scalars = st.one_of(
    st.sampled_from(KEYWORDS), st.text(max_size=12), st.integers(-3, 300), st.booleans(), st.none()
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.sampled_from(KEYWORDS) | st.text(max_size=8), children, max_size=6),
    ),
    max_leaves=40,
)


@SETTINGS
@given(documents)
def test_random_structures_end_in_a_result_or_a_config_error(document: Any) -> None:
    check_bounded(yaml.safe_dump(document, allow_unicode=True))


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!<>|'\"#\n  .$%@`,?")) , max_size=300))
def test_random_text_ends_in_a_result_or_a_config_error(text: str) -> None:
    check_bounded(text)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_unicode_ends_in_a_result_or_a_config_error(text: str) -> None:
    check_bounded(text)


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\njob:\n  script: *a{levels - 1}\n"


def reference_bomb(levels: int) -> str:
    text = ".r0:\n  s: [" + ", ".join(["x"] * 10) + "]\n"
    for i in range(1, levels):
        text += f".r{i}:\n  s: [" + ", ".join([f"!reference [.r{i - 1}, s]"] * 10) + "]\n"
    return text + f"job:\n  script: !reference [.r{levels - 1}, s]\n"


def extends_fan_out(jobs: int) -> str:
    template = ".t:\n  script: x\n" + "".join(f"  k{i}: {i}\n" for i in range(2000))
    return template + "".join(f"j{i}:\n  extends: .t\n" for i in range(jobs))


HOSTILE = {
    "alias-bomb": (alias_bomb(9), "The parsed YAML is too big"),
    "reference-bomb": (reference_bomb(9), "The parsed YAML is too big"),
    "extends-fan-out": (extends_fan_out(2000), "The parsed YAML is too big"),
    "deep-nesting": ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", "The parsed YAML is too deep"),
    "deep-mappings": ("a: " + "{k: " * 30_000 + "x" + "}" * 30_000 + "\n", "too deep"),
    "huge-document": ("a:\n  script: [" + ", ".join(["x" * 100] * 12_000) + "]\n", "over 1048576 bytes"),
    "many-nodes": ("a:\n  script: [" + ", ".join(["x"] * 120_000) + "]\n", "more than 100000 nodes"),
    "reference-deepening": (".a: " + "[" * 60 + "x" + "]" * 60 + "\n.b: " + "[" * 60 + "!reference [.a]"
                            + "]" * 60 + "\njob:\n  script: x\n  release: !reference [.b]\n", "too deep"),
    "alias-deepening": ("x: &x " + "[" * 60 + "y" + "]" * 60 + "\nz: " + "[" * 60 + "*x" + "]" * 60
                        + "\njob:\n  script: x\n", "too deep"),
    "long-expression": ("a:\n  script: x\n  rules: [{if: '" + "(" * 5000 + "$A" + ")" * 5000 + "'}]\n",
                        "invalid expression syntax"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_clearly_within_bounds(name: str) -> None:
    text, fragment = HOSTILE[name]
    with pytest.raises(ciconfig.ConfigError) as caught:
        load_and_build(text)
    assert any(fragment in issue.message for issue in caught.value.issues), caught.value
    check_bounded(text)


def test_include_fan_out_is_bounded() -> None:
    files = {f"f{i}.yml": "include: [" + ", ".join(f"f{i + 1}.yml" for _ in range(10)) + "]\n" for i in range(20)}
    files["f20.yml"] = "leaf:\n  script: x\n"
    text = textwrap.dedent("include: f0.yml\njob:\n  script: x\n")
    with pytest.raises(ciconfig.ConfigError) as caught:
        ciconfig.load(text, resolver=ciconfig.MemoryResolver(files))
    assert [issue.message for issue in caught.value.issues] == ["Maximum of 150 nested includes are allowed!"]


def test_included_text_is_bounded_in_total() -> None:
    big = "a:\n  script: [" + ", ".join(["x" * 60] * 15_000) + "]\n"  # under 1 MiB each
    files = {f"f{i}.yml": big.replace("a:", f"a{i}:") for i in range(5)}
    text = "include: [" + ", ".join(files) + "]\n"
    with pytest.raises(ciconfig.ConfigError) as caught:
        ciconfig.load(text, resolver=ciconfig.MemoryResolver(files))
    assert [issue.message for issue in caught.value.issues] == [
        "The parsed YAML is too big: the included files are over 4194304 bytes"
    ]
