"""The ``enhance`` command line: thin wrappers over the library.

Each subcommand parses its arguments, calls one library function and writes the output. Errors
print one line to stderr and give a non-zero exit status; no output file is ever half-written or
overwritten without ``--overwrite``.
"""

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from ._version import __version__
from .constants import KINDS
from .models.registry import MODELS, NOISE_MODELS, model_help

__all__ = ["main", "build_parser", "FAILURE", "USAGE"]

#: Exit status of a runtime failure (an input that cannot be enhanced, a file error), in single and batch mode.
FAILURE = 1
#: Exit status of a usage error (arguments that do not fit together), as argparse gives for bad arguments.
USAGE = 2

logger = logging.getLogger("enhance")


class _StderrHandler(logging.Handler):
    """Log records on stderr as ``enhance: level: message``, above any progress bar (never on its line)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"enhance: {record.levelname.lower()}: {record.getMessage()}"
            if "tqdm" in sys.modules:  # a bar may be drawn (never imported for this)
                sys.modules["tqdm"].tqdm.write(message, file=sys.stderr)  # clears the bar, writes, redraws it below
            else:
                print(message, file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


@contextlib.contextmanager
def _logging(verbose: int, *, quiet: bool):
    """The package logger on stderr for one command: warnings by default, -v info, -vv debug, --quiet errors only.

    Python warnings (`~enhance.exceptions.EnhanceUserWarning`, sunpy's) go through it too.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    handler = _StderrHandler(level)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def show(message, category, filename, lineno, file=None, line=None):
        logger.warning("%s: %s", category.__name__, message)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _error(message: str, code: int = FAILURE) -> int:
    logger.error("%s", message)
    return code


def _usage(message: str) -> int:
    return _error(message, USAGE)


def _one_line(err: BaseException) -> str:
    """An error as the one line printed: its message's first line (another library's may hold several)."""
    return next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)


def _progress(args) -> bool:
    """Progress bars only on a terminal, and not with --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _say(args, text: str) -> None:
    """Print a result line on stdout unless --quiet."""
    if not getattr(args, "quiet", False):
        print(text)


def _run_batch(args) -> int:
    from .exceptions import DiskFullError, IncompatibleOptionsError, OutputExistsError
    from .inference.distributed import MANIFEST_NAME, Status, check_batch_output, enhance_files, summarize

    out = Path(args.output)
    try:
        check_batch_output(out)
    except IncompatibleOptionsError:
        return _usage(f"with several inputs, a directory, a pattern or --workers/--scheduler, -o must be a directory, "
                      f"got {out}")  # fmt: skip
    if args.workers is not None and args.scheduler is not None:
        return _usage("pass --workers (a LocalCluster here) or --scheduler (a running cluster), not both")
    start = time.perf_counter()
    records = enhance_files(args.inputs, out, kind=args.type, weights=args.weights, model=args.model,
                            client=args.scheduler, n_workers=args.workers, options=_run_options(args),
                            overwrite=args.overwrite, consistency=args.consistency, as_frame=False,
                            compress=args.compress,
                            **({} if args.timeout is None else {"no_progress_timeout": args.timeout}))  # fmt: skip
    wall = time.perf_counter() - start
    disk_full = sum(isinstance(record["error"], DiskFullError) for record in records)
    if disk_full:  # one message, not one per file
        _error(f"no space left on device in {out}: {disk_full} files not written")
    for record in records:
        if record["status"] is Status.DONE:
            _say(args, f"{record['input']} -> {record['output']} ({record['kind']})")
        elif record["status"] is Status.FAILED:
            if not isinstance(record["error"], DiskFullError):
                _error(record["reason"])
        else:
            level = logging.INFO if isinstance(record["error"], OutputExistsError) else logging.WARNING
            logger.log(level, "skipped %s: %s", record["input"], record["reason"])
    summary = summarize(records, wall_seconds=wall)
    _say(args, f"done {summary['done']}, skipped {summary['skipped']}, failed {summary['failed']} of "
         f"{summary['total']} files in {wall:.1f} s")  # fmt: skip
    existing = sum(isinstance(record["error"], OutputExistsError) for record in records
                   if record["status"] is Status.SKIPPED)  # fmt: skip
    if existing:
        _say(args, f"skipped {existing} outputs that exist and are complete (--overwrite replaces them)")
    if summary["done"]:
        _say(args, f"{summary['seconds_per_image']:.2f} s per image on a worker, "
             f"{summary['images_per_hour']:.0f} images per hour in this run")  # fmt: skip
    _say(args, f"manifest: {out / MANIFEST_NAME}")
    return FAILURE if summary["failed"] else 0


def _run_options(args):
    """The `~enhance.inference.pipeline.RunOptions` of ``enhance run``, single-file and batch alike."""
    from .inference.pipeline import RunOptions

    return RunOptions(qs_level=args.qs_level, device=args.device, tile=args.tile, backend=args.backend,
                      precision=args.precision, progress=_progress(args), symmetric=args.symmetric, noise=args.noise,
                      uncertainty=args.uncertainty, noise_per_frame=args.noise_per_frame, force=args.force,
                      noise_map=args.noise_map)  # fmt: skip


def _run(args) -> int:
    """One file into one file, through the batch engine's task (`enhance_files` handles everything else)."""
    from .inference.distributed import Status, enhance_file, is_batch, model_label, prepare_output

    if is_batch(args.inputs, args.output, client=args.scheduler, n_workers=args.workers):
        return _run_batch(args)
    source, target = Path(args.inputs[0]), Path(args.output)
    prepare_output(source, target, overwrite=args.overwrite)  # before any work
    options = _run_options(args)
    record = enhance_file(source, target, kind=args.type, weights=args.weights, model=args.model,
                          label=model_label(args.weights, args.model), options=options, overwrite=args.overwrite,
                          consistency=args.consistency, force=options.force, compress=args.compress)  # fmt: skip
    if record["status"] is not Status.DONE:
        return _error(str(record["error"]))
    _say(args, f"{source} -> {target} ({record['kind']}, {record['seconds']} s)")
    return 0


def _export(args) -> int:
    from .exceptions import ModelNotTrainedError
    from .runtime.export import export_shipped, export_weights

    out = Path(args.output)
    if args.weights:
        _say(args, f"wrote {export_weights(args.weights, out, overwrite=args.overwrite)}")
        return 0
    if not out.is_dir():
        return _usage(f"without --weights, -o must be an existing directory (one file per model), got {out}")
    every = args.type == "all" or args.model == "all"
    kinds = KINDS if args.type == "all" else (args.type,)
    models = tuple(MODELS) if args.model == "all" else (args.model,)
    failures, written = 0, 0
    for model, kind, result in export_shipped(out, kinds=kinds, models=models, overwrite=args.overwrite):
        if isinstance(result, ModelNotTrainedError) and every:
            _say(args, f"skipped {model} {kind}: not shipped in this version")
        elif isinstance(result, Exception):
            failures += 1
            _error(f"{model} {kind}: {result}")
        else:
            written += 1
            _say(args, f"wrote {result}")
    if not written and not failures:
        return _error("no shipped model to export")
    return FAILURE if failures else 0


def _calibrate_uncertainty(args) -> int:
    from .analysis.uncertainty_calibration import (
        CalibrationConfig,
        calibrate_uncertainty,
        coverage_markdown,
        write_calibration,
    )

    config = CalibrationConfig(simulation=args.simulation, shape=tuple(args.shape))
    kinds = KINDS if args.type == "all" else (args.type,)
    models = NOISE_MODELS if args.model == "all" else (args.model,)
    entries = {f"{kind}/{model}": calibrate_uncertainty(kind, model, config, log=lambda line: _say(args, line),
                                                        keep_fit=args.keep_fit, path=args.output)
               for kind in kinds for model in models}  # fmt: skip
    _say(args, coverage_markdown(entries))
    _say(args, f"wrote {write_calibration(entries, args.output)}")
    return 0


def _add_calibrate_uncertainty(subparsers) -> None:
    cal = subparsers.add_parser("calibrate-uncertainty", help="fit the per-pixel uncertainty's calibration",
                                description="Fit the weights of the uncertainty's terms (enhance run --uncertainty) "
                                "on held-out synthetic scenes, a limb and a simulation's first rows, report the "
                                "coverage by region and noise level on other ones, and store the fit with the "
                                "weights' sha256.")  # fmt: skip
    cal.add_argument("-t", "--type", choices=("intensity", "blos", "all"), default="all")
    cal.add_argument("--model", choices=(*NOISE_MODELS, "all"), default="all")
    cal.add_argument("--simulation", metavar="FITS",
                     help="continuum simulation field (e.g. the MURaM quiet Sun at 0.0662 arcsec): its first 75 %% "
                     "of rows join the fit, the last 25 %% the report")  # fmt: skip
    cal.add_argument("--shape", type=int, nargs=2, default=(800, 800), metavar=("NY", "NX"),
                     help="synthetic scene size at 0.0662 arcsec")  # fmt: skip
    cal.add_argument("-o", "--output", default=None, metavar="JSON",
                     help="calibration file to update (default: the package's data/uncertainty.json)")  # fmt: skip
    cal.add_argument(
        "--keep-fit",
        action="store_true",
        help="keep the stored fit and measure its coverage again on the current fields (no refit)",
    )
    cal.set_defaults(func=_calibrate_uncertainty)


def _add_export(subparsers) -> None:
    exp = subparsers.add_parser("export", help="export models to ONNX, to run with onnxruntime and no PyTorch",
                                description="Write shipped models (or a --weights file) as ONNX graphs; run them with "
                                "'enhance run --weights FILE.onnx' or enhance.runtime.export.load_onnx.")  # fmt: skip
    exp.add_argument("--onnx", dest="format", action="store_const", const="onnx", default="onnx",
                     help="ONNX format (opset 17), the only one for now (default)")  # fmt: skip
    out_help = "directory for enhance_<model>_<kind>.onnx, or the file with --weights (default: .)"
    exp.add_argument("-o", "--output", default=".", metavar="OUT", help=out_help)
    exp.add_argument("--model", choices=(*MODELS, "all"), default="all", help="shipped model(s) (default: all)")
    exp.add_argument("-t", "--type", choices=("intensity", "blos", "all"), default="all",
                     help="continuum or magnetogram network(s) (default: all)")  # fmt: skip
    exp.add_argument("--weights", metavar="FILE", help="export this safetensors weights file instead")
    exp.add_argument("--overwrite", action="store_true", help="replace existing output files")
    exp.set_defaults(func=_export)


def _path_text(text):
    """argparse type of an output path: not empty (an empty -o would be the current directory), not '-' (FITS
    files are written to disk, never to standard output)."""
    if not text.strip():
        msg = "expected a file or directory name, got an empty one"
        raise argparse.ArgumentTypeError(msg)
    if text.strip() == "-":
        msg = "expected a file or directory name, got '-': outputs are FITS files on disk, not standard output"
        raise argparse.ArgumentTypeError(msg)
    return text


def _positive_int(text):
    """argparse type of a count: a positive integer (a bad one is a usage error, exit status 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_float(text):
    """argparse type of a level: a finite number above 0 (a bad one is a usage error, exit status 2)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        msg = f"expected a positive number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _qs_level(text):
    """argparse type of ``enhance run --qs-level``: a positive number, 'level' or 'surface'."""
    from .observation.quiet_sun import QS_MODES, check_qs_level

    try:
        return text if text in QS_MODES else check_qs_level(float(text))
    except ValueError as err:
        msg = f"expected a positive number, 'level' or 'surface', got {text!r}"
        raise argparse.ArgumentTypeError(msg) from err


def _add_run(subparsers) -> None:
    run = subparsers.add_parser("run", help="enhance HMI FITS files", description="Deconvolve and super-resolve x2.")
    run.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="FITS files, directories or glob patterns, at HMI's 0.504 arcsec/pixel")  # fmt: skip
    run.add_argument("-o", "--output", required=True, metavar="OUT", type=_path_text,
                     help="output file, or directory for several")  # fmt: skip
    kind_help = "continuum or magnetogram; auto reads BUNIT, CONTENT or the series name (default)"
    run.add_argument("-t", "--type", choices=("intensity", "blos", "auto"), default="auto", help=kind_help)
    run.add_argument("--model", choices=tuple(MODELS), default="full", help=model_help())
    run.add_argument("--weights", metavar="FILE",
                     help="a network file to use instead of a shipped model: safetensors weights (enhance train) or "
                     "an .onnx graph (enhance export)")  # fmt: skip
    run.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    run.add_argument("--tile", type=_positive_int, default=None, metavar="N",
                     help="exact overlapping tiles of N input pixels; below the network's reach (37 for the default "
                     "models) a warning names the smallest useful N")  # fmt: skip
    backend_help = "torch, or onnxruntime (onnx extra); auto (default): onnx on the CPU in float32 if installed"
    run.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto", help=backend_help)
    run.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32",
                     help="arithmetic of the convolutions (torch backend); reduced precision differs by ~1e-2 (bf16) "
                     "or ~1e-3 (fp16) of the quiet-Sun level")  # fmt: skip
    run.add_argument("--qs-level", type=_qs_level, default=None, metavar="LEVEL|level|surface",
                     help="quiet-Sun continuum level, or 'level' (estimate one) or 'surface' (follow limb darkening);"
                     " default: the surface where the quiet Sun varies by over 15 %% across the field; continuum "
                     "files only (refused with -t blos)")  # fmt: skip
    run.add_argument("--symmetric", action="store_true",
                     help="average over the 8 rotations and flips of the input: the result does not depend on the "
                     "image's orientation (8 times the cost; the full model always does)")  # fmt: skip
    run.add_argument("--noise", type=_positive_float, default=None, metavar="SIGMA",
                     help="noise per input pixel in the files' units, the same for every file (full and light "
                     "models); default: measured beyond HMI's cut-off (one level per kind for several inputs, see "
                     "--noise-per-frame), or HMI's nominal noise for an interpolated image")  # fmt: skip
    run.add_argument("--noise-per-frame", action="store_true",
                     help="with several inputs: measure the noise on each file instead of telling every file of a "
                     "kind one level (the median over up to 16 of them)")  # fmt: skip
    run.add_argument("--noise-map", action="store_true",
                     help="tell the network a noise level per pixel (full and light models): photon noise for a "
                     "continuum, the centre-to-limb law for a magnetogram (--noise is then the quiet-Sun or "
                     "disk-centre level); two passes where it varies")  # fmt: skip
    run.add_argument("--overwrite", action="store_true", help="replace existing output files")
    run.add_argument("--force", action="store_true",
                     help="enhance inputs that are refused otherwise: not helioprojective (CEA, Carrington), off HMI's "
                     "0.504 arcsec pixels, Dopplergrams, files solar-enhance wrote, values that do not fit the "
                     "kind")  # fmt: skip
    dask_help = "(several files into a directory: skips complete outputs, writes enhance_manifest.csv; needs dask)"
    run.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                     help=f"run on a Dask LocalCluster of N worker processes on this machine {dask_help}")  # fmt: skip
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run on the running Dask cluster at ADDRESS, e.g. tcp://host:8786")  # fmt: skip
    consistency_help = "add the per-pixel consistency map (output degraded back to HMI minus input) as HDU 1"
    run.add_argument("--consistency", action="store_true", help=consistency_help)
    run.add_argument("--uncertainty", action="store_true",
                     help="add the standard deviation of each output pixel's error (full and light models; about "
                     "2.2x the time) as an image extension named UNCERT, in the data's unit")  # fmt: skip
    run.add_argument("--compress", action="store_true",
                     help="write RICE tile-compressed FITS (as JSOC serves HMI), quantised to 0.1 of HMI's noise "
                     "at most (2e-4 of the quiet-Sun level, 2 G steps); also chosen by an -o name ending in "
                     ".fz")  # fmt: skip
    run.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                     help="with --workers/--scheduler: give up when no file has finished for this long (no "
                     "workers left, workers that keep dying); the pending files are failed in the manifest "
                     "(default: 1800)")  # fmt: skip
    run.set_defaults(func=_run)


def _seconds(text):
    """argparse type of ``--timeout``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        msg = f"expected a positive number of seconds, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _compare(args) -> int:
    from .analysis.diagnostics import compare, parse_region, summary
    from .io import fits_stem

    source = Path(args.input[0])
    out_dir = Path(args.output) if args.output else Path(f"{fits_stem(source)}_compare")
    if out_dir.exists() and not out_dir.is_dir():
        return _error(f"output directory {out_dir} is an existing file: name a directory")
    data = [Path(path) for path in args.input] if len(args.input) > 1 else source  # a sequence: its flicker too
    result = compare(data, args.type, weights=args.weights, model=args.model, out_dir=out_dir,
                     overwrite=args.overwrite, n_iter=args.n_iter, damped=args.damped, qs_level=args.qs_level,
                     region=parse_region(args.region) if args.region else None,
                     device=args.device, force=args.force)  # fmt: skip
    for line in summary(result, source=source):
        _say(args, line)
    return 0


def _add_compare(subparsers) -> None:
    cmp = subparsers.add_parser("compare", help="diagnostic figures: Enhance against Richardson-Lucy",
                                description="Enhance one HMI image, deconvolve it with Richardson-Lucy, and write the "
                                "paper's diagnostic figures (PNG) and every number (JSON).")  # fmt: skip
    cmp.add_argument("input", nargs="+", metavar="INPUT",
                     help="FITS file at HMI's 0.504 arcsec/pixel; several (frames of one sequence, in order): the "
                     "first is diagnosed and the temporal flicker of Enhance over all is reported")  # fmt: skip
    kind_help = "continuum or magnetogram; auto reads BUNIT, CONTENT or the series name (default)"
    cmp.add_argument("-t", "--type", choices=("intensity", "blos", "auto"), default="auto", help=kind_help)
    cmp.add_argument("-o", "--output", metavar="DIR", type=_path_text,
                     help="output directory (default: ./<input stem>_compare)")  # fmt: skip
    cmp.add_argument("--model", choices=tuple(MODELS), default="full", help=model_help())
    cmp.add_argument("--weights", metavar="FILE", help="safetensors weights to use instead of a shipped model")
    cmp.add_argument("--n-iter", type=int, default=20, help="Richardson-Lucy iterations (default: 20)")
    cmp.add_argument("--damped", action="store_true", help="the paper's damped Richardson-Lucy")
    region_help = "quiet-Sun region for the contrast, in input pixels (default: found automatically)"
    cmp.add_argument("--region", default=None, metavar="Y0:Y1,X0:X1", help=region_help)
    cmp.add_argument("--qs-level", type=float, default=None,
                     help="quiet-Sun continuum level (default: estimated); continuum images only")  # fmt: skip
    cmp.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    cmp.add_argument("--overwrite", action="store_true", help="replace existing output files")
    cmp.add_argument("--force", action="store_true",
                     help="compare inputs refused otherwise (not helioprojective, off HMI's pixel scale)")  # fmt: skip
    cmp.set_defaults(func=_compare)


def _synth(args) -> int:
    if args.calibrate:
        from .analysis.calibration import calibrate, calibration_files, figure, format_report, report
        from .io import check_new_file

        for path in (args.figure, args.json):  # refuse before an expensive run, not after it
            if path:
                check_new_file(path, overwrite=args.overwrite)
        cal = calibrate(**calibration_files(args.data_dir, muram=args.muram, hmi_qs=args.hmi_qs), seed=args.seed)
        numbers = report(cal)
        print(format_report(numbers))
        if args.figure:
            figure(cal, path=args.figure, overwrite=args.overwrite)
            print(f"wrote {args.figure}")
        if args.json:
            from .io import atomic_write

            atomic_write(
                args.json, lambda tmp: Path(tmp).write_text(json.dumps(numbers, indent=1)), overwrite=args.overwrite
            )
            print(f"wrote {args.json}")
        return 0 if numbers.get("all_pass", False) else 1
    if len(args.outputs) != 2:
        return _error("enhance synth needs two output files, CONTINUUM.fits BZ.fits (or --calibrate)")
    from .scenes.synth import generate_scene, write_scene

    scene = generate_scene(tuple(args.shape), args.pixel_scale, kind=args.kind, seed=args.seed)
    write_scene(scene, args.outputs[0], args.outputs[1], overwrite=args.overwrite)
    print(f"wrote {args.outputs[0]} and {args.outputs[1]} ({args.kind}, {args.shape[0]}x{args.shape[1]} px)")
    return 0


def _add_synth(subparsers) -> None:
    syn = subparsers.add_parser("synth", help="synthetic high-resolution scenes, and their calibration",
                                description="Generate a synthetic continuum + Bz scene, or check the generator "
                                "against MURaM and real HMI quiet Sun (--calibrate).")  # fmt: skip
    syn.add_argument("outputs", nargs="*", metavar="FILE", help="CONTINUUM.fits BZ.fits")
    syn.add_argument("--kind", default="active_region", choices=("quiet_sun", "plage", "active_region", "mixed"))
    syn.add_argument("--shape", type=int, nargs=2, default=(1000, 1000), metavar=("NY", "NX"))
    syn.add_argument("--pixel-scale", type=float, default=0.0662, help="arcsec per pixel (default: 0.0662)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--calibrate", action="store_true", help="print the calibration numbers (a), (b), (c)")
    syn.add_argument("--data-dir", help="folder with muram_qs_0.0662arcsec.fits and hmi_continuum_qs.fits")
    syn.add_argument("--muram", help="MURaM quiet-Sun field (FITS)")
    syn.add_argument("--hmi-qs", help="real HMI quiet-Sun continuum (FITS)")
    syn.add_argument("--figure", help="calibration figure (PNG)")
    syn.add_argument("--json", help="calibration numbers (JSON)")
    syn.add_argument("--overwrite", action="store_true", help="replace existing output files")
    syn.set_defaults(func=_synth)


def _dataset_build(args) -> int:
    from .training.datasets import PairDataset, build_hdf5, recipe_sources

    sources = recipe_sources(args.kind, simulation=args.simulation, held_out=args.held_out, n_frames=args.frames,
                             shape=tuple(args.shape), seed=args.seed, files=args.source or (),
                             pixel_scale=args.pixel_scale)  # fmt: skip
    n_samples = args.samples or sum(len(s) for s in sources) * args.patches_per_frame
    dataset = PairDataset(sources, n_samples=n_samples, seed=args.seed, patch=args.patch, noise=args.noise,
                          patches_per_frame=args.patches_per_frame)  # fmt: skip
    path = build_hdf5(args.output, dataset, overwrite=args.overwrite, progress=_progress(args))
    print(
        f"wrote {path}: {n_samples} {args.kind} pairs of {args.patch}x{args.patch} -> {2 * args.patch}x{2 * args.patch}"
    )
    return 0


def _add_dataset(subparsers) -> None:
    data = subparsers.add_parser("dataset", help="training pairs")
    sub = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    description = ("Degrade sources with the observation model and cut aligned patches: the recipe's synthetic "
                   "scenes (and a simulation's training rows), plus any --source files.")  # fmt: skip
    build = sub.add_parser("build", help="write training pairs to an HDF5 file", description=description)
    build.add_argument("output", metavar="OUT.h5")
    build.add_argument("--kind", choices=KINDS, default="intensity")
    build.add_argument("--simulation", help="continuum simulation field; its first 75 %% of rows are used")
    build.add_argument("--source", action="append", metavar="FILE",
                       help="extra FITS/NumPy/HDF5 frames or cubes, used whole (nothing held out: give a field you "
                       "will validate on as --simulation instead)")  # fmt: skip
    build.add_argument("--pixel-scale", type=float, help="arcsec per pixel of --source files without CDELT")
    build.add_argument("--held-out", action="store_true", help="the validation scenes instead of the training ones")
    build.add_argument("--frames", type=int, default=128, help="synthetic scenes (default: 128)")
    build.add_argument("--shape", type=int, nargs=2, default=(1000, 1000), metavar=("NY", "NX"))
    build.add_argument("--samples", type=int, help="pairs to write (default: every frame x --patches-per-frame)")
    build.add_argument("--patches-per-frame", type=int, default=64)
    build.add_argument("--patch", type=int, default=50, help="input patch size (default: 50)")
    noise_help = "input noise in I/Ic or G (default: HMI's; use 0 for `enhance train`, which adds its own)"
    build.add_argument("--noise", type=float, default=None, help=noise_help)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--overwrite", action="store_true")
    build.set_defaults(func=_dataset_build)


def _sources(args) -> dict:
    """``--source NAME=PATH`` as ``{name: path}`` (checked to hold '=' by `_train`)."""
    return dict(item.split("=", 1) for item in args.source)


def _train_hybrid(args) -> int:
    from .training.hybrid_loop import load_hybrid_config, train_hybrid

    overrides = {} if args.out_dir is None else {"out_dir": args.out_dir}
    cfg = load_hybrid_config(args.config, sources=_sources(args), **overrides)
    if args.steps is not None:
        cfg.train["steps"] = args.steps
    print(f"training a Wiener-Enhance {cfg.kind} network (depth {cfg.model['depth']}, width {cfg.model['width']}) "
          f"for {cfg.train['steps']} steps in {cfg.out_dir}")  # fmt: skip
    path = train_hybrid(cfg, resume=not args.no_resume, progress=_progress(args))
    print(f"wrote {path}")
    return 0


def _train_average(args) -> int:
    from .training.average import load_average_config, train_average

    if args.out_dir is not None or args.steps is not None:
        return _error("--out-dir and --steps belong to each member's configuration, not to an average")
    cfg = load_average_config(args.config)
    print(f"averaging {len(cfg.members)} Wiener-Enhance {cfg.kind} runs into {cfg.out_dir}")
    path = train_average(cfg, sources=_sources(args), resume=not args.no_resume, progress=_progress(args))
    print(f"wrote {path}")
    return 0


def _train(args) -> int:
    from .training.datasets import SCALE, HDF5PairDataset, input_noise_for, validation_pairs
    from .training.loop import TrainConfig, load_config, train

    bad = [item for item in args.source if "=" not in item]
    if bad:
        return _error(f"--source takes NAME=PATH, got {bad[0]!r}")
    if args.config:
        from .training.hybrid_loop import config_family

        family = config_family(args.config)
        if family == "wiener-enhance":
            return _train_hybrid(args)
        if family == "wiener-enhance-average":
            return _train_average(args)
    if args.source:
        return _error("--source names the files of a wiener-enhance configuration")
    if args.data is None:
        return _error("the paper's networks train on --data PAIRS.h5 (enhance dataset build)")

    size = MODELS[args.model].architecture if args.model else {"depth": None, "width": None}
    depth, width = size["depth"], size["width"]
    overrides = {"kind": args.kind, "depth": depth, "width": width, "max_steps": args.steps,
                 "batch_size": args.batch_size,
                 "lr": args.lr, "out_dir": args.out_dir, "device": args.device, "seed": args.seed,
                 "num_threads": args.threads, "eval_interval": args.eval_interval,
                 "precision": args.precision, "snapshot_interval": args.snapshot_every}  # fmt: skip
    overrides = {key: value for key, value in overrides.items() if value is not None}
    cfg = load_config(args.config, **overrides) if args.config else TrainConfig(**overrides)
    train_data = HDF5PairDataset(args.data, kind=cfg.kind)
    if input_noise_for(train_data, cfg.input_noise) != cfg.input_noise:
        _say(args, f"{args.data} already holds input noise: training adds none")
    val_data = validation_pairs(args.val, kind=cfg.kind, simulation=args.simulation, n_samples=cfg.eval_samples)
    unit = "I/Ic" if SCALE[cfg.kind] == 1 else "kG"
    print(f"training {cfg.kind} network ({cfg.depth} blocks x {cfg.width}) on {len(train_data)} pairs, "
          f"{cfg.max_steps} steps, out_dir {cfg.out_dir} (losses in {unit}^2)")  # fmt: skip
    result = train(cfg, train_data, val_data, resume=not args.no_resume, progress=_progress(args))
    print(
        f"done: step {result['step']}, best validation MSE {result['best_val']:.4e}; wrote {result['files']['final']}"
    )
    return 0


def _average(args) -> int:
    from .io import check_new_file
    from .training.datasets import HDF5PairDataset, validation_pairs
    from .training.loop import check_checkpoints, export_average, load_checkpoint

    out = check_new_file(args.output, overwrite=args.overwrite)  # before any work
    last = load_checkpoint(check_checkpoints(args.checkpoints)[-1])["config"]
    val_data = validation_pairs(args.val, kind=last["kind"], simulation=args.simulation,
                                n_samples=last["eval_samples"])  # fmt: skip
    path = export_average(args.checkpoints, out, HDF5PairDataset(args.data), val_data, overwrite=args.overwrite)
    from .models.weights import read_metadata

    meta = read_metadata(path)
    print(f"wrote {path}: mean of the checkpoints of steps {meta['averaged_steps']}, validation MSE "
          f"{float(meta['val_loss']):.4e}")  # fmt: skip
    return 0


def _add_average(subparsers) -> None:
    av = subparsers.add_parser("average", help="average a run's checkpoints into one network (SWA)",
                               description="Stochastic weight averaging: the mean of the weights of CKPT files "
                               "of one run, with BatchNorm statistics re-measured on the training pairs and "
                               "the validation MSE of `enhance train`.")  # fmt: skip
    av.add_argument("output", metavar="OUT.safetensors")
    av.add_argument("checkpoints", nargs="+", metavar="CKPT", help="resume checkpoints (checkpoint.pt) of one run")
    av.add_argument("--data", required=True, metavar="PAIRS.h5", help="the run's training pairs")
    av.add_argument("--val", metavar="PAIRS.h5", help="validation pairs (default: the held-out scenes)")
    av.add_argument("--simulation", help="simulation field whose held-out rows join the default validation set")
    av.add_argument("--overwrite", action="store_true")
    av.set_defaults(func=_average)


def _add_train(subparsers) -> None:
    tr = subparsers.add_parser("train", help="train a network: the default models or the paper's",
                               description="With a configuration whose family is 'wiener-enhance' (training/"
                               "*.toml), train the default models' network from its scenes and files; with "
                               "'wiener-enhance-average', train each member run and average their weights. Otherwise "
                               "train the paper's network on pairs from `enhance dataset build`. Resumes from "
                               "OUT_DIR/checkpoint.pt; the paper's network runs under torchrun for data-parallel "
                               "training.")  # fmt: skip
    tr.add_argument("--data", metavar="PAIRS.h5", help="training pairs of the paper's network (enhance dataset build)")
    tr.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                    help="the file of the configuration's [[data.sources]] table named NAME")  # fmt: skip
    tr.add_argument("--val", metavar="PAIRS.h5", help="validation pairs (default: the held-out scenes)")
    tr.add_argument("--simulation", help="simulation field whose held-out rows join the default validation set")
    tr.add_argument("--kind", choices=KINDS, default=None, help="default: from the config or intensity")
    tr.add_argument("--model", choices=tuple(m for m in MODELS if MODELS[m].family == "paper"), default=None,
                    help="depth/width of the paper's network to train (default: the config's, else paper)")  # fmt: skip
    tr.add_argument("--config", metavar="TOML", help="TrainConfig fields; flags override them")
    tr.add_argument("--steps", type=int, help="total optimizer steps")
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--eval-interval", type=int)
    tr.add_argument("--out-dir", help="checkpoints, history and weights (default: runs/enhance)")
    tr.add_argument("--device", help="auto, cpu, cuda, ...")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--threads", type=int, help="torch CPU threads")
    tr.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        help="bfloat16: autocast convolutions (fp32 master weights), ~2x faster on CPUs with AVX512-BF16 but "
        "several times slower where it is emulated (AVX2); auto: bfloat16 only where it is native",
    )
    tr.add_argument(
        "--snapshot-every",
        type=int,
        metavar="N",
        help="keep a copy of the checkpoint every N steps in OUT_DIR/snapshots (for `enhance average`)",
    )
    tr.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    tr.set_defaults(func=_train)


def _validate(args) -> int:
    from .analysis.validate import real_data, report, report_path, validate, validation_networks
    from .exceptions import IncompatibleOptionsError

    if not args.compare:
        report_path(args.output, kind=args.kind, physics=args.physics, overwrite=args.overwrite)  # before the run
    elif len(args.weights or ()) < 2:
        msg = "--compare needs two or more --weights, the reference first"
        raise IncompatibleOptionsError(msg)
    items = [item.rpartition("=") for item in args.weights or []]  # [NAME=]FILE
    labels = [label or Path(path).stem for label, _, path in items]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:  # e.g. two runs' final.safetensors: one would replace the other
        msg = f"two --weights have the label {twice[0]!r}: name each one, --weights NAME=FILE"
        raise IncompatibleOptionsError(msg)
    networks = validation_networks(dict(zip(labels, (path for _, _, path in items), strict=True)), kind=args.kind)
    if args.physics or args.compare:
        return _validate_physics(args, networks)
    results = validate(networks, args.kind, simulation=args.simulation, shape=tuple(args.shape))
    behaviour = real_data(networks, args.kind, args.hmi) if not args.no_hmi else None
    path = report(results, args.output, kind=args.kind, behaviour=behaviour, overwrite=args.overwrite)
    print(path.read_text())
    print(f"wrote {path}")
    return 0


def _validate_physics(args, networks) -> int:
    from .analysis import validate

    hmi = (args.hmi if args.kind == "intensity" else None, args.hmi if args.kind == "blos" else None, args.hmi_qs)
    observations = tuple((path, float(scale), label) for path, scale, label in args.observation)
    config = validate.PhysicsConfig(simulation=args.simulation, shape=tuple(args.shape), rl_max=args.rl_max,
                           rl_converged=args.rl_converged, symmetric=not args.no_symmetric,
                           real_crop=args.real_crop, hmi=hmi, contrast_powers=tuple(args.contrast_powers),
                           observations=observations)  # fmt: skip
    start = time.perf_counter()

    def log(line):
        print(f"[{time.perf_counter() - start:6.0f} s] {line}", flush=True)

    if args.compare:
        rows = validate.compare_networks(networks, args.kind, config, log=log)
        reference = next(iter(networks))
        table, kept = validate.comparison_table(rows, reference)
        print(f"PSNR (dB, each rounded to 0.01 first) and SSIM (to 0.001), higher is better, and half-pixel flicker "
              f"(to 0.001), lower is better, minus {reference}'s\n\n{table}\n")  # fmt: skip
        for metric in ("PSNR", "SSIM", "flicker"):
            chosen = {row: scores for row, scores in rows.items() if validate.row_metric(row) == metric}
            _, counts = validate.comparison_table(chosen, reference)
            print(f"{metric}: " + "; ".join(f"{method} {good} of {total}" for method, (good, total) in counts.items()))
        for method, (good, total) in kept.items():
            print(f"{method}: as good or better on {good} of {total} rows")
        return 0
    results = validate.physics_validation(networks, args.kind, config, log=log)
    machine = validate.machine_description(seconds=time.perf_counter() - start)
    command = config.command(args.kind, args.output, weights=args.weights or ())
    path = validate.physics_report(results, args.output, kind=args.kind, command=command, machine=machine,
                          overwrite=args.overwrite)  # fmt: skip
    print(path.read_text())
    print(f"wrote {path}")
    return 0


def _add_validate(subparsers) -> None:
    val = subparsers.add_parser("validate", help="validation report on held-out data (Markdown + figures)")
    val.add_argument("--kind", choices=("intensity", "blos"), default="intensity")
    val.add_argument(
        "--weights", action="append", metavar="[NAME=]FILE", help="networks to validate (default: shipped)"
    )
    val.add_argument("--simulation", help="simulation field whose held-out rows are validated too")
    val.add_argument("--shape", type=int, nargs=2, default=(800, 800), metavar=("NY", "NX"), help="held-out scene size")
    val.add_argument("--hmi", metavar="FITS", help="real HMI image of --kind for the published-behaviour checks "
                     "(default: the packaged sample cut-out)")  # fmt: skip
    val.add_argument("--no-hmi", action="store_true", help="skip the real-HMI checks")
    val.add_argument("--physics", action="store_true",
                     help="write physics_KIND.md instead: against RL+target (best iteration and discrepancy stop) and "
                     "Wiener at 0.5-10x HMI noise, under PSF mismatch, equivariance, half-pixel flicker, power and "
                     "coherence in bands, umbra, negative output off the limb, magnetogram flux and sign")  # fmt: skip
    val.add_argument("--hmi-qs", metavar="FITS", help="--physics: real HMI quiet-Sun continuum cut-out, raw counts")
    val.add_argument("--rl-max", type=int, default=3000, metavar="N",
                     help="--physics: most RL+target iterations (default 3000)")  # fmt: skip
    val.add_argument("--rl-converged", type=int, default=1000, metavar="N",
                     help="--physics: iterations of the converged RL+target of the umbra row")  # fmt: skip
    val.add_argument("--real-crop", type=int, default=96, metavar="N",
                     help="--physics: central N x N HMI pixels of real cut-outs for equivariance, flicker")  # fmt: skip
    val.add_argument("--no-symmetric", action="store_true", help="--physics: skip the D4-averaged networks")
    val.add_argument("--compare", action="store_true",
                     help="print each --weights network's PSNR minus the first's on the held-out rows of --physics "
                     "(fields, noise levels, contrasts, PSF mismatches) and its half-pixel flicker on the real "
                     "cut-outs (no baselines, no report), and on how many rows it is as good or better")  # fmt: skip
    val.add_argument("--contrast-powers", type=float, nargs="*", default=(0.48, 0.72, 1.44), metavar="P",
                     help="--physics, continuum: more fields, the simulation's rows and the synthetic active region "
                     "as I**P (default 0.48 0.72 1.44: MURaM at 2, 3 and 6 %% contrast at HMI's sampling)")  # fmt: skip
    val.add_argument("--observation", nargs=3, action="append", default=[], metavar=("FILE", "SCALE", "LABEL"),
                     help="--physics, continuum: a real high-resolution observation (FITS or .npy) at SCALE "
                     "arcsec per pixel, degraded and scored like the held-out fields")  # fmt: skip
    val.add_argument("-o", "--output", default="validation", metavar="DIR", help="report folder (default: validation)")
    val.add_argument("--overwrite", action="store_true", help="replace an earlier report in that folder")
    val.set_defaults(func=_validate)


def _web(args) -> int:
    from .web import make_server

    server = make_server(args.root, port=args.port)
    host, port = server.server_address[:2]
    print(f"serving {server.root} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _add_web(subparsers) -> None:
    web = subparsers.add_parser("web", help="serve the browser page (built by 'make web') on 127.0.0.1",
                                description="Serve the page that runs the light model in the browser, with the "
                                "cross-origin isolation headers that WebAssembly threads need.")  # fmt: skip
    web.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0 picks a free one)")
    web.add_argument("--root", default=None, metavar="DIR", help="the built page (default: web/dist of the checkout)")
    web.set_defaults(func=_web)


def _demo(args) -> int:
    from .demo import output_folder, run_demo

    for line in run_demo(output_folder(args, args.command_parser), model=args.model, overwrite=args.overwrite):
        _say(args, line)
    return 0


def _add_demo(subparsers) -> None:
    from .demo import add_arguments

    demo = subparsers.add_parser("demo", help="enhance the two shipped HMI sample cut-outs",
                                 description="Enhance the packaged SDO/HMI continuum and magnetogram cut-outs "
                                 "(enhance.data.sample_path) and write the FITS files and figures in "
                                 "helioprojective coordinates.")  # fmt: skip
    add_arguments(demo)  # the same arguments as python -m enhance.demo
    demo.set_defaults(func=_demo)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``enhance`` command and its subcommands.

    Parameters
    ----------
    command : str, optional
        Build only this subcommand (the one on the command line: the others may import modules it does not
        need); None, or a name that is no subcommand, builds them all.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each subcommand stores its handler as ``func``.

    Examples
    --------
    >>> args = build_parser().parse_args(["run", "in.fits", "-o", "out.fits", "--model", "light"])
    >>> args.command, args.model
    ('run', 'light')
    """
    parser = argparse.ArgumentParser(
        prog="enhance", description="Deconvolve and super-resolve SDO/HMI images with the Enhance network."
    )
    parser.add_argument("--version", action="version", version=f"solar-enhance {__version__}")
    _add_verbosity(parser, default=0)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    adders = {"run": _add_run, "compare": _add_compare, "export": _add_export,
              "calibrate-uncertainty": _add_calibrate_uncertainty, "synth": _add_synth, "dataset": _add_dataset,
              "train": _add_train, "average": _add_average, "validate": _add_validate, "web": _add_web,
              "demo": _add_demo}  # fmt: skip
    for name, add in adders.items():
        if command not in adders or name == command:  # only the chosen one: each may import its own module
            add(subparsers)
    for command in subparsers.choices.values():
        _add_verbosity(command, default=argparse.SUPPRESS)
        command.set_defaults(command_parser=command)  # its own usage for its errors (see `main`)
    return parser


def _add_verbosity(parser, *, default) -> None:
    """-v/--verbose and -q/--quiet, before the subcommand or after it (``enhance -v run ...``, ``enhance run -q``)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="say more on stderr (-v: each step, -vv: debugging)")  # fmt: skip
    group.add_argument("-q", "--quiet", action="store_true", default=default if default is not None else False,
                       help="print errors only: no result lines, no progress bars")  # fmt: skip


def _failed(err: Exception, *, command: str) -> int:
    """Print an error of the library in one line and return its exit status; raise any other.

    `~enhance.exceptions.IncompatibleOptionsError` is a usage error; the package's other errors and the
    builtins its functions document (`OSError`, `ValueError`, `TypeError`, `LookupError`, `ImportError`,
    PyTorch's `RuntimeError`, e.g. a GPU out of memory) are failures.
    """
    from .exceptions import EnhanceError, IncompatibleOptionsError  # loads astropy: only on an error

    if isinstance(err, IncompatibleOptionsError):
        return _usage(_one_line(err))
    if isinstance(err, ModuleNotFoundError) and err.name == "torch":
        return _error(f"enhance {command} needs PyTorch: pip install 'solar-enhance[torch]' (enhance run, demo and "
                      "export work without it, on onnxruntime)")  # fmt: skip
    if isinstance(err, EnhanceError | OSError | ValueError | TypeError | LookupError | ImportError | RuntimeError):
        return _error(_one_line(err))
    raise err


def _terminated(signum, frame):
    """SIGTERM (``kill``, a batch system's time limit) unwinds like Ctrl-C: no temporary file is left."""
    raise KeyboardInterrupt


def main(argv=None) -> int:
    """Entry point of the ``enhance`` script.

    Parameters
    ----------
    argv : list of str, optional
        The command-line arguments after ``enhance``; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 for a runtime failure, 2 for a usage error.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.data import sample_path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     main(["run", str(sample_path("intensity")), "-o", f"{folder}/out.fits", "--model", "light"])
    ... # doctest: +ELLIPSIS
    /...hmi_continuum_ar.fits -> /.../out.fits (intensity, ... s)
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((arg for arg in argv if not arg.startswith("-")), None))
    args, extra = parser.parse_known_args(argv)
    if extra:  # the subcommand's usage, not the top-level one
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    with _logging(args.verbose or 0, quiet=bool(args.quiet)):
        try:
            return args.func(args)
        except KeyboardInterrupt:
            return _error("interrupted")
        except Exception as err:  # noqa: BLE001 - sorted by type in `_failed`; a bug's is raised again
            return _failed(err, command=args.command)
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
