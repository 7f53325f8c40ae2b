"""The atomic writer: permissions of an ordinary new file, temporaries of killed writes swept,
nothing left behind by a failing writer, and checkpoints whose bytes depend on content only."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys

import pytest
import torch

from model import checkpoint as ckpt_io
from model.bundle_file import save_bundle
from pipeline import tables


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_written_file_gets_the_permissions_the_umask_gives(tmp_path, umask) -> None:
    old = os.umask(umask)
    try:
        tables.write_json({"a": 1}, tmp_path / "x.json")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # an ordinary new file, for comparison
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.json") == 0o666 & ~umask == _mode(plain)


def test_temporaries_of_a_killed_write_are_removed_by_the_next_write(tmp_path) -> None:
    target = tmp_path / "metrics.json"
    # a process that dies with its temporary file still there (as after kill -9)
    code = ("import os, sys; from pathlib import Path; from pipeline import tables; "
            "tables.atomic_write(Path(sys.argv[1]), lambda tmp: os._exit(9))")
    res = subprocess.run([sys.executable, "-c", code, str(target)], cwd=os.getcwd())
    assert res.returncode == 9
    left = list(tmp_path.glob(".metrics.json.*.tmp"))
    assert len(left) == 1 and not target.exists()
    other = tmp_path / ".other.json.1-00.tmp"  # another target's temporary stays
    other.write_text("")
    tables.write_json({"a": 1}, target)
    assert not any(p.exists() for p in left) and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.1-00.tmp", "metrics.json"]


def test_a_live_writers_temporary_is_kept(tmp_path) -> None:
    target = tmp_path / "t.json"
    mine = tmp_path / f".t.json.{os.getpid()}-abcd.tmp"  # this process: maybe another thread
    mine.write_text("")
    tables.write_json([], target)
    assert mine.exists()


def test_a_failing_writer_leaves_nothing(tmp_path) -> None:
    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        tables.atomic_write(tmp_path / "x.bin", boom)
    assert list(tmp_path.iterdir()) == []


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_checkpoints_and_bundles_have_the_same_bytes_for_the_same_content(tmp_path) -> None:
    payload = {"format": ckpt_io.FORMAT, "stage": 1, "model": {"w": torch.arange(6.0).reshape(2, 3)},
               "best": {"metric": "int_ap", "value": 0.5}}
    ckpt_io.save(tmp_path / "a.pt", payload)
    ckpt_io.save(tmp_path / "b" / "stage1.pt", payload)  # another name, another folder
    ckpt_io.save(tmp_path / "a2.pt", payload)
    assert _sha(tmp_path / "a.pt") == _sha(tmp_path / "b" / "stage1.pt") == _sha(tmp_path / "a2.pt")
    assert torch.equal(ckpt_io.load(tmp_path / "a.pt")["model"]["w"], payload["model"]["w"])
    bundle = {"format": "bpm-bundle/1", "stage1": payload}
    save_bundle(tmp_path / "x.pt", bundle)
    save_bundle(tmp_path / "y.pt", bundle)
    assert _sha(tmp_path / "x.pt") == _sha(tmp_path / "y.pt")
