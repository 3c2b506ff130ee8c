# Two commands for a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A bare `torch` resolves to a multi-GB CUDA build; pin the CPU wheel unless told otherwise
# (on a CUDA machine: make TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128").
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-all bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[torch,onnx,llama,train,test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/t2i demo --out demo_out

test: install
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/pipeline_overhead.py
	$(PY) benchmarks/shapes_table.py

clean:
	rm -rf demo_bundle demo_out .pytest_cache
