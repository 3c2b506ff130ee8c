"""Layout planners for the plan stage: prompt -> ``t2i_sdk.layout.Layout``.

``RulePlanner`` parses counts, colors and spatial relations without a model; ``LLMPlanner``
asks a chat model for JSON boxes and falls back to the rule planner on any failure.
"""
from t2i_sdk.planning.llm_planner import LayoutJSONError, LLMPlanner, layout_from_json
from t2i_sdk.planning.rule_planner import RulePlanner

__all__ = ["RulePlanner", "LLMPlanner", "layout_from_json", "LayoutJSONError"]
