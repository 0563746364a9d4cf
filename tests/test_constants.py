"""The shared facts agree with each other and with the code that uses them."""

import inspect

import astropy.units as u
import pytest

from enhance import constants
from enhance.constants import (
    GAUSS_PER_KG,
    HMI_NOISE,
    HMI_PIXEL_SCALE,
    KIND_ALIASES,
    KINDS,
    TARGET_PIXEL_SCALE,
    VARIANTS,
    WIENER_SYMMETRIC,
)
from enhance.models.registry import FAMILIES, MODELS


def test_every_public_name_exists():
    assert all(hasattr(constants, name) for name in constants.__all__)


def test_pixel_scales_are_angles_and_the_target_grid_is_half_hmis():
    assert HMI_PIXEL_SCALE.unit.physical_type == "angle"
    assert HMI_PIXEL_SCALE.to_value(u.arcsec) == pytest.approx(0.504)
    assert TARGET_PIXEL_SCALE == HMI_PIXEL_SCALE / 2
    assert TARGET_PIXEL_SCALE.to_value(u.arcsec) == pytest.approx(0.252)


def test_kinds_and_their_aliases_map_onto_kinds():
    assert set(KIND_ALIASES.values()) == set(KINDS)  # every kind has sunpy's name, and no alias points elsewhere
    assert not set(KIND_ALIASES) & set(KINDS)
    assert set(HMI_NOISE) == set(KINDS)
    assert all(level > 0 for level in HMI_NOISE.values())


def test_gauss_per_kg_is_the_unit_conversion():
    assert (1 * u.kG).to_value(u.G) == GAUSS_PER_KG


def test_model_names_agree_with_the_registry():
    assert tuple(MODELS) == VARIANTS
    assert {name for name, spec in MODELS.items() if FAMILIES[spec.family].needs_noise} == set(WIENER_SYMMETRIC)
    assert WIENER_SYMMETRIC == {name: MODELS[name].symmetric for name in WIENER_SYMMETRIC}
    assert WIENER_SYMMETRIC == {"full": True, "light": False}  # 'light' is one pass of 'full'


def test_the_paper_sizes_give_the_papers_parameter_count():
    torch = pytest.importorskip("torch")
    from enhance.models.network import EnhanceNet

    net = EnhanceNet(**MODELS["paper"].architecture)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 445_249  # the paper's model summary
    statistics = sum(b.numel() for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert statistics == 1_408
    assert isinstance(net, torch.nn.Module)


def test_the_default_models_size_is_wiener_enhances_default_architecture():
    pytest.importorskip("torch")
    from enhance.models.hybrid import WienerEnhanceNet

    size = MODELS["full"].architecture
    defaults = {k: p.default for k, p in inspect.signature(WienerEnhanceNet).parameters.items()}
    assert {key: defaults[key] for key in size} == size
    assert size["taps"] % 2 == 1  # a filter centred on its pixel


def test_removed_size_tables_warn():
    with pytest.warns(DeprecationWarning, match="registry"):
        assert constants.MODEL_SIZES["paper"] == MODELS["paper"].architecture
