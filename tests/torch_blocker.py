"""Run a Python snippet as if torch, diffusers and transformers were not installed: importing
any of them raises ImportError, as in a venv with only ``t2i-sdk[onnx]``. Used by the tests
of the torch-free runtime (``python tests/torch_blocker.py -c CODE`` or ``-m MODULE ARGS``)."""
from __future__ import annotations

import importlib.abc
import runpy
import sys

BLOCKED = ("torch", "torchvision", "diffusers", "transformers", "accelerate", "peft")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the torch-free runtime must not import it")
        return None


def main() -> None:
    sys.meta_path.insert(0, _Blocker())
    flag, what, *rest = sys.argv[1:]
    sys.argv = [what, *rest]
    if flag == "-c":
        exec(compile(what, "<torch-free>", "exec"), {"__name__": "__main__"})
    elif flag == "-m":
        runpy.run_module(what, run_name="__main__", alter_sys=True)
    else:
        raise SystemExit(f"usage: {sys.argv[0]} -c CODE | -m MODULE [ARGS]")
    leaked = sorted(m for m in sys.modules if m.split(".", 1)[0] in BLOCKED)
    if leaked:
        raise SystemExit(f"imported anyway: {leaked}")


if __name__ == "__main__":
    main()
