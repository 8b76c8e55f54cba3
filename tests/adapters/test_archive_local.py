"""The local log archive on a real temporary directory: gzip objects created exclusively
and atomically, verified by reading back, markers beside them, and every way of not being
writable is ArchiveUnavailable."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest

from opsctl.adapters.archive.local import LocalArchive
from opsctl.errors import ArchiveUnavailable

PAYLOAD = '{"id":1,"text":"é \\"quoted\\" \\\\ \\n"}\n{"id":2,"text":"🚀"}\n'.encode()
NAME = "000000000001-000000000002.run-1.jsonl.gz"


def test_write_stores_gzip_json_lines_and_reports_size_and_sha(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive" / "export_logs", gzip_level=1)

    written = archive.write(NAME, PAYLOAD)

    path = tmp_path / "archive" / "export_logs" / NAME
    stored = path.read_bytes()
    assert gzip.decompress(stored) == PAYLOAD
    assert written.uri == path.as_uri()
    assert written.bytes == len(stored)
    assert written.sha256 == hashlib.sha256(stored).hexdigest()
    assert sorted(p.name for p in path.parent.iterdir()) == [NAME]  # no temporary left
    archive.verify(written)


def test_the_same_rows_give_the_same_bytes(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path, gzip_level=1)

    first = archive.write(NAME, PAYLOAD)
    again = archive.write(NAME, PAYLOAD)

    assert first == again


def test_verify_fails_when_the_stored_object_differs(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    written = archive.write(NAME, PAYLOAD)
    path = tmp_path / NAME
    data = bytearray(path.read_bytes())
    data[-9] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))

    with pytest.raises(ArchiveUnavailable, match="failed verification"):
        archive.verify(written)


def test_verify_fails_when_the_object_is_gone(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    written = archive.write(NAME, PAYLOAD)
    (tmp_path / NAME).unlink()

    with pytest.raises(ArchiveUnavailable, match="cannot read back"):
        archive.verify(written)


def test_read_returns_the_content_or_none(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "not-yet")

    assert archive.read(NAME) is None
    written = archive.write(NAME, PAYLOAD)
    assert archive.read(NAME) == (PAYLOAD, written)


def test_an_existing_object_with_other_content_is_never_replaced(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    first = archive.write(NAME, PAYLOAD)

    with pytest.raises(ArchiveUnavailable, match="already exists with other content"):
        archive.write(NAME, b'{"id":1,"text":"another table\'s row 1"}\n')

    assert gzip.decompress((tmp_path / NAME).read_bytes()) == PAYLOAD
    archive.verify(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]  # no temporary left


def test_markers_are_plain_json_beside_the_objects_and_the_old_name_is_read(
    tmp_path: Path,
) -> None:
    archive = LocalArchive(tmp_path / "export_logs")
    assert archive.read_marker() is None

    archive.write_marker(b'{"object": "a"}')
    archive.write_marker(b'{"object": "b"}')

    assert (tmp_path / "export_logs" / ".inflight.json").read_bytes() == b'{"object": "b"}'
    assert [p.name for p in (tmp_path / "export_logs").glob("*.gz")] == []
    archive.remove_marker()
    assert archive.read_marker() is None
    (tmp_path / "export_logs" / "_inflight.json.gz").write_bytes(gzip.compress(b'{"o": 1}'))
    assert archive.read_marker() == b'{"o": 1}'
    archive.remove_marker()
    assert list((tmp_path / "export_logs").iterdir()) == []


def test_read_of_a_truncated_object_is_refused(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    archive.write(NAME, PAYLOAD)
    path = tmp_path / NAME
    path.write_bytes(path.read_bytes()[:-4])

    with pytest.raises(ArchiveUnavailable, match="not valid gzip"):
        archive.read(NAME)


def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    (tmp_path / "archive").write_text("not a directory")
    archive = LocalArchive(tmp_path / "archive" / "export_logs")

    with pytest.raises(ArchiveUnavailable, match="cannot read"):
        archive.read(NAME)
    with pytest.raises(ArchiveUnavailable, match="cannot write"):
        archive.write(NAME, PAYLOAD)
    assert (tmp_path / "archive").read_text() == "not a directory"


def test_remove_is_idempotent(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    archive.write(NAME, PAYLOAD)

    archive.remove(NAME)
    archive.remove(NAME)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["", "../escape.jsonl.gz", "a/b.jsonl.gz", ".."])
def test_names_cannot_leave_the_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid archive object name"):
        LocalArchive(tmp_path).write(name, PAYLOAD)


def test_an_object_zlib_wrote_is_the_same_object_when_rewritten_with_isal(
    tmp_path: Path,
) -> None:
    """A run killed after writing with zlib, rerun where igzip writes: same lines, so the
    object stays as it is and is verified as stored."""
    stored = gzip.compress(PAYLOAD, compresslevel=1, mtime=0)
    (tmp_path / NAME).write_bytes(stored)
    archive = LocalArchive(tmp_path, gzip_level=1)

    written = archive.write(NAME, PAYLOAD)

    assert (tmp_path / NAME).read_bytes() == stored  # never replaced
    assert (written.bytes, written.sha256) == (len(stored), hashlib.sha256(stored).hexdigest())
    archive.verify(written)
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]
    with pytest.raises(ArchiveUnavailable, match="already exists with other content"):
        archive.write(NAME, PAYLOAD + b'{"id":3}\n')


def test_the_next_object_is_staged_while_the_one_before_is_published(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "a")
    first = archive.stage(b'{"id":1}\n')
    second = archive.stage(b'{"id":2}\n')  # staged before the first is published

    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        ".opsctl-writing-2.tmp", ".opsctl-writing.tmp"]  # staged: no object yet
    written = archive.publish("one.jsonl.gz", first)
    archive.verify(written)
    archive.write_marker(b"{}")  # the marker never uses a staging name
    assert gzip.decompress((tmp_path / "a" / "one.jsonl.gz").read_bytes()) == b'{"id":1}\n'
    assert archive.publish("two.jsonl.gz", second).bytes == len(second.data)
    third = archive.stage(b'{"id":3}\n')
    archive.discard(third)

    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        ".inflight.json", "one.jsonl.gz", "two.jsonl.gz"]
    with pytest.raises(ArchiveUnavailable, match="other content"):
        archive.publish("one.jsonl.gz", archive.stage(b'{"id":9}\n'))
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_a_temporary_name_left_on_an_object_never_lets_staging_rewrite_it(
    tmp_path: Path,
) -> None:
    archive = LocalArchive(tmp_path / "a")
    written = archive.write("one.jsonl.gz", b'{"id":1}\n')
    # A run killed between link() and unlink(): both temporary names on the object.
    for name in (".opsctl-writing.tmp", ".opsctl-writing-2.tmp"):
        os.link(tmp_path / "a" / "one.jsonl.gz", tmp_path / "a" / name)

    later = LocalArchive(tmp_path / "a")
    for i in range(2, 5):
        later.publish(f"{i}.jsonl.gz", later.stage(b'{"id":%d}\n' % i))

    archive.verify(written)
    assert gzip.decompress((tmp_path / "a" / "one.jsonl.gz").read_bytes()) == b'{"id":1}\n'


def test_a_late_discard_never_removes_the_temporary_another_object_holds_now(
    tmp_path: Path,
) -> None:
    archive = LocalArchive(tmp_path / "a")
    first = archive.stage(b'{"id":1}\n')
    archive.publish("one.jsonl.gz", first)  # frees its temporary name
    later = [archive.stage(b'{"id":%d}\n' % i) for i in (2, 3, 4)]  # the last reuses it
    assert later[-1].path == first.path

    archive.discard(first)  # publish discarded it already: nothing more to do

    assert archive.publish("four.jsonl.gz", later[-1]).bytes == len(later[-1].data)
    for staged in later[:-1]:
        archive.discard(staged)
    assert gzip.decompress((tmp_path / "a" / "four.jsonl.gz").read_bytes()) == b'{"id":4}\n'
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_two_threads_stage_and_publish_at_once(tmp_path: Path) -> None:
    import threading

    archive = LocalArchive(tmp_path / "a")
    failures: list[BaseException] = []

    def lane(start: int) -> None:
        try:
            for i in range(start, 120, 2):
                written = archive.publish(f"{i}.jsonl.gz", archive.stage(b'{"id":%d}\n' % i))
                archive.verify(written)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    lanes = [threading.Thread(target=lane, args=(k,)) for k in (0, 1)]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()

    assert failures == []
    for i in range(120):
        assert gzip.decompress((tmp_path / "a" / f"{i}.jsonl.gz").read_bytes()) == (
            b'{"id":%d}\n' % i)
    assert not list((tmp_path / "a").glob("*.tmp"))
