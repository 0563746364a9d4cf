"""The shipped models' outputs on the packaged samples, pinned: a refactor must not change a single value.

``tests/data/pinned_outputs.npz`` holds, for each kind and shipped model, the enhanced 48 x 48 window
around the sunspot of the packaged sample (96 x 96 out) through the public `enhance.enhance` with its
defaults, and through each back-end. Regenerate it only when the weights change on purpose:
``python tests/inference/test_pinned_outputs.py --write``.

Float32 arithmetic differs between CPUs (vector widths, fused multiply-adds), so values are compared to
1e-5 of the window's range (the bound a speed change must keep; the paper's networks, 13
convolutions deep, differ by 6.0e-6 of it between the AVX-512 CPU that wrote the file and an AVX2 one);
on the machine that wrote the file they agree bit for bit.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from enhance import enhance
from enhance.constants import HMI_NOISE, KINDS, VARIANTS, WIENER_SYMMETRIC
from enhance.data import sample_path
from enhance.io import read_fits

PINNED = Path(__file__).parent / "pinned_outputs.npz"
WINDOW = (slice(76, 124), slice(76, 124))
BACKENDS = ("torch", "onnx")
TOLERANCE = 1e-5


def _window(kind):
    return read_fits(sample_path(kind))[0][WINDOW].astype(np.float32)


def _outputs(kind, model, backend):
    # A given noise and quiet-Sun level: the pin is of the networks, not of the estimates (tested elsewhere).
    options = {"noise": HMI_NOISE[kind]} if model in WIENER_SYMMETRIC else {}
    if kind == "intensity":
        options["qs_level"] = 1.0
    result = enhance(_window(kind), kind, model=model, backend=backend, **options)
    return np.asarray(result, dtype=np.float32)


def _key(kind, model, backend):
    return f"{kind}/{model}/{backend}"


def _cases():
    return [(kind, model, backend) for kind in KINDS for model in VARIANTS for backend in BACKENDS]


@pytest.fixture(scope="module")
def pinned():
    with np.load(PINNED) as stored:
        return dict(stored)


def test_every_shipped_model_and_backend_is_pinned(pinned):
    assert sorted(pinned) == sorted(_key(*case) for case in _cases())


@pytest.mark.parametrize(("kind", "model", "backend"), _cases())
def test_output_equals_the_pinned_output(pinned, kind, model, backend):
    expected = pinned[_key(kind, model, backend)]
    found = _outputs(kind, model, backend)
    assert found.shape == expected.shape == (96, 96)
    scale = float(np.ptp(expected))
    assert scale > 0
    assert np.max(np.abs(found - expected)) <= TOLERANCE * scale


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    arrays = {_key(*case): _outputs(*case) for case in _cases()}
    np.savez_compressed(PINNED, **arrays)
    sys.stdout.write(f"wrote {PINNED}: {len(arrays)} outputs\n")
