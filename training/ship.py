"""Ship a trained model into the package: weights, model card and registry entry.

    .venv/bin/python training/ship.py intensity full [--runs runs]

Takes ``runs/<variant>_<kind>/best.safetensors``, the run's training configuration and history, and the
validation numbers of ``runs/validation/validation_<kind>.json`` (from ``recipe.sh validate``), and
refuses unless the validation report's floors pass. Run only when they do.
"""

import argparse
import json
import sys
from pathlib import Path

from enhance.train import load_checkpoint
from enhance.validate import floors
from enhance.weights import ship


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("intensity", "blos"))
    parser.add_argument("variant", choices=("full", "light"))
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args(argv)
    run = Path(args.runs) / f"{args.variant}_{args.kind}"
    validation = json.loads((Path(args.runs) / "validation" / f"validation_{args.kind}.json").read_text())
    failed = [name for name, (_, ok) in floors(validation).items() if not ok]
    if failed:
        sys.stderr.write("floors not met, not shipping:\n  " + "\n  ".join(failed) + "\n")
        return 1
    state = load_checkpoint(run / "checkpoint.pt")
    card = {
        "training_data": "synthetic mixed scenes (enhance.synth, 128 x 1000x1000 at 0.0662 arcsec)"
        + (" + MURaM quiet Sun, first 75 % of rows" if args.kind == "intensity" else ""),
        "recipe": state["config"],
        "steps": state["step"],
        "best_validation_mse": state["best_val"],
        "validation": {field: scores.get(args.variant) for field, scores in validation.items()},
    }
    entry = ship(run / "best.safetensors", args.kind, args.variant, card=card)
    print(json.dumps(entry, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
