"""The model registry is the one statement of the shipped models' facts: the manifest, the weights files, the
CLI, the documentation and the legacy names all agree with it; and the shared facts live in `enhance.constants`."""

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

from enhance import constants
from enhance.cli import build_parser, main
from enhance.constants import KINDS
from enhance.models import registry
from enhance.models.registry import FAMILIES, MANIFEST, MODELS, file_sha256, model_table, registry_entry, shipped

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "enhance"
SHIPPED = sorted(shipped())


def test_every_model_ships_for_both_kinds():
    assert SHIPPED == sorted((kind, model) for kind in KINDS for model in MODELS)


def test_the_manifest_is_the_registry_with_the_files_checksums():
    manifest = json.loads((registry.package_data_dir() / MANIFEST).read_text())
    assert manifest == {f"{kind}/{model}": registry_entry(kind, model).manifest_row() for kind, model in SHIPPED}
    for kind, model in SHIPPED:
        entry = registry_entry(kind, model)
        assert file_sha256(entry.path) == entry.sha256, entry.file
        assert entry.model_card()["kind"] == kind


@pytest.mark.parametrize(("kind", "model"), SHIPPED)
def test_each_weights_file_holds_the_registrys_network(kind, model):
    entry = registry_entry(kind, model)
    net = entry.load()  # checks the file's metadata against the registry's architecture
    assert {key: getattr(net, key) for key in entry.architecture} == entry.architecture
    assert sum(p.numel() for p in net.parameters()) == entry.num_params
    assert getattr(net, "symmetric", False) == entry.symmetric
    assert (getattr(net, "noise_unit", None) is not None) == entry.needs_noise


def test_the_papers_networks_have_the_papers_parameter_counts():
    """445,249 trainable parameters for the paper's network (its model summary), 37,537 for the light one."""
    assert sum(p.numel() for p in MODELS["paper"].build("intensity").parameters()) == 445_249
    assert sum(p.numel() for p in MODELS["paper-light"].build("blos").parameters()) == 37_537


def test_the_default_models_are_told_hmis_noise_in_network_units():
    assert MODELS["full"].build("intensity").noise_unit == 1e-3  # I/Ic
    assert MODELS["light"].build("blos").noise_unit == 0.01  # kG: 10 G
    assert MODELS["full"].build("blos").symmetric
    assert not MODELS["light"].build("blos").symmetric


def test_a_file_that_disagrees_with_the_registry_is_refused(data_dir, tmp_path):
    from enhance.models.network import EnhanceNet
    from enhance.models.pretrained import ship
    from enhance.models.weights import save_weights

    entry = ship(save_weights(EnhanceNet(depth=1, width=32), tmp_path / "w.safetensors", kind="blos"), "blos",
                 "paper-light", card={})  # fmt: skip
    assert json.loads((data_dir / MANIFEST).read_text()) == {"blos/paper-light": entry.manifest_row()}
    liar = dataclasses.replace(entry, architecture={"depth": 2, "width": 32})
    with pytest.raises(ValueError, match="but the registry's blos/paper-light is"):
        liar.load()


def test_the_headline_metrics_are_the_cards():
    entry = registry_entry("intensity", "full")
    card = entry.model_card()["physics_validation"]["model"]["psnr_minus_wiener_db"]
    metrics = entry.metrics()["psnr_minus_wiener_db"]
    assert metrics["synthetic plage"] == card["synthetic plage"]["1 x noise"]
    assert not any(", I^" in field for field in metrics)  # the scenes at their own contrast only


def test_families_know_whether_their_networks_take_a_noise_level():
    assert {spec.family for spec in MODELS.values()} == set(FAMILIES)
    assert {name for name, family in FAMILIES.items() if family.needs_noise} == {"wiener-enhance"}


def test_the_cli_offers_the_registrys_models_with_their_summaries(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for spec in MODELS.values():
        assert f"{spec.name} ({spec.summary})" in text


def test_a_model_added_to_the_registry_is_a_cli_choice(monkeypatch):
    """A model 'on paper' needs nothing but its registry entry to be offered by the CLI."""
    spec = registry.ModelSpec(
        "tiny", "paper", {"depth": 1, "width": 8}, symmetric=False, weights="tiny", summary="a test"
    )
    monkeypatch.setitem(MODELS, "tiny", spec)
    assert build_parser().parse_args(["run", "in.fits", "-o", "out", "--model", "tiny"]).model == "tiny"
    assert spec.file("blos") == "enhance_blos_tiny.safetensors"
    assert sum(p.numel() for p in spec.build("blos").parameters()) > 0


def test_the_docs_model_table_is_the_registrys():
    table = ROOT / "docs" / "guide" / "models_table.inc"
    assert table.read_text() == model_table(), (
        'regenerate it: PYTHONPATH=src python -c "from enhance.models.registry import model_table; '
        "open('docs/guide/models_table.inc', 'w').write(model_table())\""
    )
    assert ".. include:: models_table.inc" in (ROOT / "docs" / "guide" / "enhancing.rst").read_text()


def test_the_readme_quotes_the_registrys_parameter_counts():
    models = " ".join((ROOT / "README.md").read_text().split("## Models")[1].split("\n## ")[0].split())
    counts = {name: f"{registry_entry('intensity', name).num_params:,}" for name in MODELS}
    assert f"{counts['full']} parameters" in models
    assert f"({counts['paper']} and {counts['paper-light']} parameters)" in models


def test_the_legacy_names_agree_with_the_registry():
    assert constants.VARIANTS == tuple(MODELS)
    assert constants.WIENER_SYMMETRIC == {n: s.symmetric for n, s in MODELS.items() if s.family == "wiener-enhance"}
    with pytest.warns(DeprecationWarning, match="enhance.constants.MODEL_SIZES is deprecated"):
        sizes = constants.MODEL_SIZES
    assert sizes == {n: s.architecture for n, s in MODELS.items() if s.family == "paper"}
    with pytest.warns(DeprecationWarning, match="enhance.constants.WIENER_SIZE is deprecated"):
        assert constants.WIENER_SIZE == MODELS["full"].architecture


def test_the_weights_modules_old_registry_names_warn_and_still_answer():
    import enhance.models.weights as weights

    with pytest.warns(DeprecationWarning, match=r"weights.registry_entry is deprecated.*registry.registry_entry"):
        old = weights.registry_entry
    assert old("blos", "light")["sha256"] == registry_entry("blos", "light").sha256
    with pytest.warns(DeprecationWarning, match="weights.VARIANTS is deprecated"):
        assert weights.VARIANTS == tuple(MODELS)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = weights.nothing


def test_io_pixel_scale_is_the_constants_quantity():
    import enhance.io

    with pytest.warns(DeprecationWarning, match="use enhance.constants.HMI_PIXEL_SCALE"):
        old = enhance.io.HMI_PIXEL_SCALE
    assert old == constants.HMI_PIXEL_SCALE.to_value("arcsec") == 0.504
    assert constants.TARGET_PIXEL_SCALE.to_value("arcsec") == 0.252


def test_hmis_noise_in_network_units_is_hmis_noise_over_the_network_unit():
    assert constants.HMI_NOISE_NETWORK == {"intensity": 1e-3, "blos": 0.01}
    assert constants.NETWORK_UNIT["blos"] == constants.GAUSS_PER_KG == 1000.0


def _numbers(path):
    """``(line, value)`` of every int or float literal in a module (not in strings: docstrings may quote them)."""
    tree = ast.parse(path.read_text())
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and type(node.value) in (int, float)]  # fmt: skip


def test_pixel_scales_are_written_only_in_constants():
    """HMI's 0.504 arcsec and the x2 grid's 0.252 arcsec come from `enhance.constants`, never a literal."""
    stray = [f"{path.relative_to(SRC)}:{line}: {value}" for path in sorted(SRC.rglob("*.py"))
             if path.name != "constants.py" for line, value in _numbers(path) if value in (0.504, 0.252)]  # fmt: skip
    assert not stray, "use enhance.constants.HMI_PIXEL_SCALE or TARGET_PIXEL_SCALE:\n" + "\n".join(stray)


def test_the_scan_finds_a_stray_pixel_scale(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""At 0.504 arcsec."""\n\nSCALE = 0.252  # arcsec\n')
    assert _numbers(module) == [(3, 0.252)]


def test_the_package_reads_the_registry_not_the_legacy_names():
    legacy = {"VARIANTS", "WIENER_SYMMETRIC", "MODEL_SIZES", "WIENER_SIZE"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and re.search(r"(^|\.)(constants|weights)$", node.module)
            ):
                found += [f"{path.relative_to(SRC)}:{node.lineno} {a.name}" for a in node.names if a.name in legacy]
    assert not found, found
