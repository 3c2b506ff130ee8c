"""Pairwise judges: which of two renders better serves the user's prompt, per reward dimension.

``ProgrammaticJudge`` scores texts with a function (known preferences, tests); ``VLMJudge``
asks a local Qwen2.5-VL; ``HTTPJudge`` asks an OpenAI-compatible server. Importing this package
does not import torch or transformers.
"""
from t2i_training.judges.http_judge import HTTPJudge, JudgeServerError
from t2i_training.judges.programmatic import ProgrammaticJudge, keeps_objects_adds_color
from t2i_training.judges.prompts import judge_question, parse_answer
from t2i_training.judges.protocol import REWARD_DIMENSIONS, PairwiseJudge, Sample, Verdict
from t2i_training.judges.vlm import VLMJudge

__all__ = [
    "REWARD_DIMENSIONS", "PairwiseJudge", "Sample", "Verdict",
    "ProgrammaticJudge", "keeps_objects_adds_color",
    "VLMJudge", "HTTPJudge", "JudgeServerError",
    "judge_question", "parse_answer",
]
