"""diffusers' ``EulerAncestralDiscreteScheduler``, the scheduler SDXL-Turbo ships, for the
onnxruntime img2img refiner: torch float32 on the CPU, the same expressions as diffusers."""
from __future__ import annotations

import numpy as np

from t2i_engines.onnxruntime.noise import draw_noise

SCHEDULER = "EulerAncestralDiscreteScheduler"  # the diffusers class this module re-does

__all__ = ["EulerAncestral", "SCHEDULER"]


class EulerAncestral:
    """diffusers' ``EulerAncestralDiscreteScheduler`` (epsilon / v-prediction), in torch
    float32 on the CPU with the same expressions, so sigmas and steps match it bit for bit."""

    def __init__(self, config: dict):
        import torch

        if config.get("_class_name", SCHEDULER) != SCHEDULER:
            raise ValueError(f"scheduler {config['_class_name']!r} is not supported by the "
                             f"onnxruntime refiner (only {SCHEDULER})")
        if config.get("rescale_betas_zero_snr"):
            raise ValueError("rescale_betas_zero_snr schedulers are not supported")
        self.config = config
        self.num_train = int(config.get("num_train_timesteps", 1000))
        start, end = config.get("beta_start", 0.0001), config.get("beta_end", 0.02)
        schedule = config.get("beta_schedule", "linear")
        if config.get("trained_betas") is not None:
            betas = torch.tensor(config["trained_betas"], dtype=torch.float32)
        elif schedule == "linear":
            betas = torch.linspace(start, end, self.num_train, dtype=torch.float32)
        elif schedule == "scaled_linear":
            betas = torch.linspace(start**0.5, end**0.5, self.num_train, dtype=torch.float32) ** 2
        else:
            raise ValueError(f"beta_schedule {schedule!r} is not supported")
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.prediction_type = config.get("prediction_type", "epsilon")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type {self.prediction_type!r} is not supported")
        self.timesteps = self.sigmas = None

    def set_timesteps(self, num_inference_steps: int) -> None:
        """``timesteps`` [n] float32 and ``sigmas`` [n + 1] (ending in 0), as diffusers."""
        import torch

        n, spacing = num_inference_steps, self.config.get("timestep_spacing", "linspace")
        if spacing == "linspace":
            timesteps = np.linspace(0, self.num_train - 1, n, dtype=np.float32)[::-1].copy()
        elif spacing == "leading":
            ratio = self.num_train // n
            timesteps = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.float32)
            timesteps += self.config.get("steps_offset", 0)
        elif spacing == "trailing":
            ratio = self.num_train / n
            timesteps = np.arange(self.num_train, 0, -ratio).round().copy().astype(np.float32)
            timesteps -= 1
        else:
            raise ValueError(f"timestep_spacing {spacing!r} is not supported")
        sigmas = np.array(((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5)
        sigmas = np.interp(timesteps, np.arange(0, len(sigmas)), sigmas)
        self.sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))
        self.timesteps = torch.from_numpy(timesteps)

    def scale_model_input(self, sample, index: int):
        return sample / ((self.sigmas[index] ** 2 + 1) ** 0.5)

    def step(self, model_output, index: int, sample, generators: list):
        """One ancestral step from ``sigmas[index]`` to ``sigmas[index + 1]``; draws noise."""
        import torch

        sigma = self.sigmas[index]
        sample = sample.to(torch.float32)
        if self.prediction_type == "epsilon":
            pred_original = sample - sigma * model_output
        else:
            pred_original = model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
        sigma_to = self.sigmas[index + 1]
        sigma_up = (sigma_to**2 * (sigma**2 - sigma_to**2) / sigma**2) ** 0.5
        sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
        derivative = (sample - pred_original) / sigma
        prev = sample + derivative * (sigma_down - sigma)
        return prev + draw_noise(tuple(model_output.shape), generators) * sigma_up
