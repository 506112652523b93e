"""Turn the text of a ``.gitlab-ci.yml`` into a validated ``PipelineConfig`` (GitLab semantics).

Owns YAML loading (with line numbers, anchors and merge keys, limits against hostile input),
the global keywords, ``default:``, stages and the per-job keywords, and every configuration
error text. Pure: it receives text and does no I/O, reads no settings, opens no sockets. It may
import only the standard library, PyYAML, pydantic and ``conveyor.protocol``.
"""

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
)

__all__ = [
    "DEFAULT_JOB_STAGE",
    "DEFAULT_STAGES",
    "EDGE_STAGES",
    "POST_STAGE",
    "PRE_STAGE",
    "ConfigError",
    "ConfigIssue",
    "DefaultConfig",
    "IssueCollector",
    "JobConfig",
    "Need",
    "PipelineConfig",
    "load",
]
