"""Behaviour of a trained network on real HMI data, next to the published Enhance results.

There is no ground truth for real observations, so the checks are the ones the paper reports for its
HMI examples (Díaz Baso & Asensio Ramos 2018, Sects. 5-6): the quiet-Sun granulation contrast rises
from about 3.7-4 % to about 7 %; the mean umbral intensity drops by 3-7 %; the total unsigned flux of
the magnetogram, binned back to HMI pixels, is conserved; kilogauss fields grow by a factor of at most
about 1.3-1.4; nothing blows up, rings or flips sign in the umbra.

`behaviour` measures these numbers for one network on one image; `PUBLISHED` holds the ranges and
`checks` compares with them. The package's HMI sample cut-outs (`enhance.data.sample_path`) are the
default inputs.

How much an umbra darkens is not a constant of the method: it is the scattered light of the PSF's
wings that the deconvolution removes, and a small umbra receives proportionally more of it (the
target of a synthetic spot with a 2" umbral radius is 21 % darker than its HMI-like image, of one
with a 14" umbra 2.2 %; the umbra-size study of 0.3.0 in the validation history). `implied_target` gives what the
observation model itself says the target is at the scales the PSF keeps (converged Richardson-Lucy,
then the target's Airy blur), and `behaviour` reports the umbra change it implies for the same input
next to the network's, checked against `OBSERVATION_MODEL`.
"""

import astropy.units as u
import numpy as np

from ..checks import check_choice, check_image, check_integer
from ..constants import HMI_PIXEL_SCALE, KINDS
from ..data import sample_path
from ..inference.api import enhance
from ..io import read_fits
from ..observation.degrade import bin_area, convolve
from ..observation.psf import psf_kernel
from .baselines import richardson_lucy, upsample_x2
from .metrics import contrast, field_amplification, quiet_region, scale_region

__all__ = [
    "PUBLISHED",
    "OBSERVATION_MODEL",
    "UMBRA_THRESHOLD",
    "STRONG_FIELD",
    "IMPLIED_TARGET_ITERATIONS",
    "implied_target",
    "umbra_change",
    "behaviour",
    "checks",
]

#: Input I/Ic below which a pixel counts as umbra (HMI's 0.5" pixels; the umbra/penumbra boundary
#: lies near 0.5-0.6 I/Ic at this resolution).
UMBRA_THRESHOLD = 0.5
#: ``|B|`` (gauss) of the input above which a pixel counts as strong field (umbra, pores) for sign checks.
STRONG_FIELD = 1000.0

#: Published behaviour on HMI data, as ``check -> (low, high)``: the quiet-Sun contrast rises "from
#: about 3.7-4 % to about 7 %" (6-8 % taken as "about 7"); umbra -3 to -7 %; flux within 5 %; kG growth
#: at most ~1.3-1.4. The contrast gain (output / input) is reported beside, not checked.
PUBLISHED = {
    "intensity": {
        "output_contrast": (0.06, 0.08),
        "umbra_change": (-0.07, -0.03),
        "output_min_over_input_min": (0.5, 1.0),  # a darker umbra, no negative ringing
    },
    "blos": {
        "binned_unsigned_flux_ratio": (0.95, 1.05),
        "amplification_1kG": (1.0, 1.4),
        "strong_field_sign_flips": (0.0, 0.01),
        "peak_ratio": (1.0, 1.5),
    },
}

#: Agreement with the observation model on the same input, as ``check -> (low, high)``: the network's
#: umbra change minus the one `implied_target` gives. On held-out synthetic active regions that
#: implied change matches the true target's within 0.6 percentage points, hence a +-2 point band.
OBSERVATION_MODEL = {"intensity": {"umbra_change_excess": (-0.02, 0.02)}, "blos": {}}

#: Richardson-Lucy iterations of `implied_target`: enough for the umbral mean to converge (it moves by
#: less than 0.1 % between 100 and 400 iterations on the HMI sample).
IMPLIED_TARGET_ITERATIONS = 200


@u.quantity_input
def implied_target(image, *, n_iter: int = IMPLIED_TARGET_ITERATIONS, input_scale: u.arcsec = HMI_PIXEL_SCALE):
    """The network's target as the observation model implies it at the scales the HMI PSF keeps.

    Richardson-Lucy with the HMI PSF on the image's own grid, run to convergence, interpolated onto the
    x2 grid (bicubic) and blurred with the target's Airy pattern (28 cm): at small scales this is no
    estimate of the target at all (RL amplifies noise and interpolation adds no detail), but averages
    over areas of a few arcsec, such as the mean of an umbra, follow from the PSF alone.

    Parameters
    ----------
    image : (ny, nx) array_like
        Continuum intensity (I/Ic, positive), finite.
    n_iter : int
        Richardson-Lucy iterations; defaults to `IMPLIED_TARGET_ITERATIONS`.
    input_scale : `~astropy.units.Quantity`
        Pixel scale of ``image``; defaults to 0.504 arcsec.

    Returns
    -------
    `~numpy.ndarray`
        ``(2 ny, 2 nx)`` float64 image on the target's grid.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.allclose(implied_target(np.ones((32, 32)), n_iter=5), 1.0))
    True
    """
    data = check_image(image, allow_nonfinite=False).astype(np.float64)
    n_iter = check_integer(n_iter, name="n_iter", minimum=1)
    if data.min() <= 0:
        msg = f"implied_target needs a positive continuum image (I/Ic), got a minimum of {data.min()!r}"
        raise ValueError(msg)
    deconvolved = richardson_lucy(data, n_iter=n_iter, pixel_scale=input_scale, boundary="reflect")
    airy = psf_kernel(input_scale / 2, kind="airy")
    return convolve(upsample_x2(deconvolved), airy, boundary="reflect")


def umbra_change(image, output, *, threshold: float = UMBRA_THRESHOLD):
    """Relative change of the mean intensity over the umbra, ``mean(output) / mean(image) - 1``.

    Parameters
    ----------
    image : (ny, nx) array_like
        The input continuum (I/Ic); the umbra is where it is finite and below ``threshold``.
    output : (2 ny, 2 nx) array_like
        The image on the x2 grid; each input pixel's 2 x 2 block enters the mean.
    threshold : float
        Umbra threshold in I/Ic; defaults to `UMBRA_THRESHOLD`.

    Returns
    -------
    float or None
        None when no pixel lies below the threshold.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0.4, 1.0], [1.0, 1.0]])
    >>> round(umbra_change(image, np.kron(image, np.ones((2, 2))) * 0.9), 6)
    -0.1
    """
    image = np.asarray(image, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if output.shape != (2 * image.shape[0], 2 * image.shape[1]):
        msg = f"output must have twice the shape of image {image.shape}, got {output.shape}"
        raise ValueError(msg)
    umbra = np.isfinite(image) & (image < threshold)
    if not umbra.any():
        return None
    umbra_out = np.kron(umbra, np.ones((2, 2), dtype=bool))
    return float(np.nanmean(output[umbra_out]) / np.mean(image[umbra]) - 1)


def behaviour(network, kind: str, image=None) -> dict:
    """Measure a network's behaviour on an HMI image.

    Parameters
    ----------
    network : `~enhance.models.network.EnhanceNet` or `~enhance.runtime.export.OnnxNetwork`
        The trained network (continuum for ``kind='intensity'``, magnetogram for ``'blos'``).
    kind : {'intensity', 'blos'}
        The image's kind.
    image : (ny, nx) array_like or path, optional
        Continuum in I/Ic or line-of-sight field in gauss, at HMI's 0.504 arcsec/px. Defaults to the
        package's HMI sample cut-out of that kind.

    Returns
    -------
    dict
        For continuum: ``input_contrast`` and ``output_contrast`` (fractions, quietest 40 x 40 input
        pixels) and their ratio ``contrast_gain``; ``umbra_change`` (mean output / mean input over the
        pixels below `UMBRA_THRESHOLD`, minus 1); ``output_min_over_input_min``,
        ``output_max_over_input_max``.
        For magnetograms: ``binned_unsigned_flux_ratio`` (output binned 2x2 back to HMI pixels),
        ``unsigned_flux_ratio`` (at the output's pixels), ``amplification_1kG`` (median output / input
        where the input is 1 kG +- 100 G), ``peak_ratio`` (99.9th percentile of ``|B|``, output / input),
        ``strong_field_sign_flips`` (fraction of pixels with input ``|B|`` > `STRONG_FIELD` whose sign the
        output flips). All ratios use areas, so binned and unbinned fluxes compare directly.

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> net = EnhanceNet(depth=1, width=4).eval()
    >>> numbers = behaviour(net, "blos", np.full((24, 24), 1500.0))
    >>> sorted(numbers)[:2]
    ['amplification_1kG', 'binned_unsigned_flux_ratio']
    """
    check_choice(kind, KINDS, name="kind")
    if image is None:
        image = sample_path(kind)
    if not isinstance(image, np.ndarray):
        image = read_fits(image)[0]
    image = np.asarray(image, dtype=np.float64)
    output = np.asarray(enhance(image.astype(np.float32), kind, network=network), dtype=np.float64)
    finite = np.isfinite(image)
    if kind == "intensity":
        region = quiet_region(image, size=40)  # quiet-Sun level estimated, as enhance() and compare() do
        change = umbra_change(image, output)
        expected = None
        if change is not None and finite.all() and image.min() > 0:
            expected = umbra_change(image, implied_target(image))
        before, after = contrast(image, region=region), contrast(output, region=scale_region(region, 2))
        result = {
            "input_contrast": before,
            "output_contrast": after,
            "contrast_gain": after / before,
            "quiet_region_input_pixels": [[region[0].start, region[0].stop], [region[1].start, region[1].stop]],
            "umbra_pixels": int((finite & (image < UMBRA_THRESHOLD)).sum()),
            "umbra_change": change,
            "umbra_change_expected": expected,
            "umbra_change_excess": None if expected is None else change - expected,
            "output_min_over_input_min": float(np.nanmin(output) / np.nanmin(image)),
            "output_max_over_input_max": float(np.nanmax(output) / np.nanmax(image)),
        }
        return result
    unsigned_in = np.nansum(np.abs(image))
    strong = finite & (np.abs(image) > STRONG_FIELD)
    strong_out = np.kron(strong, np.ones((2, 2), dtype=bool))
    sign_in = np.kron(np.sign(image), np.ones((2, 2)))
    return {
        "binned_unsigned_flux_ratio": float(np.nansum(np.abs(bin_area(output, 2))) / unsigned_in),
        "unsigned_flux_ratio": float(np.nansum(np.abs(output)) / 4 / unsigned_in),
        "amplification_1kG": field_amplification(image, output, level=1000.0, width=100.0),
        "peak_ratio": float(np.nanpercentile(np.abs(output), 99.9) / np.nanpercentile(np.abs(image), 99.9)),
        "strong_field_pixels": int(strong.sum()),
        "strong_field_sign_flips": float(np.mean(np.sign(output[strong_out]) != sign_in[strong_out]))
        if strong.any()
        else None,
    }


def checks(numbers: dict, kind: str) -> dict:
    """Compare `behaviour`'s numbers with `PUBLISHED` and `OBSERVATION_MODEL`.

    A number that could not be measured (None: no umbra, no kG pixels) is reported as not passed.

    Parameters
    ----------
    numbers : dict
        From `behaviour` (fractions and ratios, dimensionless).
    kind : {'intensity', 'blos'}
        What the numbers describe.

    Returns
    -------
    dict
        ``{name: (value, low, high, passed)}`` for every published range of ``kind``.

    Examples
    --------
    >>> result = checks({"output_contrast": 0.07}, "intensity")
    >>> result["output_contrast"]
    (0.07, 0.06, 0.08, True)
    >>> result["umbra_change"][3]  # not measured: not passed
    False
    """
    check_choice(kind, KINDS, name="kind")
    out = {}
    for name, (low, high) in {**PUBLISHED[kind], **OBSERVATION_MODEL[kind]}.items():
        value = numbers.get(name)
        out[name] = (value, low, high, value is not None and low <= value <= high)
    return out
