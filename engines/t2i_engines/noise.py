"""The one seeded noise source of every engine: torch's CPU ``randn``, re-done in numpy.

A seed's noise is the stream of ``torch.Generator(device="cpu").manual_seed(seed)``: the torch
engines draw it with torch, the onnxruntime and TensorRT engines with :class:`SeededNoise`,
which needs numpy only, so an exported bundle gives the same image for a seed as the torch
bundle it came from, without torch installed. Draws agree with torch to ~1e-6 (torch's AVX2
kernel evaluates log/cos in float32; here they run in float64): the same latents, not merely
the same distribution.

torch's algorithm (``aten/src/ATen/native/cpu/DistributionTemplates.h``, ``normal_fill``):
a Mersenne Twister (MT19937, seeded with the seed's low 32 bits as ``init_genrand``) gives one
32-bit word per float, kept to 24 bits as a uniform ``u`` in [0, 1); every block of 16 uniforms
becomes 16 normals by Box-Muller, pairing ``u[j]`` with ``u[j + 8]``; a tail shorter than 16 is
redone from 16 fresh uniforms over the last 16 values.
"""
from __future__ import annotations

import numpy as np

BLOCK = 16  # torch's normal_fill works in blocks of 16 floats (8 Box-Muller pairs)
_FLOAT_BITS = 24  # float32's significand: torch keeps this many bits of each 32-bit word


def _uniforms(words: np.ndarray) -> np.ndarray:
    """32-bit words -> float32 uniforms in [0, 1), as at::uniform_real_distribution<float>."""
    mask = (1 << _FLOAT_BITS) - 1
    return (words & mask).astype(np.float32) * np.float32(2.0 ** -_FLOAT_BITS)


def _box_muller(blocks: np.ndarray) -> np.ndarray:
    """[k, 16] uniforms -> [k, 16] standard normals: z = sqrt(-2 ln(1 - u1)) · (cos, sin)(2π u2)."""
    u1 = 1.0 - blocks[:, :BLOCK // 2].astype(np.float64)
    u2 = blocks[:, BLOCK // 2:].astype(np.float64)
    radius, theta = np.sqrt(-2.0 * np.log(u1)), 2.0 * np.pi * u2
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1).astype(np.float32)


class SeededNoise:
    """One seed's noise stream: successive :meth:`randn` calls continue it, as successive
    ``torch.randn(..., generator=g)`` calls continue one generator."""

    def __init__(self, seed: int):
        legacy = np.random.RandomState(int(seed) & 0xFFFFFFFF)  # init_genrand, as torch seeds
        _, key, pos, *_ = legacy.get_state()
        self._bits = np.random.MT19937()
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}

    def randn(self, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normal float32 noise of ``shape`` (at least 16 values, as latents are)."""
        n = int(np.prod(shape))
        if n < BLOCK:
            raise ValueError(f"noise of {n} values: torch draws fewer than {BLOCK} another "
                             "way, which is not re-done here")
        tail = n % BLOCK
        words = self._bits.random_raw(n + (BLOCK if tail else 0)).astype(np.uint32)
        u = _uniforms(words)
        out = np.empty(n, np.float32)
        full = n - tail
        out[:full] = _box_muller(u[:full].reshape(-1, BLOCK)).ravel()
        if tail:  # torch redoes the last 16 values from 16 fresh uniforms
            out[n - BLOCK:] = _box_muller(u[n:].reshape(1, BLOCK)).ravel()
        return out.reshape(shape)


def batch_noise(streams: list[SeededNoise], item_shape: tuple[int, ...]) -> np.ndarray:
    """[len(streams), *item_shape]: each item from its own stream, as diffusers' ``randn_tensor``
    draws with one generator per batch item, so an image's noise depends only on its seed."""
    return np.stack([s.randn((1, *item_shape))[0] for s in streams])
