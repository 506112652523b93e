"""Errors of ``conveyor.pipeline``.

ConveyorError                     conveyor.protocol.errors
 ├── ConfigError                  conveyor.ciconfig.errors; ``build`` raises it for needs
 │                                problems and for a pipeline with nothing to run
 └── InvalidJobStates             ``progress`` got job states that ``build`` cannot produce
                                  (duplicate names, needs on a later stage, a needs cycle):
                                  a bug in the caller, not in the user's configuration
"""

from __future__ import annotations

from conveyor.protocol.errors import ConveyorError


class InvalidJobStates(ConveyorError):
    """The job states do not describe a pipeline that build() could have produced."""
