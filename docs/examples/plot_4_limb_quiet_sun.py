"""
Near the limb: the quiet-Sun surface
====================================

The network was trained on images divided by their quiet-Sun level, so that the quiet Sun is at 1.
At disk centre one number does; near the limb, limb darkening makes the quiet Sun of a cut-out
vary by tens of per cent, and `enhance.enhance` divides by a smooth quiet-Sun surface instead
(`enhance.observation.quiet_sun.fit_qs_surface`), then multiplies the output by the same surface.
"""

# %%
# The packaged cut-out lies at disk centre. Move it, in its header, to 880 arcsec west of
# disk centre and darken it as the photosphere darkens there: :math:`I(\mu)/I(1) = 1 - u\,(1 - \mu)`
# with :math:`u = 0.6` near 6173 Angstrom.
import matplotlib.pyplot as plt
import numpy as np
import sunpy.map
from sunpy.map import all_coordinates_from_map

import enhance
from enhance.data import sample_path
from enhance.observation.quiet_sun import fit_qs_surface

centre = sunpy.map.Map(sample_path("intensity"))
meta = centre.meta.copy()
meta["crval1"] = 880.0
shifted = sunpy.map.Map(centre.data, meta)
coords = all_coordinates_from_map(shifted)
rho = np.hypot(coords.Tx, coords.Ty) / shifted.rsun_obs
mu = np.sqrt(1 - np.clip(rho.decompose().value, 0, 1) ** 2)
limb = sunpy.map.Map(centre.data * (1 - 0.6 * (1 - mu)), meta)
print(f"mu from {mu.min():.2f} to {mu.max():.2f}")

# %%
# The quiet-Sun surface of the darkened cut-out: a Gaussian-weighted local linear fit, 20 arcsec
# wide, to the pixels within 10 % of it, bridging the spots.
surface = fit_qs_surface(limb.data)
print(f"the quiet Sun varies by {100 * surface.spread:.0f} % across the field")

# %%
# `enhance.enhance` picks the surface by itself where the quiet Sun varies by more than 15 %; one
# level can be forced with ``qs_level="level"``. Divided by the same darkening on the x2 grid, the
# surface result is the disk-centre result again; the single level is not, because the network
# does not scale with its input.
with_surface = enhance.enhance(limb, "intensity", model="light")
with_level = enhance.enhance(limb, "intensity", model="light", qs_level="level")
reference = enhance.enhance(centre, "intensity", model="light").data
coords2 = all_coordinates_from_map(with_surface)
rho2 = (np.hypot(coords2.Tx, coords2.Ty) / with_surface.rsun_obs).decompose().value
darkening2 = 1 - 0.6 * (1 - np.sqrt(1 - np.clip(rho2, 0, 1) ** 2))
for name, result in (("surface", with_surface), ("one level", with_level)):
    flat = result.data / darkening2
    rms = np.sqrt(np.nanmean((flat - reference) ** 2))
    print(f"{name}: RMS difference from the disk-centre result {rms:.4f} I/Ic")

# %%
# The darkened input with the fitted surface as contours, and the output.
fig = plt.figure(figsize=(10, 5.2), layout="constrained")
ax1 = fig.add_subplot(1, 2, 1, projection=limb)
limb.plot(axes=ax1, cmap="gray", vmin=0.2, vmax=0.9, title="HMI-like input near the limb")
levels = np.round(np.linspace(surface().min(), surface().max(), 6), 2)
contours = ax1.contour(surface(), levels=levels, colors="C1", linewidths=0.8)
ax1.clabel(contours, fontsize=7)
ax2 = fig.add_subplot(1, 2, 2, projection=with_surface)
image = with_surface.plot(axes=ax2, cmap="gray", vmin=0.2, vmax=0.9, title="Enhance with the quiet-Sun surface")
ax2.coords[1].set_ticklabel_visible(False)
fig.colorbar(image, ax=[ax1, ax2], shrink=0.8, label="I / I$_c$ (disk centre)")
plt.show()
