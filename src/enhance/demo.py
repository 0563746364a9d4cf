"""``enhance demo`` (and ``make demo``): enhance the two HMI sample cut-outs shipped with the package.

`run_demo` enhances the packaged continuum image and magnetogram (`enhance.data.sample_map`) as
sunpy Maps, writes the x2 FITS files, and draws input and output side by side in helioprojective
coordinates with one colour scale (`~enhance.analysis.figures.plot_maps`). If a shipped model is
missing it says so and shows the Richardson-Lucy baseline instead.

Run as ``enhance demo [OUTDIR]`` or ``python -m enhance.demo [OUTDIR]`` (default ``demo_output``; ``-o
OUTDIR`` works too). Files of an earlier demo in OUTDIR are replaced only with ``--overwrite``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from .analysis.baselines import rl_super_resolve
from .analysis.metrics import contrast
from .data import SAMPLES, sample_map, sample_path
from .exceptions import ModelNotTrainedError
from .inference.api import enhance
from .io import atomic_write, check_regular_file, upscale_header, write_map
from .models.registry import MODELS
from .observation.quiet_sun import estimate_qs_level

__all__ = ["run_demo", "main", "sample_path", "add_arguments", "output_folder", "DEFAULT_FOLDER"]

#: The demo's output folder when none is given.
DEFAULT_FOLDER = "demo_output"
#: Suffixes of the demo's files: the enhanced samples, or the Richardson-Lucy baseline without a shipped model.
_SUFFIXES = ("_enhanced", "_rl")


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


def _targets(outdir: Path) -> list[Path]:
    """Every file the demo may write in ``outdir``: FITS and PNG of each sample, enhanced or the baseline."""
    stems = [name.replace(".fits", suffix) for name in SAMPLES.values() for suffix in _SUFFIXES]
    return [outdir / f"{stem}{ext}" for stem in stems for ext in (".fits", ".png")]


def _check_targets(outdir: Path, *, overwrite: bool) -> None:
    """Before any work: no file of an earlier demo is replaced without ``overwrite``, and nothing but regular files."""

    for target in _targets(outdir):
        if not target.exists() and not target.is_symlink():
            continue
        check_regular_file(target, what="demo output", expected="a file the demo can replace; choose another folder")
        if not overwrite:
            msg = (f"{target} exists (an earlier demo?); pass --overwrite (overwrite=True) to replace the demo's "
                   "files, or choose another folder")  # fmt: skip
            raise FileExistsError(msg)


def _title(smap) -> str:
    """The figure's title: the samples' date and position on the disk were not recorded (their headers are nominal)."""
    parts = [str(getattr(smap, "instrument", "") or "").strip(), str(getattr(smap, "measurement", "") or "").strip()]
    return " ".join(part for part in parts if part) + " sample cut-out (date and disk position not recorded)"


def run_demo(outdir=DEFAULT_FOLDER, *, model: str = "full", overwrite: bool = False):
    """Enhance the two shipped HMI cut-outs, write FITS files and figures, and return what to print.

    Parameters
    ----------
    outdir : str or `~pathlib.Path`
        Output folder (created if missing).
    model : {'full', 'light', 'paper', 'paper-light'}
        The shipped model; if it is not shipped, 'light' (for 'full') or else 'full' is used.
    overwrite : bool
        Replace the files of an earlier demo in ``outdir``. Without it they are refused before any work.

    Returns
    -------
    list of str
        Lines that describe the inputs, the outputs and the files written.

    Raises
    ------
    FileExistsError
        If ``outdir`` holds a file of an earlier demo and ``overwrite`` is False.
    ValueError
        If one of the demo's file names in ``outdir`` is taken by a directory, FIFO or device.

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
    _check_targets(outdir, overwrite=overwrite)
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
        write_map(target, result, overwrite=overwrite)
        limits = (-1500.0, 1500.0) if kind == "blos" else image_limits(data, kind=kind)
        png = target.with_suffix(".png")
        figure = plot_maps({"HMI": smap, label: result}, kind=kind, limits=limits, suptitle=_title(smap))
        atomic_write(png, lambda tmp, figure=figure: figure.savefig(tmp, dpi=110, format="png"), overwrite=overwrite)
        if kind == "intensity":
            lines.append(f"  -> contrast (whole field) {contrast(data):.3f} -> {contrast(result.data):.3f}")
        lines.append(f"  -> wrote {target} and {png}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's arguments, one definition for ``enhance demo`` and ``python -m enhance.demo``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser (or subparser) to add them to: the folder (DIR or ``-o DIR``), ``--model`` and
        ``--overwrite``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="demo")
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["out", "--model", "light"])
    >>> args.folder, args.model, args.overwrite
    ('out', 'light', False)
    """
    parser.add_argument("folder", nargs="?", default=None, metavar="DIR",
                        help=f"output folder (default: {DEFAULT_FOLDER})")  # fmt: skip
    parser.add_argument("-o", "--output", default=None, metavar="DIR", help="the output folder, as DIR")
    parser.add_argument("--model", choices=tuple(MODELS), default="full",
                        help="shipped model (default: full; light is 8 times faster)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo in DIR")


def output_folder(args, parser: argparse.ArgumentParser) -> str:
    """The output folder of parsed demo arguments: DIR or ``-o DIR`` (a usage error, on ``parser``, if both differ).

    Parameters
    ----------
    args : argparse.Namespace
        Arguments parsed by a parser that `add_arguments` set up.
    parser : argparse.ArgumentParser
        That parser: its usage is printed if DIR and ``-o DIR`` name different folders.

    Returns
    -------
    str
        The folder, `DEFAULT_FOLDER` if none was given.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="demo")
    >>> add_arguments(parser)
    >>> output_folder(parser.parse_args(["-o", "out"]), parser), output_folder(parser.parse_args([]), parser)
    ('out', 'demo_output')
    """
    if args.folder is not None and args.output is not None and args.folder != args.output:
        parser.error(f"give the output folder once, as DIR or -o DIR (got {args.folder} and -o {args.output})")
    folder = args.folder or args.output or DEFAULT_FOLDER
    if Path(folder).exists() and not Path(folder).is_dir():
        parser.error(f"the output folder {folder} is an existing file: name a directory")
    return folder


def main(argv=None) -> int:
    """``python -m enhance.demo [DIR] [--model MODEL] [--overwrite]``: `run_demo` into DIR, printed.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0, 1 if the demo could not run (an earlier demo's files without ``--overwrite``),
        2 for a usage error.

    Examples
    --------
    >>> import contextlib, io, tempfile
    >>> with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
    ...     status = main([folder])
    >>> status
    0
    """
    description = "Enhance the two SDO/HMI sample cut-outs shipped with solar-enhance."
    parser = argparse.ArgumentParser(prog="python -m enhance.demo", description=description)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        lines = run_demo(output_folder(args, parser), model=args.model, overwrite=args.overwrite)
    except (OSError, ValueError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
