"""YAML text -> dicts and lists that remember the line of every key and item.

PyYAML's safe loading (YAML 1.1, as GitLab's Psych): anchors, aliases and ``<<`` merge keys work
within the file. Two changes: timestamps and ``=`` stay strings (a date in ``variables:`` is the
text the user wrote), and ``!reference [a, b]`` becomes a ``Reference`` (resolved after
``extends``, see ``references.py``). Every mapping remembers its file and the line of each key.

Events come from libyaml when PyYAML has it (five times faster, and the same error texts as
Psych, which also uses libyaml), else from PyYAML's Python parser. Nodes are always composed by
PyYAML's Python composer: libyaml's composer recurses in C without limit, so deeply nested input
could crash the process instead of raising ``RecursionError``.

Hostile input is refused cheaply, before anything is constructed: text over 1 MiB, more than
100,000 nodes (counted while composing, and again once aliases are expanded: a "billion laughs"
document is small as text but huge as data), recursive aliases, and more than 100 levels of
nesting (GitLab's ``max_yaml_depth``), counted while composing; libyaml's own nesting limit
(newer builds have one) gives the same message.

Merge keys are resolved here, as Psych resolves them (``flatten_mapping``), not by PyYAML, whose
order changed between releases: Conveyor's YAML semantics do not depend on the PyYAML installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from conveyor.ciconfig.errors import ConfigError, ConfigIssue

MAX_TEXT_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 100  # nested mappings and sequences, aliases expanded (GitLab's max_yaml_depth)
TOO_DEEP = "The parsed YAML is too deep"
_DROPPED_RESOLVERS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")


class YamlMap(dict[Any, Any]):
    """A YAML mapping. ``line`` is where it starts; ``lines[key]`` is the line of each key;
    ``file`` the file it was read from, and ``files[key]`` the file of a key that a merge
    brought from another file."""

    line: int = 0
    lines: dict[Any, int]
    file: str = ""
    files: dict[Any, str] | None = None

    def file_of(self, key: Any) -> str:
        return (self.files or {}).get(key, self.file)

    def line_of(self, key: Any) -> int | None:
        return self.lines.get(key, self.line or None)

    @classmethod
    def empty(cls, file: str = "", line: int = 0) -> YamlMap:
        made = cls()
        made.line, made.lines, made.file = line, {}, file
        return made


@dataclass(frozen=True)
class Reference:
    """A ``!reference [job, key, ...]`` tag: the path of the value it stands for."""

    path: tuple[str, ...]
    file: str
    line: int


class YamlList(list[Any]):
    """A YAML sequence. ``line`` is where it starts; ``lines[i]`` is the line of item ``i``."""

    line: int = 0
    lines: list[int]


@dataclass(frozen=True)
class Document:
    """A parsed file: the optional ``spec:`` header document and the body after ``---``."""

    header: YamlMap | None
    body: Any


class _TooManyNodes(Exception):
    pass


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


_MERGE_TAG = "tag:yaml.org,2002:merge"
_PARSER_TOO_DEEP = "exceeded maximum nesting depth"  # libyaml 0.2.5's own limit (PyYAML 6.0.4 wheels)


class _Composing(Composer, SafeConstructor, Resolver):
    """Composing, resolving and constructing, whichever parser produces the events. Listed
    before the parser in a loader's bases, so that Python's composer is the one used."""

    def __init__(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.bad_references: list[int] = []  # lines of malformed !reference tags
        self.composed = 0
        self.depth = 0
        self.filename = ""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.composed += 1
        if self.composed > MAX_NODES:
            raise _TooManyNodes
        return Composer.compose_node(self, parent, index)

    def compose_sequence_node(self, anchor: str | None) -> Node:
        with self._nested():
            return Composer.compose_sequence_node(self, anchor)

    def compose_mapping_node(self, anchor: str | None) -> Node:
        with self._nested():
            return Composer.compose_mapping_node(self, anchor)

    @contextmanager
    def _nested(self) -> Iterator[None]:
        """Nesting is counted as the text is composed, whichever parser and PyYAML version: the
        limit is Conveyor's, not Python's recursion limit or libyaml's own (which some builds
        have and others lack)."""
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            yield
        finally:
            self.depth -= 1

    def flatten_mapping(self, node: MappingNode) -> None:
        """Resolve ``<<`` merge keys as GitLab's Psych does, whatever PyYAML is installed.

        Pairs are taken in document order and a later pair wins: a key written after ``<<``
        overrides the merged one, a key written before it is overridden. In ``<<: [*a, *b]``
        the earlier mapping wins for a key both define. (PyYAML 6.0.4 made the later one win.)
        """
        pairs: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                pairs.append((key_node, value_node))
                continue
            if isinstance(value_node, MappingNode):
                sources = [value_node]
            elif isinstance(value_node, SequenceNode) and all(
                isinstance(item, MappingNode) for item in value_node.value
            ):
                sources = list(reversed(value_node.value))
            else:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "expected a mapping or list of mappings for merging", value_node.start_mark,
                )
            for source in sources:
                self.flatten_mapping(source)
                pairs.extend(source.value)
        node.value = pairs


class _PythonLoader(_Composing, Reader, Scanner, Parser):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composing.__init__(self)


try:
    from yaml._yaml import CParser

    class _LibyamlLoader(_Composing, CParser):
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _Composing.__init__(self)

    _Loader: Any = _LibyamlLoader
    LIBYAML = True
except ImportError:  # PyYAML built without libyaml
    _Loader = _PythonLoader
    LIBYAML = False


_Composing.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_RESOLVERS]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _construct_map(loader: _Composing, node: MappingNode) -> Any:
    data = YamlMap.empty(loader.filename, _line(node))
    yield data
    mapping = loader.construct_mapping(node)  # also resolves `<<` merge keys into node.value
    data.update(mapping)
    for key_node, _ in node.value:
        data.lines[loader.construct_object(key_node)] = _line(key_node)


def _construct_seq(loader: _Composing, node: SequenceNode) -> Any:
    data = YamlList()
    data.line = _line(node)
    data.lines = [_line(item) for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


def _construct_reference(loader: _Composing, node: Node) -> Reference | None:
    if isinstance(node, SequenceNode):
        path = loader.construct_sequence(node, deep=True)
        if path and all(isinstance(part, str) for part in path):
            return Reference(tuple(path), loader.filename, _line(node))
    loader.bad_references.append(_line(node))
    return None


_Composing.add_constructor("tag:yaml.org,2002:map", _construct_map)  # type: ignore[type-var]
_Composing.add_constructor("tag:yaml.org,2002:seq", _construct_seq)  # type: ignore[type-var]
_Composing.add_constructor("!reference", _construct_reference)  # type: ignore[type-var]


def parse(text: str, filename: str) -> Document:
    """Parse one CI file; raises ``ConfigError`` for empty, oversized or malformed YAML."""

    def fail(message: str, line: int | None = None) -> ConfigError:
        return ConfigError([ConfigIssue(message, filename, line)])

    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise fail(f"The parsed YAML is too big: the file is over {MAX_TEXT_BYTES} bytes")
    if not text.strip():
        raise fail(f"Please provide content of {filename}")
    too_big = f"The parsed YAML is too big: more than {MAX_NODES} nodes once aliases are expanded"
    loader: Any = None
    try:
        loader = _Loader(text)  # may already raise ReaderError (control characters)
        loader.filename = filename
        nodes: list[Node] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        _check_size(nodes, fail)
        documents = [loader.construct_document(node) for node in nodes]
        bad_references = loader.bad_references
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        if exc.problem == _PARSER_TOO_DEEP:
            raise fail(TOO_DEEP, line) from None
        raise fail(_describe(exc), line) from None
    except yaml.reader.ReaderError as exc:
        message = f"(unacceptable character #x{exc.character:04x}: {exc.reason})"
        raise fail(message, _line_at(text, exc.position)) from None
    except yaml.YAMLError as exc:
        raise fail(f"({exc})") from None
    except UnicodeError:
        raise fail("(the file is not valid UTF-8 text)") from None
    except RecursionError:
        raise fail(TOO_DEEP) from None
    except _TooDeep as exc:
        raise fail(TOO_DEEP, exc.line) from None
    except _TooManyNodes:
        raise fail(too_big) from None
    finally:
        if loader is not None:
            loader.dispose()
    if bad_references:
        raise ConfigError(
            ConfigIssue("!reference config should be an array of strings", filename, line)
            for line in bad_references
        )
    return _split_header(documents, nodes, fail)


def _line_at(text: str, position: int) -> int:
    """The 1-based line of a reader error: libyaml counts UTF-8 bytes, PyYAML characters."""
    if _Loader is not _PythonLoader:
        return text.encode("utf-8")[:position].count(b"\n") + 1
    return text.count("\n", 0, position) + 1


def _describe(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem and context in one line, as Psych words it in GitLab's messages."""
    parts = [exc.problem or "invalid YAML"]
    if exc.context:
        where = exc.context_mark
        at = f" at line {where.line + 1} column {where.column + 1}" if where else ""
        parts.append(f"{exc.context}{at}")
    return f"({' '.join(parts)})"


def _split_header(documents: list[Any], nodes: list[Node], fail: Any) -> Document:
    if len(documents) <= 1:
        return Document(header=None, body=documents[0] if documents else None)
    first = documents[0]
    if len(documents) == 2 and isinstance(first, YamlMap) and set(first) == {"spec"}:
        return Document(header=first, body=documents[1])
    raise fail(
        "Invalid configuration format: only a spec: header document may come before ---",
        _line(nodes[1]),
    )


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _check_size(roots: list[Node], fail: Any) -> None:
    """Count nodes as if every alias were expanded; refuse too many and recursive aliases.

    Each distinct node is visited once and its expanded size memoised, so the check is linear in
    the text even when the expansion is exponential.
    """
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    total = 0
    for root in roots:
        on_path: set[int] = set()
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, finished = stack.pop()
            key = id(node)
            if finished:
                on_path.discard(key)
                children = _children(node)
                sizes[key] = 1 + sum(sizes[id(child)] for child in children)
                if sizes[key] > MAX_NODES:
                    break
                if children or isinstance(node, MappingNode | SequenceNode):
                    heights[key] = 1 + max((heights[id(child)] for child in children), default=0)
                    if heights[key] > MAX_DEPTH:
                        raise fail(TOO_DEEP, _line(node))
                else:
                    heights[key] = 0
                continue
            if key in sizes:
                continue
            on_path.add(key)
            stack.append((node, True))
            for child in _children(node):
                if id(child) in on_path:
                    message = "The parsed YAML is invalid: an alias refers to itself"
                    raise fail(message, _line(child))
                if id(child) not in sizes:
                    stack.append((child, False))
        total += sizes.get(id(root), MAX_NODES + 1)
        if total > MAX_NODES:
            raise _TooManyNodes
