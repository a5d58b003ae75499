"""embed.equal_length_batches: the batching the torch and ONNX CLAP embedders share."""

from __future__ import annotations

import numpy as np

from audiocap.embed import equal_length_batches


def test_only_equal_lengths_share_a_batch_shortest_first():
    waves = [np.full(n, i, dtype=np.float64) for i, n in enumerate([3, 5, 3, 3, 5, 3])]
    batches = list(equal_length_batches(waves, 2))
    assert [idx for idx, _ in batches] == [[0, 2], [3, 5], [1, 4]]
    for idx, batch in batches:
        assert batch.dtype == np.float32 and batch.shape == (len(idx), len(waves[idx[0]]))
        np.testing.assert_array_equal(batch[:, 0], idx)  # row r is wave idx[r]
    assert list(equal_length_batches([], 4)) == []
