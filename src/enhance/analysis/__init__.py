"""Classical baselines, metrics, figures, diagnostics of an enhanced image, and validation."""
