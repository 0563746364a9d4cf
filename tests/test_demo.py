import pytest
from astropy.io import fits

from enhance.demo import main, sample_path


def test_demo_without_trained_models_says_so_and_shows_the_baseline(tmp_path, capsys, no_shipped_models):
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("not trained yet") == 2
    assert "Richardson-Lucy" in out
    for stem in ("hmi_continuum_ar_rl", "hmi_blos_ar_rl"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        with fits.open(tmp_path / f"{stem}.fits") as hdul:
            assert hdul[0].data.shape == (400, 400)
            assert hdul[0].header["CDELT1"] == 0.252


def test_samples_ship_with_the_package():
    for kind in ("intensity", "blos"):
        assert fits.getdata(sample_path(kind)).shape == (200, 200)


def test_demo_uses_the_shipped_models(tmp_path, capsys):
    from enhance.models.weights import shipped

    models = shipped()
    if not all((kind, "full") in models or (kind, "light") in models for kind in ("intensity", "blos")):
        pytest.skip("no shipped model for one of the kinds")
    assert main([str(tmp_path)]) == 0
    assert "not trained yet" not in capsys.readouterr().out
    for stem in ("hmi_continuum_ar_enhanced", "hmi_blos_ar_enhanced"):
        with fits.open(tmp_path / f"{stem}.fits") as hdul:
            assert hdul[0].data.shape == (400, 400)
            assert "Enhance" in str(hdul[0].header["HISTORY"])
