"""`~enhance.inference.pipeline.enhance` on arrays, Maps and files; tiling; batches and full disks with Dask."""
