"""TraceSession: one job's trace pipeline, from ``write(text)`` to the spool file.

``Utf8Sanitizer -> Masker -> UrlParamMasker -> [Timestamper] -> OutputLimit -> TraceSpool``: output is made valid
UTF-8, secrets are masked, lines get their timestamp header when enabled, the size limit applies
to those bytes, and the spool keeps exactly what is sent (offsets, ``bytesize`` and ``checksum``
all refer to it).
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.protocol.models import JobPayload
from conveyor.runner.script.variables import masked_values
from conveyor.runner.settings import RunnerSettings
from conveyor.runner.trace.base import Sink
from conveyor.runner.trace.limit import OutputLimit, Utf8Sanitizer
from conveyor.runner.trace.masker import Masker, token_prefixes
from conveyor.runner.trace.spool import TraceSpool
from conveyor.runner.trace.urlparams import UrlParamMasker
from conveyor.runner.trace.timestamps import OUTPUT_STREAM, RUNNER_STREAM, Timestamper


@dataclass
class TraceSession:
    spool: TraceSpool
    writer: Sink
    limit: OutputLimit
    stamper: Timestamper | None = None

    @classmethod
    def open(cls, settings: RunnerSettings, job: JobPayload, *, timestamps: bool = False) -> TraceSession:
        spool = TraceSpool(settings.trace_dir / f"job-{job.id}.log")
        limit = OutputLimit(spool, settings.output_limit)
        stamper = Timestamper(limit) if timestamps else None
        extra = (job.features.model_extra or {}).get("token_mask_prefixes") or []
        prefixes = token_prefixes(p for p in extra if isinstance(p, str))
        masker = Masker(UrlParamMasker(stamper or limit), masked_values(job), prefixes)
        return cls(spool=spool, writer=Utf8Sanitizer(masker), limit=limit, stamper=stamper)

    def write(self, data: str | bytes, *, stream: int = RUNNER_STREAM) -> None:
        """Runner messages (stream 0), or the job's output with ``stream=OUTPUT_STREAM``."""
        if self.stamper is not None:
            self.stamper.stream = stream
        self.writer.write(data.encode("utf-8") if isinstance(data, str) else data)

    def output(self, data: bytes) -> None:
        self.write(data, stream=OUTPUT_STREAM)

    def flush(self) -> None:
        self.writer.flush()

    def close(self, *, keep: bool = False) -> None:
        """Close the spool; delete it unless ``keep``."""
        if keep:
            self.spool.close()
        else:
            self.spool.delete()
