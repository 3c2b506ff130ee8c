"""LLMPlanner: validated JSON layouts, and the rule planner with a noted reason otherwise."""
from __future__ import annotations

import json

import pytest

from t2i_sdk.layout import Layout, LayoutObject
from t2i_sdk.planning import LLMPlanner, RulePlanner, layout_from_json
from t2i_sdk.planning.llm_planner import DEFAULT_SYSTEM_PROMPT, FALLBACK_NOTE, LayoutJSONError

PROMPT = "two red apples to the left of a blue cup in a kitchen"
GOOD = {
    "objects": [
        {"phrase": "a red apple", "label": "apple", "color": "red", "box": [0.05, 0.3, 0.28, 0.6]},
        {"phrase": "a red apple", "label": "apples", "color": "red", "box": [0.32, 0.3, 0.55, 0.6]},
        {"phrase": "a blue cup", "label": "cup", "color": "blue", "box": [0.62, 0.25, 0.95, 0.7]},
    ],
    "background": "in a kitchen",
}


class FakeLM:
    """Returns a fixed reply (or raises it) and records how it was called."""

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[dict] = []

    def generate(self, messages, n, seed, temperature, top_p, max_new_tokens):
        self.calls.append(dict(messages=messages, n=n, seed=seed, temperature=temperature,
                               top_p=top_p, max_new_tokens=max_new_tokens))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply if isinstance(self.reply, list) else [self.reply]


def with_objects(*objects, **extra) -> str:
    return json.dumps({"objects": list(objects), "background": None, **extra})


def obj(label="apple", box=(0.1, 0.1, 0.4, 0.4), color="red", phrase="a red apple") -> dict:
    return {"phrase": phrase, "label": label, "color": color, "box": list(box)}


def assert_fell_back(layout: Layout, prompt: str, reason_part: str) -> None:
    assert layout.source == "rule"
    assert layout.notes[0].startswith(FALLBACK_NOTE), layout.notes
    assert reason_part in layout.notes[0], layout.notes[0]
    assert layout.objects == RulePlanner().plan(prompt).objects


def test_valid_json_gives_llm_layout_and_greedy_call():
    lm = FakeLM(json.dumps(GOOD))
    layout = LLMPlanner(lm, max_new_tokens=123).plan(PROMPT)
    assert layout.source == "llm" and layout.notes == ()
    labels_colors = [(o.label, o.color) for o in layout.objects]
    assert labels_colors == [("apple", "red")] * 2 + [("cup", "blue")]
    assert layout.objects[2].box == (0.62, 0.25, 0.95, 0.7)
    assert layout.background == "in a kitchen"
    (call,) = lm.calls
    assert call["n"] == 1 and call["temperature"] == 0 and call["max_new_tokens"] == 123
    assert [m["role"] for m in call["messages"]] == ["system", "user"]
    assert call["messages"][0]["content"] == DEFAULT_SYSTEM_PROMPT
    assert call["messages"][1]["content"] == PROMPT


def test_default_system_prompt_asks_for_the_schema_with_an_example():
    for key in ('"objects"', '"phrase"', '"label"', '"color"', '"box"', '"background"'):
        assert key in DEFAULT_SYSTEM_PROMPT
    assert "Example" in DEFAULT_SYSTEM_PROMPT


def test_custom_system_prompt_is_sent():
    lm = FakeLM(json.dumps(GOOD))
    LLMPlanner(lm, system_prompt="be brief").plan(PROMPT)
    assert lm.calls[0]["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize("template", [
    "Sure! Here is the layout:\n```json\n{}\n```\nHope this helps.",
    "```\n{}\n```",
    "Layout {{not json}} follows: {} and then {{\"x\": 1}}",
])
def test_json_inside_prose_or_code_fence(template):
    layout = LLMPlanner(FakeLM(template.format(json.dumps(GOOD)))).plan(PROMPT)
    assert layout.source == "llm" and len(layout.objects) == 3


@pytest.mark.parametrize("reply,reason", [
    ("I cannot draw boxes.", "no JSON object"),
    ('{"objects": [ {"label": "apple", ', "no JSON object"),
    ("[1, 2, 3]", "no JSON object"),
    ('{"layout": []}', "'objects' is missing"),
    ('{"objects": {"label": "apple"}}', "'objects' is missing or not a list"),
    ('{"objects": []}', "no valid object left"),
    ('{"objects": ["apple"]}', "object 0 is not a JSON object"),
    (with_objects(obj(color="golden")), "not a basic color"),
    (with_objects(obj(color=3)), "not a string or null"),
    (with_objects(obj(label=5)), "label 5"),
    (with_objects(obj(label="")), "label ''"),
    (with_objects(obj(phrase=["a"])), "phrase"),
    (with_objects({"label": "apple", "color": None}), "no box"),
    (with_objects(obj(), background=7), "background 7"),
])
def test_bad_replies_fall_back_with_reason(reply, reason):
    layout = LLMPlanner(FakeLM(reply)).plan(PROMPT)
    assert_fell_back(layout, PROMPT, reason)


def test_label_not_in_prompt_falls_back():
    reply = with_objects(obj(), obj(label="giraffe", color=None, box=(0.5, 0.5, 0.9, 0.9)))
    layout = LLMPlanner(FakeLM(reply)).plan(PROMPT)
    assert_fell_back(layout, PROMPT, "label 'giraffe' not in prompt")


def test_plural_and_multiword_labels_are_accepted_as_singular():
    prompt = "a photo of two wine glasses and three mice"
    reply = with_objects(obj("wine glasses", color=None, box=(0.1, 0.1, 0.4, 0.4)),
                         obj("mice", color=None, box=(0.5, 0.5, 0.9, 0.9)))
    layout = LLMPlanner(FakeLM(reply)).plan(prompt)
    assert layout.source == "llm"
    assert [o.label for o in layout.objects] == ["wine glass", "mouse"]


def test_lm_raising_falls_back():
    layout = LLMPlanner(FakeLM(RuntimeError("CUDA out of memory"))).plan(PROMPT)
    assert_fell_back(layout, PROMPT, "language model raised RuntimeError: CUDA out of memory")


class RawLM:
    """Returns ``replies`` unchanged, whatever its type."""

    def __init__(self, replies):
        self.replies = replies

    def generate(self, messages, n, seed, temperature, top_p, max_new_tokens):
        return self.replies


@pytest.mark.parametrize("replies", [[], [None], "a bare string", None])
def test_lm_returning_no_text_falls_back(replies):
    layout = LLMPlanner(RawLM(replies)).plan(PROMPT)
    assert_fell_back(layout, PROMPT, "not a list of strings")


def test_out_of_range_box_is_clamped_and_noted():
    reply = with_objects(obj(box=(-0.2, 0.1, 1.3, 0.5)))
    layout = LLMPlanner(FakeLM(reply)).plan(PROMPT)
    assert layout.source == "llm"
    assert layout.objects[0].box == (0.0, 0.1, 1.0, 0.5)
    assert len(layout.notes) == 1 and "clamped to [0, 1]" in layout.notes[0]


def test_inverted_box_is_swapped_and_noted():
    layout = LLMPlanner(FakeLM(with_objects(obj(box=(0.6, 0.7, 0.2, 0.1))))).plan(PROMPT)
    assert layout.source == "llm"
    assert layout.objects[0].box == (0.2, 0.1, 0.6, 0.7)
    assert "inverted corners swapped" in layout.notes[0]


@pytest.mark.parametrize("bad_box", [(0.5, 0.5, 0.505, 0.9), (0.1, 0.1, 0.4), ("a", 0, 1, 1),
                                     (0.1, 0.1, float("nan"), 0.5)])
def test_degenerate_box_is_dropped_and_noted(bad_box):
    good = obj(label="cup", color="blue", phrase="a blue cup", box=(0.6, 0.2, 0.9, 0.6))
    reply = json.dumps({"objects": [obj(box=bad_box), good]})  # NaN is valid to json.loads
    layout = LLMPlanner(FakeLM(reply)).plan(PROMPT)
    assert layout.source == "llm"
    assert [o.label for o in layout.objects] == ["cup"]
    assert len(layout.notes) == 1 and "dropped box" in layout.notes[0]


def test_all_boxes_dropped_falls_back():
    reply = with_objects(obj(box=(0.5, 0.5, 0.5, 0.5)), obj(box=(2, 2, 3, 3)))
    layout = LLMPlanner(FakeLM(reply)).plan(PROMPT)
    assert_fell_back(layout, PROMPT, "no valid object left")
    assert "dropped box" in layout.notes[0]


def test_grey_and_missing_phrase_are_normalised():
    reply = with_objects({"label": "cat", "color": "Grey", "box": [0.1, 0.1, 0.5, 0.5]})
    layout = LLMPlanner(FakeLM(reply)).plan("a grey cat")
    assert layout.objects == (LayoutObject("a gray cat", "cat", "gray", (0.1, 0.1, 0.5, 0.5)),)


def test_custom_fallback_planner_is_used():
    class Fixed:
        def plan(self, prompt):
            return Layout((), None, "rule", ("fixed planner",))
    layout = LLMPlanner(FakeLM("no json"), fallback=Fixed()).plan(PROMPT)
    assert layout.notes == (FALLBACK_NOTE + "no JSON object in the reply", "fixed planner")


def test_layout_from_json_raises_on_bad_schema():
    assert layout_from_json(GOOD, PROMPT).source == "llm"
    with pytest.raises(LayoutJSONError, match="not a JSON object"):
        layout_from_json([GOOD], PROMPT)


# --- bounded replies: object count, size, nesting, phrase length ----------------------------

def test_layout_with_too_many_objects_keeps_the_first_30_with_a_note():
    from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS

    many = [obj(box=(0.01 * (i % 50), 0.1, 0.01 * (i % 50) + 0.3, 0.4)) for i in range(10_000)]
    layout = layout_from_json({"objects": many, "background": None}, PROMPT)
    assert layout.source == "llm" and len(layout.objects) == MAX_GLIGEN_OBJECTS == 30
    assert "10,000 objects; kept the first 30" in layout.notes[0]
    # and through the planner: a reply that big is refused by size, and the rules take over
    reply = with_objects(*many)
    assert_fell_back(LLMPlanner(FakeLM(reply)).plan(PROMPT), PROMPT, "character cap")


@pytest.mark.parametrize("reply, reason", [
    ("[" * 100_000, "character cap"),
    ("{" * 30_000, "levels deep"),
    ('{"objects": ' + "[" * 5000 + "]" * 5000 + "}", "levels deep"),
    ('{"objects": [], "n": ' + "1" * 5000 + "}", "no JSON object"),  # int over 4300 digits
    ("{" * 10_000 + '"objects"', "levels deep"),
])
def test_hostile_replies_fall_back_without_crashing(reply, reason):
    assert_fell_back(LLMPlanner(FakeLM(reply)).plan(PROMPT), PROMPT, reason)


def test_brackets_inside_strings_do_not_count_as_nesting():
    phrase = "a red apple " + "[[{{" * 10
    layout = LLMPlanner(FakeLM(with_objects(obj(phrase=phrase)))).plan(PROMPT)
    assert layout.source == "llm" and layout.objects[0].phrase == phrase.strip()


def test_long_phrases_and_backgrounds_are_cut_and_labels_refused():
    from t2i_sdk.layout import MAX_PHRASE_CHARS

    reply = with_objects(obj(phrase="a red apple " + "very " * 1000),
                         background="in a kitchen " * 100)
    layout = LLMPlanner(FakeLM(reply)).plan(PROMPT)
    assert layout.source == "llm"
    assert len(layout.objects[0].phrase) <= MAX_PHRASE_CHARS
    assert layout.objects[0].phrase.startswith("a red apple very")
    assert len(layout.background) <= MAX_PHRASE_CHARS
    assert any("phrase cut from" in n for n in layout.notes)
    long_label = "apple " * 20
    layout = LLMPlanner(FakeLM(with_objects(obj(label=long_label)))).plan(long_label)
    assert_fell_back(layout, long_label, "longer than 64")


@pytest.mark.parametrize("box", ["0011", {"a": 1, "b": 2, "c": 3, "d": 4}, [True, 0, 1, 1],
                                 [0, 0, 10 ** 400, 1], [0, 0, None, 1]])
def test_boxes_that_are_not_four_numbers_are_dropped(box):
    bad = {**obj(), "box": box}
    layout = LLMPlanner(FakeLM(with_objects(bad, obj("cup", color="blue")))).plan(PROMPT)
    assert layout.source == "llm" and [o.label for o in layout.objects] == ["cup"]
    assert "not four numbers" in layout.notes[0]


def test_layout_json_errors_are_input_errors():
    from t2i_sdk.errors import InputError

    assert issubclass(LayoutJSONError, InputError)


# --- chat templates the Jinja sandbox blocks: one-line engine errors at load ----------------

SANDBOX_ESCAPE = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
RAISES_ON_BOOM = ("{% for m in messages %}{% if m['content'] == 'boom' %}"
                  "{{ raise_exception('boom is not allowed') }}{% endif %}"
                  "{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:")


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("llama"), seed=0)


def _with_template(src, dst, template: str):
    import shutil

    shutil.copytree(src, dst)
    (dst / "chat_template.jinja").write_text(template)
    return dst


@pytest.mark.parametrize("template, kind", [(SANDBOX_ESCAPE, "SecurityError"),
                                            ("{% for %}", "TemplateSyntaxError")])
def test_transformers_engine_refuses_a_bad_template_at_load(tiny_llama_dir, tmp_path, template,
                                                            kind):
    from t2i_engines.errors import EngineError
    from t2i_engines.pytorch.causal_lm import CausalLMEngine

    bad = _with_template(tiny_llama_dir, tmp_path / "bad", template)
    with pytest.raises(EngineError) as info:
        CausalLMEngine.load(bad, device="cpu")
    message = str(info.value)
    assert "\n" not in message and "chat template" in message and str(bad) in message
    assert kind in message


def test_transformers_engine_template_failing_later_is_an_engine_error(tiny_llama_dir, tmp_path):
    from t2i_engines.errors import EngineError
    from t2i_engines.pytorch.causal_lm import CausalLMEngine

    engine = CausalLMEngine.load(_with_template(tiny_llama_dir, tmp_path / "m", RAISES_ON_BOOM),
                                 device="cpu")
    assert engine.generate([{"role": "user", "content": "a cat"}], n=1, seed=0,
                           max_new_tokens=2)
    with pytest.raises(EngineError, match=r"chat template .*boom is not allowed"):
        engine.generate([{"role": "user", "content": "boom"}], n=1, seed=0, max_new_tokens=2)
    # the LLM planner treats it like any model failure: the rule planner's layout, noted
    layout = LLMPlanner(engine).plan("boom")
    assert layout.source == "rule" and "boom is not allowed" in layout.notes[0]


def test_llamacpp_engine_refuses_a_sandbox_escape_at_load(tiny_llama_dir, tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gguf")
    from t2i_engines.errors import EngineError
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine
    from t2i_export.gguf import convert_to_gguf

    bad = _with_template(tiny_llama_dir, tmp_path / "bad", SANDBOX_ESCAPE)
    gguf_path = convert_to_gguf(bad, tmp_path / "bad.gguf", out_type="f32")
    with pytest.raises(EngineError) as info:
        LlamaCppEngine.load(gguf_path, device="cpu", n_ctx=256)
    message = str(info.value)
    assert "\n" not in message and "SecurityError" in message and "bad.gguf" in message
