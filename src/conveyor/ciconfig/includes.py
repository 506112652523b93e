"""``include:``: read the included files through an ``IncludeResolver`` and merge them.

GitLab's ``External::Processor``: the entries are read in order, each included file's own
includes first (recursively), then everything is deep-merged in order with the including file
last, so it wins. Types: ``local`` (with the wildcards ``dir/*.yml``, ``dir/**.yml`` and
``dir/**/*.yml``), ``project`` + ``file`` (+ ``ref``), ``remote`` (HTTPS), ``template`` (GitLab's CI templates from
the resolver's template source), ``component`` (``components.py``), ``artifact`` (child pipelines),
and the string shorthand. ``include:rules`` (``if``,
``exists``, ``changes``, ``when: never|always``) and ``include:inputs`` are applied. At most 150
files are included, duplicates counted (GitLab 15.10+).
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conveyor.ciconfig import components, globs, inputs, rules
from conveyor.ciconfig.context import PipelineContext
from conveyor.ciconfig.errors import ConfigError, IssueCollector
from conveyor.ciconfig.expansion import expand_existing
from conveyor.ciconfig.merge import deep_merge
from conveyor.ciconfig.resolver import IncludeFailed, IncludeResolver, template_path
from conveyor.ciconfig.yamlsource import YamlList, YamlMap, parse

MAX_INCLUDES = 150
MAX_TOTAL_BYTES = 4 * 1024 * 1024  # all included files together
TOO_BIG = f"The parsed YAML is too big: the included files are over {MAX_TOTAL_BYTES} bytes"
INCLUDE_KEYS = frozenset(
    "local file remote project ref template component artifact job rules inputs integrity cache".split()
)
CHILD_SOURCE = "parent_pipeline"
TEMPLATE_SUFFIX = ".gitlab-ci.yml"
ACCESSORS = ("local", "project", "remote", "template", "artifact", "component")
_URL = re.compile(r"^https?://", re.I)
_YAML_FILE = re.compile(r"\.ya?ml$")


class TooManyIncludes(Exception):
    pass


class IncludesTooBig(Exception):
    pass


@dataclass(frozen=True)
class _Origin:
    """Where a file's ``local:`` includes are read: this project, or another project at a ref."""

    project: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class _Fetched:
    text: str
    name: str
    origin: _Origin
    inputs: dict[str, Any] | None


class Includer:
    """Expands the includes of one pipeline; counts files across the whole tree."""

    def __init__(
        self, context: PipelineContext, resolver: IncludeResolver, issues: IssueCollector
    ) -> None:
        self.context, self.resolver, self.issues = context, resolver, issues
        self.variables = context.include_variables()
        self.count = 0
        self.total_bytes = 0

    def expand(self, body: YamlMap, origin: _Origin = _Origin()) -> YamlMap:
        """``body`` without its ``include:``, merged over everything it includes."""
        if "include" not in body:
            return body
        merged = YamlMap.empty(body.file, body.line)
        for entry, line in self._entries(body):
            for fetched in self._fetch(entry, line, body.file, origin):
                self.count += 1
                if self.count > MAX_INCLUDES:
                    raise TooManyIncludes
                self.total_bytes += len(fetched.text)
                if self.total_bytes > MAX_TOTAL_BYTES:
                    raise IncludesTooBig
                included = self._load(fetched, line, body.file)
                if included is not None:
                    merged = deep_merge(merged, self.expand(included, fetched.origin))
        rest = YamlMap.empty(body.file, body.line)
        for key, value in body.items():
            if key != "include":
                rest[key] = value
                rest.lines[key] = body.lines.get(key, body.line)
        rest.files = body.files
        return deep_merge(merged, rest) if merged else rest

    def _entries(self, body: YamlMap) -> Iterator[tuple[Any, int]]:
        raw, line = body["include"], body.lines.get("include", body.line)
        if raw is None:
            return
        if isinstance(raw, str | dict):
            yield raw, line
        elif isinstance(raw, list):
            lines = raw.lines if isinstance(raw, YamlList) else [line] * len(raw)
            yield from zip(raw, lines, strict=True)
        else:
            self.issues.add("include config should be a hash, a string or an array", line, key="include", file=body.file)

    def _fetch(self, entry: Any, line: int, file: str, origin: _Origin) -> Iterator[_Fetched]:
        def fail(message: str) -> None:
            self.issues.add(message, line, key="include", file=file)

        if isinstance(entry, str):
            entry = {"remote": entry} if _URL.match(entry) else {"local": entry}
        if not isinstance(entry, dict):
            fail("include config should be a hash or a string")
            return
        unknown = [str(key) for key in entry if key not in INCLUDE_KEYS]
        accessors = [key for key in ACCESSORS if key in entry]
        if unknown:
            fail(f"include config contains unknown keys: {', '.join(unknown)}")
            return
        if len(accessors) != 1:
            shown = json.dumps({str(k): v for k, v in entry.items()}, default=str, separators=(",", ":"))
            fail(f"Include `{shown}` needs to match exactly one accessor!")
            return
        if entry.get("rules") is not None and not self._rules_allow(entry["rules"], fail):
            return
        given = entry.get("inputs")
        if given is not None and not isinstance(given, dict):
            fail("include:inputs config should be a hash")
            return
        kind = accessors[0]
        try:
            if kind == "local":
                yield from self._local(entry["local"], origin, given, fail)
            elif kind == "project":
                yield from self._project(entry, given, fail)
            elif kind == "remote":
                yield from self._remote(entry, given, fail)
            elif kind == "template":
                yield from self._template(entry["template"], given, fail)
            elif kind == "artifact":
                yield from self._artifact(entry, given, fail)
            else:
                yield from self._component(entry["component"], given, fail)
        except IncludeFailed as exc:
            fail(str(exc))

    def _rules_allow(self, raw: Any, fail: Any) -> bool:
        parsed, problems = rules.parse_rules(raw, "include:rules", include=True)
        for problem, _ in problems:
            fail(problem)
        if problems or parsed is None:
            return False
        matched = rules.first_match(parsed, self.variables, self.context, self.variables)
        return matched is not None and matched.when != "never"

    def _local(self, raw: Any, origin: _Origin, given: Any, fail: Any) -> Iterator[_Fetched]:
        if not isinstance(raw, str) or not raw:
            fail("include:local config should be a string")
            return
        path = posixpath.normpath(expand_existing(raw, self.variables).lstrip("/"))
        if path == ".." or path.startswith("../"):
            fail(f"Local file `{raw}` does not exist!")
            return
        if globs.has_wildcard(path):
            if origin.project is not None:
                fail(f"Local file `{path}` does not exist!")
                return
            pattern = globs.wildcard_regex(path)
            matched = [f for f in self.resolver.local_files() if pattern.match(f) and _YAML_FILE.search(f)]
            if not matched:
                fail(f"Local file `{path}` does not exist!")
            for found in matched:
                text = self.resolver.local(found)
                if text is not None:
                    yield _Fetched(text, found, origin, given)
            return
        if not _YAML_FILE.search(path):
            fail(f"Included file `{path}` does not have YAML extension!")
            return
        if origin.project is not None:
            text = self.resolver.project(origin.project, origin.ref, path)
        else:
            text = self.resolver.local(path)
        if text is None:
            fail(f"Local file `{path}` does not exist!")
            return
        yield _Fetched(text, path, origin, given)

    def _project(self, entry: dict[str, Any], given: Any, fail: Any) -> Iterator[_Fetched]:
        project, ref, files = entry.get("project"), entry.get("ref"), entry.get("file")
        if not isinstance(project, str) or not project:
            fail("include:project config should be a string")
            return
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            fail("include config must specify the file where to fetch the config from")
            return
        if ref is not None and not isinstance(ref, str):
            fail("include:ref config should be a string")
            return
        project = expand_existing(project, self.variables).strip("/")
        ref = expand_existing(ref, self.variables) if ref else None
        for file in files:
            path = expand_existing(file, self.variables).lstrip("/")
            if not _YAML_FILE.search(path):
                fail(f"Included file `{path}` does not have YAML extension!")
                continue
            text = self.resolver.project(project, ref, path)
            if text is None:
                fail(f"Project `{project}` file `{path}` does not exist!")
                continue
            yield _Fetched(text, f"{project}:{path}", _Origin(project, ref), given)

    def _template(self, name: Any, given: Any, fail: Any) -> Iterator[_Fetched]:
        """GitLab's ``File::Template``: a name ending in ``.gitlab-ci.yml`` under its templates."""
        if not isinstance(name, str) or not name.endswith(TEMPLATE_SUFFIX) or template_path(name) is None:
            fail(f"Template file `{name}` is not a valid location!")
            return
        text = self.resolver.template(name)
        if text is None or not text.strip():
            fail(f"Included file `{name}` is empty or does not exist!")
            return
        yield _Fetched(text, name, _Origin(), given)

    def _component(self, raw: Any, given: Any, fail: Any) -> Iterator[_Fetched]:
        """A CI/CD component of a project this server knows, at a version (``components.py``);
        its own includes are read in that project at that version."""
        if not isinstance(raw, str):
            fail("include:component config should be a string")
            return
        text = expand_existing(raw, self.variables)
        address = components.parse(text, self.variables.get("CI_SERVER_FQDN", ""))
        if address is None:
            fail(components.error(text, components.NOT_SUPPORTED))
            return
        try:
            chosen = components.pick(address.version, self.resolver.project_tags(address.project))
        except IncludeFailed:
            fail(components.error(text, components.NOT_FOUND))
            return
        if address.version == components.LATEST and chosen is None:
            fail(components.error(text, components.NO_LATEST))
            return
        ref = chosen or address.version
        for path in components.files(address.name):
            try:
                found = self.resolver.project(address.project, ref, path)
            except IncludeFailed:
                partial = components.is_partial(address.version)
                fail(components.error(text, components.NO_PARTIAL if partial else components.NOT_FOUND))
                return
            if found is not None:
                yield _Fetched(found, f"{address.project}:{path}", _Origin(address.project, ref), given)
                return
        fail(components.error(text, components.NOT_FOUND))

    def _artifact(self, entry: dict[str, Any], given: Any, fail: Any) -> Iterator[_Fetched]:
        """A dynamic child pipeline's config: a file of an earlier job's artifacts in the parent
        pipeline (GitLab's ``File::Artifact``)."""
        path, job = entry["artifact"], entry.get("job")
        if self.context.source != CHILD_SOURCE:
            fail("Including configs from artifacts is only allowed when triggering child pipelines")
            return
        if not job:
            fail("Job must be provided when including configs from artifacts")
            return
        text = self.resolver.artifact(str(job), str(path))
        if text is None:
            fail(f"Job `{job}` not found in parent pipeline or does not have artifacts!")
            return
        if not text.strip():
            fail(f"File `{path}` is empty!")
            return
        yield _Fetched(text, str(path), _Origin(), given)

    def _remote(self, entry: dict[str, Any], given: Any, fail: Any) -> Iterator[_Fetched]:
        url = entry["remote"]
        if not isinstance(url, str) or not _URL.match(url):
            fail(f"Remote file `{url}` does not have a valid address!")
            return
        url = expand_existing(url, self.variables)
        text = self.resolver.remote(url)
        integrity = entry.get("integrity")
        if integrity is not None:
            digest = "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
            if integrity != digest:
                fail(f"Remote file `{url}` failed the integrity check!")
                return
        yield _Fetched(text, url, _Origin(), given)

    def _load(self, fetched: _Fetched, line: int, file: str) -> YamlMap | None:
        if not fetched.text.strip():
            self.issues.add(f"Local file `{fetched.name}` is empty!", line, key="include", file=file)
            return None
        try:
            document = parse(fetched.text, fetched.name)
        except ConfigError as exc:
            self.issues.issues.extend(exc.issues)
            return None
        values, errors = inputs.resolve(document.header, fetched.inputs, self.variables)
        body = document.body
        if values is not None and not errors:
            body = inputs.interpolate(body, values, self.variables, errors)
        for message in errors:
            self.issues.add(message, line, key="include", file=file)
        if errors:
            return None
        if not isinstance(body, YamlMap):
            self.issues.add(
                f"Included file `{fetched.name}` does not have valid YAML syntax!", line, key="include", file=file
            )
            return None
        return body
