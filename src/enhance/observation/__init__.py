"""The observation model: HMI's PSF, the degradation to HMI's grid, the quiet-Sun level (numpy only)."""
