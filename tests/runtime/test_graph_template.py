"""A graph template's weight written in after it was built: the filtering of 'full''s linear stage with its kernels
written in equals the convolution with them (scipy), at odd and even sizes; a placeholder found other than once is
refused."""

import numpy as np
import pytest
from scipy.signal import correlate2d

ort = pytest.importorskip("onnxruntime")
from enhance.runtime.graph_template import placeholder, with_weight  # noqa: E402
from enhance.runtime.wiener_onnx import paired_filtering_graph, paired_kernel  # noqa: E402


@pytest.mark.parametrize(("passes", "shape"), [(1, (20, 17)), (2, (15, 22)), (1, (7, 7))])
def test_the_filtering_with_kernels_written_in_is_the_convolution_with_them(passes, shape):
    rng = np.random.default_rng(passes)
    taps = 5
    kernels = rng.normal(size=(4 * passes, 1, taps, taps)).astype(np.float32)
    template = paired_filtering_graph(4 * passes, taps).SerializeToString()
    paired = np.concatenate([paired_kernel(kernels[i : i + 4])[0] for i in range(0, 4 * passes, 4)])
    session = ort.InferenceSession(with_weight(template, paired), providers=["CPUExecutionProvider"])
    image = rng.normal(size=shape).astype(np.float32)
    phases = session.run(None, {"image": image[None, None]})[0][0]
    rows, cols = shape[0] - taps + 1, shape[1] - taps + 1
    assert phases.shape == (4 * passes, rows + rows % 2, cols + cols % 2)
    for p in range(4 * passes):
        expected = correlate2d(image.astype(np.float64), kernels[p, 0].astype(np.float64), mode="valid")
        np.testing.assert_allclose(phases[p, :rows, :cols], expected, rtol=0, atol=1e-5)


def test_a_placeholder_found_other_than_once_is_refused():
    marker = placeholder((3,)).tobytes()
    for template in (b"no placeholder here", marker + b"twice" + marker):
        with pytest.raises(ValueError, match="placeholder"):
            with_weight(template, np.zeros(3, np.float32))
    assert with_weight(b"<" + marker + b">", np.ones(3)) == b"<" + np.ones(3, "<f4").tobytes() + b">"


def test_placeholders_of_other_shapes_share_no_prefix():
    # A weight of another shape must not match the start of a larger placeholder (it would leave the rest of it).
    template = b"<" + placeholder((128, 1, 8, 8)).tobytes() + b">"
    for shape in ((16, 1, 8, 8), (128, 1, 8, 7), (1,)):
        with pytest.raises(ValueError, match="0 times"):
            with_weight(template, np.zeros(shape, np.float32))
    values = placeholder((4, 4))
    assert values.min() >= 1  # finite, no NaN or subnormal bit patterns
    assert values.max() < 2
