"""Where log archives go and what each object is called.

An object is named after the ids it holds and the run that wrote it:
``<first_id>-<last_id>.<run_id>.jsonl.gz``, ids zero-padded so a listing sorts in id order.
The ids say which rows to look for; the run id makes every name unique, so a table rebuilt
with the same ids, SQLite reusing ids, or two databases pointed at one URI can never write
over an object another run made (objects are also created exclusively). The one object
whose rows may still be in the table after a crash is named in a small marker
(:data:`MARKER_NAME`, plain JSON) written before it, so the next run can finish that batch
first. Markers and manifests never end in ``.jsonl.gz``: only archive objects do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

MARKER_NAME = ".inflight.json"
"""Names the batch being archived; removed when a run ends with its last batch settled."""


def marker_name(source: str) -> str:
    """The marker of one source (a database's table): two databases archiving one table
    name to one URI must never read, settle or discard each other's batch in flight."""
    if not _RUN_TAG.fullmatch(source):
        raise ValueError(f"source {source!r} cannot be part of a marker name")
    return f".inflight-{source}.json"


LEGACY_MARKER_NAME = "_inflight.json.gz"
"""The marker of earlier versions (gzip JSON): still read, so their crashes are recovered."""

OBJECT_ENDING = ".jsonl.gz"

_ID_WIDTH = 12
_OBJECT = re.compile(r"(\d+)-(\d+)(?:\.([0-9A-Za-z-]+))?\.jsonl\.gz")
_RUN_TAG = re.compile(r"[0-9A-Za-z-]+")
_HINT = "expected s3://bucket[/prefix] or file:///absolute/dir"


@dataclass(frozen=True)
class ArchiveLocation:
    """A parsed ``[logs] archive_uri``: a local directory or an S3 bucket and prefix."""

    scheme: str  # "file" or "s3"
    bucket: str = ""  # s3 only
    path: str = ""  # the directory (file) or the key prefix without slashes around it (s3)

    @classmethod
    def parse(cls, uri: str) -> ArchiveLocation:
        """ValueError when the URI is neither ``s3://bucket[/prefix]`` nor ``file:///dir``."""
        parts = urlsplit(uri.strip())
        if parts.query or parts.fragment:
            raise ValueError(f"archive URI {uri!r} must not have a query or fragment; {_HINT}")
        if parts.scheme == "s3" and parts.netloc:
            prefix = unquote(parts.path).strip("/")
            if ".." in prefix.split("/"):
                raise ValueError(f"archive URI {uri!r} must not contain '..'")
            return cls("s3", bucket=parts.netloc, path=prefix)
        if parts.scheme == "file" and not parts.netloc and parts.path.startswith("/"):
            path = PurePosixPath(unquote(parts.path))
            if ".." in path.parts:
                raise ValueError(f"archive URI {uri!r} must not contain '..'")
            return cls("file", path=str(path))
        raise ValueError(f"invalid archive URI {uri!r}; {_HINT}")

    def for_table(self, table: str) -> ArchiveLocation:
        """The location of one table's objects: ``<uri>/<table>/``, so tables never mix."""
        joined = f"{self.path.rstrip('/')}/{table}" if self.path else table
        return ArchiveLocation(self.scheme, self.bucket, joined)

    @property
    def uri(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.path}" if self.path else f"s3://{self.bucket}"
        return f"file://{self.path}"


def object_name(first_id: int, last_id: int, run_id: str) -> str:
    """The name of the object run ``run_id`` writes for the rows ``first_id`` .. ``last_id``."""
    if first_id > last_id:
        raise ValueError(f"first id {first_id} is after last id {last_id}")
    if not _RUN_TAG.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r} cannot be part of an object name")
    return f"{first_id:0{_ID_WIDTH}d}-{last_id:0{_ID_WIDTH}d}.{run_id}{OBJECT_ENDING}"


def object_ids(name: str) -> tuple[int, int] | None:
    """``(first_id, last_id)`` of an archive object's name (this version's names and the
    earlier ``<first>-<last>.jsonl.gz``); None for anything else."""
    match = _OBJECT.fullmatch(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))
