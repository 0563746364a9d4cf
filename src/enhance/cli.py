"""The ``enhance`` command line: thin wrappers over the library.

Each subcommand parses its arguments, calls one library function and writes the output. Errors
print one line to stderr and give a non-zero exit status; no output file is ever half-written or
overwritten without ``--overwrite``.
"""

import argparse
import sys
from pathlib import Path

from ._version import __version__

__all__ = ["main"]


def _error(message: str) -> int:
    print(f"enhance: error: {message}", file=sys.stderr)
    return 2


def _outputs_for(inputs: list[Path], out: Path) -> list[Path]:
    """One output path per input: OUT itself for one input, else ``OUT/<stem>_enhanced.fits``."""
    if len(inputs) == 1 and not out.is_dir():
        return [out]
    if not out.is_dir():
        msg = f"with several inputs, -o must be an existing directory, got {out}"
        raise NotADirectoryError(msg)
    names = [out / f"{path.name.split('.')[0]}_enhanced.fits" for path in inputs]
    if len(set(names)) != len(names):
        msg = "several inputs share a file name stem; their outputs would collide"
        raise ValueError(msg)
    return names


def _kind_of(path: Path, requested: str, header) -> str:
    if requested != "auto":
        return requested
    from .io import detect_kind

    kind = detect_kind(header)
    if kind is None:
        msg = f"{path}: cannot tell continuum from magnetogram (no BUNIT, CONTENT or series name); pass -t"
        raise ValueError(msg)
    return kind


def _run(args) -> int:
    from tqdm.auto import tqdm

    from .inference import _enhance_array, _history, resolve_network
    from .io import read_fits, upscale_header, write_fits
    from .weights import load_network

    inputs = [Path(p) for p in args.inputs]
    outputs = _outputs_for(inputs, Path(args.output))
    if not args.overwrite:
        for path in outputs:
            if path.exists():
                return _error(f"{path} exists; use --overwrite to replace it")
    custom = {}  # kind -> network loaded from --weights (checked against each file's kind)
    failures = 0
    for source, target in tqdm(
        list(zip(inputs, outputs, strict=True)), desc="files", unit="file", disable=len(inputs) < 2
    ):
        try:
            image, header = read_fits(source)
            kind = _kind_of(source, args.type, header)
            if args.weights and kind not in custom:
                custom[kind] = load_network(args.weights, kind=kind)
            network = resolve_network(kind, model=args.model, network=custom.get(kind))
            result = _enhance_array(image, kind=kind, network=network, qs_level=args.qs_level, device=args.device,
                                    tile=args.tile, progress=True)  # fmt: skip
            history = _history(kind, args.model, custom.get(kind))
            history += f" ({Path(args.weights).name})" if args.weights else ""
            extra = []
            if args.consistency:
                from .diagnostics import consistency_hdu

                extra = [consistency_hdu(result, image, header=header)]
            write_fits(target, result, upscale_header(header, 2, history=history), overwrite=args.overwrite,
                       extra_hdus=extra)  # fmt: skip
        except (OSError, ValueError, TypeError, LookupError) as err:
            failures += 1
            _error(str(err) if str(source) in str(err) else f"{source}: {err}")
            continue
        print(f"{source} -> {target} ({kind}, {result.shape[1]}x{result.shape[0]})")
    return 1 if failures else 0


def _add_run(subparsers) -> None:
    run = subparsers.add_parser("run", help="enhance HMI FITS files", description="Deconvolve and super-resolve x2.")
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="FITS file(s) at HMI's 0.504 arcsec/pixel")
    run.add_argument("-o", "--output", required=True, metavar="OUT", help="output file, or directory for several")
    kind_help = "continuum or magnetogram; auto reads BUNIT, CONTENT or the series name (default)"
    run.add_argument("-t", "--type", choices=("intensity", "blos", "auto"), default="auto", help=kind_help)
    run.add_argument("--model", choices=("full", "light"), default="full", help="shipped model (default: full)")
    run.add_argument("--weights", metavar="FILE", help="safetensors weights to use instead of a shipped model")
    run.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    run.add_argument("--tile", type=int, default=None, metavar="N", help="exact overlapping tiles of N input pixels")
    run.add_argument("--qs-level", type=float, default=None, help="quiet-Sun continuum level (default: estimated)")
    run.add_argument("--overwrite", action="store_true", help="replace existing output files")
    consistency_help = "add the per-pixel consistency map (output degraded back to HMI minus input) as HDU 1"
    run.add_argument("--consistency", action="store_true", help=consistency_help)
    run.set_defaults(func=_run)


def _compare(args) -> int:
    from .diagnostics import compare, parse_region
    from .io import read_fits
    from .weights import load_network

    source = Path(args.input)
    kind = args.type
    if args.weights:
        if kind == "auto":
            kind = _kind_of(source, kind, read_fits(source)[1])
        network = load_network(args.weights, kind=kind)
    else:
        network = None
    out_dir = Path(args.output) if args.output else Path(f"{source.name.split('.')[0]}_compare")
    result = compare(source, kind, network=network, model=args.model, out_dir=out_dir, overwrite=args.overwrite,
                     n_iter=args.n_iter, damped=args.damped, qs_level=args.qs_level,
                     region=parse_region(args.region) if args.region else None,
                     device=args.device)  # fmt: skip
    kind, unit = result["input"]["kind"], result["input"]["unit"]
    cons = result["consistency"]
    print(f"{source} ({kind}): consistency Enhance {100 * cons['enhance']:.2f} %, "
          f"Richardson-Lucy {100 * cons['richardson_lucy']:.2f} %")  # fmt: skip
    if kind == "intensity":
        c = result["contrast"]
        (y0, y1), (x0, x1) = c["region_input_pixels"]
        print(f"granulation contrast [{y0}:{y1}, {x0}:{x1}]: input {100 * c['input']:.2f} %, "
              f"Enhance {100 * c['enhance']:.2f} %, RL {100 * c['richardson_lucy']:.2f} %, "
              f"bicubic {100 * c['bicubic']:.2f} %")  # fmt: skip
    else:
        flux = result["flux"]
        print("unsigned flux [Mx]: " + ", ".join(f"{key} {flux[key]['unsigned_Mx']:.3e}" for key in flux))
    levels = result["small_scale_power"]["white_noise_level"]
    low, high = result["small_scale_power"]["band_per_arcsec"]
    print(f"white-noise level at {low:.2f}-{high:.2f} /arcsec [{unit}]: "
          + ", ".join(f"{key} {value:.3g}" for key, value in levels.items()))  # fmt: skip
    for path in result["files"]:
        print(f"wrote {path}")
    return 0


def _add_compare(subparsers) -> None:
    cmp = subparsers.add_parser("compare", help="diagnostic figures: Enhance against Richardson-Lucy",
                                description="Enhance one HMI image, deconvolve it with Richardson-Lucy, and write the "
                                "paper's diagnostic figures (PNG) and every number (JSON).")  # fmt: skip
    cmp.add_argument("input", metavar="INPUT", help="FITS file at HMI's 0.504 arcsec/pixel")
    kind_help = "continuum or magnetogram; auto reads BUNIT, CONTENT or the series name (default)"
    cmp.add_argument("-t", "--type", choices=("intensity", "blos", "auto"), default="auto", help=kind_help)
    cmp.add_argument("-o", "--output", metavar="DIR", help="output directory (default: ./<input stem>_compare)")
    cmp.add_argument("--model", choices=("full", "light"), default="full", help="shipped model (default: full)")
    cmp.add_argument("--weights", metavar="FILE", help="safetensors weights to use instead of a shipped model")
    cmp.add_argument("--n-iter", type=int, default=20, help="Richardson-Lucy iterations (default: 20)")
    cmp.add_argument("--damped", action="store_true", help="the paper's damped Richardson-Lucy")
    region_help = "quiet-Sun region for the contrast, in input pixels (default: found automatically)"
    cmp.add_argument("--region", default=None, metavar="Y0:Y1,X0:X1", help=region_help)
    cmp.add_argument("--qs-level", type=float, default=None, help="quiet-Sun continuum level (default: estimated)")
    cmp.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    cmp.add_argument("--overwrite", action="store_true", help="replace existing output files")
    cmp.set_defaults(func=_compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enhance", description="Deconvolve and super-resolve SDO/HMI images with the Enhance network."
    )
    parser.add_argument("--version", action="version", version=f"solar-enhance {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(subparsers)
    _add_compare(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``enhance`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, TypeError, LookupError) as err:
        return _error(str(err))
    except KeyboardInterrupt:
        return _error("interrupted")


if __name__ == "__main__":
    sys.exit(main())
