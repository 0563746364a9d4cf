"""High-resolution scenes to train and validate on: synthetic fields and simulation snapshots."""
