"""What a CI/CD variable may be: GitLab's model validations and their error texts.

Sources: GitLab ``app/models/concerns/ci/has_variable.rb`` and ``maskable.rb``
(rest-api.md 2.7). Every failure is collected, then raised as one ``Invalid`` (400,
``{"message": {"attr": ["msg"]}}``), as Rails reports every invalid attribute at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.server.errors import Invalid

KEY = re.compile(r"\A[A-Za-z0-9_]+\Z")
MASKED = re.compile(r"\A[a-zA-Z0-9_+=/@:.~-]{8,}\Z")  # Base64 alphabet plus @ : . ~, one line
MASKED_RAW = re.compile(r"\A\S{8,}\Z")
KEY_MAX, DESCRIPTION_MAX, VALUE_MAX = 255, 255, 10_000
TYPES = ("env_var", "file")


@dataclass
class Attributes:
    key: str
    value: str
    variable_type: str = "env_var"
    protected: bool = False
    masked: bool = False
    hidden: bool = False
    raw: bool = False
    environment_scope: str = "*"
    description: str | None = None


def check(attrs: Attributes) -> None:
    """Raise ``Invalid`` with every broken rule of ``attrs``."""
    errors: dict[str, list[str]] = {}
    if not KEY.match(attrs.key):
        errors.setdefault("key", []).append("can contain only letters, digits and '_'.")
    if len(attrs.key) > KEY_MAX:
        errors.setdefault("key", []).append(f"is too long (maximum is {KEY_MAX} characters)")
    if len(attrs.value) > VALUE_MAX:
        errors.setdefault("value", []).append(f"is too long (maximum is {VALUE_MAX} characters)")
    if attrs.masked and not (MASKED_RAW if attrs.raw else MASKED).match(attrs.value):
        errors.setdefault("value", []).append("is invalid")
    if attrs.hidden and not attrs.masked:
        errors.setdefault("masked", []).append("should be true when variable is hidden")
    if attrs.description is not None and len(attrs.description) > DESCRIPTION_MAX:
        errors.setdefault("description", []).append(f"is too long (maximum is {DESCRIPTION_MAX} characters)")
    if errors:
        raise Invalid(errors)


def taken(key: str) -> Invalid:
    return Invalid({"key": [f"({key}) has already been taken"]})


def hidden_is_fixed(requested_hidden: bool | None, current_hidden: bool, masked: bool | None) -> None:
    """A variable's hidden state is fixed at creation, and a hidden one stays masked."""
    if requested_hidden is not None and requested_hidden != current_hidden:
        raise Invalid({"base": ["Only new variables can be set as masked and hidden."]})
    if current_hidden and masked is False:
        raise Invalid({"base": ["The visibility setting cannot be changed for masked and hidden variables."]})
