"""diffusers' ``EulerAncestralDiscreteScheduler`` (Karras et al. 2022's Euler step with
ancestral noise), the scheduler SDXL-Turbo ships, in numpy: epsilon and v prediction."""
from __future__ import annotations

import numpy as np

from t2i_engines.noise import SeededNoise, batch_noise
from t2i_engines.schedulers.noise_schedule import alphas_cumprod, spaced_timesteps


class EulerAncestral:
    DIFFUSERS_CLASS = "EulerAncestralDiscreteScheduler"

    def __init__(self, config: dict):
        if config.get("_class_name", self.DIFFUSERS_CLASS) != self.DIFFUSERS_CLASS:
            raise ValueError(f"scheduler {config['_class_name']!r} is not "
                             f"{self.DIFFUSERS_CLASS}")
        self.config = config
        self.num_train = int(config.get("num_train_timesteps", 1000))
        self.alphas_cumprod = alphas_cumprod(config)
        self.prediction_type = config.get("prediction_type", "epsilon")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type {self.prediction_type!r} is not supported")
        self.timesteps = self.sigmas = None

    def set_timesteps(self, steps: int) -> None:
        """``timesteps`` [n] float32 and ``sigmas`` [n + 1] (ending in 0), as diffusers."""
        timesteps = spaced_timesteps(self.config, steps, dtype=np.float32,
                                     default_spacing="linspace")
        # σ_t = sqrt((1 − ᾱ_t) / ᾱ_t), interpolated at the (possibly fractional) timesteps
        sigmas = np.array(((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5)
        sigmas = np.interp(timesteps, np.arange(0, len(sigmas)), sigmas)
        self.sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        self.timesteps = timesteps

    @property
    def init_noise_sigma(self) -> float:
        peak = float(self.sigmas.max())
        if self.config.get("timestep_spacing", "linspace") in ("linspace", "trailing"):
            return peak
        return (peak**2 + 1) ** 0.5

    def scale_model_input(self, sample: np.ndarray, index: int) -> np.ndarray:
        return (sample / ((self.sigmas[index] ** 2 + 1) ** 0.5)).astype(np.float32)

    def step(self, model_output: np.ndarray, index: int, sample: np.ndarray,
             noise: list[SeededNoise]) -> np.ndarray:
        """One ancestral step from ``sigmas[index]`` to ``sigmas[index + 1]``; draws one noise
        tensor per image from ``noise`` (one stream per seed)."""
        sigma, sigma_to = self.sigmas[index], self.sigmas[index + 1]
        if self.prediction_type == "epsilon":
            x0 = sample - sigma * model_output
        else:
            x0 = model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
        sigma_up = (sigma_to**2 * (sigma**2 - sigma_to**2) / sigma**2) ** 0.5
        sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
        derivative = (sample - x0) / sigma  # dx/dσ of the probability-flow ODE
        prev = sample + derivative * (sigma_down - sigma)
        return (prev + batch_noise(noise, model_output.shape[1:]) * sigma_up).astype(np.float32)

    def add_noise(self, original: np.ndarray, noise: np.ndarray, index: int) -> np.ndarray:
        """x_0 + σ n at the ``index``-th timestep (img2img's start)."""
        return (original + noise * self.sigmas[index]).astype(np.float32)
