"""Classical baselines for Enhance: Richardson-Lucy deconvolution and x2 interpolation.

Pure array functions. Both baselines work on the network's output grid: output pixel ``k`` (0-based)
covers input pixels ``[k/2 - 0.5, (k+1)/2 - 0.5)``, so its centre lies at input coordinate
``(k + 0.5)/2 - 0.5`` and each 2x2 block of output pixels covers exactly one input pixel (the rule of
`~enhance.io.upscale_header` and of sunpy's ``resample``).
"""

import dataclasses
import functools

import astropy.units as u
import numpy as np
import scipy.fft
from scipy import ndimage

from ..checks import check_choice, check_image, check_integer, check_positive
from ..constants import HMI_PIXEL_SCALE
from ..grid import on_output_grid
from ..observation.fourier import padded_shape, transfer_function
from ..observation.psf import DEFAULT_RADIUS, ENHANCE_2018, psf_kernel
from .spectra import white_noise_level

__all__ = [
    "INTERPOLATION_ORDERS",
    "upsample_x2",
    "bicubic_x2",
    "richardson_lucy",
    "rl_super_resolve",
    "ForwardModel",
    "rl_target",
    "rl_target_best",
    "RL_TARGET_ITERATIONS",
    "wiener_target",
]

#: Spline order of each interpolation method of `upsample_x2`.
INTERPOLATION_ORDERS = {"nearest": 0, "bilinear": 1, "bicubic": 3}


def _check_n_iter(n_iter):
    return check_integer(n_iter, name="n_iter", minimum=0)


def upsample_x2(image, *, method: str = "bicubic") -> np.ndarray:
    """Interpolate an image onto the x2 grid of the network's output.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, finite, in any unit; the result is in the same unit.
    method : {'bicubic', 'bilinear', 'nearest'}
        Cubic spline (scipy's order-3 interpolating B-spline), linear, or pixel replication.

    Returns
    -------
    `~numpy.ndarray`
        Shape ``(2 ny, 2 nx)``; float32 for float32 input, else float64.

    Notes
    -----
    Output pixel ``k`` is the interpolant at input coordinate :math:`(k + 1/2)/2 - 1/2` along each axis, so
    every 2x2 block of output pixels covers one input pixel, as for Enhance and
    `~enhance.io.upscale_header`; there is no half-pixel shift. Beyond the edges the image is mirrored
    about the outer pixel edge (scipy's ``mode='reflect'``).

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.arange(8.0), (8, 1))
    >>> upsample_x2(ramp, method="bilinear")[0, 4:8]  # centres at input x = 1.75, 2.25, 2.75, 3.25
    array([1.75, 2.25, 2.75, 3.25])
    """
    check_choice(method, tuple(INTERPOLATION_ORDERS), name="method")
    data = check_image(image, allow_nonfinite=False)
    if method == "nearest":
        return on_output_grid(data)
    # grid_mode: the zoom maps pixel edges onto pixel edges, so output centre k samples input (k + 0.5)/2 - 0.5.
    out = ndimage.zoom(data, 2, order=INTERPOLATION_ORDERS[method], mode="reflect", grid_mode=True)
    return out.astype(data.dtype, copy=False)


def bicubic_x2(image) -> np.ndarray:
    """Bicubic x2 interpolation on the network's pixel grid: ``upsample_x2(image, method='bicubic')``.

    The plain-interpolation baseline: it adds pixels but no resolution.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, any unit; NaN pixels stay NaN at their 2x2 output pixels.

    Returns
    -------
    numpy.ndarray
        The image on the x2 grid, shape ``(2 ny, 2 nx)``, in the unit of ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> bicubic_x2(np.ones((3, 4))).shape
    (6, 8)
    """
    return upsample_x2(image, method="bicubic")


def _unit_psf(psf, pixel_scale):
    """The PSF as an odd-sized float64 kernel of unit sum; None samples HMI's at ``pixel_scale``."""
    if psf is None:
        psf = psf_kernel(pixel_scale, kind="hmi", radius=DEFAULT_RADIUS)
    kernel = check_image(psf, name="psf", allow_nonfinite=False).astype(np.float64)
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        msg = f"psf must have odd sizes so that it has a centre pixel, got shape {kernel.shape}"
        raise ValueError(msg)
    total = kernel.sum()
    if not total > 0:
        msg = f"psf must have a positive sum, got {total}"
        raise ValueError(msg)
    return kernel / total


def _pad_for(data, kernel, boundary):
    """The grid RL iterates on (``data`` padded for ``kernel``, or itself when periodic) and the slices
    of ``data`` in it."""
    ny, nx = data.shape
    if boundary == "wrap":
        return data, (slice(0, ny), slice(0, nx))
    half = (kernel.shape[0] // 2, kernel.shape[1] // 2)
    shape = padded_shape(data.shape, half)
    top, left = (shape[0] - ny) // 2, (shape[1] - nx) // 2
    # Half-sample mirror: the padded grid continues the image symmetrically about its outer edges
    # (np.pad's 'symmetric' repeats with period 2n, so any padding width works).
    work = np.pad(data, ((top, shape[0] - ny - top), (left, shape[1] - nx - left)), mode="symmetric")
    return work, (slice(top, top + ny), slice(left, left + nx))


def _shift_signed(data, work, offset):
    """Shift signed data (magnetograms) by ``offset`` (default ``2 max|d|``) so that RL sees a positive
    image; returns the shifted data and grid, the offset, and whether the data are non-negative."""
    dtype = data.dtype
    # Round-off of an earlier FFT convolution can leave non-negative data a hair below zero: such data
    # count as non-negative (and the hair is clipped), not as a signed field.
    scale = float(np.max(np.abs(data)))
    hair = 1e-10 * scale
    if offset is None:
        offset = 0.0 if data.min() >= -hair else 2.0 * scale
    offset = float(offset)
    if not np.isfinite(offset):
        msg = f"offset must be a finite number, got {offset!r}"
        raise ValueError(msg)
    if offset != 0:
        data = data + dtype.type(offset)
        work = work + dtype.type(offset)
    nonnegative = bool(data.min() >= -hair)
    if nonnegative:
        work = np.maximum(work, 0)
    return data, work, offset, nonnegative


@u.quantity_input
def richardson_lucy(
    image,
    psf=None,
    *,
    n_iter: int = 20,
    pixel_scale: u.arcsec = HMI_PIXEL_SCALE / 2,
    damped: bool = False,
    threshold: float = 10.0,
    tol: float | None = None,
    noise: float | None = None,
    offset: float | None = None,
    boundary: str = "reflect",
    return_info: bool = False,
    callback=None,
):
    """Richardson-Lucy deconvolution, with the damped variant of Díaz Baso & Asensio Ramos (2018).

    Parameters
    ----------
    image : (ny, nx) array_like
        The blurred image, finite: continuum (any units) or a signed magnetogram (gauss).
    psf : (ky, kx) array_like, optional
        The point spread function on the image's grid, odd-sized and centred on its middle pixel; it is
        normalised to unit sum. None samples the HMI PSF (`~enhance.observation.psf.psf_kernel`, ``kind='hmi'``,
        `~enhance.observation.psf.DEFAULT_RADIUS` half-width) at ``pixel_scale``.
    n_iter : int
        Number of iterations, or the maximum when ``tol`` or ``noise`` stop earlier; defaults to 20, the
        paper's value. 0 returns the image.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel of ``image``, used only when ``psf`` is None; defaults to 0.252 arcsec
        (the x2 grid of HMI, where the paper runs RL).
    damped : bool
        After each iteration, pixels whose reconvolved value departs from the data by more than
        ``threshold`` times the median absolute departure are reset to the data value (the paper's
        ``damped=True``). It stops the runaway of isolated pixels, most of all in magnetograms.
    threshold : float
        Damping threshold in units of the median absolute residual; defaults to 10.
    tol : float, optional
        Stop once an iteration changes the estimate by less than this fraction of its RMS,
        :math:`\\|x_{k+1} - x_k\\|_2 / \\|x_k\\|_2 < \\mathrm{tol}`.
    noise : float, optional
        Standard deviation of the noise per pixel of ``image``, in its units. Stop as soon as the
        reconvolved estimate fits the data to the noise, :math:`\\mathrm{RMS}(P * x_k - d) \\le`
        ``noise`` (Morozov's discrepancy principle); fitting further only fits noise.
    offset : float, optional
        Constant added to the data before the iteration and subtracted after it, in data units. None
        (default) adds nothing to non-negative data and ``2 max|d|`` to signed data (magnetograms);
        0 runs the paper's plain multiplicative update on signed data. See Notes.
    boundary : {'reflect', 'wrap'}
        'reflect' mirrors the image at its edges (cut-outs), 'wrap' treats it as periodic (simulation
        boxes, generated scenes).
    return_info : bool
        Also return a dict with ``n_iter`` (iterations done), ``stopped`` ('n_iter', 'tol', 'noise' or 'callback'),
        ``offset`` (the offset used), ``residual_rms`` (RMS of :math:`P * x_k - d` before each iteration and
        after the last) and
        ``damped_pixels`` (pixels reset at each iteration).
    callback : callable, optional
        Called as ``callback(k, estimate)`` after iteration ``k`` (1, 2, ...) with the current estimate
        in the units and shape of ``image`` (a new array). Returning True stops the iteration
        (``stopped='callback'``). Lets one run visit many iteration counts, e.g. to find the best one.

    Returns
    -------
    estimate : `~numpy.ndarray`
        The deconvolved image, same shape as ``image``; float32 for float32 input, else float64.
    info : dict
        Only with ``return_info``.

    Notes
    -----
    The update is the maximum-likelihood iteration for Poisson data,

    .. math:: x_{k+1} = x_k \\cdot \\left[ P^\\mathsf{T} * \\frac{d}{P * x_k} \\right],

    computed with FFTs on a padded grid (two real FFT pairs per iteration; three when damped). The start
    is :math:`x_0 = 1`; with a PSF of unit sum any constant start gives the same first iterate,
    :math:`x_1 = P^\\mathsf{T} * d`, so this equals the paper's start at the image mean (which fails for
    zero-mean magnetograms) and scikit-image's 0.5. Where :math:`P * x_k = 0` the ratio is set to 0.

    With non-negative data the iterate stays non-negative (FFT round-off below zero is clipped) and,
    with ``boundary='wrap'``, keeps the total flux of the data exactly. Unlike scikit-image's
    ``richardson_lucy`` nothing is clipped to [-1, 1], so I/Ic and gauss come through unchanged.

    Signed data (magnetograms). RL is a Poisson maximum-likelihood method for non-negative data. The
    paper's code (``offset=0``) still iterates the ratio on the signed field; it is well defined where
    the reconvolved field keeps the data's sign, but at polarity inversion lines :math:`P * x_k` passes
    through zero and the ratio, then the estimate, run away: on the HMI active-region cut-out of this
    project the field reaches :math:`10^5`-:math:`10^6` G within 5-20 iterations (``damped=True``
    curbs it). By default the data are therefore shifted by :math:`c = 2 \\max|d|`, deconvolved as a
    positive image and shifted back: the PSF has unit sum, so :math:`P * (x + c) = P * x + c` and the
    model is unchanged, while the non-negativity of RL only bounds the estimate below by :math:`-c`
    (room for the polarities to double). As :math:`c` grows the update tends to the linear Landweber
    iteration :math:`x_{k+1} = x_k + P^\\mathsf{T} * (d - P * x_k)`, which treats both polarities
    alike. On the HMI active-region magnetogram, 20 iterations with :math:`c` from :math:`\\max|d|` to
    :math:`20 \\max|d|` differ by under 1 % of the mean :math:`|B|` (mean absolute difference).

    References
    ----------
    Richardson, W. H. 1972, J. Opt. Soc. Am., 62, 55. Lucy, L. B. 1974, AJ, 79, 745.
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5, Sect. 4.5 (``rlucy``).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).uniform(1, 2, (16, 16))
    >>> bool(np.allclose(richardson_lucy(image, np.ones((1, 1)), n_iter=5), image))  # a delta PSF
    True
    """
    n_iter = _check_n_iter(n_iter)
    check_choice(boundary, ("reflect", "wrap"), name="boundary")
    threshold = check_positive(threshold, name="threshold")
    if tol is not None:
        tol = check_positive(tol, name="tol")
    if noise is not None:
        noise = check_positive(noise, name="noise")
    data = check_image(image, allow_nonfinite=False)
    dtype = data.dtype
    kernel = _unit_psf(psf, pixel_scale)
    work, inside = _pad_for(data, kernel, boundary)
    grid = work.shape
    otf = transfer_function(kernel, grid, dtype)
    otf_adjoint = np.conj(otf)

    def blur(x, transfer):
        return scipy.fft.irfft2(scipy.fft.rfft2(x) * transfer, s=grid).astype(dtype, copy=False)

    data, work, offset, nonnegative = _shift_signed(data, work, offset)
    estimate = np.ones(grid, dtype=dtype)
    ratio = np.zeros(grid, dtype=dtype)
    residual_rms, damped_pixels = [], []
    stopped = "n_iter"
    done = 0
    reconvolved = blur(estimate, otf)
    for _ in range(n_iter):
        residual_rms.append(float(np.sqrt(np.mean((reconvolved[inside] - data) ** 2))))
        if noise is not None and done > 0 and residual_rms[-1] <= noise:
            stopped = "noise"
            break
        ratio.fill(0)
        np.divide(work, reconvolved, out=ratio, where=reconvolved != 0)
        correction = blur(ratio, otf_adjoint)
        if nonnegative:
            np.maximum(correction, 0, out=correction)
        previous = estimate
        estimate = estimate * correction
        reconvolved = blur(estimate, otf)
        if damped:
            departure = np.abs(reconvolved - work)
            runaway = departure > threshold * np.median(departure)
            damped_pixels.append(int(np.count_nonzero(runaway[inside])))
            if runaway.any():
                estimate[runaway] = work[runaway]
                reconvolved = blur(estimate, otf)
        done += 1
        if callback is not None:
            current = estimate[inside] - dtype.type(offset) if offset != 0 else estimate[inside].copy()
            if callback(done, current):
                stopped = "callback"
                break
        if tol is not None:
            change = np.sqrt(np.sum((estimate - previous) ** 2) / max(np.sum(previous**2), np.finfo(dtype).tiny))
            if change < tol:
                stopped = "tol"
                break
    if n_iter == 0:
        estimate = work.copy()
    result = np.ascontiguousarray(estimate[inside])
    if offset != 0:
        result -= dtype.type(offset)
    if not return_info:
        return result
    if stopped != "noise":
        residual_rms.append(float(np.sqrt(np.mean((reconvolved[inside] - data) ** 2))))
    info = {"n_iter": done, "stopped": stopped, "offset": offset, "residual_rms": residual_rms,
            "damped_pixels": damped_pixels}  # fmt: skip
    return result, info


@u.quantity_input
def rl_super_resolve(
    image,
    *,
    input_scale: u.arcsec = HMI_PIXEL_SCALE,
    method: str = "bicubic",
    psf=None,
    **options,
):
    """Richardson-Lucy on the x2 grid: the paper's classical counterpart of Enhance.

    The image is interpolated onto the network's output grid (`upsample_x2`) and deconvolved there
    with the HMI PSF sampled at the output scale, ``input_scale / 2``.

    Parameters
    ----------
    image : (ny, nx) array_like
        HMI continuum image or magnetogram, finite, at ``input_scale`` (any unit; the result is in the
        same unit).
    input_scale : `~astropy.units.Quantity`
        Pixel scale of ``image``; defaults to 0.504 arcsec.
    method : {'bicubic', 'bilinear', 'nearest'}
        Interpolation onto the x2 grid; defaults to 'bicubic' (the paper used a bilinear resampling).
    psf : (ky, kx) array_like, optional
        PSF sampled on the x2 grid (unit sum, pixels of ``input_scale / 2``); None uses the HMI PSF there.
    **options
        The iteration's options, as for `richardson_lucy`: ``n_iter`` (default 20, as in the paper),
        ``damped``, ``threshold``, ``tol``, ``noise`` (per pixel of the interpolated image), ``offset``,
        ``boundary``, ``return_info``, ``callback``.

    Returns
    -------
    estimate : `~numpy.ndarray`
        Shape ``(2 ny, 2 nx)``, in the units of ``image``.
    info : dict
        Only with ``return_info`` (see `richardson_lucy`).

    References
    ----------
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5, Sect. 4.4-4.5.

    Examples
    --------
    >>> import numpy as np
    >>> rl_super_resolve(np.ones((20, 20)), n_iter=3).shape
    (40, 40)
    """
    scale = check_positive(float(input_scale.to_value(u.arcsec)), name="input_scale")
    fine = upsample_x2(image, method=method)
    if "pixel_scale" in options:
        msg = "rl_super_resolve takes input_scale (the HMI image's pixel scale), not pixel_scale"
        raise TypeError(msg)
    return richardson_lucy(fine, psf, pixel_scale=scale / 2 * u.arcsec, **options)


# ----------------------------------------------------------------------------------------------------------
# Baselines with the exact forward model: estimate on the x2 grid, HMI PSF there, then 2x2 area binning.
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ForwardModel:
    r"""The observation model on the network's x2 grid, for the classical baselines `rl_target` and `wiener_target`.

    .. math:: d = B_2\,[P_\mathrm{HMI} * x] + n, \qquad t = P_\mathrm{Airy} * x,

    with :math:`x` the scene on the x2 grid (``input_scale / 2`` per pixel), :math:`B_2` the mean over each
    2x2 block (output pixels ``2i..2i+1`` cover input pixel ``i``, as in `~enhance.observation.degrade.degrade`),
    :math:`d` the HMI image and :math:`t` the network's target.

    Parameters
    ----------
    input_scale : `~astropy.units.Quantity` or float
        Pixel scale of the HMI image, arcsec; defaults to 0.504.
    hmi_params : dict, optional
        ``w``, ``W``, ``epsilon``, ``k`` of the HMI PSF (`~enhance.observation.psf.hmi_psf`); defaults to
        `~enhance.observation.psf.ENHANCE_2018`, the PSF Enhance was trained for.
    radius : `~astropy.units.Quantity` or float
        Half-width of both kernels, arcsec; defaults to `~enhance.observation.psf.DEFAULT_RADIUS` (4.37).
    target_diameter : `~astropy.units.Quantity` or float
        Aperture whose Airy pattern blurs the target, m; defaults to 0.28.
    oversample : int
        Samples per pixel side of the kernels (`~enhance.observation.psf.psf_kernel`): 1 (default) samples
        the PSFs at the pixel centres, which is the discrete form of a continuous convolution of the scene
        binned to the x2 grid; larger odd values integrate them over the pixel (one more pixel box).
    boundary : {'reflect', 'wrap'}
        'reflect' mirrors the image at its edges (cut-outs), 'wrap' treats it as periodic (simulation boxes).

    Examples
    --------
    >>> model = ForwardModel()
    >>> model.output_scale, model.hmi_kernel().shape
    (0.252, (35, 35))
    """

    input_scale: float = float(HMI_PIXEL_SCALE.to_value(u.arcsec))
    hmi_params: tuple = ()
    radius: float = float(DEFAULT_RADIUS.to_value(u.arcsec))
    target_diameter: float = 0.28
    oversample: int = 1
    boundary: str = "reflect"

    def __post_init__(self):
        def plain(value, unit):
            return float(value.to_value(unit)) if isinstance(value, u.Quantity) else float(value)

        object.__setattr__(self, "input_scale", check_positive(plain(self.input_scale, u.arcsec), name="input_scale"))
        object.__setattr__(self, "radius", check_positive(plain(self.radius, u.arcsec), name="radius"))
        diameter = check_positive(plain(self.target_diameter, u.m), name="target_diameter")
        object.__setattr__(self, "target_diameter", diameter)
        params = dict(self.hmi_params) if self.hmi_params else dict(ENHANCE_2018)
        object.__setattr__(self, "hmi_params", tuple(sorted(params.items())))
        check_integer(self.oversample, name="oversample", minimum=1)
        check_choice(self.boundary, ("reflect", "wrap"), name="boundary")

    @property
    def output_scale(self) -> float:
        """Pixel scale of the x2 grid, arcsec.

        Examples
        --------
        >>> ForwardModel(input_scale=0.504).output_scale
        0.252
        """
        return self.input_scale / 2

    def hmi_kernel(self) -> np.ndarray:
        """The HMI PSF on the x2 grid (unit sum, odd-sized, centred).

        Returns
        -------
        numpy.ndarray
            The kernel, ``(2 r + 1, 2 r + 1)`` pixels of `output_scale`.

        Examples
        --------
        >>> kernel = ForwardModel().hmi_kernel()
        >>> round(float(kernel.sum()), 6)
        1.0
        """
        return _model_kernel(self, "hmi")

    def target_kernel(self) -> np.ndarray:
        """The target's Airy pattern on the x2 grid (unit sum, odd-sized, centred).

        Returns
        -------
        numpy.ndarray
            The kernel, ``(2 r + 1, 2 r + 1)`` pixels of `output_scale`.

        Examples
        --------
        >>> kernel = ForwardModel().target_kernel()
        >>> kernel.shape[0] % 2, round(float(kernel.sum()), 6)
        (1, 1.0)
        """
        return _model_kernel(self, "airy")


@functools.lru_cache(maxsize=16)
def _model_kernel(model: ForwardModel, kind: str) -> np.ndarray:
    scale = model.output_scale * u.arcsec
    radius = model.radius * u.arcsec
    if kind == "hmi":
        kernel = psf_kernel(scale, kind="hmi", radius=radius, oversample=model.oversample, **dict(model.hmi_params))
    else:
        kernel = psf_kernel(scale, kind="airy", radius=radius, oversample=model.oversample,
                            diameter=model.target_diameter * u.m)  # fmt: skip
    kernel.flags.writeable = False
    return kernel


class _Grid:
    """The image on a periodic working grid: padded by mirroring for 'reflect', as it is for 'wrap'."""

    def __init__(self, data, model: ForwardModel):
        ny, nx = data.shape
        self.shape = (ny, nx)
        if model.boundary == "wrap":
            self.top = self.left = 0
            self.coarse = data
        else:
            # Enough mirrored input pixels for the PSF's half-width on the x2 grid, the same on both sides (the
            # result then commutes with flips and rotations), and a fast FFT length.
            half = model.hmi_kernel().shape[0] // 2
            self.top, self.left = (_symmetric_margin(n, half // 2 + 2) for n in (ny, nx))
            pad = ((self.top, self.top), (self.left, self.left))
            self.coarse = np.pad(data, pad, mode="symmetric")
        self.fine_shape = (2 * self.coarse.shape[0], 2 * self.coarse.shape[1])
        self.inside = (slice(self.top, self.top + ny), slice(self.left, self.left + nx))
        self.fine_inside = (slice(2 * self.top, 2 * (self.top + ny)), slice(2 * self.left, 2 * (self.left + nx)))
        self.otf = transfer_function(model.hmi_kernel(), self.fine_shape, np.float64)
        self.target_otf = transfer_function(model.target_kernel(), self.fine_shape, np.float64)

    def convolve(self, x, otf):
        return scipy.fft.irfft2(scipy.fft.rfft2(x) * otf, s=self.fine_shape)

    def forward(self, x):
        """:math:`B_2 [P * x]` on the working grid."""
        blurred = self.convolve(x, self.otf)
        return blurred.reshape(blurred.shape[0] // 2, 2, blurred.shape[1] // 2, 2).mean(axis=(1, 3))

    def back_project(self, ratio):
        """:math:`4 A^\\mathsf{T} r = P^\\mathsf{T} * \\mathrm{rep}_2(r)`: the adjoint, normalised to map 1 to 1."""
        return self.convolve(on_output_grid(ratio), np.conj(self.otf))

    def target(self, x):
        """The target's blur of an estimate, cut to the image: an ``(2 ny, 2 nx)`` array."""
        return np.ascontiguousarray(self.convolve(x, self.target_otf)[self.fine_inside])


def _symmetric_margin(n, least):
    """The smallest margin >= ``least`` for which ``n + 2 margin`` is a fast FFT length."""
    margin = least
    while scipy.fft.next_fast_len(n + 2 * margin) != n + 2 * margin:
        margin += 1
    return margin


def _noise_sigma(data, noise, model):
    """The noise level: given, or the white noise of the image's outer 40 % of frequencies (an upper bound)."""
    if noise is not None:
        return check_positive(noise, name="noise")
    return white_noise_level(data, model.input_scale * u.arcsec)


def _signed_offset(data, offset):
    if offset is None:
        scale = float(np.max(np.abs(data)))
        return 0.0 if data.min() >= -1e-10 * scale else 2.0 * scale
    offset = float(offset)
    if not np.isfinite(offset):
        msg = f"offset must be a finite number, got {offset!r}"
        raise ValueError(msg)
    return offset


def _rl_iterates(data, model, n_iter, offset):
    """Richardson-Lucy with the exact forward model: yields ``(k, grid, estimate, residual_rms)`` for k = 0, 1, ...

    ``estimate`` lives on the padded x2 grid and includes the offset; ``residual_rms`` is the RMS of
    :math:`A x_k - d` over the image (in data units) for the estimate yielded with it.
    """
    grid = _Grid(data + offset, model)
    work = np.maximum(grid.coarse, 0.0)
    estimate = np.full(grid.fine_shape, float(work.mean()) if work.mean() > 0 else 1.0)
    ratio = np.zeros_like(work)
    for k in range(n_iter + 1):
        reconvolved = grid.forward(estimate)
        residual = float(np.sqrt(np.mean((reconvolved[grid.inside] - grid.coarse[grid.inside]) ** 2)))
        yield k, grid, estimate, residual
        if k == n_iter:
            return
        ratio.fill(0.0)
        np.divide(work, reconvolved, out=ratio, where=reconvolved > 0)
        estimate = estimate * np.maximum(grid.back_project(ratio), 0.0)


def rl_target(
    image,
    model: ForwardModel | None = None,
    *,
    n_iter: int = 1000,
    noise: float | None = None,
    stop: str = "discrepancy",
    offset: float | None = None,
    return_info: bool = False,
):
    """Richardson-Lucy on the x2 grid with the exact forward model, then the target's blur ("RL+target").

    The classical counterpart of what the network is trained to do: estimate the scene on the x2 grid
    from the HMI image through the forward model of `ForwardModel` (HMI PSF, then 2x2 area binning), and
    show it as the 28 cm telescope of the target would see it.

    Parameters
    ----------
    image : (ny, nx) array_like
        HMI continuum image (any units) or magnetogram, finite.
    model : `ForwardModel`, optional
        The forward model; defaults to ``ForwardModel()`` (Enhance's HMI PSF, 28 cm target, mirrored edges).
    n_iter : int
        Iterations; the maximum with ``stop='discrepancy'``. Defaults to 1000.
    noise : float, optional
        Standard deviation of the noise per input pixel, in the units of ``image``. None estimates it
        with `~enhance.analysis.metrics.white_noise_level` (an upper bound on HMI data: the outer
        frequencies still hold a little signal, so this stops a little early).
    stop : {'discrepancy', 'n_iter'}
        'discrepancy' (default) stops at the first iteration whose residual RMS in the data domain,
        :math:`\\mathrm{RMS}(A x_k - d)`, is at most ``noise`` (Morozov's discrepancy principle: fitting
        further fits the noise); 'n_iter' runs all iterations. For the best iteration against a known
        truth (validation only) see `rl_target_best`.
    offset : float, optional
        Constant added before and removed after the iteration; None adds ``2 max|d|`` to signed data
        (magnetograms) and nothing to non-negative data (see `richardson_lucy`). The forward model maps a
        constant onto itself, so the offset leaves the model unchanged.
    return_info : bool
        Also return ``{"n_iter", "stopped", "noise", "offset", "residual_rms"}`` (the residual RMS of
        every iterate, from the start).

    Returns
    -------
    target : `~numpy.ndarray`
        float64 ``(2 ny, 2 nx)`` estimate of the target, in the units of ``image``.
    info : dict
        Only with ``return_info``.

    Notes
    -----
    With :math:`A = B_2 P` the update is

    .. math:: x_{k+1} = x_k \\cdot \\frac{A^\\mathsf{T}(d / A x_k)}{A^\\mathsf{T} 1}
              = x_k \\cdot \\left[P^\\mathsf{T} * \\mathrm{rep}_2(d / A x_k)\\right],

    where :math:`\\mathrm{rep}_2` repeats each input pixel over its 2x2 block (:math:`A^\\mathsf{T}` is the
    repeat divided by 4, and :math:`A^\\mathsf{T} 1 = 1/4`). The start is the data mean, constant. The sum
    of the estimate is 4 times that of the data at every iteration (periodic boundary), and a constant image
    is a fixed point. The result is :math:`P_\\mathrm{Airy} * x_k`.

    Examples
    --------
    >>> import numpy as np
    >>> out = rl_target(np.full((16, 16), 2.0), n_iter=5, stop="n_iter")
    >>> out.shape, bool(np.allclose(out, 2.0))
    ((32, 32), True)
    """
    model = ForwardModel() if model is None else model
    n_iter = _check_n_iter(n_iter)
    check_choice(stop, ("discrepancy", "n_iter"), name="stop")
    data = check_image(image, allow_nonfinite=False).astype(np.float64)
    sigma = _noise_sigma(data, noise, model) if stop == "discrepancy" else None
    offset = _signed_offset(data, offset)
    residuals = []
    stopped = "n_iter"
    for k, grid, estimate, residual in _rl_iterates(data, model, n_iter, offset):  # noqa: B007 (used after)
        residuals.append(residual)
        if sigma is not None and k > 0 and residual <= sigma:
            stopped = "discrepancy"
            break
    result = grid.target(estimate) - offset
    if not return_info:
        return result
    return result, {"n_iter": k, "stopped": stopped, "noise": sigma, "offset": offset, "residual_rms": residuals}


def rl_target_best(image, truth, model: ForwardModel | None = None, *, iterations=None, score=None, offset=None):
    """RL+target at its best iteration against a known target: for validation only (it needs the truth).

    Parameters
    ----------
    image : (ny, nx) array_like
        The degraded image, HMI's pixel scale, any unit.
    truth : (2 ny, 2 nx) array_like
        The true target on the x2 grid, in the unit of ``image``.
    model : `ForwardModel`, optional
        As for `rl_target`.
    iterations : sequence of int, optional
        Iteration counts scored, increasing; defaults to `RL_TARGET_ITERATIONS`. The run stops once the
        score has fallen at three successive counts (past its peak).
    score : callable, optional
        ``score(estimate, truth) -> float``, higher is better; defaults to minus the RMS difference.
    offset : float, optional
        As for `rl_target`.

    Returns
    -------
    estimate : `~numpy.ndarray`
        The best RL+target estimate.
    n_iter : int
        Its iteration count.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((12, 12), 1.0)
    >>> estimate, n_iter = rl_target_best(image, np.ones((24, 24)), iterations=(1, 2, 3))
    >>> n_iter, bool(np.allclose(estimate, 1.0))
    (1, True)
    """
    model = ForwardModel() if model is None else model
    data = check_image(image, allow_nonfinite=False).astype(np.float64)
    truth = check_image(truth, name="truth", allow_nonfinite=False).astype(np.float64)
    if truth.shape != (2 * data.shape[0], 2 * data.shape[1]):
        msg = f"truth must have twice the shape of image {data.shape}, got {truth.shape}"
        raise ValueError(msg)
    scored = sorted({_check_n_iter(k) for k in (RL_TARGET_ITERATIONS if iterations is None else iterations)})
    if score is None:

        def score(estimate, reference):
            return -float(np.sqrt(np.mean((estimate - reference) ** 2)))

    offset = _signed_offset(data, offset)
    best, best_k, falls = -np.inf, 0, 0
    best_image = None
    wanted = set(scored)
    for k, grid, estimate, _ in _rl_iterates(data, model, scored[-1], offset):
        if k not in wanted:
            continue
        current = grid.target(estimate) - offset
        value = score(current, truth)
        if value > best:
            best, best_k, best_image, falls = value, k, current, 0
        else:
            falls += 1
            if falls >= 3:
                break
    return best_image, best_k


#: Iteration counts `rl_target_best` scores.
RL_TARGET_ITERATIONS = (1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200, 300, 500, 800, 1200, 2000, 3000, 5000)


def _alias_quadrants(array, n, m):
    """The four aliases of every coarse frequency: (4, n, m) views of a (2n, 2m) spectrum."""
    return np.stack([array[:n, :m], array[n:, :m], array[:n, m:], array[n:, m:]])


def _prior_power(fine_shape, scale, slope):
    """A power-law prior spectrum :math:`f^{-\\mathrm{slope}}` on the x2 grid (the lowest nonzero frequency below)."""
    fy = np.fft.fftfreq(fine_shape[0], d=scale)
    fx = np.fft.fftfreq(fine_shape[1], d=scale)
    f = np.hypot(fy[:, None], fx[None, :])
    floor = min(abs(fy[1]), abs(fx[1]))
    return np.maximum(f, floor) ** (-float(slope))


def _fit_prior(coarse_power, gains, prior_unit, sigma2, slopes):
    """Fit the amplitude and slope of the power-law prior to the data's spectrum, in rings, by least squares in log."""
    n, m = coarse_power.shape
    fy = np.fft.fftfreq(n)
    fx = np.fft.fftfreq(m)
    radius = np.hypot(fy[:, None], fx[None, :])
    rings = np.minimum((radius / 0.5 * 24).astype(int), 24)
    best = (np.inf, None, None)
    observed = np.bincount(rings.ravel(), coarse_power.ravel(), 25)
    counts = np.maximum(np.bincount(rings.ravel(), minlength=25), 1)
    observed = observed / counts
    for slope in slopes:
        prior = prior_unit**slope
        expected = np.bincount(rings.ravel(), (_alias_quadrants(prior, n, m) * gains).sum(axis=0).ravel() / 4, 25)
        expected = expected / counts
        use = (observed > 3 * sigma2) & (np.arange(25) > 0) & (expected > 0)
        if use.sum() < 3:
            continue
        logs = np.log(observed[use] - sigma2) - np.log(expected[use])
        amplitude = float(np.mean(logs))
        misfit = float(np.sum((logs - amplitude) ** 2))
        if misfit < best[0]:
            best = (misfit, np.exp(amplitude), slope)
    return best[1], best[2]


def wiener_target(
    image,
    model: ForwardModel | None = None,
    *,
    noise: float | None = None,
    slope: float | None = None,
    return_info: bool = False,
):
    """Wiener (Tikhonov) deconvolution with the exact forward model on the x2 grid, then the target's blur.

    Parameters
    ----------
    image : (ny, nx) array_like
        HMI continuum image (any units) or magnetogram, finite.
    model : `ForwardModel`, optional
        The forward model; defaults to ``ForwardModel()``.
    noise : float, optional
        Standard deviation of the noise per input pixel, in the units of ``image``; 0 gives the
        minimum-norm exact inverse of the forward model (weighted by the prior). None estimates it with
        `~enhance.analysis.metrics.white_noise_level`.
    slope : float, optional
        Slope :math:`p` of the prior power spectrum :math:`S(f) = S_1 f^{-p}`; None fits it (from 1 to 6)
        with its amplitude :math:`S_1` to the data's spectrum. The amplitude is always fitted.
    return_info : bool
        Also return ``{"noise", "slope", "amplitude"}``.

    Returns
    -------
    target : `~numpy.ndarray`
        float64 ``(2 ny, 2 nx)`` estimate of the target, in the units of ``image``.
    info : dict
        Only with ``return_info``.

    Notes
    -----
    With :math:`H = \\hat b\\,\\hat P` the transfer function of the PSF and the 2x2 box on the x2 grid
    (shape :math:`2n \\times 2m`), binning and sampling every second pixel fold the four frequencies
    :math:`f_j` that alias onto each frequency :math:`k` of the :math:`n \\times m` data (``numpy`` DFTs):

    .. math:: \\hat d(k) = \\tfrac14 \\sum_{j=1}^{4} H(f_j)\\,\\hat x(f_j) + \\hat n(k).

    The aliasing is handled exactly: for Gaussian noise of variance :math:`\\sigma^2` per input pixel and
    a Gaussian prior of power :math:`S` per x2 pixel, the posterior mean is (Sherman-Morrison on the 4x4
    system of each :math:`k`)

    .. math:: \\hat x(f_j) = \\frac{4\\,S(f_j)\\,\\overline{H(f_j)}\\,\\hat d(k)}
              {4\\sigma^2 + \\sum_i S(f_i)\\,|H(f_i)|^2},

    which reduces to Tikhonov regularisation with :math:`\\lambda = \\sigma^2 / S` for a flat prior. The
    mean (:math:`k = 0`) is not regularised, so a constant image comes back unchanged. With
    :math:`\\sigma = 0` the estimate fits the data exactly, :math:`A\\hat x = d`. The result is
    :math:`P_\\mathrm{Airy} * \\hat x`.

    Examples
    --------
    >>> import numpy as np
    >>> out = wiener_target(np.full((16, 16), 2.0), noise=0.01)
    >>> out.shape, bool(np.allclose(out, 2.0))
    ((32, 32), True)
    """
    model = ForwardModel() if model is None else model
    data = check_image(image, allow_nonfinite=False).astype(np.float64)
    if noise is not None and float(noise) == 0:
        sigma = 0.0
    else:
        sigma = _noise_sigma(data, noise, model)
    grid = _Grid(data, model)
    n, m = grid.coarse.shape
    fine = grid.fine_shape
    # H on the full (complex) x2 spectrum: the PSF's OTF times the 2x2 box anchored on pixels 2i, 2i+1.
    otf = np.fft.fft2(_folded(model.hmi_kernel(), fine))
    box_y = (1 + np.exp(2j * np.pi * np.arange(fine[0]) / fine[0])) / 2
    box_x = (1 + np.exp(2j * np.pi * np.arange(fine[1]) / fine[1])) / 2
    transfer = otf * box_y[:, None] * box_x[None, :]
    spectrum = np.fft.fft2(grid.coarse)
    h = _alias_quadrants(transfer, n, m)
    gains = np.abs(h) ** 2
    prior_unit = _prior_power(fine, model.output_scale, 1.0)
    coarse_power = np.abs(spectrum) ** 2 / (n * m)
    coarse_power[0, 0] = 0.0
    slopes = np.arange(1.0, 6.01, 0.25) if slope is None else (float(slope),)
    amplitude, fitted = _fit_prior(coarse_power, gains, prior_unit, sigma**2, slopes)
    if amplitude is None:  # no frequency above the noise: a flat prior at the data's variance
        amplitude, fitted = max(float(np.var(grid.coarse)), np.finfo(float).tiny), 0.0
    prior = _alias_quadrants(amplitude * prior_unit**fitted, n, m)
    denominator = 4 * sigma**2 + (prior * gains).sum(axis=0)
    denominator[0, 0] = (prior * gains)[:, 0, 0].sum()  # the mean is not regularised
    estimate = 4 * prior * np.conj(h) * spectrum[None] / denominator[None]
    full_spectrum = np.empty(fine, dtype=complex)
    full_spectrum[:n, :m], full_spectrum[n:, :m], full_spectrum[:n, m:], full_spectrum[n:, m:] = estimate
    x = np.fft.ifft2(full_spectrum).real
    result = grid.target(x)
    if not return_info:
        return result
    return result, {"noise": sigma, "slope": fitted, "amplitude": amplitude}


def _folded(kernel, shape):
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    folded = np.zeros(shape)
    rows = np.mod(np.arange(-ky, ky + 1), shape[0])
    cols = np.mod(np.arange(-kx, kx + 1), shape[1])
    np.add.at(folded, (rows[:, None], cols[None, :]), kernel)
    return folded
