"""
Enhance against Richardson-Lucy
===============================

The classical alternative to the network is a deconvolution with the same PSF. Both are judged by
the consistency map: the enhanced image blurred back to HMI's resolution and binned to HMI's
pixels, minus the HMI image itself.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import sunpy.map

import enhance
from enhance.analysis.baselines import rl_super_resolve
from enhance.data import sample_path
from enhance.observation.consistency import consistency, consistency_map

hmi = sunpy.map.Map(sample_path("intensity"))
network = enhance.enhance(hmi, "intensity", model="light")
# Richardson-Lucy on the x2 grid: bicubic x2, then 20 iterations with the HMI PSF.
rl = sunpy.map.Map(rl_super_resolve(hmi.data, n_iter=20), network.meta)

# %%
# The consistency residual, per pixel and as one number (``sum |R(y) - x| / sum |x|``). A method
# that explains the data leaves noise; structure shows where it added or removed something the
# data do not hold.
maps = {}
for name, result in (("Enhance", network), ("Richardson-Lucy", rl)):
    residual = consistency_map(result.data, hmi.data)
    maps[name] = sunpy.map.Map(residual, hmi.meta)
    print(f"{name}: consistency {100 * consistency(result.data, hmi.data):.2f} %")

# %%
# Top: the two x2 images on one colour scale. Bottom: their residuals on one symmetric scale,
# on the input's grid.
fig = plt.figure(figsize=(10, 9), layout="constrained")
for i, (name, result) in enumerate((("Enhance", network), ("Richardson-Lucy", rl))):
    ax = fig.add_subplot(2, 2, i + 1, projection=result)
    top = result.plot(axes=ax, cmap="gray", vmin=0.3, vmax=1.3, title=name)
    limit = 0.03
    ax = fig.add_subplot(2, 2, i + 3, projection=maps[name])
    bottom = maps[name].plot(axes=ax, cmap="RdBu_r", vmin=-limit, vmax=limit, title=f"{name}: consistency residual")
fig.colorbar(top, ax=fig.axes[0::2], shrink=0.6, label="I / I$_c$")
fig.colorbar(bottom, ax=fig.axes[1::2], shrink=0.6, label="R(y) - x [I / I$_c$]")
plt.show()
print("largest residual, Enhance:", float(np.nanmax(np.abs(maps["Enhance"].data))))
