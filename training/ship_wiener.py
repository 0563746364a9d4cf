"""Ship a trained Wiener-Enhance network as the 'full' and 'light' models: weights, model cards, registry.

    .venv/bin/python training/ship_wiener.py KIND RUN_DIR

Reads RUN_DIR/final.pt, history.json and recipe.json (training/wiener_enhance.py), writes
RUN_DIR/wiener_KIND.safetensors with the recipe in its metadata, and ships it twice: 'full' (averaged
over the 8 rotations and flips) and 'light' (one pass), one weights file with two registry entries and
two model cards. `training/card_physics.py` adds the physics validation to the cards afterwards.
"""

import argparse
import json
from pathlib import Path

import torch

from enhance import __version__
from enhance.constants import GAUSS_PER_KG, HMI_NOISE, WIENER_SIZE
from enhance.models.hybrid import WienerEnhanceNet
from enhance.models.pretrained import ship
from enhance.models.weights import model_card, save_weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("intensity", "blos"))
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    state = torch.load(args.run_dir / "final.pt", weights_only=True)
    history = json.loads((args.run_dir / "history.json").read_text())
    recipe = json.loads((args.run_dir / "recipe.json").read_text())
    unit = HMI_NOISE[args.kind] / (GAUSS_PER_KG if args.kind == "blos" else 1.0)
    net = WienerEnhanceNet(**WIENER_SIZE, noise_unit=unit)
    net.load_state_dict(state)
    weights = save_weights(net.eval(), args.run_dir / f"wiener_{args.kind}.safetensors", kind=args.kind,
                           metadata={"recipe": json.dumps(recipe)}, overwrite=True)  # fmt: skip
    paper = model_card(args.kind, "paper")
    common = {
        "architecture": {"name": "WienerEnhanceNet", **WIENER_SIZE, "noise_nodes_x_hmi_noise": list(net.noise_nodes),
                         "noise_unit": unit, "parameters": sum(p.numel() for p in net.parameters()),
                         "receptive_margin_input_pixels": net.margin},  # fmt: skip
        "training_data": paper["training_data"] + " (noise-free pairs; Gaussian noise added per sample in training)",
        "observation_model": paper["observation_model"],
        "linear_stage": "closed-form least-squares (Wiener) polyphase filters from the nominal-PSF pairs and their 8 "
                        "rotations and flips, one per noise level (enhance.training.linear_stage), fixed in training",
        "recipe": recipe,
        "training_history": history[-1],
        "noise_input": "standard deviation of the input noise per pixel, measured on each image beyond HMI's "
                       "diffraction cut-off (enhance.observation.noise), or given (noise=, --noise)",
        "reproduce": f"training/wiener_enhance.py {args.kind} --pairs ...; training/ship_wiener.py {args.kind} RUN",
        "package_version": __version__,
    }  # fmt: skip
    for variant, symmetric in (("full", True), ("light", False)):
        card = {**common, "symmetric": symmetric,
                "inference": "averaged over the 8 rotations and flips of the input (8 CNN passes, one linear stage)"
                if symmetric else "one pass"}  # fmt: skip
        entry = ship(weights, args.kind, variant, card=card)
        print(f"shipped {args.kind}/{variant}: {entry}")


if __name__ == "__main__":
    main()
