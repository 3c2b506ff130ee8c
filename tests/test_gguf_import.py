"""t2i-train import-gguf: GGUF -> trainable transformers folder (t2i_training.gguf_import)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf", reason="the gguf package (the `llama` extra) is not installed")
torch = pytest.importorskip("torch")

from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama  # noqa: E402
from t2i_export.gguf import convert_to_gguf  # noqa: E402
from t2i_training.cli import main  # noqa: E402

TEXTS = ["a photo of two red cats on the left of a dog in a park.",
         "Hello   world\n\n  tabs\there 12345 don't"]
MESSAGES = [{"role": "user", "content": "a red cat on the left of a blue dog"}]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama, tmp_path_factory) -> Path:
    return convert_to_gguf(tiny_llama, tmp_path_factory.mktemp("gguf") / "tiny.gguf",
                           out_type="f32")


@pytest.fixture(scope="module")
def imported(tiny_gguf, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "tiny-hf"
    assert main(["--quiet", "import-gguf", str(tiny_gguf), str(out)]) == 0
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_matches_original_logits(tiny_llama, imported):
    from transformers import AutoModelForCausalLM

    original = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    reloaded = AutoModelForCausalLM.from_pretrained(imported, use_safetensors=True,
                                                    dtype=torch.float32).eval()
    ids = torch.tensor([[1, 5, 17, 42, 99, 3, 7]]) % original.config.vocab_size
    with torch.no_grad():
        expected, actual = original(ids).logits, reloaded(ids).logits
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
    config = json.loads((imported / "config.json").read_text())
    assert "quantization_config" not in config
    assert list(imported.glob("*.safetensors")) and not list(imported.glob("*.bin"))


def test_import_keeps_tokenizer_and_chat_template(tiny_llama, imported):
    from transformers import AutoTokenizer

    original = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(imported)
    assert tokenizer.chat_template is not None
    assert tokenizer.model_max_length < 1e12
    for text in TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert ids == original.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text
    prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert MESSAGES[0]["content"] in prompt


def test_import_records_its_source(tiny_gguf, imported, capsys):
    source = json.loads((imported / "gguf_source.json").read_text())
    assert source["file"] == tiny_gguf.name
    assert source["sha256"] == _sha256(tiny_gguf)
    assert source["bytes"] == tiny_gguf.stat().st_size
    assert source["architecture"] == "llama"
    assert source["file_type"] == "ALL_F32"
    assert source["parameters"] > 0 and source["transformers"]


def test_import_prints_folder_parameters_and_hash(tiny_gguf, tmp_path, capsys):
    out = tmp_path / "out"
    sha = _sha256(tiny_gguf)
    assert main(["--quiet", "import-gguf", str(tiny_gguf), str(out), "--sha256", sha]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and sha in printed and "parameters:" in printed
    assert main(["--quiet", "import-gguf", str(tiny_gguf), str(out), "--overwrite"]) == 0


def _unsupported_arch_gguf(path: Path) -> Path:
    import numpy as np

    writer = gguf.GGUFWriter(path, "rwkv6")
    writer.add_chat_template("{{ messages }}")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _bad_inputs(tiny_gguf: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    not_gguf = tmp / "notes.gguf"
    not_gguf.write_text("hello, not a model\n")
    truncated = tmp / "half.gguf"
    data = tiny_gguf.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    rwkv = _unsupported_arch_gguf(tmp / "rwkv.gguf")
    return {"not_gguf": ([str(not_gguf)], "not a GGUF file"),
            "truncated": ([str(truncated)], "truncated"),
            "unsupported": ([str(rwkv)], "'rwkv6' is not supported"),
            "sha_mismatch": ([str(tiny_gguf), "--sha256", "0" * 64], "sha256 mismatch"),
            "missing": ([str(tmp / "absent.gguf")], "no such file")}


@pytest.mark.parametrize("case", ["not_gguf", "truncated", "unsupported", "sha_mismatch",
                                  "missing"])
def test_bad_input_is_one_line_and_writes_nothing(case, tiny_gguf, tmp_path, capsys):
    (tmp_path / "inputs").mkdir()
    args, message = _bad_inputs(tiny_gguf, tmp_path / "inputs")[case]
    out = tmp_path / "out"
    assert main(["import-gguf", *args[:1], str(out), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2i-train: error:") and err.count("\n") == 1, err
    assert message in err and args[0] in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["inputs"]  # no temp folder left behind


def test_existing_out_dir_is_refused(tiny_gguf, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["import-gguf", str(tiny_gguf), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2i-train: error:") and err.count("\n") == 1 and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_gguf_without_chat_template_is_refused(tiny_gguf, tmp_path):
    import numpy as np

    from t2i_sdk.errors import InputError
    from t2i_training.gguf_import import import_gguf, read_header

    path = tmp_path / "plain.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert not read_header(path).has_chat_template
    assert read_header(tiny_gguf).has_chat_template
    with pytest.raises(InputError, match="no tokenizer.chat_template"):
        import_gguf(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_real_smollm2_folder_loads_and_generates(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from t2i_training.pretrained import GGUF_SHA256

    REAL_MODEL = smollm2_dir
    torch.set_num_threads(1)
    assert json.loads((REAL_MODEL / "gguf_source.json").read_text())["sha256"] == GGUF_SHA256
    model = AutoModelForCausalLM.from_pretrained(REAL_MODEL, use_safetensors=True,
                                                 dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(REAL_MODEL)
    assert abs(sum(p.numel() for p in model.parameters()) - 134.5e6) < 1e6
    assert tokenizer.chat_template is not None
    ids = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    new = out[0, ids["input_ids"].shape[1]:]
    assert 1 <= len(new) <= 8
    assert tokenizer.decode(new, skip_special_tokens=True).strip()
