"""diffusers' ``DDIMScheduler`` (Song et al. 2021, eqs. 12 and 16) in numpy, deterministic
(η = 0, as our pipelines run it): epsilon, sample and v prediction; clip_sample."""
from __future__ import annotations

import numpy as np

from t2i_engines.schedulers.noise_schedule import alphas_cumprod, spaced_timesteps


class DDIM:
    DIFFUSERS_CLASS = "DDIMScheduler"
    init_noise_sigma = 1.0

    def __init__(self, config: dict):
        if config.get("thresholding"):
            raise ValueError("DDIM with dynamic thresholding is not supported")
        self.config = config
        self.num_train = int(config.get("num_train_timesteps", 1000))
        self.alphas_cumprod = alphas_cumprod(config)
        # the step past the last has no previous ᾱ: 1 (set_alpha_to_one) or ᾱ_0
        self.final_alpha_cumprod = (np.float32(1.0) if config.get("set_alpha_to_one", True)
                                    else self.alphas_cumprod[0])
        self.prediction_type = config.get("prediction_type", "epsilon")
        if self.prediction_type not in ("epsilon", "sample", "v_prediction"):
            raise ValueError(f"prediction_type {self.prediction_type!r} is not supported")
        self.timesteps: np.ndarray | None = None

    def set_timesteps(self, steps: int) -> None:
        self.steps = steps
        self.timesteps = spaced_timesteps(self.config, steps)

    def scale_model_input(self, sample: np.ndarray, index: int) -> np.ndarray:
        return sample  # DDIM's model input is the sample itself

    def step(self, model_output: np.ndarray, index: int, sample: np.ndarray,
             noise=None) -> np.ndarray:
        """x_{t-1} from x_t (eq. 12 with σ_t = 0); ``noise`` is unused (η = 0 draws none)."""
        t = int(self.timesteps[index])
        prev_t = t - self.num_train // self.steps  # diffusers' rule, whatever the spacing
        a_t = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod
        b_t = 1 - a_t
        if self.prediction_type == "epsilon":
            x0 = (sample - b_t**0.5 * model_output) / a_t**0.5  # eq. 12's "predicted x_0"
            eps = model_output
        elif self.prediction_type == "sample":
            x0 = model_output
            eps = (sample - a_t**0.5 * x0) / b_t**0.5
        else:  # v-prediction (Salimans & Ho 2022)
            x0 = a_t**0.5 * sample - b_t**0.5 * model_output
            eps = a_t**0.5 * model_output + b_t**0.5 * sample
        if self.config.get("clip_sample", True):  # diffusers DDIMScheduler's default
            r = float(self.config.get("clip_sample_range", 1.0))
            x0 = np.clip(x0, -r, r)
        # x_{t-1} = sqrt(ᾱ_{t-1}) x0 + sqrt(1 − ᾱ_{t-1}) ε   (eq. 12, η = 0)
        return (a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps).astype(np.float32)

    def add_noise(self, original: np.ndarray, noise: np.ndarray, index: int) -> np.ndarray:
        """Forward process q(x_t | x_0) at the ``index``-th timestep (img2img's start)."""
        a_t = self.alphas_cumprod[int(self.timesteps[index])]
        return (a_t**0.5 * original + (1 - a_t) ** 0.5 * noise).astype(np.float32)
