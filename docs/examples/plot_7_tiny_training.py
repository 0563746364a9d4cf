"""
A tiny training run on generated scenes
=======================================

The shipped models were trained on synthetic scenes and a MURaM simulation, degraded with the
observation model. This example runs the same pipeline at toy scale: a few synthetic scenes, a
network of one residual block and 16 channels, forty steps. It shows the moving parts, not a
useful model (the shipped ones took thousands of steps).
"""

# %%
# High-resolution scenes at MURaM's 0.0662 arcsec per pixel; `~enhance.training.datasets.PairDataset`
# degrades each with the HMI PSF, bins it to 0.504 arcsec (input) and blurs it with a 28 cm Airy
# pattern at 0.252 arcsec (target), then cuts aligned, augmented patch pairs. The validation
# scene is drawn with the held-out seed, never trained on.
import tempfile

import astropy.units as u
import matplotlib.pyplot as plt
import sunpy.map
from astropy.coordinates import SkyCoord
from sunpy.coordinates import frames

import enhance
from enhance.scenes.sources import SyntheticSource
from enhance.training.datasets import HELD_OUT_SEED, PairDataset, degrade_frame
from enhance.training.loop import TrainConfig, train

scenes = SyntheticSource((256, 256), kind="intensity", scene="mixed", n_frames=2, seed=0)
held_out = SyntheticSource((256, 256), kind="intensity", scene="active_region", n_frames=1, seed=HELD_OUT_SEED)
train_pairs = PairDataset(scenes, n_samples=256, patch=16, seed=0, patches_per_frame=128)
val_pairs = PairDataset(held_out, n_samples=16, patch=16, seed=1)

# %%
# The run: `~enhance.training.loop.TrainConfig` holds the recipe (the paper's by default);
# here a larger learning rate, a short schedule, and one CPU thread (a network this small gains
# nothing from more). ``enhance train`` runs the same loop from the
# shell, with checkpoints that resume exactly.
out_dir = tempfile.mkdtemp()
config = TrainConfig(
    depth=1, width=16, batch_size=16, max_steps=40, lr=2e-3, warmup_steps=4,
    eval_interval=20, eval_samples=16, out_dir=out_dir, device="cpu", num_threads=1,
)
result = train(config, train_pairs, val_pairs, progress=False)
network = result["model"].eval()

# %%
# The tiny network on the held-out scene, next to the HMI-like input and the target, as Maps at
# disk centre so that the axes are helioprojective.
observed, target = degrade_frame(held_out.frame(0), held_out.pixel_scale, kind="intensity")
output = enhance.enhance(observed, "intensity", network=network, qs_level=1.0)


def as_map(data, scale):
    centre = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2014-01-01", observer="earth",
                      frame=frames.Helioprojective)
    header = sunpy.map.make_fitswcs_header(data, centre, scale=[scale, scale] * u.arcsec / u.pix)
    return sunpy.map.Map(data, header)


panels = [("HMI-like input", as_map(observed, 0.504)), ("tiny network", as_map(output, 0.252)),
          ("target (28 cm)", as_map(target, 0.252))]
fig = plt.figure(figsize=(12, 5), layout="constrained")
for i, (title, smap) in enumerate(panels):
    ax = fig.add_subplot(1, 3, i + 1, projection=smap)
    smap.plot(axes=ax, cmap="gray", vmin=0.2, vmax=1.4, title=title)
    if i:
        ax.coords[1].set_ticklabel_visible(False)
plt.show()

# %%
# The loss history: training loss (with the recipe's input noise) and validation loss, per step.
history = result["history"]
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
ax.semilogy([h["step"] for h in history], [h["train_loss"] for h in history], "o-", label="training")
ax.semilogy([h["step"] for h in history], [h["val_loss"] for h in history], "s-", label="validation")
ax.set_xlabel("step")
ax.set_ylabel("MSE [(I/I$_c$)$^2$]")
ax.legend()
plt.show()
