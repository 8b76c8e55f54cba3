"""LocalFileStore on real files: deletes inside the root, refuses every way out of it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from opsctl.adapters.storage.local import (
    _PLAIN_KEY,
    DELETE_LANES,
    LocalFileStore,
    _lanes,
    _Walk,
)
from opsctl.domain.paths import safe_key
from opsctl.errors import ConfigError
from opsctl.ports import ExpiredExport


def item(file_path: str, size: int | None = None, id_: int = 1) -> ExpiredExport:
    return ExpiredExport(id_, f"export-{id_}", file_path, size)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "canary.txt"
    path.write_text("must survive")
    return path


def write(path: Path, data: bytes = b"x" * 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_deletes_a_regular_file_and_counts_the_row_size(root: Path) -> None:
    target = write(root / "2026" / "11" / "a.json", b"x" * 10)
    [outcome] = LocalFileStore(root).delete([item("2026/11/a.json", size=1234)])
    assert (outcome.state, outcome.size, outcome.error_kind) == ("deleted", 1234, None)
    assert not target.exists()
    assert (root / "2026" / "11").is_dir()  # directories are left in place


def test_real_size_when_the_row_has_none(root: Path) -> None:
    write(root / "b.csv", b"y" * 4321)
    [outcome] = LocalFileStore(root).delete([item("./b.csv", size=None)])
    assert (outcome.state, outcome.size) == ("deleted", 4321)


@pytest.mark.parametrize("file_path", ["gone.json", "d/gone.json"])
def test_absent_file_is_missing(root: Path, file_path: str) -> None:
    (root / "d").mkdir()
    [outcome] = LocalFileStore(root).delete([item(file_path, size=99)])
    assert (outcome.state, outcome.size) == ("missing", 0)


@pytest.mark.parametrize("file_path", ["no/such/dir/gone.json", "d/no/x.json"])
def test_a_directory_on_the_way_that_is_not_there_is_an_error_not_missing(
    root: Path, file_path: str
) -> None:
    # It may have been renamed while the run looked: the file may still exist.
    (root / "d").mkdir()
    for outcome in (LocalFileStore(root).delete([item(file_path)]),
                    LocalFileStore(root).check([item(file_path)])):
        assert [(o.state, o.error_kind) for o in outcome] == [("failed", "directory_missing")]
        assert outcome[0].error_message is not None
        assert "retried next run" in outcome[0].error_message


def test_a_directory_renamed_mid_chunk_never_makes_its_files_missing(root: Path) -> None:
    for n in (1, 2):
        write(root / "d" / f"{n}.json")
    store = LocalFileStore(root)
    with _Walk(store.root, 64) as walk:
        assert walk.handle(item("d/1.json", id_=1), remove=True).state == "deleted"
        # The directory walked so far is renamed away; a new one takes its name.
        (root / "d").rename(root / "d.old")
        (root / "d").mkdir()
        write(root / "d" / "3.json")
        # Its descriptor still holds the renamed directory, where 2.json still is...
        assert walk.handle(item("d/2.json", id_=2), remove=True).state == "deleted"
        # ...but 3.json is not in it: not missing, because "d" is another directory now.
        outcome = walk.handle(item("d/3.json", id_=3), remove=True)
        assert (outcome.state, outcome.error_kind) == ("failed", "directory_changed")
        # Gone for real from the directory that is at its path: missing.
        (root / "d" / "3.json").unlink()
        fresh = LocalFileStore(root).delete([item("d/3.json", id_=3)])
        assert fresh[0].state == "missing"
    assert sorted(p.name for p in (root / "d.old").iterdir()) == []


def test_a_root_renamed_mid_chunk_never_makes_files_missing(tmp_path: Path, root: Path) -> None:
    write(root / "a.json")
    store = LocalFileStore(root)
    with _Walk(store.root, 64) as walk:
        root.rename(tmp_path / "moved")
        outcome = walk.handle(item("gone.json"), remove=True)
        assert (outcome.state, outcome.error_kind) == ("failed", "directory_missing")


def test_check_reports_without_deleting(root: Path) -> None:
    target = write(root / "keep.json", b"z" * 7)
    outcomes = LocalFileStore(root).check([item("keep.json"), item("nope.json", id_=2),
                                           item("../x", id_=3)])
    assert [(o.state, o.size) for o in outcomes] == [("deleted", 7), ("missing", 0),
                                                     ("failed", 0)]
    assert target.read_bytes() == b"z" * 7


def hostile_setups(root: Path, canary: Path) -> dict[str, str]:
    """file_path -> expected error kind, with the file system arranged for each."""
    (root / "linkdir").symlink_to(canary.parent, target_is_directory=True)
    (root / "link.txt").symlink_to(canary)
    write(root / "deep" / "ok.txt")
    (root / "deep" / "up").symlink_to(canary.parent, target_is_directory=True)
    os.mkfifo(root / "fifo")
    (root / "adir").mkdir()
    write(root / "plain.txt")
    return {
        "../outside/canary.txt": "unsafe_path",
        str(canary): "unsafe_path",
        "/etc/passwd": "unsafe_path",
        "a/../../outside/canary.txt": "unsafe_path",
        "linkdir/canary.txt": "unsafe_path",
        "deep/up/canary.txt": "unsafe_path",
        "link.txt": "unsafe_path",
        "fifo": "not_regular_file",
        "adir": "not_regular_file",
        "plain.txt/inner": "not_a_directory",
        "..\\outside\\canary.txt": "unsafe_path",
    }


def test_hostile_paths_are_refused_and_nothing_outside_is_touched(
    root: Path, canary: Path
) -> None:
    expected = hostile_setups(root, canary)
    items = [item(path, size=5, id_=n) for n, path in enumerate(expected, start=1)]
    outcomes = LocalFileStore(root).delete(items)
    got = {o.export.file_path: (o.state, o.error_kind, o.size) for o in outcomes}
    assert got == {path: ("failed", kind, 0) for path, kind in expected.items()}
    assert all(repr(o.export.file_path) in (o.error_message or "") for o in outcomes)
    assert canary.read_text() == "must survive"
    assert (root / "link.txt").is_symlink()  # the link itself is not removed either
    assert (root / "fifo").exists() and (root / "adir").is_dir()
    assert (root / "plain.txt").exists()


def test_a_refusal_does_not_stop_the_rest_of_the_chunk(root: Path, canary: Path) -> None:
    (root / "link.txt").symlink_to(canary)
    write(root / "a.txt")
    write(root / "b.txt")
    outcomes = LocalFileStore(root).delete(
        [item("a.txt", 1, 1), item("link.txt", 1, 2), item("b.txt", 1, 3)])
    assert [o.state for o in outcomes] == ["deleted", "failed", "deleted"]
    assert canary.exists()


def test_many_directories_in_one_chunk_leak_no_descriptor(root: Path) -> None:
    files = [item(f"d{n:03d}/sub/f{n}.json", 1, n) for n in range(300)]
    for f in files:
        write(root / f.file_path)
    before = len(os.listdir("/proc/self/fd"))
    outcomes = LocalFileStore(root).delete(files)
    assert [o.state for o in outcomes] == ["deleted"] * 300
    assert len(os.listdir("/proc/self/fd")) == before
    assert not any(p.is_file() for p in root.rglob("*"))


def test_lanes_keep_each_directory_together_and_deal_directories_out() -> None:
    files = [item(f"d{n % 6}/f{n}.json", 1, n) for n in range(24)] + [item("top.json", 1, 99)]
    lanes = _lanes(files)
    assert len(lanes) == DELETE_LANES == 4
    assert sorted(p for lane in lanes for p in lane) == list(range(25))
    for lane in lanes:
        assert lane == sorted(lane)  # each lane goes in the chunk's order
    lane_of = {files[p].file_path.rpartition("/")[0]: i for i, lane in enumerate(lanes)
               for p in lane}
    # d0..d3 take lanes 0..3, d4 and d5 lanes 0 and 1, the root's file lane 2.
    assert lane_of == {"d0": 0, "d1": 1, "d2": 2, "d3": 3, "d4": 0, "d5": 1, "": 2}
    assert [_lanes([item("a/1"), item("a/2")])] == [[[0, 1]]]


def test_a_chunk_deleted_in_lanes_reports_every_outcome_in_its_order(
    root: Path, canary: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (root / "d3").mkdir()
    (root / "d3" / "link.json").symlink_to(canary)
    files = []
    expected = []
    for n in range(120):
        path = f"d{n % 8}/f{n}.json"
        if n % 10 == 3:  # in d3: a symlink where the file should be
            path = "d3/link.json"
            expected.append("failed")
        elif n % 10 == 7:  # never written
            expected.append("missing")
        else:
            write(root / path, b"x" * n)
            expected.append("deleted")
        files.append(item(path, None, n))
    threads: set[str] = set()
    unlink = os.unlink

    def watched(*args: object, **kwargs: object) -> None:
        threads.add(threading.current_thread().name)
        unlink(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", watched)
    before = len(os.listdir("/proc/self/fd"))
    outcomes = LocalFileStore(root).delete(files)
    assert [o.export.id for o in outcomes] == list(range(120))
    assert [o.state for o in outcomes] == expected
    assert [o.size for o in outcomes if o.state == "deleted"] == [
        n for n in range(120) if n % 10 not in (3, 7)]
    assert len(threads) == DELETE_LANES  # the calling thread and three more
    assert len(os.listdir("/proc/self/fd")) == before
    assert canary.read_text() == "must survive"
    assert not any(p.is_file() and not p.is_symlink() for p in root.rglob("*"))


def test_few_descriptors_still_reach_deep_files(root: Path) -> None:
    files = [item(f"a{n % 7}/b{n % 5}/c{n % 3}/f{n}.json", 1, n) for n in range(120)]
    for f in files:
        write(root / f.file_path)
    before = len(os.listdir("/proc/self/fd"))
    outcomes = LocalFileStore(root, max_open_dirs=3).delete(files)
    assert [o.state for o in outcomes] == ["deleted"] * 120
    assert len(os.listdir("/proc/self/fd")) == before
    assert not any(p.is_file() for p in root.rglob("*"))


def test_root_may_itself_be_a_symlink(tmp_path: Path, root: Path) -> None:
    write(root / "a.txt")
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    [outcome] = LocalFileStore(alias).delete([item("a.txt", 1)])
    assert outcome.state == "deleted"


@pytest.mark.parametrize("name", ["", "/", ".", "missing", "file", "to_slash"])
def test_unusable_root_is_a_config_error(tmp_path: Path, name: str) -> None:
    write(tmp_path / "file")
    (tmp_path / "to_slash").symlink_to("/", target_is_directory=True)
    root = Path(name) if name in ("", "/", ".") else tmp_path / name
    with pytest.raises(ConfigError) as raised:
        LocalFileStore(root)
    assert raised.value.key == "storage.root"
    assert raised.value.exit_code == 78


@pytest.mark.parametrize("key", ["a", "2026/11/ab-c_d.json", "A/b.c.d", "x+y/1", "a.b/c."])
def test_plain_keys_take_the_fast_path_to_what_safe_key_says(key: str) -> None:
    assert _PLAIN_KEY.fullmatch(key)
    assert tuple(key.split("/")) == safe_key(key).parts


@pytest.mark.parametrize("key", ["", ".", "..", "../x", "a/../b", "/a", "a//b", "a/", "./a",
                                 ".hidden", "a/.b", "C:x", "a\\b", "a b", "é", "a\x00b", "~/x"])
def test_anything_else_goes_through_safe_key(key: str) -> None:
    assert not _PLAIN_KEY.fullmatch(key)
