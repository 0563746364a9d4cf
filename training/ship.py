"""Ship a trained model into the package: weights, model card and registry entry.

    .venv/bin/python training/ship.py intensity full [--runs runs]

Takes ``runs/<variant>_<kind>/best.safetensors``, the run's training configuration and history, and the
validation numbers of ``runs/validation/validation_<kind>.json`` (from ``recipe.sh validate``), and
refuses unless the validation report's floors pass and, for a full model, its behaviour on the real HMI
sample lies within the published ranges. The model card carries all of these numbers.
"""

import argparse
import json
import sys
from pathlib import Path

from enhance.train import load_checkpoint
from enhance.validate import floors
from enhance.weights import _read_metadata, ship


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("intensity", "blos"))
    parser.add_argument("variant", choices=("full", "light"))
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--accept-deviation", action="append", default=[], metavar="CHECK",
                        help="ship although this real-HMI check (a name in enhance.hmi_behaviour.PUBLISHED) fails; "
                        "it is recorded in the model card as a known deviation. Floors cannot be waived.")  # fmt: skip
    args = parser.parse_args(argv)
    run = Path(args.runs) / f"{args.variant}_{args.kind}"
    validation = json.loads((Path(args.runs) / "validation" / f"validation_{args.kind}.json").read_text())
    fields, behaviour = validation["fields"], validation["hmi_behaviour"].get(args.variant)
    # Each model answers for its own floors: the full one beats RL and bicubic, the light one stays
    # within 1 dB of the full one.
    own = {
        name: check for name, check in floors(fields).items() if ("full - light" in name) == (args.variant == "light")
    }
    failed = [name for name, (_, ok) in own.items() if not ok]
    if not own and (args.variant == "light" or args.kind == "intensity"):  # blos sets no floor on the full model
        failed.append(f"the report has no floor for the {args.variant} model (validate full and light together)")
    if behaviour is None:
        failed.append(f"no real-HMI behaviour of the {args.variant} model in the report")
    deviations = {}
    if behaviour is not None and args.variant == "full":
        for name, (value, low, high, ok) in behaviour["checks"].items():
            if ok:
                continue
            if name in args.accept_deviation:
                deviations[name] = {"value": value, "published_range": [low, high]}
            else:
                failed.append(f"real HMI: {name} = {value} outside {low} to {high}")
    if failed:
        sys.stderr.write("not shipping:\n  " + "\n  ".join(failed) + "\n")
        return 1
    state = load_checkpoint(run / "checkpoint.pt")
    best = _read_metadata(run / "best.safetensors")
    card = {
        "training_data": "synthetic mixed scenes (enhance.synth, 128 x 1000x1000 at 0.0662 arcsec)"
        + (" + MURaM quiet Sun, first 75 % of rows" if args.kind == "intensity" else ""),
        "recipe": state["config"],
        "steps": int(best["step"]),
        "steps_run": state["step"],
        "best_validation_mse": float(best["val_loss"]),
        "validation": {field: scores.get(args.variant) for field, scores in fields.items()},
        "floors": own,
        "real_hmi_sample": behaviour,
        "known_deviations": deviations,
    }
    entry = ship(run / "best.safetensors", args.kind, args.variant, card=card)
    print(json.dumps(entry, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
