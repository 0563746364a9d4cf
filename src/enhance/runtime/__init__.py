"""Fast execution of a trained network: the folded PyTorch graph, ONNX export and the onnxruntime runner."""

import lazy_loader

# The modules load on first use (``enhance.runtime.export``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=[
        "constant_pieces",
        "export",
        "folding",
        "graph",
        "graph_template",
        "onnx_cache",
        "onnx_checks",
        "onnx_runner",
        "ort_blocked",
        "runners",
        "wiener_onnx",
    ],
)
