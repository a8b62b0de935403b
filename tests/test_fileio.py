"""Atomic writes: the destination is either the old file or the complete new one."""
from __future__ import annotations

import pytest

from attribmap.fileio import atomic_open, atomic_write_bytes, atomic_write_text


def test_write_replaces_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_failure_keeps_the_previous_file(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target, "wb") as stream:
            stream.write(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(target, "a"):
            pass
