"""Rewrites constrained to a finite grammar: the grammar lister, the shapes caption grammar, and
decoding under it with transformers (token trie) and llama.cpp (GBNF), on tiny random Llamas."""
from __future__ import annotations

import pytest

from t2i_engines.finite_grammar import GrammarError, sentences
from t2i_sdk.config import RewriteConfig
from t2i_sdk.errors import InputError
from t2i_sdk.shapes.caption_grammar import caption_grammar
from t2i_sdk.shapes.captions import TAGS, all_captions
from t2i_sdk.shapes.world import DEFAULT_COLORS, SHAPES

SMALL = '''# a comment line
root ::= "a " size? animal (" and " animal)?   # trailing comment
size ::= "big " | "small "
animal ::= "cat" | "dog" | "\\"quoted\\" owl"
'''


def test_sentences_lists_a_finite_grammar():
    animals = ["cat", "dog", '"quoted" owl']
    sizes = ["", "big ", "small "]
    expected = {f"a {s}{a}" + tail for s in sizes for a in animals
                for tail in [""] + [f" and {b}" for b in animals]}
    assert sentences(SMALL) == sorted(expected)


@pytest.mark.parametrize("grammar, message", [
    ('root ::= "a" root', "refers to itself"),
    ('root ::= "a"*', "repetition"),
    ('root ::= [a-z]', "character class"),
    ('root ::= item', "never defined"),
    ('root ::= ("a" | "b"', "never closed"),
    ('root = "a"', "is not 'name ::= ...'"),
    ('root ::= "a"\nroot ::= "b"', "defined twice"),
    ('start ::= "a"', "no rule 'root'"),
    ('root ::= my_rule\nmy_rule ::= "a"', "cannot read"),  # llama.cpp names: no underscore
    ('root ::= "a\\rb" | "a\\x41"', "escape .x is not supported"),
])
def test_grammars_that_cannot_be_listed_say_why(grammar, message):
    with pytest.raises(GrammarError, match=message):
        sentences(grammar)


@pytest.mark.parametrize("root", ["d d d d", 'd d d | "y" d d d'])
def test_a_language_over_the_limit_is_refused(root):
    digits = 'd ::= "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9"'
    with pytest.raises(GrammarError, match="more than 1500 sentences"):
        sentences(f"root ::= {root}\n{digits}", limit=1500)


def test_known_escapes_are_read():
    assert sentences('root ::= "tab\\there" | "cr\\r" | "q\\"q"') == ["cr\r", 'q"q', "tab\there"]


def test_caption_grammar_is_exactly_the_drafter_templates():
    language = set(sentences(caption_grammar()))
    captions = {c.prompt for tag in TAGS for c in all_captions(tag, SHAPES, DEFAULT_COLORS)}
    assert captions <= language and len(language) == 3465  # the README's count
    # The only extra sentences: two-object captions that name one shape or one colour twice
    # (the templates pair two different ones).
    extra = language - captions
    assert extra and all(any(c.split().count(w) == 2 for w in SHAPES + DEFAULT_COLORS)
                         for c in extra)
    assert "a photo of a star and a star" in extra
    assert "a photo of a pyramid" not in language and "a photo of an red star" not in language


def test_rewrite_config_checks_its_grammar():
    assert RewriteConfig(grammar=caption_grammar()).grammar == caption_grammar()
    with pytest.raises(InputError, match="rewrite grammar: .*refers to itself"):
        RewriteConfig(grammar='root ::= "a" root')


def test_training_config_resolves_builtin_grammars():
    from t2i_training.config import config_from_dict

    base = {"bundle": "b", "prompts": "builtin:compositional"}
    config = config_from_dict({**base, "rewrite": {"grammar": "builtin:shapes_captions"}})
    assert config.rewrite.grammar == caption_grammar()
    with pytest.raises(InputError, match="no built-in grammar 'nope'"):
        config_from_dict({**base, "rewrite": {"grammar": "builtin:nope"}})


def test_llm_rewriter_passes_its_grammar_to_the_model():
    from fakes import FakeLM
    from t2i_sdk.stages.rewrite import LLMRewriter

    class Recording(FakeLM):
        def generate(self, messages, n, seed, grammar=None, **settings):
            self.grammars = getattr(self, "grammars", []) + [grammar]
            return super().generate(messages, n, seed, **settings)

    lm = Recording(["a photo of a star"])
    LLMRewriter(lm, RewriteConfig(grammar=caption_grammar())).rewrite("a pentagram", 2, seed=0)
    LLMRewriter(lm, RewriteConfig()).rewrite("a pentagram", 1, seed=0)
    assert lm.grammars == [caption_grammar(), None]


# --- decoding under the grammar, on the tiny random Llama -----------------------------------

MESSAGES = [{"role": "system", "content": "Rewrite as a caption."},
            {"role": "user", "content": "a scarlet dot left of a box"}]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    pytest.importorskip("torch")
    from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


def test_transformers_replies_are_sentences_of_the_grammar(tiny_llama):
    from t2i_engines.pytorch.causal_lm import CausalLMEngine

    engine = CausalLMEngine.load(tiny_llama, device="cpu")
    grammar = caption_grammar()
    language = set(sentences(grammar))
    replies = [r for seed in range(4) for r in engine.generate(
        MESSAGES, n=4, seed=seed, temperature=1.5, max_new_tokens=32, grammar=grammar)]
    replies += engine.generate(MESSAGES, n=1, seed=0, temperature=0.0, max_new_tokens=32,
                               grammar=grammar)
    assert set(replies) <= language
    assert len(set(replies)) > 3  # the random model still chooses among the captions
    # The random model left alone writes anything but captions.
    free = engine.generate(MESSAGES, n=4, seed=0, temperature=1.5, max_new_tokens=32)
    assert not set(free) <= language


def test_token_trie_ends_only_where_a_sentence_ends(tiny_llama):
    from transformers import AutoTokenizer

    from t2i_engines.pytorch.token_trie import TokenTrie

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    eos = tokenizer.eos_token_id
    trie = TokenTrie(SMALL, tokenizer, [eos])
    a_cat = tokenizer("a cat", add_special_tokens=False)["input_ids"]
    a_big = tokenizer("a big", add_special_tokens=False)["input_ids"]
    assert eos in trie.allowed(a_cat)  # "a cat" is a sentence; "a cat and ..." continues it
    assert len(trie.allowed(a_cat)) > 1
    assert eos not in trie.allowed(a_big)
    assert trie.allowed(a_cat + [eos]) == [eos]


def test_token_trie_refuses_a_header_that_merges_with_the_reply(tiny_llama):
    from transformers import AutoTokenizer

    from t2i_engines.pytorch.token_trie import TokenTrie

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    trie = TokenTrie('root ::= "a cat"', tokenizer, [tokenizer.eos_token_id])
    trie.check_boundary("user: hi\nassistant:\n")
    with pytest.raises(GrammarError, match="tokenise differently"):
        trie.check_boundary("user: hi\nassistant: ")  # the space joins the reply's " a"


def test_bad_grammar_in_transformers_is_an_engine_settings_error(tiny_llama):
    from t2i_engines.errors import EngineSettingsError
    from t2i_engines.pytorch.causal_lm import CausalLMEngine

    engine = CausalLMEngine.load(tiny_llama, device="cpu")
    with pytest.raises(EngineSettingsError, match="refers to itself"):
        engine.generate(MESSAGES, n=1, seed=0, grammar='root ::= "a" root')


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama, tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from t2i_export.gguf import convert_to_gguf

    return convert_to_gguf(tiny_llama, tmp_path_factory.mktemp("gguf") / "tiny.gguf",
                           out_type="f16")


def test_llamacpp_replies_are_sentences_of_the_grammar(tiny_gguf):
    from t2i_engines.errors import EngineSettingsError
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine

    grammar = caption_grammar()
    language = set(sentences(grammar))
    with LlamaCppEngine.load(tiny_gguf, device="cpu", n_ctx=512) as engine:
        replies = [r for seed in range(0, 8, 4) for r in engine.generate(
            MESSAGES, n=4, seed=seed, temperature=1.5, max_new_tokens=32, grammar=grammar)]
        assert set(replies) <= language and len(set(replies)) > 2
        with pytest.raises(EngineSettingsError, match="could not parse the grammar"):
            engine.generate(MESSAGES, n=1, seed=0, grammar="root ::= (")
        with pytest.raises(EngineSettingsError, match="the grammar is empty"):
            engine.generate(MESSAGES, n=1, seed=0, grammar=" ")
