"""Progress reporting: jobs say how far they are; only the CLI draws it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Progress of long work, for a person at a terminal; a no-op everywhere else."""

    def advance(self, amount: int = 1) -> None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, description: str, total: int | None, unit: str) -> Progress: ...


class NoProgress:
    def advance(self, amount: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(description: str, total: int | None, unit: str) -> Progress:
    return NoProgress()
