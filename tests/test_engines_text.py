"""Tiny random Llama / CLIP builders, the chat tokenizer, CausalLMEngine and ClipScorerEngine."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from t2i_engines.pytorch.causal_lm import CausalLMEngine  # noqa: E402
from t2i_engines.pytorch.clip_scorer import ClipScorerEngine  # noqa: E402
from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama  # noqa: E402
from t2i_engines.pytorch.tiny.clip_model import PROJECTION_DIM, build_tiny_clip  # noqa: E402
from t2i_engines.pytorch.tiny.llm_tokenizer import train_llm_tokenizer  # noqa: E402

MESSAGES = [{"role": "system", "content": "Rewrite the prompt."},
            {"role": "user", "content": "two red cats on the left of a blue car"}]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("llama"), seed=0)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"), seed=0)


@pytest.fixture(scope="module")
def llm(llama_dir):
    return CausalLMEngine.load(llama_dir, device="cpu")


@pytest.fixture(scope="module")
def clip(clip_dir):
    return ClipScorerEngine.load(clip_dir, device="cpu", batch_size=4)


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _images(n: int) -> list:
    """Distinct images of varied sizes: a gradient whose direction and tint depend on i."""
    out = []
    for i in range(n):
        w, h = 40 + 3 * i, 48 - 2 * i
        x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
        y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
        rgb = np.stack([x, y, np.full_like(x, 25.0 * i)], -1) if i % 2 else np.stack(
            [y, np.full_like(x, 20.0 * i), x], -1)
        out.append(Image.fromarray(rgb.astype(np.uint8)))
    return out


# --- chat tokenizer -------------------------------------------------------------------------

def test_llm_tokenizer_loads_with_chat_template(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(train_llm_tokenizer(tmp_path))
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (
        "<|begin_of_text|>", "<|eot_id|>", "<|pad|>")
    text = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                    "Rewrite the prompt.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                    "two red cats on the left of a blue car<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")
    no_prompt = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=False)
    assert not no_prompt.endswith("assistant<|end_header_id|>\n\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids, skip_special_tokens=True) == "system\n\nRewrite the prompt.user\n\n" \
        "two red cats on the left of a blue carassistant\n\n"


def test_llm_tokenizer_learned_prompt_and_json_merges(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(train_llm_tokenizer(tmp_path, vocab_size=2000))
    assert 300 < len(tok) <= 2000
    layout = json.dumps({"objects": [{"phrase": "a red cat", "label": "cat", "color": "red",
                                      "box": [0.1, 0.25, 0.5, 0.75]}], "background": "park"})
    # Words and JSON keys are merged, not left as bytes (numbers split at "." as in GPT-2).
    for text, max_bytes_per_token in ((layout, 2), ("a photo of three blue cups on a table", 4)):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert len(ids) * max_bytes_per_token < len(text.encode())
        assert tok.decode(ids) == text  # byte-level: lossless round trip


# --- tiny builders --------------------------------------------------------------------------

def test_tiny_llama_deterministic_and_loadable(llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    again = build_tiny_llama(tmp_path / "again", seed=0)
    other = build_tiny_llama(tmp_path / "other", seed=1)
    assert _same_weights(_weights(llama_dir), _weights(again))
    assert (llama_dir / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()
    assert not _same_weights(_weights(llama_dir), _weights(other))
    model = AutoModelForCausalLM.from_pretrained(llama_dir)
    assert isinstance(model, LlamaForCausalLM)
    assert sum(p.numel() for p in model.parameters()) * 4 < 3_000_000  # < 3 MB of fp32
    assert json.loads((llama_dir / "generation_config.json").read_text())["eos_token_id"]


def test_tiny_clip_deterministic_and_loadable(clip_dir, tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    again = build_tiny_clip(tmp_path / "again", seed=0)
    other = build_tiny_clip(tmp_path / "other", seed=1)
    assert _same_weights(_weights(clip_dir), _weights(again))
    assert not _same_weights(_weights(clip_dir), _weights(other))
    model = CLIPModel.from_pretrained(clip_dir)
    processor = CLIPProcessor.from_pretrained(clip_dir)
    assert model.config.projection_dim == PROJECTION_DIM
    assert processor.tokenizer.model_max_length == model.config.text_config.max_position_embeddings


def test_builders_leave_global_rng_alone(tmp_path):
    state = torch.get_rng_state()
    build_tiny_clip(tmp_path, seed=3)
    assert torch.equal(state, torch.get_rng_state())


# --- CausalLMEngine -------------------------------------------------------------------------

def test_generate_returns_n_new_texts(llm):
    out = llm.generate(MESSAGES, n=3, seed=0, max_new_tokens=16)
    assert len(out) == 3 and all(isinstance(s, str) for s in out)
    assert any(out)
    for s in out:  # only the continuation: no prompt echo, no surrounding whitespace
        assert "two red cats on the left of a blue car" not in s
        assert s == s.strip()


def test_generate_seeded(llm):
    a = llm.generate(MESSAGES, n=4, seed=7, max_new_tokens=24)
    b = llm.generate(MESSAGES, n=4, seed=7, max_new_tokens=24)
    c = llm.generate(MESSAGES, n=4, seed=8, max_new_tokens=24)
    assert a == b
    assert a != c
    assert len(set(a)) > 1  # the n samples differ from one another too


def test_generate_leaves_global_rng_alone(llm):
    state = torch.get_rng_state()
    llm.generate(MESSAGES, n=2, seed=1, max_new_tokens=4)
    assert torch.equal(state, torch.get_rng_state())


def test_generate_greedy_copies(llm):
    a = llm.generate(MESSAGES, n=3, seed=0, temperature=0, max_new_tokens=16)
    b = llm.generate(MESSAGES, n=2, seed=99, temperature=0, max_new_tokens=16)
    assert len(a) == 3 and len(set(a)) == 1 and a[0]
    assert b == a[:2]  # greedy ignores the seed


def test_generate_edge_cases(llm):
    from t2i_engines.errors import EngineSettingsError

    assert llm.generate(MESSAGES, n=0, seed=0) == []
    with pytest.raises(EngineSettingsError):
        llm.generate([], n=1, seed=0)
    with pytest.raises(EngineSettingsError):
        llm.generate(MESSAGES, n=1, seed=0, top_p=0)


def test_count_tokens(llm):
    assert llm.count_tokens("") == 0
    text = "a photo of two red cats"
    assert llm.count_tokens(text) == len(llm.tokenizer.tokenize(text)) > 0
    assert llm.count_tokens(text + " on a table") > llm.count_tokens(text)


def test_load_missing_dir_is_bundle_error(tmp_path):
    from t2i_engines.errors import ModelFilesError

    with pytest.raises(ModelFilesError):
        CausalLMEngine.load(tmp_path / "nope", device="cpu")
    with pytest.raises(ModelFilesError):
        ClipScorerEngine.load(tmp_path / "nope", device="cpu")


# --- ClipScorerEngine -----------------------------------------------------------------------

def test_embed_images_shape_norm_determinism(clip):
    images = _images(10)  # more than batch_size=4: three internal batches
    a = clip.embed_images(images)
    assert a.shape == (10, PROJECTION_DIM) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, clip.embed_images(images))
    assert np.abs(a[0] - a[1]).max() > 1e-3  # different images, different embeddings


def test_embed_images_permutation_and_modes(clip):
    images = _images(6)
    order = [3, 0, 5, 1, 4, 2]
    a = clip.embed_images(images)
    b = clip.embed_images([images[i] for i in order])
    np.testing.assert_allclose(b, a[order], atol=1e-5)
    gray = clip.embed_images([images[0].convert("L"), images[0].convert("RGBA")])
    np.testing.assert_allclose(gray[1], a[0], atol=1e-5)  # RGBA -> RGB drops only alpha
    assert gray.shape == (2, PROJECTION_DIM)


def test_embed_texts_shape_norm_padding(clip):
    texts = ["a red cat", "two blue cups on a wooden table in a kitchen", "", "a dog"] * 2
    t = clip.embed_texts(texts + ["a green tree"])
    assert t.shape == (9, PROJECTION_DIM) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    alone = clip.embed_texts(["a red cat"])  # no padding vs padded next to a longer text
    np.testing.assert_allclose(alone[0], t[0], atol=1e-5)
    assert np.abs(t[0] - t[3]).max() > 1e-3


def test_embed_texts_truncates_long_text(clip):
    long_a = "a red cat next to a blue dog " * 60
    long_b = long_a + "and a purple elephant " * 20  # differs only past the 77-token limit
    t = clip.embed_texts([long_a, long_b, "a red cat"])
    np.testing.assert_allclose(t[0], t[1], atol=1e-5)
    assert np.abs(t[0] - t[2]).max() > 1e-3


def test_empty_inputs(clip):
    assert clip.embed_images([]).shape == (0, PROJECTION_DIM)
    assert clip.embed_texts([]).shape == (0, PROJECTION_DIM)
    assert clip.embed_texts([]).dtype == np.float32
