from __future__ import annotations

import pytest

from conveyor.runner.trace.masker import DEFAULT_TOKEN_PREFIXES, Masker, token_prefixes

pytestmark = pytest.mark.unit


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()
        self.flushed = 0

    def write(self, data: bytes) -> None:
        self.data += data

    def flush(self) -> None:
        self.flushed += 1


def mask(chunks: list[bytes], secrets: list[str], prefixes: tuple[str, ...] = DEFAULT_TOKEN_PREFIXES) -> bytes:
    sink = Collect()
    masker = Masker(sink, secrets, prefixes)
    for chunk in chunks:
        masker.write(chunk)
    masker.flush()
    assert sink.flushed == 1
    return bytes(sink.data)


def test_masks_every_occurrence() -> None:
    assert mask([b"a s3cr3t-value b s3cr3t-value\n"], ["s3cr3t-value"]) == b"a [MASKED] b [MASKED]\n"


def test_values_are_trimmed_and_empty_values_ignored() -> None:
    assert mask([b"x  hunter22  y"], ["  hunter22\n", "", "   "]) == b"x  [MASKED]  y"


@pytest.mark.parametrize("split", range(0, len(b"say s3cr3t-value now\n") + 1))
def test_secret_split_across_two_writes_at_every_position(split: int) -> None:
    line = b"say s3cr3t-value now\n"
    assert mask([line[:split], line[split:]], ["s3cr3t-value"]) == b"say [MASKED] now\n"


@pytest.mark.parametrize("split", range(0, len(b"t=glpat-AbC_12.3=x-y rest") + 1))
def test_token_split_across_two_writes_at_every_position(split: int) -> None:
    line = b"t=glpat-AbC_12.3=x-y rest"
    assert mask([line[:split], line[split:]], []) == b"t=glpat-[MASKED] rest"


def test_secret_split_into_single_bytes() -> None:
    line = b"<<s3cr3t-value>> and glrt-t1_abcDEF\n"
    assert mask([bytes([b]) for b in line], ["s3cr3t-value"]) == b"<<[MASKED]>> and glrt-[MASKED]\n"


def test_longer_secret_wins_even_when_a_shorter_one_completes_first() -> None:
    line = b"-> abcdef <-"
    for split in range(len(line) + 1):
        assert mask([line[:split], line[split:]], ["abc", "abcdef"]) == b"-> [MASKED] <-"


def test_partial_secret_overlapping_another_secret() -> None:
    line = b"xxabcdef yy cd"
    for split in range(len(line) + 1):
        assert mask([line[:split], line[split:]], ["abcdef", "cd"]) == b"xx[MASKED] yy [MASKED]"


@pytest.mark.parametrize("prefix", ["glpat-", "glrt-", "glcbt-"])
def test_token_prefixes_keep_the_prefix(prefix: str) -> None:
    data = f"token {prefix}Zx9_a.b=c-d, next\n".encode()
    assert mask([data], []) == f"token {prefix}[MASKED], next\n".encode()


def test_prefix_without_body_is_not_masked() -> None:
    assert mask([b"the glpat- prefix"], []) == b"the glpat- prefix"
    assert mask([b"ends with glpat-"], []) == b"ends with glpat-"


def test_token_body_running_to_the_end_of_a_write_is_dropped_from_the_next() -> None:
    assert mask([b"a glpat-abc", b"def", b"ghi jkl"], []) == b"a glpat-[MASKED] jkl"


def test_text_without_secrets_passes_through_immediately() -> None:
    sink = Collect()
    masker = Masker(sink, ["s3cr3t-value"])
    masker.write(b"progress 50%\n")
    assert bytes(sink.data) == b"progress 50%\n"
    masker.write(b"almost s3cr")  # could become the secret: held back
    assert bytes(sink.data) == b"progress 50%\nalmost "
    masker.flush()
    assert bytes(sink.data) == b"progress 50%\nalmost s3cr"


def test_job_supplied_prefixes_are_added_and_capped() -> None:
    prefixes = token_prefixes(["custom-", "glpat-", *[f"p{i}-" for i in range(20)]])
    assert prefixes[: len(DEFAULT_TOKEN_PREFIXES)] == DEFAULT_TOKEN_PREFIXES
    assert "custom-" in prefixes
    assert len(prefixes) == 15
    assert mask([b"x custom-abc y"], [], prefixes) == b"x custom-[MASKED] y"


def test_secret_with_regex_metacharacters_and_utf8() -> None:
    secret = "p@$$w0rd.*(ü)"
    data = f"a {secret} b".encode()
    for split in range(len(data) + 1):
        assert mask([data[:split], data[split:]], [secret]) == b"a [MASKED] b"


def test_a_secret_and_a_token_starting_at_one_place_mask_as_the_secret() -> None:
    assert mask([b"x glpat-abc.def y"], ["glpat-abc"]) == b"x [MASKED].def y"
    assert mask([b"x glpat-abc.def y"], ["abc.def"]) == b"x glpat-[MASKED] y"  # the token starts first


def _combined(text: bytes, secrets: list[str], prefixes: tuple[str, ...]) -> bytes:
    """The reference: one alternation, secrets (longest first) before tokens, as the masker was."""
    import re

    values = sorted({s.encode() for s in secrets}, key=len, reverse=True)
    heads = sorted({p.encode() for p in prefixes}, key=len, reverse=True)
    pattern = re.compile(b"(?P<secret>" + b"|".join(map(re.escape, values)) + b")|(?P<prefix>"
                         + b"|".join(map(re.escape, heads)) + rb")[A-Za-z0-9._=\-]+")  # fmt: skip
    return pattern.sub(lambda m: b"[MASKED]" if m.group("secret") else m.group("prefix") + b"[MASKED]", text)


@pytest.mark.parametrize("seed", range(40))
def test_two_patterns_mask_what_one_alternation_did(seed: int) -> None:
    import random

    rng = random.Random(seed)
    secrets = ["glpat-ab", "ab.c", "b=c", "glrt-x", "zz"]
    fragments = [b"glpat-", b"glrt-", b"ab", b".c", b"b=c", b"zz", b"z", b" ", b"c=", b"x", b"-"]
    text = b"".join(rng.choice(fragments) for _ in range(120))
    chosen = rng.sample(secrets, 3)
    prefixes = ("glpat-", "glrt-", "c=")
    expected = _combined(text, chosen, prefixes)
    assert b"[MASKED]" in expected
    assert mask([text], chosen, prefixes) == expected
