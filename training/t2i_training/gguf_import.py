"""Turn a llama.cpp-family GGUF into a trainable transformers folder (fp32 safetensors).

The GGUF is checked before anything is loaded (hash, magic, tensor extents, architecture,
chat template); the folder is written all-or-nothing, with ``gguf_source.json`` recording
where it came from.
"""
from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from t2i_sdk.bundle.hashing import sha256_file
from t2i_sdk.errors import InputError

SOURCE_FILE = "gguf_source.json"
# transformers' GGUF loader spells some llama.cpp architectures differently.
_ARCH_ALIASES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss",
                 "minimax-m2": "minimax_m2"}
# Entries of transformers' list that are not causal-LM architectures.
_NOT_CAUSAL_LM = {"general", "tokenizer", "t5", "umt5", "t5encoder"}


@dataclass(frozen=True)
class ImportedModel:
    """What ``import_gguf`` wrote."""

    out_dir: Path
    sha256: str
    parameters: int


@dataclass(frozen=True)
class GGUFHeader:
    """The few header facts the import needs."""

    architecture: str
    file_type: str | None
    has_chat_template: bool


def supported_architectures() -> list[str]:
    """llama.cpp architecture names transformers can load as a causal LM from GGUF."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    names = set(GGUF_SUPPORTED_ARCHITECTURES) - _NOT_CAUSAL_LM
    names |= {alias for alias, name in _ARCH_ALIASES.items() if name in names}
    return sorted(names)


def read_header(path: Path) -> GGUFHeader:
    """Parse ``path``'s GGUF header; InputError for anything that is not a whole GGUF file."""
    import gguf

    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise InputError(f"{path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as exc:  # gguf-py raises ValueError/IndexError/... on damaged headers
        raise InputError(f"{path}: damaged or truncated GGUF file ({_one_line(exc)})") from None
    size = path.stat().st_size
    for tensor in reader.tensors:
        if int(tensor.data_offset) + int(tensor.n_bytes) > size:
            raise InputError(f"{path}: truncated: tensor {tensor.name} ends at byte "
                             f"{int(tensor.data_offset) + int(tensor.n_bytes)}, file has {size}")
    if not reader.tensors:
        raise InputError(f"{path}: GGUF file holds no tensors")
    architecture = _field(reader, "general.architecture")
    if not isinstance(architecture, str):
        raise InputError(f"{path}: GGUF header has no general.architecture")
    file_type = _field(reader, "general.file_type")
    if isinstance(file_type, int):
        try:
            file_type = gguf.LlamaFileType(file_type).name
        except ValueError:
            file_type = str(file_type)
    return GGUFHeader(architecture, file_type if isinstance(file_type, str) else None,
                      isinstance(_field(reader, "tokenizer.chat_template"), str))


def import_gguf(gguf_path: str | Path, out_dir: str | Path, *, expected_sha256: str | None = None,
                overwrite: bool = False, console=None) -> ImportedModel:
    """Write ``gguf_path`` as an fp32 transformers checkpoint + tokenizer into ``out_dir``.

    ``console``: a rich Console for a spinner on what takes time (None: silent).
    Raises InputError for a missing, damaged, unsupported or mismatching file, or an existing
    ``out_dir`` without ``overwrite``.
    """
    from t2i_sdk.bundle.atomic import atomic_directory

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if not gguf_path.is_file():
        raise InputError(f"{gguf_path}: no such file")
    if (out_dir.exists() or out_dir.is_symlink()) and not overwrite:
        raise InputError(f"{out_dir}: already exists (pass --overwrite to replace it)")
    with console_status(console, f"hashing {gguf_path.name}"):
        sha256 = sha256_file(gguf_path)
    if expected_sha256 and sha256 != expected_sha256.lower():
        raise InputError(f"{gguf_path}: sha256 mismatch: expected {expected_sha256.lower()}, "
                         f"got {sha256}")
    header = read_header(gguf_path)
    supported = supported_architectures()
    if header.architecture not in supported:
        raise InputError(f"{gguf_path}: architecture {header.architecture!r} is not supported "
                         f"by transformers' GGUF loader (supported: {', '.join(supported)})")
    if not header.has_chat_template:
        raise InputError(f"{gguf_path}: GGUF has no tokenizer.chat_template; a chat model is "
                         f"needed")
    with console_status(console, f"loading {gguf_path.name} (dequantizing to fp32)"):
        model, tokenizer = _load(gguf_path)
    parameters = sum(p.numel() for p in model.parameters())
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with console_status(console, f"writing {out_dir}"), _no_transformers_bars():
            _save(model, tokenizer, tmp, gguf_path)
        source = {"file": gguf_path.name, "sha256": sha256, "bytes": gguf_path.stat().st_size,
                  "architecture": header.architecture, "file_type": header.file_type,
                  "parameters": parameters, "transformers": _transformers_version()}
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
    return ImportedModel(out_dir, sha256, parameters)


def _load(gguf_path: Path):
    """Load via transformers' GGUF path, then rebuild as a plain (serialisable) fp32 model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_path.name}
    try:
        with _no_transformers_bars():
            loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32,
                                                          **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    except (ValueError, KeyError, OSError, RuntimeError, TypeError, IndexError) as exc:
        raise InputError(f"{gguf_path}: transformers could not load it "
                         f"({_one_line(exc)})") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    return model.eval(), tokenizer


def _save(model, tokenizer, folder: Path, gguf_path: Path) -> None:
    from transformers import AutoTokenizer

    model.save_pretrained(folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    if config.pop("quantization_config", None) is not None:
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if max_positions and tokenizer.model_max_length > 1e12:  # GGUF tokenizers carry no limit
        tokenizer.model_max_length = max_positions
    tokenizer.save_pretrained(folder)
    for path in folder.iterdir():
        path.chmod(0o644)  # safetensors are written 0600; the folder is meant to be shared
    if AutoTokenizer.from_pretrained(folder).chat_template is None:
        raise InputError(f"{gguf_path}: the chat template was lost when saving the tokenizer")


def _field(reader, key: str):
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except Exception:
        return None


def console_status(console, message: str):
    """A rich spinner showing ``message`` on ``console``; nothing when ``console`` is None."""
    return console.status(message) if console is not None else nullcontext()


@contextmanager
def _no_transformers_bars():
    """transformers' tqdm bars would fight the rich spinner (the GGUF one ignores its switch)."""
    from functools import partial

    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:
        gguf_utils.tqdm = partial(bar, disable=True)
    try:
        yield
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar
        if was_enabled:
            hf_logging.enable_progress_bar()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _transformers_version() -> str:
    import transformers

    return transformers.__version__
