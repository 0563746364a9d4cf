import numpy as np
import pytest

from enhance import enhance
from enhance.tiling import tile_spans


@pytest.mark.parametrize("shape", [(37, 53), (64, 29)])
@pytest.mark.parametrize("tile", [5, 16, 23, 100])
def test_tiled_equals_whole_image(tiny_net, shape, tile):
    image = 1 + 0.1 * np.random.default_rng(0).standard_normal(shape)
    whole = enhance(image, "intensity", network=tiny_net, qs_level=1.0)
    tiled = enhance(image, "intensity", network=tiny_net, qs_level=1.0, tile=tile)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5 * np.abs(whole).max())


def test_tiling_with_nan_regions(tiny_net):
    image = 1 + 0.1 * np.random.default_rng(1).standard_normal((40, 40))
    image[:, :7] = np.nan
    whole = enhance(image, "intensity", network=tiny_net, qs_level=1.0)
    tiled = enhance(image, "intensity", network=tiny_net, qs_level=1.0, tile=9)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.isnan(tiled), np.isnan(whole))


def test_too_small_margin_would_break_equality(tiny_net):
    # The margin matters: tiles without it differ from the whole-image pass.
    import torch

    from enhance.network import fold_batchnorm
    from enhance.tiling import run_tiled

    image = (1 + 0.1 * np.random.default_rng(2).standard_normal((30, 30))).astype(np.float32)
    net = fold_batchnorm(tiny_net)
    whole = run_tiled(image, net, tile=None, margin=0, device=torch.device("cpu"))
    seamy = run_tiled(image, net, tile=10, margin=2, device=torch.device("cpu"))
    assert np.abs(seamy - whole).max() > 1e-3


def test_tile_spans_cover_everything_once():
    spans = tile_spans(50, 16, 4)
    assert [(a, b) for a, b, _, _ in spans] == [(0, 16), (16, 32), (32, 48), (48, 50)]
    assert spans[1][2:] == (12, 36)
    assert spans[0][2] == 0
    assert spans[-1][3] == 50
    with pytest.raises(ValueError, match="tile must be a positive number"):
        tile_spans(10, 0, 1)
