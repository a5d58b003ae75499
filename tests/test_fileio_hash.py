"""fileio.file_hash: the one file-digest helper (checkpoint fingerprints, SPICE jar checks)."""

from __future__ import annotations

import hashlib

import pytest

from audiocap.fileio import file_hash


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
def test_file_hash_matches_hashlib_over_several_blocks(tmp_path, algorithm):
    data = bytes(range(256)) * 12_289  # 3.1 MB: more than one read block
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_hash(path, algorithm) == hashlib.new(algorithm, data).hexdigest()
    assert file_hash(path) == hashlib.sha256(data).hexdigest()


def test_file_hash_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        file_hash(tmp_path / "nope.bin")
