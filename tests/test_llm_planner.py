"""LLMPlanner: validated JSON layouts, and the rule planner with a noted reason otherwise."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2i_sdk.layout import Layout, LayoutObject
from t2i_sdk.planning import LLMPlanner, RulePlanner, layout_from_json
from t2i_sdk.planning.llm_examples import EXAMPLE_LABELS, FEW_SHOT
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
    roles = [m["role"] for m in call["messages"]]
    assert roles == ["system"] + ["user", "assistant"] * len(FEW_SHOT) + ["user"]
    assert call["messages"][0]["content"] == DEFAULT_SYSTEM_PROMPT
    assert call["messages"][-1]["content"] == PROMPT


def test_default_system_prompt_asks_for_the_schema_and_examples_are_chat_turns():
    for key in ('"objects"', '"phrase"', '"label"', '"color"', '"box"', '"background"'):
        assert key in DEFAULT_SYSTEM_PROMPT
    messages = LLMPlanner(FakeLM("")).messages("a dog")
    for (prompt, reply), user, assistant in zip(FEW_SHOT, messages[1::2], messages[2::2]):
        assert user == {"role": "user", "content": prompt}
        assert assistant["role"] == "assistant" and json.loads(assistant["content"]) == reply
    assert LLMPlanner(FakeLM(""), examples=()).messages("a dog")[1:] == [
        {"role": "user", "content": "a dog"}]


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
    glasses = [obj("wine glasses", color=None, box=(0.1 + 0.2 * i, 0.1, 0.3 + 0.2 * i, 0.4))
               for i in range(2)]
    mice = [obj("mice", color=None, box=(0.1 + 0.25 * i, 0.5, 0.3 + 0.25 * i, 0.9))
            for i in range(3)]
    reply = with_objects(*glasses, *mice)
    layout = LLMPlanner(FakeLM(reply)).plan(prompt)
    assert layout.source == "llm", layout.notes
    assert [o.label for o in layout.objects] == ["wine glass"] * 2 + ["mouse"] * 3


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


ONE_APPLE = "a red apple"


def test_out_of_range_box_is_clamped_and_noted():
    reply = with_objects(obj(box=(-0.2, 0.1, 1.3, 0.5)))
    layout = LLMPlanner(FakeLM(reply)).plan(ONE_APPLE)
    assert layout.source == "llm"
    assert layout.objects[0].box == (0.0, 0.1, 1.0, 0.5)
    assert len(layout.notes) == 1 and "clamped to [0, 1]" in layout.notes[0]


def test_inverted_box_is_swapped_and_noted():
    layout = LLMPlanner(FakeLM(with_objects(obj(box=(0.6, 0.7, 0.2, 0.1))))).plan(ONE_APPLE)
    assert layout.source == "llm"
    assert layout.objects[0].box == (0.2, 0.1, 0.6, 0.7)
    assert "inverted corners swapped" in layout.notes[0]


@pytest.mark.parametrize("bad_box", [(0.5, 0.5, 0.505, 0.9), (0.1, 0.1, 0.4), ("a", 0, 1, 1),
                                     (0.1, 0.1, float("nan"), 0.5)])
def test_degenerate_box_is_dropped_and_noted(bad_box):
    good = obj(label="cup", color="blue", phrase="a blue cup", box=(0.6, 0.2, 0.9, 0.6))
    reply = json.dumps({"objects": [obj(box=bad_box), good]})  # NaN is valid to json.loads
    layout = layout_from_json(json.loads(reply), PROMPT)
    assert layout.source == "llm"
    assert [o.label for o in layout.objects] == ["cup"]
    assert len(layout.notes) == 1 and "dropped box" in layout.notes[0]
    # the planner then misses the prompt's apples: refused, the rules draw them
    assert_fell_back(LLMPlanner(FakeLM(reply)).plan(PROMPT), PROMPT, "wrong count: 0 'apple'")


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
    layout = layout_from_json(json.loads(with_objects(obj(phrase=phrase))), PROMPT)
    assert layout.source == "llm" and layout.objects[0].phrase == phrase.strip()


def test_long_phrases_and_backgrounds_are_cut_and_labels_refused():
    from t2i_sdk.layout import MAX_PHRASE_CHARS

    reply = with_objects(obj(phrase="a red apple " + "very " * 1000),
                         background="in a kitchen " * 100)
    layout = layout_from_json(json.loads(reply), PROMPT)
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
    layout = layout_from_json(json.loads(with_objects(bad, obj("cup", color="blue"))), PROMPT)
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


# --- the layout must draw what the prompt states ---------------------------------------------

def apple(x0, color="red", label="apple"):
    return obj(label, box=(x0, 0.3, x0 + 0.2, 0.6), color=color)


def cup(x0=0.65, color="blue"):
    return obj("cup", box=(x0, 0.25, x0 + 0.3, 0.7), color=color, phrase="a blue cup")


def test_a_layout_that_states_what_the_prompt_states_is_accepted():
    layout = LLMPlanner(FakeLM(with_objects(apple(0.05), apple(0.3), cup()))).plan(PROMPT)
    assert layout.source == "llm", layout.notes
    assert [(o.label, o.color, o.phrase) for o in layout.objects] == \
        [("apple", "red", "a red apple")] * 2 + [("cup", "blue", "a blue cup")]
    assert layout.background == "in a kitchen"  # the prompt's, the reply had none


@pytest.mark.parametrize("objects, reason", [
    ((apple(0.05), apple(0.3), cup(), obj("plate", color=None, box=(0.1, 0.7, 0.4, 0.9))),
     "invented object: label 'plate' not in prompt"),
    ((apple(0.05), apple(0.3), cup(), obj("kitchen", color=None, box=(0, 0, 1, 1))),
     "invented object: object 3 'kitchen' is not an object the prompt's scene names"),
    ((apple(0.05), cup()), "wrong count: 1 'apple' boxes; the prompt states 2"),
    ((apple(0.05), apple(0.25), apple(0.45), cup()), "wrong count: 3 'apple'"),
    ((apple(0.05), apple(0.3)), "wrong count: 0 'cup'"),
    ((apple(0.05), apple(0.3, color="green"), cup()),
     "wrong colour: object 1 'apple' is green; the prompt says red"),
    ((apple(0.05), apple(0.3), cup(color="black")), "wrong colour: object 2 'cup' is black"),
    ((cup(0.0), apple(0.5), apple(0.75)), "broken relation: 'apple' is not left_of 'cup'"),
])
def test_layouts_contradicting_the_prompt_are_refused_with_the_reason(objects, reason):
    layout = LLMPlanner(FakeLM(with_objects(*objects))).plan(PROMPT)
    assert_fell_back(layout, PROMPT, reason)


def test_a_colour_the_prompt_does_not_state_is_refused():
    reply = with_objects(obj("cat", color="black", phrase="a black cat"))
    assert_fell_back(LLMPlanner(FakeLM(reply)).plan("a cat"), "a cat",
                     "wrong colour: object 0 'cat' is black; the prompt says no colour")


@pytest.mark.parametrize("prompt, reply_objects, ok", [
    ("a cat above a dog", [obj("cat", box=(0.3, 0.05, 0.7, 0.4), color=None),
                           obj("dog", box=(0.3, 0.5, 0.7, 0.95), color=None)], True),
    ("a cat above a dog", [obj("cat", box=(0.3, 0.5, 0.7, 0.95), color=None),
                           obj("dog", box=(0.3, 0.05, 0.7, 0.4), color=None)], False),
    ("a cat to the right of a dog", [obj("cat", box=(0.6, 0.3, 0.9, 0.6), color=None),
                                     obj("dog", box=(0.1, 0.3, 0.4, 0.6), color=None)], True),
    ("a cat to the right of a dog", [obj("cat", box=(0.1, 0.3, 0.4, 0.6), color=None),
                                     obj("dog", box=(0.6, 0.3, 0.9, 0.6), color=None)], False),
])
def test_stated_relations_are_checked_by_box_centres(prompt, reply_objects, ok):
    layout = LLMPlanner(FakeLM(with_objects(*reply_objects))).plan(prompt)
    if ok:
        assert layout.source == "llm", layout.notes
    else:
        assert_fell_back(layout, prompt, "broken relation: 'cat'")


@pytest.mark.parametrize("n, ok", [(1, False), (2, True), (4, True)])
def test_an_unstated_plural_needs_at_least_two(n, ok):
    prompt = "some birds"
    birds = [obj("bird", box=(0.05 + 0.22 * i, 0.2, 0.25 + 0.22 * i, 0.5), color=None)
             for i in range(n)]
    layout = LLMPlanner(FakeLM(with_objects(*birds))).plan(prompt)
    if ok:
        assert layout.source == "llm" and len(layout.objects) == n
    else:
        assert_fell_back(layout, prompt, "wrong count: 1 'bird' boxes; the prompt states at "
                                         "least 2")


def test_missing_colour_is_filled_and_invented_background_replaced():
    reply = with_objects(obj("cat", color=None, phrase="a cat"), background="in a kitchen")
    layout = LLMPlanner(FakeLM(reply)).plan("a white cat on a beach")
    assert layout.source == "llm"
    assert (layout.objects[0].color, layout.objects[0].phrase) == ("white", "a white cat")
    assert layout.background == "on a beach"
    assert any("colour white from the prompt" in n for n in layout.notes)
    assert any("background 'in a kitchen' is not in the prompt" in n for n in layout.notes)


def test_a_compound_label_written_short_takes_the_prompts_label():
    reply = with_objects(obj("glass", color=None, box=(0.1, 0.2, 0.4, 0.8)))
    layout = LLMPlanner(FakeLM(reply)).plan("a wine glass")
    assert layout.source == "llm" and layout.objects[0].label == "wine glass"


# --- the few-shot examples never reach a layout ----------------------------------------------

class EchoLM:
    """A model that only copies: answers with the last example reply it was shown."""

    def generate(self, messages, n, seed, temperature, top_p, max_new_tokens):
        return [next(m["content"] for m in reversed(messages) if m["role"] == "assistant")] * n


def test_example_labels_are_not_words_of_typical_prompts_nor_of_the_instruction():
    from t2i_sdk.planning import lexicon as lx

    assert EXAMPLE_LABELS and not EXAMPLE_LABELS & lx.KNOWN_NOUNS
    assert not EXAMPLE_LABELS & set(lx.mention_words(DEFAULT_SYSTEM_PROMPT))


@pytest.mark.parametrize("prompt", [PROMPT, "three purple cats", "a gray dog above a bench",
                                    "two orange cups", "a photo of a circle"])
def test_an_echoed_example_never_reaches_the_layout(prompt):
    for k in range(len(FEW_SHOT)):  # echo each example in turn
        layout = LLMPlanner(EchoLM(), examples=FEW_SHOT[k:k + 1]).plan(prompt)
        assert not {o.label for o in layout.objects} & EXAMPLE_LABELS
        assert layout.source == "rule"
        assert "invented object" in layout.notes[0], layout.notes[0]


def test_a_prompt_that_names_an_example_object_may_use_it():
    layout = LLMPlanner(EchoLM(), examples=FEW_SHOT[-1:]).plan("three purple quills")
    assert layout.source == "llm" and [o.label for o in layout.objects] == ["quill"] * 3


# --- the real model (SmolLM2-135M-Instruct GGUF, llama.cpp, JSON grammar) --------------------

REAL_GGUF = Path(__file__).resolve().parents[1] / "models/.cache/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_GGUF.exists(), reason="no SmolLM2 GGUF (make smollm2)")
def test_real_gguf_planner_gives_prompt_faithful_layouts():
    pytest.importorskip("llama_cpp")
    from t2i_engines import threads
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine
    from t2i_sdk.planning.layout_schema import LAYOUT_JSON_SCHEMA
    from t2i_sdk.planning.prompt_parser import parse_prompt

    threads.configure(threads.CpuThreads(1, False))
    with LlamaCppEngine.load(REAL_GGUF, device="cpu", json_schema=LAYOUT_JSON_SCHEMA) as engine:
        planner = LLMPlanner(engine)
        for prompt in ("a cat to the left of a dog", "three yellow bananas",
                       "a photo of a circle"):
            layout = planner.plan(prompt)
            labels = {o.label for o in layout.objects}
            assert not labels & EXAMPLE_LABELS, (prompt, layout)
            if layout.source == "llm":  # whatever the model wrote, only what the prompt states
                assert labels <= {g.label for g in parse_prompt(prompt).groups}
            else:
                assert layout.notes[0].startswith(FALLBACK_NOTE)
                assert layout.objects == RulePlanner().plan(prompt).objects


def test_auto_does_not_prefer_the_llm_planner_unless_told():
    assert LLMPlanner(FakeLM("")).prefer_in_auto is False
    assert LLMPlanner(FakeLM(""), prefer_in_auto=True).prefer_in_auto is True
