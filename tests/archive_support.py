"""Archives for the verify/restore/guard tests: made by the real ``logs cleanup``, read
back and damaged the way storage really fails, catalogued the way the cleanup does."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from sqlalchemy import create_engine, insert, select, text

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database


@dataclass
class Archive:
    """One archive root (a directory or an S3 prefix) with byte-level access for tests."""

    root: str  # file:///dir or s3://bucket/prefix
    s3_env: dict[str, str] | None = None

    @property
    def _s3(self) -> Any:
        assert self.s3_env is not None
        return boto3.client("s3", endpoint_url=self.s3_env["AWS_ENDPOINT_URL"],
                            region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing-secret-key")

    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")

    def keys(self) -> list[str]:
        """Every object's key below the root, sorted."""
        if self.root.startswith("file://"):
            base = Path(self.root.removeprefix("file://"))
            return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
        bucket, prefix = self._bucket_prefix()
        listed = self._s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
        return sorted(o["Key"][len(prefix) + 1:] for o in listed.get("Contents", []))

    def read(self, key: str) -> bytes:
        if self.root.startswith("file://"):
            return (Path(self.root.removeprefix("file://")) / key).read_bytes()
        bucket, prefix = self._bucket_prefix()
        body: bytes = self._s3.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        if self.root.startswith("file://"):
            path = Path(self.root.removeprefix("file://")) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        bucket, prefix = self._bucket_prefix()
        self._s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)

    def delete(self, key: str) -> None:
        if self.root.startswith("file://"):
            (Path(self.root.removeprefix("file://")) / key).unlink()
            return
        bucket, prefix = self._bucket_prefix()
        self._s3.delete_object(Bucket=bucket, Key=f"{prefix}/{key}")

    def objects(self) -> list[str]:
        return [key for key in self.keys() if key.endswith(".jsonl.gz")]

    def rows(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in gzip.decompress(self.read(key)).splitlines()]


def catalogue(url: str, archive: Archive, source_table: str = "export_logs") -> int:
    """Record every archive object not yet in the catalog, as the cleanup's delete
    transaction does; returns how many rows were added."""
    db = Database(url)
    try:
        migrations.ensure_schema(db)
        c = tables.archive_objects.c
        added = 0
        with db.begin() as conn:
            known = {row.key for row in conn.execute(
                select(c.key).where(c.uri == archive.root))}
            for key in archive.objects():
                if key in known:
                    continue
                data = archive.read(key)
                rows = archive.rows(key)
                stamps = [datetime.fromisoformat(r["created_at"]) for r in rows]
                conn.execute(insert(tables.archive_objects).values(
                    uri=archive.root, key=key, source_table=source_table,
                    first_id=rows[0]["id"], last_id=rows[-1]["id"], rows=len(rows),
                    bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                    min_created_at=min(stamps), max_created_at=max(stamps),
                    run_id=None, created_at=datetime.now(UTC)))
                added += 1
        return added
    finally:
        db.dispose()


def table_rows(url: str, table: str = "export_logs") -> list[tuple[Any, ...]]:
    """Every row, every column, in id order: what a restore must give back exactly."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
    finally:
        engine.dispose()


def gz(lines: list[dict[str, Any]]) -> bytes:
    body = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for r in lines)
    return gzip.compress(body.encode(), mtime=0)


