"""What ``Pipeline.close`` leaves behind: stand-ins that refuse use, and the release of the
stages' models (those holding native resources, such as llama.cpp's, are closed)."""
from __future__ import annotations

from t2i_sdk.errors import PipelineClosed


class ClosedStage:
    """Stands in for a stage of a closed ``Pipeline``: any use raises ``PipelineClosed``."""

    __slots__ = ("_role",)

    def __init__(self, role: str):
        self._role = role

    def __getattr__(self, name):
        if name.startswith("__"):  # copy, pickle, inspect: behave like a plain object
            raise AttributeError(name)
        raise PipelineClosed(f"this Pipeline is closed (its {self._role} was released); "
                             "load the bundle again to generate")

    def __repr__(self) -> str:
        return f"<closed {self._role}>"


def closed_stage(stage, role: str) -> ClosedStage | None:
    """The stand-in for ``stage``; None stays None (the pipeline never had that stage)."""
    return None if stage is None else ClosedStage(role)


def release_stages(stages) -> None:
    """Close every stage, or the chat model an LLM stage wraps (``.lm``), that has a
    ``close`` method, each object once; the others are left to the garbage collector. The
    first error is raised after every close was tried."""
    seen, first_error = set(), None
    for stage in stages:
        for obj in (stage, getattr(stage, "lm", None)):
            close = getattr(obj, "close", None)
            if obj is None or id(obj) in seen or not callable(close):
                continue
            seen.add(id(obj))
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - the others still get closed
                first_error = first_error or exc
    if first_error is not None:
        raise first_error
