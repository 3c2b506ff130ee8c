"""A local Qwen2.5-VL judge on transformers: the paper's Qwen2.5-VL-72B-Instruct, any size.

Each comparison asks the model twice, once per image order, with greedy decoding; the vote
counts only when both orders agree (see ``prompts.vote_from_both_orders``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_sdk.errors import BundleError

from t2i_training.judges.prompts import (
    check_dimension,
    judge_question,
    parse_answer,
    vote_from_both_orders,
)
from t2i_training.judges.protocol import Sample, Verdict

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_TOKEN = "<|image_pad|>"  # Qwen2.5-VL's per-patch image placeholder
IMAGE_TOKEN_TYPE = 1  # mm_token_type_ids: 0 text, 1 image (as ProcessorMixin writes them)


class QwenVLPilProcessor:
    """The subset of ``Qwen2_5_VLProcessor`` the judge uses, for venvs without torchvision.

    transformers cannot build ``Qwen2_5_VLProcessor`` without torchvision (its video processor
    needs it) although images alone only need the PIL image processor. This class does what the
    real processor does for images: render the chat template, expand each ``<|image_pad|>`` to
    one token per merged patch, and mark those tokens in ``mm_token_type_ids`` (the model uses
    them for its 3-D rotary positions).
    """

    def __init__(self, tokenizer, image_processor, chat_template: str):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)

    @classmethod
    def from_pretrained(cls, model_dir: Path) -> QwenVLPilProcessor:
        from transformers import AutoImageProcessor, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True,
                                                  trust_remote_code=False)
        image_processor = AutoImageProcessor.from_pretrained(
            model_dir, local_files_only=True, trust_remote_code=False, backend="pil")
        return cls(tokenizer, image_processor, _read_chat_template(model_dir, tokenizer))

    def apply_chat_template(self, messages: list[dict], *, add_generation_prompt: bool = True,
                            tokenize: bool = False) -> str:
        if tokenize:
            raise ValueError("QwenVLPilProcessor renders text only; encode with __call__")
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False,
            add_generation_prompt=add_generation_prompt)

    def __call__(self, *, text: list[str], images: list[Image], return_tensors: str = "pt"):
        import torch

        if len(text) != 1:
            raise ValueError("QwenVLPilProcessor encodes one conversation at a time")
        pixels = self.image_processor(images=images, return_tensors="pt")
        merge = self.image_processor.merge_size ** 2
        counts = [int(thw.prod()) // merge for thw in pixels["image_grid_thw"]]
        pieces = text[0].split(IMAGE_TOKEN)
        if len(pieces) - 1 != len(images):
            raise ValueError(f"{len(pieces) - 1} {IMAGE_TOKEN} in the prompt for "
                             f"{len(images)} images")
        expanded = pieces[0] + "".join(IMAGE_TOKEN * n + rest
                                       for n, rest in zip(counts, pieces[1:]))
        enc = self.tokenizer([expanded], add_special_tokens=False, return_tensors="pt")
        is_image = enc["input_ids"] == self.image_token_id
        return {**enc, "mm_token_type_ids": is_image.to(torch.int32) * IMAGE_TOKEN_TYPE,
                "pixel_values": pixels["pixel_values"],
                "image_grid_thw": pixels["image_grid_thw"]}

    def batch_decode(self, ids, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(ids, **kwargs)


def _read_chat_template(model_dir: Path, tokenizer) -> str:
    """The template from chat_template.jinja / chat_template.json, else the tokenizer's."""
    jinja, as_json = model_dir / "chat_template.jinja", model_dir / "chat_template.json"
    if jinja.is_file():
        return jinja.read_text()
    if as_json.is_file():
        return json.loads(as_json.read_text())["chat_template"]
    if tokenizer.chat_template:
        return tokenizer.chat_template
    raise BundleError(f"no chat template in {model_dir}")


def load_vlm_processor(model_dir: str | Path):
    """``AutoProcessor`` where torchvision is installed, else :class:`QwenVLPilProcessor`."""
    from transformers import AutoProcessor
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        return AutoProcessor.from_pretrained(model_dir, local_files_only=True,
                                             trust_remote_code=False)
    return QwenVLPilProcessor.from_pretrained(Path(model_dir))


class VLMJudge:
    """Pairwise judge on a local Qwen2.5-VL checkpoint (safetensors, no remote code).

    ``compare`` runs two greedy generations of at most ``max_new_tokens`` tokens, one per image
    order. ``device``: "auto" | "cpu" | "cuda[:i]"; ``dtype``: "auto" | "float32" | "float16" |
    "bfloat16".
    """

    def __init__(self, model_dir: str | Path, *, device: str = "auto", max_new_tokens: int = 8,
                 dtype: str = "auto"):
        from transformers import Qwen2_5_VLForConditionalGeneration

        from t2i_engines.pytorch.device import loading_progress, resolve_device, resolve_dtype

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise BundleError(f"no VLM checkpoint at {model_dir} (config.json missing)")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.device = resolve_device(device)
        self.max_new_tokens = max_new_tokens
        with loading_progress(False):
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
                model_dir, dtype=resolve_dtype(dtype, self.device), local_files_only=True,
                use_safetensors=True, trust_remote_code=False)
        self.model = model.to(self.device).eval()
        self.processor = load_vlm_processor(model_dir)

    def compare(self, prompt: str, a: Sample, b: Sample, dimension: str) -> Verdict:
        """+1 if both image orders prefer ``a``, -1 if both prefer ``b``, else 0 (a tie)."""
        check_dimension(dimension)
        first = self.ask(prompt, a.image, b.image, dimension)
        swapped = self.ask(prompt, b.image, a.image, dimension)
        vote, parsed = vote_from_both_orders(parse_answer(first), parse_answer(swapped))
        return Verdict(vote, parsed, raw=f"A|B: {first!r}; B|A: {swapped!r}")

    def ask(self, prompt: str, image1: Image, image2: Image, dimension: str) -> str:
        """The model's raw reply, stripped, when ``image1`` is shown as Image 1."""
        import torch

        messages = [{"role": "user", "content": [
            {"type": "image"}, {"type": "image"},
            {"type": "text", "text": judge_question(prompt, dimension)}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)
        inputs = self.processor(text=[text], images=[image1.convert("RGB"), image2.convert("RGB")],
                                return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        pad_id = self.processor.tokenizer.pad_token_id
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, temperature=None,
                top_p=None, top_k=None, pad_token_id=pad_id)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
