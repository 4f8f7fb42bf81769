"""The data root's owner: who containers run as, and what root hands over to them."""

from __future__ import annotations

import os

import pytest

from fastsd.runtime.ownership import data_owner, hand_over

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


def test_a_data_root_it_creates_belongs_to_the_invoking_user(tmp_path):
    root = tmp_path / "new" / "data"
    assert data_owner(root) == (os.geteuid(), os.getegid())
    assert root.is_dir()


@as_root
def test_root_hands_what_it_wrote_to_the_volumes_owner(tmp_path):
    root = tmp_path / "data"
    (root / "sessions" / "alice").mkdir(parents=True)
    os.chown(root, 4321, 4322)
    (root / "sessions" / "alice" / "session.yaml").write_text("x")
    os.symlink("session.yaml", root / "sessions" / "alice" / "link")
    other = root / "sessions" / "theirs.txt"
    other.write_text("y")
    os.chown(other, 555, 555)
    assert hand_over(root) == 4  # sessions, alice, session.yaml, link (not the link's target twice)
    for path in (root / "sessions", root / "sessions" / "alice", root / "sessions" / "alice" / "session.yaml"):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)
    assert os.lstat(root / "sessions" / "alice" / "link").st_uid == 4321
    assert other.stat().st_uid == 555  # someone else's file is left alone
    assert hand_over(root) == 0


@as_root
def test_nothing_changes_hands_when_root_owns_the_volume(tmp_path):
    (tmp_path / "data" / "sessions").mkdir(parents=True)
    assert hand_over(tmp_path / "data") == 0
