"""Per-seed CPU noise, drawn as diffusers draws it."""
from __future__ import annotations


def draw_noise(shape: tuple, generators: list):
    """diffusers' ``randn_tensor`` with one CPU generator per batch item: each draws its own
    ``(1, ...)`` slice, so an image's noise depends only on its seed."""
    import torch

    return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generators])
