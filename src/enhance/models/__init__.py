"""The Enhance network (PyTorch modules) and its weights: safetensors I/O and the shipped-model registry."""
