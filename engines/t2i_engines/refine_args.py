"""What both img2img refiner engines (torch and onnxruntime) do with ``refine``'s arguments
before running: the step rule and the same checks, so the two engines accept and reject alike.
Pure Python: importing it imports no torch."""
from __future__ import annotations

import math
from typing import Sequence


def schedule_length(steps: int, strength: float) -> int:
    """Smallest ``num_inference_steps`` for which diffusers runs exactly ``steps`` steps at
    ``strength`` (it runs ``int(num_inference_steps * strength)``). 2 steps at 0.5 -> 4."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = max(steps, math.ceil(steps / strength - 1e-9))
    while int(n * strength) < steps:  # float rounding: 10 * 0.3 may land just below 3
        n += 1
    return n


def check_refine_args(images: Sequence, seeds: Sequence[int], strength: float,
                      steps: int) -> tuple[int, tuple[int, int] | None]:
    """Check ``refine``'s arguments (PIL ``images``); returns (``num_inference_steps`` to ask
    diffusers' schedule for, see :func:`schedule_length`; the images' shared (width, height)
    in pixels, None when ``images`` is empty). Raises ValueError on a bad strength or step
    count, one seed per image missing, or images of different sizes."""
    num_inference_steps = schedule_length(steps, strength)
    if len(images) != len(seeds):
        raise ValueError(f"images and seeds differ in length: {len(images)} != {len(seeds)}")
    if not images:
        return num_inference_steps, None
    sizes = {image.size for image in images}
    if len(sizes) != 1:
        raise ValueError(f"images must share one size, got {sorted(sizes)}")
    return num_inference_steps, sizes.pop()
