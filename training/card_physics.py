"""Copy the headline numbers of `enhance validate --physics` into the shipped model cards.

    .venv/bin/python training/card_physics.py    # after training/validation/physics_{intensity,blos}.json

Each card gets a ``physics_validation`` entry: the PSNR of the model (plain and averaged over the 8
rotations and flips, "D4") minus RL+target at its best iteration, minus Wiener and minus bicubic on every
held-out field and noise level; equivariance and half-pixel flicker on the real cut-outs next to
RL+target's; the report and the command that reproduces it.
"""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "enhance" / "data"
NOTE = ("physics_validation compares with RL+target (Richardson-Lucy with the exact forward model on the x2 grid, "
        "then the 28 cm Airy blur) and with a Wiener filter with the same forward model; the paper's networks' "
        "'floors' entry compares with Richardson-Lucy on a bicubic-upsampled image without the target's "
        "blur.")  # fmt: skip


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


def main():
    for kind in ("intensity", "blos"):
        report = ROOT / "training" / "validation" / f"physics_{kind}.json"
        results = json.loads(report.read_text())
        command = (ROOT / "training" / "validation" / f"physics_{kind}.md").read_text().split("Reproduce with `")[1]
        command = command.split("`")[0]
        methods = next(iter(next(iter(results["noise"].values())).values()))
        for variant in ("full", "light", "paper", "paper-light"):
            path = DATA / f"enhance_{kind}_{variant}.json"
            card = json.loads(path.read_text())
            d4 = f"{variant} D4"  # the paper's networks averaged over the 8 rotations and flips ('full' is already)
            card["physics_validation"] = {
                "report": f"training/validation/physics_{kind}.md",
                "command": command,
                "note": NOTE,
                "model": headline(results, variant),
                **({"model_d4": headline(results, d4)} if d4 in methods else {}),
                "floors_of_issue_15_passed": {label: sum(ok for _, ok in checks.values())
                                              for label, checks in results["floors"].items()},
                "floors_of_issue_15_checked": {label: len(checks) for label, checks in results["floors"].items()},
            }  # fmt: skip
            path.write_text(json.dumps(card, indent=1))
            print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
