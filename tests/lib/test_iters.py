from __future__ import annotations

from registryui.lib.iters import IN_CHUNK, chunked


def test_chunks_cover_everything_in_order():
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    assert list(chunked(iter("abc"), 3)) == [["a", "b", "c"]]


def test_the_default_stays_under_sqlites_parameter_limit():
    chunks = list(chunked(range(2000)))
    assert max(len(chunk) for chunk in chunks) == IN_CHUNK < 999
    assert [item for chunk in chunks for item in chunk] == list(range(2000))
