"""Atomic writes (zoo.files): a reader sees the old file or the whole new one, and a failed write leaves nothing."""

import os

import pytest

from zoo.files import atomic_path, replace_atomically


def test_a_finished_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "data.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"first")
        assert not target.exists()  # nothing at the target while writing
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"second")
        assert target.read_bytes() == b"first"  # readers still see the old file
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["data.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_the_file_gets_ordinary_permissions(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    with atomic_path(tmp_path / "atomic") as tmp:
        tmp.write_bytes(b"x")
    assert os.stat(tmp_path / "atomic").st_mode & 0o777 == os.stat(plain).st_mode & 0o777


def test_a_folder_is_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "bundle"
    with atomic_path(target, directory=True) as tmp:
        (tmp / "card.json").write_text("{}")
    assert [p.name for p in target.iterdir()] == ["card.json"]
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "other", directory=True) as tmp:
        (tmp / "half").write_text("")
        raise RuntimeError("export failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_replace_takes_an_empty_folder_and_refuses_a_full_one(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("new")
    replace_atomically(tmp_path / "a", tmp_path / "empty")
    assert (tmp_path / "empty" / "x").read_text() == "new"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y").write_text("")
    with pytest.raises(OSError):
        replace_atomically(tmp_path / "b", tmp_path / "empty")  # never merged into an existing bundle
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["x"]
