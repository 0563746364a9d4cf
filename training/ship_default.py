"""Ship a run of `enhance train --config` as the default models 'full' and 'light', and card their validation.

    .venv/bin/python training/ship_default.py weights KIND RUN_DIR [--config FILE]  # RUN_DIR/final.safetensors in
                                                     # (a run of a wiener-enhance or wiener-enhance-average config)
    enhance validate --physics --kind KIND ... -o docs/validation/reports  # the report of the shipped models
    .venv/bin/python training/ship_default.py cards KIND                # its headline numbers into both cards

One weights file serves both names: 'full' averages the network over the 8 rotations and flips, 'light'
is one pass. Each card records the network, its training configuration (sources, PSFs, contrast and
resolution ranges), the last validation of the run and, after ``cards``, the PSNR of the model minus
RL+target at its best iteration, Wiener and bicubic on every held-out field and noise level of
``docs/validation/reports/physics_KIND.json``, with the command that reproduces it.
"""

import argparse
import json
from pathlib import Path

from enhance import __version__
from enhance.models.pretrained import load_network, ship
from enhance.models.registry import model_card, package_data_dir
from enhance.models.weights import read_metadata
from enhance.observation.psf import DEFAULT_RADIUS, ENHANCE_2018

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "docs" / "validation" / "reports"
NOTE = ("physics_validation compares with RL+target (Richardson-Lucy with the exact forward model on the x2 grid, "
        "then the 28 cm Airy blur) at its best iteration against the truth, and with a Wiener filter with the same "
        "forward model, both told the true noise; the models are told nothing.")  # fmt: skip


def training_data(config):
    """A sentence per source of a run's configuration, with the contrast and resolution ranges."""
    data = config["data"]
    parts = []
    for spec in data["sources"]:
        if spec["type"] == "synthetic":
            parts.append(f"{spec['frames']} synthetic {spec['scene']} scenes (enhance.scenes.synth, "
                         f"{spec['shape'][0]}x{spec['shape'][1]} at 0.0662 arcsec, seed {spec['seed']})")  # fmt: skip
        else:
            rows = "first 75 % of the rows" if spec["rows"] == "train" else "all rows"
            parts.append(f"file source '{spec['name']}' ({rows}; the MURaM quiet-Sun snapshot of the Enhance paper, "
                         f"0.0662 arcsec, listed {spec['weight']} times)")  # fmt: skip
    power, blur = data["contrast_power"], data["blur_arcsec"]
    return (" + ".join(parts) + f"; each frame seen as I**p with p log-uniform in {power} (continuum) and blurred by "
            f"a Gaussian of FWHM uniform in {blur} arcsec; {data['pairs']} noise-free pairs of {data['patch']} "
            f"HMI pixels, PSFs {data['psf']}")  # fmt: skip


def linear_stage(config):
    """How the run's linear stage was made: fitted to its pairs, or kept from the network it started from."""
    if config["model"].get("init_filters"):
        return (f"kept from the network the run started from ({config['model']['init']}: closed-form least-squares "
                "(Wiener) polyphase filters, one per noise level), fixed in training")  # fmt: skip
    return (
        "closed-form least-squares (Wiener) polyphase filters from the nominal-PSF pairs and their 8 rotations and "
        "flips, one per noise level (enhance.training.linear_stage), fixed in training"
    )


def ship_weights(kind, run_dir, config_file=None):
    weights = Path(run_dir) / "final.safetensors"
    net = load_network(weights, kind=kind)
    meta = read_metadata(weights)
    config = json.loads(meta["recipe"])
    members = json.loads(meta.get("members", "[]"))  # an average of runs (enhance.training.average)
    first = members[0]["recipe"] if members else config
    paper = model_card(kind, "paper")
    common = {
        "architecture": {"name": "WienerEnhanceNet", "depth": net.depth, "width": net.width, "taps": net.taps,
                         "noise_nodes_x_hmi_noise": list(net.noise_nodes), "noise_unit": net.noise_unit,
                         "exact_constants": net.exact_constants, "odd": net.odd,
                         "parameters": sum(p.numel() for p in net.parameters()),
                         "receptive_margin_input_pixels": net.margin},  # fmt: skip
        "training_data": training_data(config) if not members else "; ".join(
            f"{member['weight']:.3g} x the run of {spec['config']}: {training_data(member['recipe'])}"
            for member, spec in zip(members, config["members"], strict=True)),
        "observation_model": {**paper["observation_model"], "hmi_psf_parameters": ENHANCE_2018,
                              "kernel_half_width_arcsec": round(float(DEFAULT_RADIUS.value), 4)},  # fmt: skip
        "linear_stage": linear_stage(first),
        "recipe": config if not members else {**config, "member_recipes": [member["recipe"] for member in members]},
        "training_history": json.loads(meta["history"])[-1] if not members else [
            {"config": spec["config"], **member["history"][-1]}
            for member, spec in zip(members, config["members"], strict=True)],
        "noise_input": "standard deviation of the input noise per pixel, measured on each image beyond HMI's "
                       "diffraction cut-off (enhance.observation.noise), or given (noise=, --noise)",
        "reproduce": f"enhance train --config {config_file or f'training/configs/{kind}.toml'}"
                     + (" --source muram=PATH/muram_qs_0.0662arcsec.fits" if kind == "intensity" else "")
                     + f"; training/ship_default.py weights {kind} {config['out_dir']}",
        "package_version": __version__,
    }  # fmt: skip
    for variant, symmetric in (("full", True), ("light", False)):
        card = {**common, "symmetric": symmetric,
                "inference": "averaged over the 8 rotations and flips of the input (8 CNN passes, one linear stage)"
                if symmetric else "one pass"}  # fmt: skip
        print(f"shipped {kind}/{variant}: {ship(weights, kind, variant, card=card)}")


def headline(results, label):
    out = {"psnr_minus_rl_target_best_db": {}, "psnr_minus_wiener_db": {}, "psnr_minus_bicubic_db": {}}
    for field, levels in results["noise"].items():
        for key, name in (("psnr_minus_rl_target_best_db", "RL+target best"), ("psnr_minus_wiener_db", "Wiener"),
                          ("psnr_minus_bicubic_db", "bicubic")):  # fmt: skip
            out[key][field] = {f"{level} x noise": round(methods[label]["psnr"] - methods[name]["psnr"], 2)
                               for level, methods in levels.items()}  # fmt: skip
    out["real_cutouts"] = {
        name: {"equivariance_max": round(max(table[label]["equivariance"]), 4),
               "flicker": round(sum(table[label]["flicker"]) / 2, 3),
               "flicker_rl_target": round(sum(table["RL+target discrepancy"]["flicker"]) / 2, 3)}
        for name, table in results.get("symmetry", {}).items()
    }  # fmt: skip
    return out


def write_cards(kind):
    results = json.loads((REPORTS / f"physics_{kind}.json").read_text())
    command = (REPORTS / f"physics_{kind}.md").read_text().split("Reproduce with `")[1].split("`")[0]
    for variant in ("full", "light"):
        path = package_data_dir() / f"enhance_{kind}_{variant}.json"
        card = json.loads(path.read_text())
        card["physics_validation"] = {"report": f"docs/validation/reports/physics_{kind}.md", "command": command,
                                      "note": NOTE, "model": headline(results, variant)}  # fmt: skip
        path.write_text(json.dumps(card, indent=1))
        print(f"updated {path.relative_to(ROOT)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    weights = sub.add_parser("weights", help="copy RUN_DIR/final.safetensors into the package as 'full' and 'light'")
    weights.add_argument("kind", choices=("intensity", "blos"))
    weights.add_argument("run_dir", type=Path)
    weights.add_argument("--config", help="the configuration the run was trained with, for the cards' reproduce line")
    cards = sub.add_parser("cards", help="the physics validation's headline numbers into both cards")
    cards.add_argument("kind", choices=("intensity", "blos"))
    args = parser.parse_args()
    if args.step == "weights":
        ship_weights(args.kind, args.run_dir, args.config)
    else:
        write_cards(args.kind)


if __name__ == "__main__":
    main()
