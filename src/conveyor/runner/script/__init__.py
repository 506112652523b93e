"""Script generation: job payload + stage -> bash text. No process is spawned here.

Owns variable resolution (expansion, file and masked variables), the per-stage bash scripts and
the ``get_sources`` git script. Imports only the standard library and ``conveyor.protocol``;
executors (``conveyor.runner.executors``) run the text this package returns.
"""

from conveyor.runner.script import bash, git, variables
from conveyor.runner.script.bash import ScriptContext, cleanup_script, quote, step_script
from conveyor.runner.script.git import get_sources_script
from conveyor.runner.script.variables import JobVariable, expand, masked_values, resolve

__all__ = [
    "JobVariable",
    "ScriptContext",
    "bash",
    "cleanup_script",
    "expand",
    "get_sources_script",
    "git",
    "masked_values",
    "quote",
    "resolve",
    "step_script",
    "variables",
]
