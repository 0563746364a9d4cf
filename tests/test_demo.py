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
    from enhance.models.registry import shipped

    models = shipped()
    if not all((kind, "full") in models or (kind, "light") in models for kind in ("intensity", "blos")):
        pytest.skip("no shipped model for one of the kinds")
    assert main([str(tmp_path)]) == 0
    assert "not trained yet" not in capsys.readouterr().out
    for stem in ("hmi_continuum_ar_enhanced", "hmi_blos_ar_enhanced"):
        with fits.open(tmp_path / f"{stem}.fits") as hdul:
            assert hdul[0].data.shape == (400, 400)
            assert "Enhance" in str(hdul[0].header["HISTORY"])


def test_demo_takes_its_folder_as_an_argument_and_replaces_nothing_without_overwrite(tmp_path, capsys, monkeypatch):
    import enhance.analysis.figures as figures
    from enhance.cli import main as cli

    titles = []
    plot_maps = figures.plot_maps

    def recorded(maps, **kwargs):
        titles.append(kwargs.get("suptitle"))
        return plot_maps(maps, **kwargs)

    monkeypatch.setattr(figures, "plot_maps", recorded)
    folder = tmp_path / "out"
    assert cli(["demo", str(folder), "--model", "light"]) == 0  # a positional folder, as python -m enhance.demo
    written = sorted(folder.iterdir())
    assert [p.suffix for p in written] == [".fits", ".png", ".fits", ".png"]
    # The samples' DATE-OBS is nominal (src/enhance/data/README.md): no title shows it as a real date.
    assert len(titles) == 2
    assert all("2014" not in title and "date and disk position not recorded" in title for title in titles)
    before = {p: p.read_bytes() for p in written}
    capsys.readouterr()
    assert cli(["demo", "-o", str(folder), "--model", "light"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "exists (an earlier demo?); pass --overwrite" in line
    assert {p: p.read_bytes() for p in written} == before
    assert cli(["demo", str(folder), "-o", str(folder), "--model", "light", "--overwrite"]) == 0


@pytest.mark.parametrize("argv", [["demo", "a", "b"], ["demo", "--bogus"], ["demo", "a", "-o", "b"]])
def test_demo_usage_errors_print_the_demos_usage(tmp_path, capsys, argv, monkeypatch):
    from enhance.cli import main as cli

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        cli(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: enhance demo ")
    assert "enhance demo: error: " in err
    assert list(tmp_path.iterdir()) == []


def test_a_demo_file_name_taken_by_a_fifo_is_refused_even_with_overwrite(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "hmi_blos_ar_enhanced.png")
    assert main([str(tmp_path), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "hmi_blos_ar_enhanced.png is a FIFO (named pipe), not a file the demo can replace" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hmi_blos_ar_enhanced.png"]
