"""Turn the text of a ``.gitlab-ci.yml`` into a validated ``PipelineConfig`` (GitLab semantics).

Owns YAML loading (with line numbers, anchors and merge keys, limits against hostile input),
``spec:inputs``, ``include`` (through an injected ``IncludeResolver``), ``extends``,
``!reference``, the global keywords, ``default:``/``inherit``, stages, the per-job keywords,
``rules``/``only``/``except``/``workflow`` parsing and evaluation, ``parallel:matrix``, variable
expansion, GitLab's JSON schema, and every configuration error text. Pure: it receives text
and a resolver, does no I/O itself, reads no settings, opens no sockets. It may import only the
standard library, PyYAML, pydantic, jsonschema (with check-jsonschema's vendored schema) and
``conveyor.protocol``.
"""

from conveyor.ciconfig.context import PipelineContext
from conveyor.ciconfig.errors import ConfigError, ConfigIssue, IssueCollector
from conveyor.ciconfig.loader import load
from conveyor.ciconfig.model import (
    DEFAULT_JOB_STAGE,
    DEFAULT_STAGES,
    EDGE_STAGES,
    POST_STAGE,
    PRE_STAGE,
    DefaultConfig,
    JobConfig,
    Need,
    PipelineConfig,
    Workflow,
)
from conveyor.ciconfig.resolver import IncludeFailed, IncludeResolver, MemoryResolver

__all__ = [
    "DEFAULT_JOB_STAGE",
    "DEFAULT_STAGES",
    "EDGE_STAGES",
    "POST_STAGE",
    "PRE_STAGE",
    "ConfigError",
    "ConfigIssue",
    "DefaultConfig",
    "IncludeFailed",
    "IncludeResolver",
    "IssueCollector",
    "JobConfig",
    "MemoryResolver",
    "Need",
    "PipelineConfig",
    "PipelineContext",
    "Workflow",
    "load",
]
