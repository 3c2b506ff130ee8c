"""The layout reply as a JSON schema: llama.cpp turns it into a grammar, so a GGUF planner's
output always parses. Parsing is not the same as right: the validators in llm_planner (box
geometry) and llm_prompt_check (objects, counts, colours, relations against the prompt) decide
whether the layout is used."""
from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS
from t2i_sdk.layout import BASIC_COLORS

LAYOUT_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "objects": {
            "type": "array",
            "maxItems": MAX_GLIGEN_OBJECTS,  # GLIGEN grounds at most 30 boxes
            "items": {
                "type": "object",
                "properties": {
                    "phrase": {"type": "string"},
                    "label": {"type": "string"},
                    "color": {"anyOf": [{"type": "string", "enum": list(BASIC_COLORS)}, {"type": "null"}]},
                    "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                },
                "required": ["phrase", "label", "color", "box"],
            },
        },
        "background": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["objects", "background"],
}
