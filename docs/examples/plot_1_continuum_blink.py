"""
Enhance an HMI continuum cut-out
================================

Deconvolve and super-resolve the packaged SDO/HMI continuum cut-out of an active region, then
compare the input and the output on the same helioprojective axes, side by side and as a blink.
"""

# %%
# The sample is a 200 x 200 pixel cut-out at HMI's 0.504 arcsec per pixel, normalised to the
# quiet Sun (I/Ic). `enhance.enhance` takes a `sunpy.map.Map` and returns a Map of the same class
# on the x2 grid, with its world coordinates.
import matplotlib.pyplot as plt
import sunpy.map
from matplotlib.animation import FuncAnimation

import enhance
from enhance.analysis.baselines import upsample_x2
from enhance.data import sample_path

hmi = sunpy.map.Map(sample_path("intensity"))
enhanced = enhance.enhance(hmi, "intensity", model="light")
print(hmi.dimensions, hmi.scale.axis1)
print(enhanced.dimensions, enhanced.scale.axis1)

# %%
# Side by side, on one colour scale. Each panel uses its own map's WCS, so the axes are
# helioprojective longitude and latitude in both.
limits = {"vmin": 0.3, "vmax": 1.3}
fig = plt.figure(figsize=(10, 5.2), layout="constrained")
ax1 = fig.add_subplot(1, 2, 1, projection=hmi)
hmi.plot(axes=ax1, cmap="gray", title="HMI, 0.504 arcsec/px", **limits)
ax2 = fig.add_subplot(1, 2, 2, projection=enhanced)
image = enhanced.plot(axes=ax2, cmap="gray", title="Enhance (light model), 0.252 arcsec/px", **limits)
ax2.coords[1].set_ticklabel_visible(False)
fig.colorbar(image, ax=[ax1, ax2], shrink=0.8, label="I / I$_c$")
plt.show()

# %%
# A blink: the input drawn on the output's pixel grid (nearest-neighbour x2, so no detail is
# added) alternating with the output, on the output's WCS. Granules that were one blur in the
# input become cells with dark lanes; the penumbral filaments sharpen.
upsampled = upsample_x2(hmi.data, method="nearest")
fig = plt.figure(figsize=(5.4, 5))
ax = fig.add_subplot(projection=enhanced)
shown = ax.imshow(upsampled, origin="lower", cmap="gray", **limits)
ax.set_xlabel("Helioprojective longitude")
ax.set_ylabel("Helioprojective latitude")
frames = [("HMI input", upsampled), ("Enhance output", enhanced.data)]


def show(i):
    title, data = frames[i % 2]
    shown.set_data(data)
    ax.set_title(title)
    return (shown,)


blink = FuncAnimation(fig, show, frames=2, interval=800)
plt.show()
