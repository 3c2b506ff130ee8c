"""Stand-in stages with known behaviour: colors are the only "semantics", so the right answer is
known. FakeScorer embeds an image as its mean RGB and a text as the RGB of its color word."""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageDraw

RGB = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220),
       "yellow": (230, 220, 30), "white": (245, 245, 245), "black": (10, 10, 10)}
_GRAY = (128, 128, 128)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32) - 128.0
    n = np.linalg.norm(v)
    return v / n if n else np.array([1.0, 0.0, 0.0], np.float32)


class FakeScorer:
    def embed_images(self, images):
        return np.stack([_unit(np.asarray(im.convert("RGB"), np.float32).reshape(-1, 3).mean(0))
                         for im in images]).reshape(len(images), 3)

    def embed_texts(self, texts):
        def color(text):
            return next((RGB[w] for w in text.lower().split() if w in RGB), _GRAY)
        return np.stack([_unit(color(t)) for t in texts]).reshape(len(texts), 3)


def _denoise(ms_per_step: float, steps: int, on_step) -> None:
    """Sleep ``steps`` times, calling ``on_step(i)`` after each, as a diffusion engine does."""
    for i in range(1, steps + 1):
        time.sleep(ms_per_step / 1e3)
        if on_step is not None:
            on_step(i)


class FakeDrafter:
    """Paints each layout box in its object's color (swapped when ``swap`` is set), with
    per-seed background noise; sleeps ``ms_per_image_step`` per image and step."""

    max_prompt_tokens = 16

    def __init__(self, ms_per_image_step: float = 0.0, size: int = 32):
        self.ms, self.size, self.calls = ms_per_image_step, size, []

    def count_tokens(self, text):
        return len(text.split()) + 2

    def draft(self, prompt, layout, seeds, steps, *, on_step=None):
        self.calls.append((prompt, tuple(seeds), steps))
        _denoise(self.ms * len(seeds), steps, on_step)
        images = []
        for s in seeds:
            rng = np.random.default_rng(s)
            im = Image.fromarray(rng.integers(100, 156, (self.size, self.size, 3), dtype=np.uint8))
            d = ImageDraw.Draw(im)
            for obj in layout.objects:
                x0, y0, x1, y1 = (v * self.size for v in obj.box)
                d.rectangle((x0, y0, x1, y1), fill=RGB.get(obj.color or "", _GRAY))
            images.append(im)
        return images


class FakeRefiner:
    """Moves each image a little toward pure color of the first color word in the prompt."""

    def __init__(self, ms_per_image_step: float = 0.0):
        self.ms, self.calls = ms_per_image_step, []

    def refine(self, images, prompt, seeds, strength, steps, *, on_step=None):
        self.calls.append((len(images), steps))
        _denoise(self.ms * len(images), steps, on_step)
        target = next((RGB[w] for w in prompt.lower().split() if w in RGB), _GRAY)
        out = []
        for im in images:
            a = np.asarray(im, np.float32)
            out.append(Image.fromarray(((1 - strength) * a + strength * np.array(target)).astype(np.uint8)))
        return out


class FakeLM:
    """Chat LM returning canned answers (cycled), recording the calls."""

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def generate(self, messages, n, seed, temperature=1.0, top_p=1.0, max_new_tokens=128,
                 grammar=None):
        self.calls.append((messages, n, seed))
        return [self.answers[(seed + i) % len(self.answers)] for i in range(n)]


def fuzz_examples(n: int) -> int:
    """Hypothesis examples per fuzz property: ``n`` × ``$T2I_FUZZ_SCALE`` (benchmarks/fuzz.py
    runs the same properties at a larger scale)."""
    return max(1, round(n * float(os.environ.get("T2I_FUZZ_SCALE", "1"))))


@contextmanager
def serving(srv):
    """Run socketserver ``srv`` on a daemon thread for the block, then shut it down."""
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def server_url(srv) -> str:
    """The OpenAI-style base URL of a local test server."""
    return f"http://127.0.0.1:{srv.server_address[1]}/v1"
