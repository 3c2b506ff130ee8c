"""The llama.cpp engine's context window: by default no longer than the GGUF says the model
was trained with (``<arch>.context_length``), read from the header before llama.cpp loads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf", reason="the gguf package (the `llama` extra) is not installed")

from gguf_support import MESSAGES, needs_llama_cpp  # noqa: E402
from t2i_engines.errors import EngineSettingsError, ModelFilesError  # noqa: E402
from t2i_engines.llamacpp.gguf_header import GGUFHeaderError, context_length  # noqa: E402

TRAINED = 512  # llama.cpp pads a context to a multiple of 256: smaller would be padded past it


@pytest.fixture(scope="module")
def short_gguf(tmp_path_factory) -> Path:
    """The tiny random Llama with ``max_position_embeddings`` = TRAINED, as a q8_0 GGUF."""
    pytest.importorskip("torch")
    from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama
    from t2i_export.gguf import convert_to_gguf

    model = build_tiny_llama(tmp_path_factory.mktemp("short_llama"))
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = TRAINED
    (model / "config.json").write_text(json.dumps(config))
    return convert_to_gguf(model, tmp_path_factory.mktemp("gguf") / "short.gguf", out_type="q8_0")


def _write(path: Path, arch: str = "llama", context: int | None = None, *,
           endianess=None) -> Path:
    kwargs = {"endianess": endianess} if endianess is not None else {}
    writer = gguf.GGUFWriter(path, arch, **kwargs)
    writer.add_string("general.name", "header only")
    writer.add_token_list([f"tok{i}" for i in range(3000)])  # a string array to skip over
    writer.add_array("extra.nested", [[1, 2], [3]])
    if context is not None:
        writer.add_context_length(context)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


# --- the header reader (pure Python) ---------------------------------------------------------

def test_header_context_length_of_the_exported_model(short_gguf):
    assert context_length(short_gguf) == TRAINED


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_header_context_length_is_read_past_arrays_for_any_architecture(tmp_path, arch):
    assert context_length(_write(tmp_path / "m.gguf", arch, 777)) == 777


def test_header_of_a_big_endian_file(tmp_path):
    path = _write(tmp_path / "be.gguf", "llama", 333, endianess=gguf.GGUFEndian.BIG)
    assert context_length(path) == 333


def test_header_without_a_context_length_says_none(tmp_path):
    assert context_length(_write(tmp_path / "m.gguf", "llama")) is None


def test_another_architectures_context_length_does_not_count(tmp_path):
    writer = gguf.GGUFWriter(tmp_path / "m.gguf", "llama")
    writer.add_uint32("qwen2.context_length", 128)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    assert context_length(tmp_path / "m.gguf") is None


def test_not_a_gguf_or_cut_short_is_a_header_error(tmp_path, short_gguf):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(GGUFHeaderError, match="not a GGUF"):
        context_length(bad)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(short_gguf.read_bytes()[:200])
    with pytest.raises(GGUFHeaderError, match="cut short"):
        context_length(cut)


def test_context_size_rule():
    from t2i_engines.llamacpp.causal_lm import DEFAULT_N_CTX, context_size

    assert DEFAULT_N_CTX == 2048
    assert context_size(None, 1024) == 1024  # default capped at the trained length
    assert context_size(None, 8192) == 2048
    assert context_size(None, None) == 2048  # header silent: the default
    assert context_size(4096, 1024) == 1024  # a request past the trained length is capped too
    assert context_size(256, 1024) == 256
    assert context_size(4096, None) == 4096
    with pytest.raises(EngineSettingsError):
        context_size(-1, 1024)


# --- the engine ----------------------------------------------------------------------------

@needs_llama_cpp
@pytest.mark.parametrize("requested, expected", [(None, TRAINED), (4096, TRAINED), (256, 256)])
def test_engine_opens_no_more_context_than_the_model_was_trained_with(short_gguf, capfd,
                                                                      requested, expected):
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine

    with LlamaCppEngine.load(short_gguf, device="cpu", n_ctx=requested) as lm:
        assert lm.llm.n_ctx() == expected
        assert int(lm.llm.metadata["llama.context_length"]) == TRAINED  # llama.cpp agrees
        assert len(lm.generate(MESSAGES, n=1, seed=0, max_new_tokens=4)) == 1
    assert lm.closed
    err = capfd.readouterr().err
    assert "n_ctx_train" not in err and "training context overflow" not in err, err


@needs_llama_cpp
def test_engine_refuses_a_file_whose_header_is_not_gguf(tmp_path):
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00")  # cut short after the version
    with pytest.raises(ModelFilesError, match="GGUF header"):
        LlamaCppEngine.load(bad, device="cpu")


@needs_llama_cpp
def test_closed_engine_refuses_to_generate(short_gguf):
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine

    lm = LlamaCppEngine.load(short_gguf, device="cpu")
    lm.close()
    lm.close()  # idempotent
    with pytest.raises(EngineSettingsError, match="closed"):
        lm.generate(MESSAGES, n=1, seed=0)
    with pytest.raises(EngineSettingsError, match="closed"):
        lm.count_tokens("a cat")
