from pathlib import PurePosixPath

import pytest

from opsctl.domain.paths import UnsafePath, s3_key, safe_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/11/abc.json", "2026/11/abc.json"),
        ("abc.json", "abc.json"),
        ("./a//b", "a/b"),
        ("a/./b/", "a/b"),
        ("exports/2026/11/abc.json.gz", "exports/2026/11/abc.json.gz"),
        ("...", "..."),  # three dots is a file name, not a parent
        ("a/..b/c..", "a/..b/c.."),
        ("dir with space/ü.json", "dir with space/ü.json"),
        ("~/x", "~/x"),  # never expanded: a literal directory named ~ under the root
    ],
)
def test_safe_key_accepts_and_normalises(text: str, expected: str) -> None:
    key = safe_key(text)
    assert key == PurePosixPath(expected)
    assert str(key) == expected
    assert not key.is_absolute()
    assert ".." not in key.parts


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty storage key"),
        ("   ", "empty storage key"),
        ("/etc/passwd", "is absolute"),
        ("//server/share/x", "is absolute"),
        ("..", "'..' component"),
        ("../x", "'..' component"),
        ("a/../../etc/passwd", "'..' component"),
        ("a/b/..", "'..' component"),
        ("a/../b", "'..' component"),  # harmless, but a key the application never writes
        ("./../x", "'..' component"),
        ("C:\\x", "backslash"),
        ("C:/x", "Windows drive"),
        ("c:x", "Windows drive"),
        ("..\\x", "backslash"),
        ("a\\..\\..\\x", "backslash"),
        ("a/b\x00.json", "NUL byte"),
        ("\x00", "NUL byte"),
        (".", "names the storage root itself"),
        ("./", "names the storage root itself"),
        (".//./", "names the storage root itself"),
    ],
)
def test_safe_key_rejects(text: str, reason: str) -> None:
    with pytest.raises(UnsafePath, match=reason):
        safe_key(text)


def test_unsafe_path_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="is absolute"):
        safe_key("/etc/passwd")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("exports/", "exports/2026/11/abc.json"),
        ("exports", "exports/2026/11/abc.json"),
        ("/exports/", "exports/2026/11/abc.json"),
        ("exports//", "exports/2026/11/abc.json"),
        ("team/exports", "team/exports/2026/11/abc.json"),
        ("", "2026/11/abc.json"),
        ("/", "2026/11/abc.json"),
    ],
)
def test_s3_key_joins_prefix_and_key(prefix: str, expected: str) -> None:
    assert s3_key(prefix, "2026/11/abc.json") == expected


@pytest.mark.parametrize("file_path", ["a//b.json", "a/./b.json", "./2026//abc.json",
                                       "a/b/", "a/.", "...", "a/..b", " x"])
def test_s3_key_keeps_the_key_literally(file_path: str) -> None:
    # On S3 these are objects of their own: normalised, they would name another export's.
    assert s3_key("exports", file_path) == f"exports/{file_path}"


@pytest.mark.parametrize("file_path", ["../other/x", "/etc/passwd", "a/../../x", "..\\x", ".",
                                       "./", "//", "a/..", "a//../b", "", "  ", "a\x00b"])
def test_s3_key_never_leaves_the_prefix(file_path: str) -> None:
    with pytest.raises(UnsafePath):
        s3_key("exports", file_path)


def test_s3_key_result_starts_with_the_prefix() -> None:
    for file_path in ["a", "a/b", "./a", "a//b/./c"]:
        assert s3_key("exports/", file_path).startswith("exports/")


@pytest.mark.parametrize("prefix", ["exports/../other", "..", "C:\\x", "a\x00"])
def test_s3_key_rejects_an_unsafe_prefix(prefix: str) -> None:
    with pytest.raises(UnsafePath, match=r"S3 prefix .* is unsafe"):
        s3_key(prefix, "abc.json")
