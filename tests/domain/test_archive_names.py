"""Archive object names: ids and the run that wrote them, parsed back in both forms."""

from __future__ import annotations

import pytest

from opsctl.domain.archive_names import (
    LEGACY_MARKER_NAME,
    MARKER_NAME,
    OBJECT_ENDING,
    object_ids,
    object_name,
)

RUN = "6f1c2d3e-0000-4000-8000-00000000abcd"


def test_a_name_holds_the_ids_and_the_run() -> None:
    name = object_name(1, 5000, RUN)

    assert name == f"000000000001-000000005000.{RUN}.jsonl.gz"
    assert object_ids(name) == (1, 5000)


def test_names_of_earlier_versions_still_parse() -> None:
    assert object_ids("000000000001-000000000003.jsonl.gz") == (1, 3)


@pytest.mark.parametrize("name", [MARKER_NAME, LEGACY_MARKER_NAME, "1-2.json.gz",
                                  "a-b.jsonl.gz", f"1-2.{RUN}.jsonl"])
def test_anything_else_is_no_object(name: str) -> None:
    assert object_ids(name) is None


def test_markers_never_look_like_objects() -> None:
    assert not MARKER_NAME.endswith(OBJECT_ENDING)
    assert not MARKER_NAME.endswith(".gz")


@pytest.mark.parametrize(("first", "last", "run"), [(5, 4, RUN), (1, 2, "a/b"), (1, 2, "")])
def test_nonsense_is_refused(first: int, last: int, run: str) -> None:
    with pytest.raises(ValueError, match=r"first id|run id"):
        object_name(first, last, run)
