"""The networks (PyTorch modules) and their weights: Wiener-Enhance (the default models), the paper's Enhance,
safetensors I/O and the shipped-model registry."""
