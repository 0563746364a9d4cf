"""Training pairs from any scene source, the training loop, and checkpoint averaging."""
