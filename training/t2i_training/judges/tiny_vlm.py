"""A tiny random Qwen2.5-VL: the real ``Qwen2_5_VLForConditionalGeneration`` at toy size.

Its answers are gibberish, but loading, the chat template with two images, the image processor,
vision tokens and greedy generation run the same code as the 72B judge of arXiv 2510.12041, in
about a second on a CPU. The tokenizer is a byte-level BPE trained here, so nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

from t2i_training.judges.prompts import DIMENSION_CRITERIA, judge_question

ENDOFTEXT_TOKEN = "<|endoftext|>"
IM_START_TOKEN, IM_END_TOKEN = "<|im_start|>", "<|im_end|>"
VISION_START_TOKEN, VISION_END_TOKEN = "<|vision_start|>", "<|vision_end|>"
IMAGE_PAD_TOKEN, VIDEO_PAD_TOKEN = "<|image_pad|>", "<|video_pad|>"
SPECIAL_TOKENS = (ENDOFTEXT_TOKEN, IM_START_TOKEN, IM_END_TOKEN, VISION_START_TOKEN,
                  VISION_END_TOKEN, IMAGE_PAD_TOKEN, VIDEO_PAD_TOKEN)

# The Qwen2.5-VL Instruct template, images only: each image becomes
# <|vision_start|><|image_pad|><|vision_end|> and the processor expands the pad per patch.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TEXT_HIDDEN, TEXT_LAYERS, TEXT_HEADS, TEXT_KV_HEADS, TEXT_FFN = 64, 2, 4, 2, 128
MROPE_SECTION = [2, 3, 3]  # temporal/height/width rotary split; sums to head_dim / 2 = 8
VISION_HIDDEN, VISION_LAYERS, VISION_HEADS, VISION_FFN = 32, 2, 2, 64
PATCH, MERGE = 14, 2
# Images are resized to 28x28..56x56 px, i.e. 1 to 4 merged vision tokens each: cheap on a CPU.
MIN_PIXELS, MAX_PIXELS = (PATCH * MERGE) ** 2, (2 * PATCH * MERGE) ** 2


def _corpus() -> list[str]:
    from t2i_engines.pytorch.tiny.llm_tokenizer import training_corpus

    judge_lines = [judge_question("a red cup on a table", d) for d in DIMENSION_CRITERIA]
    return training_corpus() + judge_lines + ["1", "2", "tie", "Image 1", "Image 2"]


def _train_tokenizer(vocab_size: int):
    from t2i_engines.pytorch.tiny.llm_tokenizer import train_byte_level_bpe

    return train_byte_level_bpe(_corpus(), vocab_size, SPECIAL_TOKENS)


def _save_processor_files(out: Path, vocab_size: int):
    """Save tokenizer, chat template and image/video processor configs as Qwen2.5-VL ships them.

    ``Qwen2_5_VLProcessor`` itself cannot be built without torchvision (its video processor needs
    it), so the parts are saved one by one; ``AutoProcessor`` assembles them where torchvision is
    installed and ``vlm.load_vlm_processor`` does otherwise. Returns the tokenizer.
    """
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    # Qwen has no BOS; <|endoftext|> pads and <|im_end|> ends the assistant turn.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(vocab_size), eos_token=IM_END_TOKEN,
        pad_token=ENDOFTEXT_TOKEN, additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=4096, padding_side="left", clean_up_tokenization_spaces=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    sizes = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "patch_size": PATCH,
             "merge_size": MERGE, "temporal_patch_size": 2}
    image_processor = Qwen2VLImageProcessorPil(**sizes)
    image_processor.save_pretrained(out)
    video_config = {"video_processor_type": "Qwen2VLVideoProcessor",
                    "processor_class": "Qwen2_5_VLProcessor", **sizes}
    (out / "video_preprocessor_config.json").write_text(json.dumps(video_config, indent=2))
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return tokenizer


def build_tiny_qwen2_5_vl(out_dir: str | Path, *, seed: int = 0, vocab_size: int = 1000) -> Path:
    """Save a random ``Qwen2_5_VLForConditionalGeneration`` + processor to ``out_dir``.

    Weights are a function of ``seed`` only. Loads with ``AutoProcessor.from_pretrained`` and
    ``Qwen2_5_VLForConditionalGeneration.from_pretrained`` (safetensors, no remote code).
    Returns ``out_dir``.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _save_processor_files(out, vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    end_ids = [ids[IM_END_TOKEN], ids[ENDOFTEXT_TOKEN]]
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=TEXT_FFN,
            num_hidden_layers=TEXT_LAYERS, num_attention_heads=TEXT_HEADS,
            num_key_value_heads=TEXT_KV_HEADS, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                             "mrope_section": MROPE_SECTION},
            bos_token_id=None, eos_token_id=end_ids, pad_token_id=ids[ENDOFTEXT_TOKEN]),
        vision_config=dict(
            depth=VISION_LAYERS, hidden_size=VISION_HIDDEN, intermediate_size=VISION_FFN,
            num_heads=VISION_HEADS, patch_size=PATCH, spatial_merge_size=MERGE,
            temporal_patch_size=2, window_size=PATCH * MERGE * 2, out_hidden_size=TEXT_HIDDEN,
            fullatt_block_indexes=[VISION_LAYERS - 1]),
        image_token_id=ids[IMAGE_PAD_TOKEN], video_token_id=ids[VIDEO_PAD_TOKEN],
        vision_start_token_id=ids[VISION_START_TOKEN], vision_end_token_id=ids[VISION_END_TOKEN],
        tie_word_embeddings=False)
    # Seed a private generator state so building a model leaves the caller's RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=end_ids, pad_token_id=ids[ENDOFTEXT_TOKEN], do_sample=False,
        max_new_tokens=8)
    model.save_pretrained(out, safe_serialization=True)
    return out
