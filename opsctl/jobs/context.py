"""What a job receives from its caller besides its ports and parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from opsctl.events import Emitter
from opsctl.ports import ProgressFactory, no_progress
from opsctl.runtime import Runtime


@dataclass(frozen=True)
class JobContext:
    job: str
    runtime: Runtime
    emitter: Emitter
    dry_run: bool = False
    progress: ProgressFactory = field(default=no_progress)

    def now(self) -> datetime:
        return self.runtime.clock()

    def pause(self, seconds: float) -> bool:
        """Wait between batches (throttling); a stop request ends the wait at once.
        Whether one did."""
        return self.runtime.stop.wait(seconds)

    @property
    def stop_requested(self) -> bool:
        """Batch jobs check this between batches and stop cleanly (SIGTERM/SIGINT)."""
        return self.runtime.stop.requested
