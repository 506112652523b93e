"""``artifacts:reports:dotenv`` parsing with GitLab's rules and messages
(``Ci::ParseDotenvArtifactService`` and its spec)."""

from __future__ import annotations

import gzip

import pytest

from conveyor.server.archive import dotenv

pytestmark = pytest.mark.unit


def parse(text: str | bytes) -> dict[str, str]:
    data = text.encode() if isinstance(text, str) else text
    return dotenv.parse(gzip.compress(data), "gzip")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KEY1=VAR1\nKEY2=VAR2\n", {"KEY1": "VAR1", "KEY2": "VAR2"}),
        ("KEY1=VAR1\nKEY2=VAR2\nKEY2=VAR3\nKEY1=VAR4\n", {"KEY2": "VAR3", "KEY1": "VAR4"}),  # later wins
        ("KEY1 =VAR1", {"KEY1": "VAR1"}),
        ("KEY=VARCONTAINING=EQLS", {"KEY": "VARCONTAINING=EQLS"}),
        ("skateboard=🛹", {"skateboard": "🛹"}),
        ("KEY1=V A R 1", {"KEY1": "V A R 1"}),
        ('KEY1="VAR1"', {"KEY1": '"VAR1"'}),  # quotes kept as written
        ("KEY1='VAR1'", {"KEY1": "'VAR1'"}),
        ('KEY1="  VAR1  "', {"KEY1": '"  VAR1  "'}),
        ("KEY1=", {"KEY1": ""}),
        ("KEY1=VAR1\nKEY2=${KEY1}_Test\n", {"KEY1": "VAR1", "KEY2": "${KEY1}_Test"}),  # no expansion
        ("KEY1=VAR1         # This is variable\n", {"KEY1": "VAR1         # This is variable"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("", {}),
    ],
)
def test_gitlab_forms(text: str, expected: dict[str, str]) -> None:
    found = parse(text)
    assert found == expected and list(found) == list(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("🛹=skateboard", "Validation failed: Key can contain only letters, digits and '_'."),
        ("K E Y 1=VAR1", "Validation failed: Key can contain only letters, digits and '_'."),
        ("=VAR1", "Validation failed: Key can't be blank, Key can contain only letters, digits and '_'."),
        ("{ 'KEY1': 'VAR1' }", "Invalid Format"),
        ("KEY1=VAR1\n\nKEY2=VAR2\n", "Invalid Format"),  # an empty line
        ("".join(f"KEY{i}=VAR{i}\n" for i in range(21)), "Dotenv files cannot have more than 20 variables"),
        ("K" * 256 + "=x", "Validation failed: Key is too long (maximum is 255 characters)"),
    ],
)
def test_gitlab_errors(text: str, message: str) -> None:
    with pytest.raises(dotenv.DotenvError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_utf16_from_powershell_and_several_files() -> None:
    assert parse("\ufeffMY_ENV_VAR=true\r\nTEST2=false\r\n".encode("utf-16")) == {"MY_ENV_VAR": "true", "TEST2": "false"}
    # the runner gzips each file of `dotenv: [a.env, b.env]` as one member
    two = gzip.compress(b"A=1\nB=1\n") + gzip.compress(b"B=2\n")
    assert dotenv.parse(two, "gzip") == {"A": "1", "B": "2"}
    assert dotenv.parse(b"RAW=yes\n", "raw") == {"RAW": "yes"}


def test_size_limit() -> None:
    dotenv.check_size(5119)
    with pytest.raises(dotenv.DotenvError, match=r"^Dotenv Artifact Too Big. Maximum Allowable Size: 5120$"):
        dotenv.check_size(5120)
