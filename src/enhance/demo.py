"""``enhance demo`` (and ``make demo``): enhance the two HMI sample cut-outs shipped with the package.

`run_demo` enhances the packaged continuum image and magnetogram (`enhance.data.sample_map`) as
sunpy Maps, writes the x2 FITS files, and draws input and output side by side in helioprojective
coordinates with one colour scale (`~enhance.analysis.figures.plot_maps`). If a shipped model is
missing it says so and shows the Richardson-Lucy baseline instead.

Run as ``enhance demo [-o OUTDIR]`` or ``python -m enhance.demo [OUTDIR]`` (default ``demo_output``).
"""

import sys
from pathlib import Path

import numpy as np

from .analysis.baselines import rl_super_resolve
from .analysis.metrics import contrast
from .data import SAMPLES, sample_map, sample_path
from .exceptions import ModelNotTrainedError
from .inference.pipeline import enhance
from .io import upscale_header, write_map
from .observation.quiet_sun import estimate_qs_level

__all__ = ["run_demo", "main", "sample_path"]


def _enhanced(smap, kind, model):
    """``(Map, label, suffix, messages)``: Enhance with ``model`` (or the other shipped one), else RL."""
    for name in dict.fromkeys((model, "light" if model == "full" else "full")):
        try:
            return enhance(smap, kind, model=name), f"Enhance x2 ({name} model)", "_enhanced", []
        except ModelNotTrainedError as err:
            error = err
    # Say so, and show the classical baseline instead of an untrained network's output.

    data = smap.data
    offset = None if kind == "intensity" else 2 * float(np.nanmax(np.abs(data)))
    label = "Richardson-Lucy x2"
    result = rl_super_resolve(data, n_iter=20, offset=offset)
    meta = upscale_header(smap.meta, 2, history=f"solar-enhance demo: {label}", shape=data.shape)
    messages = [f"  -> {error}", "  -> showing the Richardson-Lucy baseline (20 iterations on the x2 grid) instead"]
    return smap._new_instance(result, meta, plot_settings=smap.plot_settings), label, "_rl", messages


def run_demo(outdir="demo_output", *, model: str = "full"):
    """Enhance the two shipped HMI cut-outs, write FITS files and figures, and return what to print.

    Parameters
    ----------
    outdir : str or `~pathlib.Path`
        Output folder (created if missing); files in it from an earlier demo are replaced.
    model : {'full', 'light', 'paper', 'paper-light'}
        The shipped model; if it is not shipped, 'light' (for 'full') or else 'full' is used.

    Returns
    -------
    list of str
        Lines that describe the inputs, the outputs and the files written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     lines = run_demo(folder, model="light")
    >>> lines[0]
    'solar-enhance demo: SDO/HMI active-region cut-outs (200 x 200 px at 0.504 arcsec/px)'
    """
    from .analysis.figures import image_limits, plot_maps

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    lines = ["solar-enhance demo: SDO/HMI active-region cut-outs (200 x 200 px at 0.504 arcsec/px)"]
    for kind, name in SAMPLES.items():
        smap = sample_map(kind)
        data = smap.data
        if kind == "intensity":
            level = estimate_qs_level(data)
            lines.append(f"  {name}: quiet-Sun level {level:.3f} I/Ic, min {np.nanmin(data):.3f} (umbra)")
        else:
            peak, mean = np.nanmax(np.abs(data)), np.nanmean(np.abs(data))
            lines.append(f"  {name}: |B| max {peak:.0f} G, unsigned flux density {mean:.1f} G")
        result, label, suffix, messages = _enhanced(smap, kind, model)
        lines += messages
        target = outdir / name.replace(".fits", f"{suffix}.fits")
        write_map(target, result, overwrite=True)
        limits = (-1500.0, 1500.0) if kind == "blos" else image_limits(data, kind=kind)
        png = target.with_suffix(".png")
        plot_maps({"HMI": smap, label: result}, kind=kind, limits=limits).savefig(png, dpi=110)
        if kind == "intensity":
            lines.append(f"  -> contrast (whole field) {contrast(data):.3f} -> {contrast(result.data):.3f}")
        lines.append(f"  -> wrote {target} and {png}")
    return lines


def main(argv=None) -> int:
    """``python -m enhance.demo [OUTDIR]``: `run_demo` into OUTDIR (default ``demo_output``), printed.

    Parameters
    ----------
    argv : list of str, optional
        ``[OUTDIR]``; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status, 0.

    Examples
    --------
    >>> import contextlib, io, tempfile
    >>> with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
    ...     status = main([folder])
    >>> status
    0
    """
    argv = sys.argv[1:] if argv is None else argv
    for line in run_demo(argv[0] if argv else "demo_output"):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
