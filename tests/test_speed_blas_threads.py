"""tinyvae/speed/blas_threads.py: OpenBLAS's thread count, set from inside and put back.

The reproduction recipe runs its batches of 20 on one thread (speed and bits: a run resumed
with another thread count would not continue bit for bit); these tests hold the switch to
what it says. Where NumPy's BLAS is not an OpenBLAS the module can find, nothing changes and
the functions say so with None.
"""

import numpy as np
import pytest

from tinyvae.speed.blas_threads import blas_threads, get_blas_threads

needs_openblas = pytest.mark.skipif(get_blas_threads() is None,
                                    reason="NumPy's BLAS is not a known OpenBLAS")


@needs_openblas
def test_the_count_is_set_inside_the_block_and_restored_after():
    before = get_blas_threads()
    with blas_threads(1) as inside:
        assert inside == 1 == get_blas_threads()
        with blas_threads(2) as nested:
            assert nested == 2 == get_blas_threads()
        assert get_blas_threads() == 1
    assert get_blas_threads() == before


@needs_openblas
def test_the_count_is_restored_when_the_block_raises():
    before = get_blas_threads()
    with pytest.raises(RuntimeError):
        with blas_threads(1):
            raise RuntimeError("boom")
    assert get_blas_threads() == before


def test_none_leaves_the_count_alone_and_products_stay_right():
    before = get_blas_threads()
    a = np.random.default_rng(0).standard_normal((20, 200))
    with blas_threads(None) as inside:
        assert inside == before
    with blas_threads(1):
        one_thread = a @ a.T
    assert np.allclose(one_thread, np.einsum("ik,jk->ij", a, a), rtol=1e-12, atol=1e-10)
    assert get_blas_threads() == before
