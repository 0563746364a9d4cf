"""Fast execution of a trained network: the folded PyTorch graph, ONNX export and the onnxruntime runner."""
