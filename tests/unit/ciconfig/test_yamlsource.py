"""yamlsource via ciconfig.load: YAML errors and their lines, limits, anchors, merge keys."""

from __future__ import annotations


import pytest

from conveyor import ciconfig
from conveyor.ciconfig import yamlsource
from tests.unit.ciconfig.helpers import issues, load

pytestmark = pytest.mark.unit


@pytest.fixture(params=["libyaml", "python"])
def each_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test with libyaml's events (when PyYAML has it) and with PyYAML's own parser."""
    if request.param == "python":
        monkeypatch.setattr(yamlsource, "_Loader", yamlsource._PythonLoader)
    elif not yamlsource.LIBYAML:
        pytest.skip("PyYAML without libyaml")


# --- YAML and document shape ---------------------------------------------------------------------


def test_malformed_yaml_reports_file_and_parser_line(each_parser: None) -> None:
    text = "build:\n  script:\n    - echo one\n   - echo two\n"
    with pytest.raises(ciconfig.ConfigError) as caught:
        ciconfig.load(text, filename="ci/main.yml")
    [issue] = caught.value.issues
    assert issue.file == "ci/main.yml"
    assert issue.line == 4
    assert issue.message.startswith("(") and issue.message.endswith(")")
    assert "while parsing a block mapping" in issue.message
    assert str(caught.value) == f"ci/main.yml:4: {issue.message}"


@pytest.mark.skipif(not yamlsource.LIBYAML, reason="GitLab's wording comes from libyaml")
def test_mapping_value_in_script_is_a_yaml_error_with_gitlab_wording() -> None:
    found = issues("a:\n  script: echo\nb:\n  script: echo x: y\n")
    assert found == [(4, "(mapping values are not allowed in this context)")]


@pytest.mark.skipif(not yamlsource.LIBYAML, reason="GitLab's wording comes from libyaml")
def test_bad_indentation_has_gitlab_wording() -> None:
    found = issues("a:\n  script:\n    - echo one\n   - echo two\n")
    assert found == [
        (4, "(did not find expected key while parsing a block mapping at line 2 column 3)")
    ]


def test_unknown_tag_is_reported_with_its_line(each_parser: None) -> None:
    [(line, message)] = issues("a:\n  script: !shell echo\n")
    assert line == 2
    assert "could not determine a constructor for the tag '!shell'" in message


def test_control_character_is_reported_with_its_line(each_parser: None) -> None:
    [(line, message)] = issues("a:\n  script: échö\n  stage: b\x00uild\n")
    assert line == 3
    assert "unacceptable character #x0000" in message


def test_lone_surrogate_is_reported(each_parser: None) -> None:
    assert issues("a:\n  script: \udcff\n")[0][1].startswith("(")


@pytest.mark.parametrize("text", ["", "   \n\n", "\t"])
def test_blank_file(text: str) -> None:
    assert issues(text) == [(None, "Please provide content of .gitlab-ci.yml")]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("# only a comment\n", "an empty document"),
        ("- a\n- b\n", "a YamlList"),
        ("just text\n", "a str"),
        ("42\n", "a int"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, kind: str, each_parser: None) -> None:
    assert issues(text) == [
        (None, f"Invalid configuration format: the top level must be a mapping, not {kind}")
    ]


def test_text_over_one_mebibyte_is_refused() -> None:
    text = "a:\n  script: echo\n" + "#" * (1024 * 1024) + "\n"
    [(line, message)] = issues(text)
    assert line is None
    assert message.startswith("The parsed YAML is too big")


def test_multibyte_text_is_measured_in_bytes() -> None:
    text = "a:\n  script: echo\n# " + "é" * 600_000 + "\n"  # 600k characters, 1.2 MB
    assert issues(text)[0][1].startswith("The parsed YAML is too big")


def test_alias_expansion_bomb_is_refused(each_parser: None) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    lines.append("job:\n  script: echo")
    [(_, message)] = issues("\n".join(lines) + "\n")
    assert message == "The parsed YAML is too big: more than 100000 nodes once aliases are expanded"


def test_moderate_alias_reuse_is_fine() -> None:
    config = load(
        """
        .steps: &steps [one, two, three]
        a:
          script: [*steps, *steps]
        b:
          script: *steps
        """
    )
    assert config.jobs["a"].script == ["one", "two", "three"] * 2
    assert config.jobs["b"].script == ["one", "two", "three"]


def test_recursive_alias_is_refused(each_parser: None) -> None:
    [(line, message)] = issues(".loop: &loop [a, *loop]\njob:\n  script: echo\n")
    assert (line, message) == (1, "The parsed YAML is invalid: an alias refers to itself")


def test_very_deep_nesting_is_refused(each_parser: None) -> None:
    [(_, message)] = issues("job:\n  script: " + "[" * 3000 + "]" * 3000 + "\n")
    assert message == "The parsed YAML is too deep"


@pytest.mark.parametrize("depth", [99, 100, 101, 500])
def test_the_nesting_limit_is_conveyors_not_the_parsers(each_parser: None, depth: int) -> None:
    """Exactly 100 levels pass and 101 fail, in flow and block style, with either parser:
    libyaml's own limit (newer builds) and Python's recursion limit never decide."""
    levels = depth - 1  # the job's mapping is one level
    flow = "job:\n  script: x\n  variables: " + "{a: " * (levels - 1) + "x" + "}" * (levels - 1) + "\n"
    block = "job:\n  script: x\n  variables:\n" + "".join("  " * (i + 2) + "a:\n" for i in range(levels - 2)) + "  " * levels + "a: x\n"
    for text in (flow, block):
        found = issues(text)
        if depth <= 100:
            assert not any("too deep" in message for _, message in found), found
        else:
            assert [message for _, message in found] == ["The parsed YAML is too deep"]


def test_large_flat_document_is_refused_while_composing(
    each_parser: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlsource, "MAX_NODES", 1000)
    load("job:\n  script: [" + ", ".join(["x"] * 995) + "]\n")  # 1000 nodes with the keys
    [(_, message)] = issues("job:\n  script: [" + ", ".join(["x"] * 996) + "]\n")
    assert message == "The parsed YAML is too big: more than 1000 nodes once aliases are expanded"


def test_node_limit_default() -> None:
    assert yamlsource.MAX_NODES == 100_000


def test_reference_tags_are_resolved(each_parser: None) -> None:
    config = load(
        """
        .setup:
          script: [echo setup]
        a:
          script: !reference [.setup, script]
        b:
          script:
            - !reference [.setup, script]
            - echo b
        """
    )
    assert config.jobs["a"].script == ["echo setup"]
    assert config.jobs["b"].script == ["echo setup", "echo b"]


def test_malformed_reference_tags_are_refused_with_each_line(each_parser: None) -> None:
    found = issues("a:\n  script: !reference .setup\nb:\n  script: !reference [[x]]\n")
    assert found == [
        (2, "!reference config should be an array of strings"),
        (4, "!reference config should be an array of strings"),
    ]


def test_spec_header_without_inputs_is_accepted() -> None:
    config = load("spec:\n  description: x\n---\nbuild:\n  script: make\n")
    assert list(config.jobs) == ["build"]


def test_spec_inputs_are_interpolated() -> None:
    text = "spec:\n  inputs:\n    env: {default: x}\n---\nbuild:\n  script: make $[[ inputs.env ]]\n"
    assert load(text).jobs["build"].script == ["make x"]


def test_second_document_without_spec_header_is_refused(each_parser: None) -> None:
    found = issues("a:\n  script: x\n---\nb:\n  script: y\n")
    assert found == [
        (4, "Invalid configuration format: only a spec: header document may come before ---")
    ]


def test_timestamps_and_equals_stay_strings(each_parser: None) -> None:
    config = load("variables:\n  DAY: 2024-01-31\n  EQ: =\njob:\n  script: [=]\n")
    assert config.variables == {"DAY": "2024-01-31", "EQ": "="}
    assert config.jobs["job"].script == ["="]


def test_duplicate_job_key_keeps_the_last_one() -> None:
    config = load("job:\n  script: first\njob:\n  script: second\n")
    assert config.jobs["job"].script == ["second"]
    assert config.jobs["job"].line == 3


# --- anchors and merge keys ----------------------------------------------------------------------


def test_merge_key_copies_a_template_and_local_keys_win(each_parser: None) -> None:
    config = load(
        """
        .base: &base
          stage: build
          script: [echo base]
          variables: {FROM: base}
        job:
          <<: *base
          script: [echo own]
        """
    )
    job = config.jobs["job"]
    assert (job.stage, job.script, job.variables) == ("build", ["echo own"], {"FROM": "base"})


def test_errors_in_merged_keys_point_at_the_template_line(each_parser: None) -> None:
    found = issues(
        """
        .base: &base
          stage: nowhere
        job:
          <<: *base
          script: echo
        """
    )
    assert found == [
        (
            3,
            "job job: chosen stage nowhere does not exist; "
            "available stages are .pre, build, test, deploy, .post",
        )
    ]


def test_anchored_script_lists_are_flattened(each_parser: None) -> None:
    config = load(
        """
        .prepare: &prepare
          - echo one
          - echo two
        job:
          script:
            - *prepare
            - echo three
        """
    )
    assert config.jobs["job"].script == ["echo one", "echo two", "echo three"]


def test_multiple_merge_keys(each_parser: None) -> None:
    config = load(
        """
        .a: &a {stage: build, timeout: 10m}
        .b: &b {stage: deploy, script: [b]}
        job:
          <<: [*a, *b]
        """
    )
    job = config.jobs["job"]
    assert (job.stage, job.timeout, job.script) == ("build", 600, ["b"])


def test_keys_resolve_in_document_order_around_a_merge_key_as_psych_does(each_parser: None) -> None:
    """GitLab reads YAML with Psych: pairs apply in order, so a key before ``<<`` is overridden
    by the merge and a key after it overrides the merge."""
    config = load(
        """
        .t: &t {stage: deploy, script: [from-template], timeout: 5m}
        job:
          stage: build
          <<: *t
          script: [own]
        """
    )
    job = config.jobs["job"]
    assert (job.stage, job.script, job.timeout) == ("deploy", ["own"], 300)


def test_merged_templates_merge_their_own_templates_first(each_parser: None) -> None:
    config = load(
        """
        .root: &root {stage: test, timeout: 1m, script: [root]}
        .mid: &mid
          <<: *root
          timeout: 2m
        .other: &other {timeout: 9m, stage: deploy}
        job:
          <<: [*mid, *other]
        """
    )
    job = config.jobs["job"]
    assert (job.stage, job.timeout, job.script) == ("test", 120, ["root"])


@pytest.mark.parametrize("value", ["5", "[1, 2]", "[*a, 3]"])
def test_merging_something_other_than_mappings_is_refused(each_parser: None, value: str) -> None:
    [(line, message)] = issues(f".a: &a {{stage: build}}\njob:\n  script: x\n  <<: {value}\n")
    assert line == 4
    assert message == "(expected a mapping or list of mappings for merging while constructing a mapping at line 3 column 3)"
