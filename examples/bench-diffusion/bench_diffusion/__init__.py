"""A DDPM-style diffusion family for bench: ε-prediction with a small U-Net, DDIM/ancestral sampling."""
