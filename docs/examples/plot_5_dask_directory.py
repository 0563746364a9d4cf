"""
A directory of files on a Dask cluster
======================================

`enhance.enhance_files` enhances every FITS file of a directory (or a glob pattern), one Dask task
per file, writes ``<name>_enhanced.fits`` next to a manifest, and skips outputs that exist on a
re-run. Here a LocalCluster of one worker with one thread; the same call runs on any cluster
through its `distributed.Client`.
"""

# %%
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import sunpy.map
from dask.distributed import Client, LocalCluster
from matplotlib.colors import Normalize

import enhance
from enhance.data import sample_path

folder = Path(tempfile.mkdtemp())
(folder / "hmi").mkdir()
for kind in ("intensity", "blos"):
    shutil.copy(sample_path(kind), folder / "hmi")

# %%
# ``kind="auto"`` reads each file's header (CONTENT, BUNIT or the series name), so continuum
# images and magnetograms can share a directory.
# One worker with one thread, in this process; ``processes=True`` (the default) starts worker
# processes, as a real deployment would.
cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
client = Client(cluster)
manifest = enhance.enhance_files(folder / "hmi", folder / "enhanced", model="light", client=client, as_frame=False)
for row in manifest:
    print(Path(row["input"]).name, row["status"], row["kind"], f"{float(row['seconds']):.2f} s")

# %%
# A second run finds the outputs complete and skips them.
again = enhance.enhance_files(folder / "hmi", folder / "enhanced", model="light", client=client, as_frame=False)
print([row["status"] for row in again])
client.close()
cluster.close()

# %%
# The two outputs, in helioprojective coordinates.
outputs = sorted((folder / "enhanced").glob("*_enhanced.fits"))
fig = plt.figure(figsize=(10, 5.2), layout="constrained")
for i, path in enumerate(outputs):
    result = sunpy.map.Map(path)
    ax = fig.add_subplot(1, 2, i + 1, projection=result)
    if "blos" in path.name:
        result.plot(axes=ax, cmap="RdBu_r", norm=Normalize(-1500, 1500), title=path.name)
    else:
        result.plot(axes=ax, cmap="gray", vmin=0.3, vmax=1.3, title=path.name)
plt.show()
shutil.rmtree(folder)
