"""`make demo`: enhance the two HMI sample cut-outs shipped with the package.

Until trained models ship, it says so and shows the Richardson-Lucy baseline instead.

Run as ``python -m enhance.demo [OUTDIR]`` (default ``demo_output``). Writes the enhanced FITS files
and a PNG comparing input and output, and prints the numbers a solar physicist looks at first.
"""

import sys
from importlib import resources
from pathlib import Path

import numpy as np

from .analysis.baselines import rl_super_resolve
from .analysis.metrics import contrast
from .exceptions import ModelNotTrainedError
from .inference.pipeline import enhance_array, estimate_qs_level, resolve_network
from .io import read_fits, upscale_header, write_fits

__all__ = ["sample_path", "main"]

SAMPLES = {"intensity": "hmi_continuum_ar.fits", "blos": "hmi_blos_ar.fits"}


def sample_path(kind: str) -> Path:
    """Path of the shipped HMI sample cut-out of one kind.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        The continuum cut-out (I/Ic) or the line-of-sight magnetogram (gauss); both 200 x 200 pixels
        of 0.504 arcsec of the same active region.

    Returns
    -------
    pathlib.Path
        The FITS file inside the installed package.

    Examples
    --------
    >>> sample_path("blos").name
    'hmi_blos_ar.fits'
    """
    return Path(str(resources.files("enhance") / "data" / SAMPLES[kind]))


def _figure(panels, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4 * len(panels), 4), layout="constrained")
    for ax, (title, image, scale, limits) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        ny, nx = image.shape
        extent = (0, nx * scale, 0, ny * scale)
        im = ax.imshow(image, origin="lower", cmap="gray", extent=extent, vmin=limits[0], vmax=limits[1])
        ax.set_title(title)
        ax.set_xlabel("x [arcsec]")
        ax.set_ylabel("y [arcsec]")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    """Enhance the two shipped HMI cut-outs, write FITS files and figures, and print their first numbers.

    Parameters
    ----------
    argv : list of str, optional
        ``[OUTDIR]``, the output folder (default ``demo_output``); defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status, 0.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     main([folder])  # doctest: +ELLIPSIS
    solar-enhance demo: ...
    0
    """
    argv = sys.argv[1:] if argv is None else argv
    outdir = Path(argv[0] if argv else "demo_output")
    outdir.mkdir(parents=True, exist_ok=True)
    print("solar-enhance demo: SDO/HMI active-region cut-outs (200 x 200 px at 0.504 arcsec/px)")
    for kind, name in SAMPLES.items():
        data, header = read_fits(sample_path(kind))
        if kind == "intensity":
            level = estimate_qs_level(data)
            print(f"  {name}: quiet-Sun level {level:.3f} I/Ic, min {np.nanmin(data):.3f} (umbra)")
        else:
            peak, mean = np.nanmax(np.abs(data)), np.nanmean(np.abs(data))
            print(f"  {name}: |B| max {peak:.0f} G, unsigned flux density {mean:.1f} G")
        try:
            try:
                network, model = resolve_network(kind, model="full"), "full"
            except ModelNotTrainedError:
                network, model = resolve_network(kind, model="light"), "light"
            result = enhance_array(data, kind=kind, network=network)
            label, suffix = f"Enhance x2 ({model} model)", "_enhanced"
        except ModelNotTrainedError as err:
            # Say so, and show the classical baseline instead of an untrained network's output.
            print(f"  -> {err}")
            print("  -> showing the Richardson-Lucy baseline (20 iterations on the x2 grid) instead")
            offset = None if kind == "intensity" else 2 * float(np.nanmax(np.abs(data)))
            result, label, suffix = rl_super_resolve(data, n_iter=20, offset=offset), "Richardson-Lucy x2", "_rl"
        target = outdir / name.replace(".fits", f"{suffix}.fits")
        write_fits(target, result, upscale_header(header, 2, history=f"solar-enhance demo: {label}"), overwrite=True)
        limits = (np.nanpercentile(data, 0.5), np.nanpercentile(data, 99.5))
        if kind == "blos":
            limits = (-1500, 1500)
        png = target.with_suffix(".png")
        _figure([("HMI", data, 0.504, limits), (label, result, 0.252, limits)], png)
        if kind == "intensity":
            print(f"  -> contrast (whole field) {contrast(data):.3f} -> {contrast(result):.3f}")
        print(f"  -> wrote {target} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
