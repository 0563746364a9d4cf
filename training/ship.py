"""Ship a trained model into the package: weights, model card and registry entry.

    .venv/bin/python training/ship.py intensity paper [--runs runs]

Takes ``runs/<variant>_<kind>/best.safetensors`` (or ``--weights swa.safetensors``), the run's training
configuration and history, and the validation numbers of ``runs/validation/validation_<kind>.json``
(from ``recipe.sh validate``), and refuses unless the validation report's floors pass and, for a full
model, its behaviour on the real HMI sample lies within the published ranges. The model card carries all
of these numbers.

    .venv/bin/python training/ship.py intensity paper --refresh-card [--accept-deviation NAME --note TEXT]

re-measures the real-HMI numbers of the model already shipped (the current `enhance.analysis.hmi_behaviour`) and
rewrites only those, and the known deviations, in its card; the weights and the rest stay as shipped.
"""

import argparse
import json
import sys
from pathlib import Path

import astropy.units as u

from enhance import __version__
from enhance.analysis.validate import floors, real_data
from enhance.io import atomic_write
from enhance.models.pretrained import load_weights, ship
from enhance.models.registry import model_card, package_data_dir, registry_entry
from enhance.models.weights import read_metadata
from enhance.observation.psf import DEFAULT_RADIUS, ENHANCE_2018, TARGET_DIAMETER
from enhance.training.loop import load_checkpoint


def hmi_deviations(behaviour, variant, accepted, note):
    """Known deviations (accepted failed real-HMI checks) and the failures that block shipping."""
    deviations, failed = {}, []
    if variant != "paper":  # the light model answers for its floors only
        return deviations, failed
    for name, (value, low, high, ok) in behaviour["checks"].items():
        if ok:
            continue
        if name in accepted:
            deviations[name] = {"value": value, "published_range": [low, high]} | ({"note": note} if note else {})
        else:
            failed.append(f"real HMI: {name} = {value} outside {low} to {high}")
    return deviations, failed


def refresh_card(kind, variant, accepted, note) -> int:
    """Re-measure the shipped model's real-HMI numbers and rewrite them in its card."""
    behaviour = real_data({variant: load_weights(kind, variant)}, kind)[variant]
    deviations, failed = hmi_deviations(behaviour, variant, accepted, note)
    if failed:
        sys.stderr.write("not refreshing:\n  " + "\n  ".join(failed) + "\n")
        return 1
    card = model_card(kind, variant) | {"real_hmi_sample": behaviour, "known_deviations": deviations,
                                        "card_refreshed_with": __version__}  # fmt: skip
    path = package_data_dir() / registry_entry(kind, variant).card
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(card, indent=1)), overwrite=True)
    print(json.dumps({"real_hmi_sample": behaviour["numbers"], "known_deviations": deviations}, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("intensity", "blos"))
    parser.add_argument("variant", choices=("paper", "paper-light"))
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--accept-deviation", action="append", default=[], metavar="CHECK",
                        help="ship although this real-HMI check (a name in enhance.analysis.hmi_behaviour.PUBLISHED) "
                        "fails; "
                        "it is recorded in the model card as a known deviation. Floors cannot be waived.")  # fmt: skip
    parser.add_argument("--weights", default="best.safetensors", metavar="FILE",
                        help="the weights in the run folder to ship: best.safetensors (default) or swa.safetensors "
                        "(`recipe.sh average`); validate the same file first")  # fmt: skip
    parser.add_argument("--history", default="", metavar="TEXT",
                        help="how the run got here (e.g. a fine-tune on data of another observation model), "
                        "recorded in the card as training_history")  # fmt: skip
    parser.add_argument("--note", default="", help="why the accepted deviations are accepted (kept in the card)")
    parser.add_argument("--refresh-card", action="store_true",
                        help="re-measure only the real-HMI numbers of the shipped model, in its card")  # fmt: skip
    args = parser.parse_args(argv)
    if args.refresh_card:
        return refresh_card(args.kind, args.variant, args.accept_deviation, args.note)
    run = Path(args.runs) / f"{args.variant}_{args.kind}"
    validation = json.loads((Path(args.runs) / "validation" / f"validation_{args.kind}.json").read_text())
    label = {"paper": "full", "paper-light": "light"}[args.variant]  # the report's names (recipe.sh validate)
    fields, behaviour = validation["fields"], validation["hmi_behaviour"].get(label)
    # Each model answers for its own floors: the full one beats RL and bicubic, the light one stays
    # within 1 dB of the full one.
    own = {
        name: check
        for name, check in floors(fields).items()
        if ("full - light" in name) == (args.variant == "paper-light")
    }
    failed = [name for name, (_, ok) in own.items() if not ok]
    if not own and (args.variant == "paper-light" or args.kind == "intensity"):  # blos sets no floor on the full model
        failed.append(f"the report has no floor for the {args.variant} model (validate full and light together)")
    if behaviour is None:
        failed.append(f"no real-HMI behaviour of the {args.variant} model in the report")
    deviations = {}
    if behaviour is not None:
        deviations, blocking = hmi_deviations(behaviour, args.variant, args.accept_deviation, args.note)
        failed += blocking
    if failed:
        sys.stderr.write("not shipping:\n  " + "\n  ".join(failed) + "\n")
        return 1
    state = load_checkpoint(run / "checkpoint.pt")
    best = read_metadata(run / args.weights)
    card = {
        "training_data": "synthetic mixed scenes (enhance.scenes.synth, 128 x 1000x1000 at 0.0662 arcsec)"
        + (" + MURaM quiet Sun, first 75 % of rows" if args.kind == "intensity" else ""),
        "observation_model": {
            "hmi_psf": "Wachter et al. (2012) Gaussian + Lorentzian",
            "hmi_psf_parameters": ENHANCE_2018,
            "target": f"Airy pattern of a {TARGET_DIAMETER.to_value(u.m)} m telescope at 6173 Angstrom",
            "kernel_half_width_arcsec": round(float(DEFAULT_RADIUS.to_value(u.arcsec)), 4),
            "pixel_scales_arcsec": {"input": 0.504, "output": 0.252},
        },
        "training_history": args.history,
        "recipe": state["config"],
        "steps": int(best["step"]),
        "steps_run": state["step"],
        "best_validation_mse": float(best["val_loss"]),
        "averaged_steps": json.loads(best["averaged_steps"]) if "averaged_steps" in best else None,
        "validation": {field: scores.get(args.variant) for field, scores in fields.items()},
        "floors": own,
        "real_hmi_sample": behaviour,
        "known_deviations": deviations,
    }
    entry = ship(run / args.weights, args.kind, args.variant, card=card)
    print(json.dumps(entry.manifest_row(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
