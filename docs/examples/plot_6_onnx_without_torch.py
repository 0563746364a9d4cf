"""
ONNX export and inference without PyTorch
==========================================

A trained network exported to ONNX runs with onnxruntime and NumPy alone: on a machine without
PyTorch, in another language, or in a browser. The normalisation that `enhance.enhance` applies
around the network is a few lines of NumPy.
"""

# %%
# Export the shipped light continuum model (one pass of Wiener-Enhance). Exporting needs PyTorch;
# running the file does not.
# From the shell, ``enhance export --model light -o models/`` does the same for all shipped models.
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sunpy.map

import enhance
from enhance.data import sample_path
from enhance.models.pretrained import light
from enhance.runtime.export import export_onnx

folder = Path(tempfile.mkdtemp())
onnx_file = export_onnx(light("intensity", weights="default"), folder / "intensity_light.onnx", kind="intensity")
print(onnx_file.name, f"{onnx_file.stat().st_size / 1e3:.0f} kB")

# %%
# The inference, with onnxruntime and NumPy only: divide by the quiet-Sun level, mirror the image by
# the margin the file's metadata gives, tell the graph the noise level per pixel, multiply back.
# The noise is read where HMI passes no signal, the corners of the spectrum
# (`enhance.observation.noise`); this cut-out was interpolated, so its corners are not white and
# HMI's nominal 1e-3 of the quiet Sun is used, as `enhance.enhance` does. `enhance.observation`
# needs only NumPy and SciPy. The script runs in a fresh Python in which ``import torch`` is made to
# fail, to show that nothing reaches for PyTorch.
script = """
import sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
import numpy as np, onnxruntime
from astropy.io import fits
from enhance.observation.noise import estimate_noise, noise_is_white
from enhance.observation.quiet_sun import estimate_qs_level

image = fits.getdata(sys.argv[1]).astype(np.float32)
level = estimate_qs_level(image)
normalised = image / level
noise = estimate_noise(normalised) if noise_is_white(normalised) else 1e-3
session = onnxruntime.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
padded = np.pad(normalised, int(meta["margin"]), mode="symmetric")[None, None].astype(np.float32)
(out,) = session.run(None, {"image": padded, "noise": np.array([noise], np.float32)})
out = out[0, 0] * level
out[(out < 0) & (np.repeat(np.repeat(image, 2, 0), 2, 1) >= 0)] = 0  # continuum is never negative
np.save(sys.argv[3], out)
print(f"kind {meta.get('kind')}; quiet-Sun level {level:.4f}; noise {noise:.1e}; output {out.shape[0]} x {out.shape[1]}")
"""
result_file = folder / "enhanced.npy"
run = subprocess.run(
    [sys.executable, "-c", script, str(sample_path("intensity")), str(onnx_file), str(result_file)],
    capture_output=True, text=True, check=True,
)
print(run.stdout.strip())

# %%
# The same image through `enhance.enhance`: the two agree to float32 rounding.
hmi = sunpy.map.Map(sample_path("intensity"))
reference = enhance.enhance(hmi, "intensity", model="light")
onnx_only = sunpy.map.Map(np.load(result_file), reference.meta)
print(f"largest difference: {np.max(np.abs(onnx_only.data - reference.data)):.1e} I/Ic")

# %%
fig = plt.figure(figsize=(10, 5.2), layout="constrained")
ax1 = fig.add_subplot(1, 2, 1, projection=onnx_only)
onnx_only.plot(axes=ax1, cmap="gray", vmin=0.3, vmax=1.3, title="onnxruntime + NumPy")
ax2 = fig.add_subplot(1, 2, 2, projection=reference)
difference = sunpy.map.Map(onnx_only.data - reference.data, reference.meta)
image = difference.plot(axes=ax2, cmap="RdBu_r", vmin=-1e-5, vmax=1e-5, title="minus enhance.enhance")
fig.colorbar(image, ax=ax2, shrink=0.8, label="I / I$_c$")
plt.show()
