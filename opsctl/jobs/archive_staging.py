"""Archive objects staged one batch ahead: the next batch's object is compressed (and,
on disk, written and flushed under a temporary name) on a worker thread while the
current batch's object is published and its rows deleted. Only one object is ever
created and not yet settled, so the in-flight marker still names it alone; a staged
object is not an object until it is published."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from opsctl.ports import LogArchive, LogBatch, StagedObject


def staged_ahead(archive: LogArchive, batches: Iterable[LogBatch]
                 ) -> Generator[tuple[LogBatch, StagedObject], None, None]:
    """Each batch with its staged object, in order. The caller publishes or discards
    what it is handed; closing the generator discards what was staged ahead."""
    ahead: deque[tuple[LogBatch, Future[StagedObject]]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsctl-stage") as stager:
        try:
            for batch in batches:
                ahead.append((batch, stager.submit(archive.stage, batch.payload)))
                if len(ahead) > 1:
                    current, staging = ahead.popleft()
                    yield current, staging.result()
            while ahead:
                current, staging = ahead.popleft()
                yield current, staging.result()
        finally:
            for _, staging in ahead:
                with contextlib.suppress(Exception):
                    archive.discard(staging.result())
