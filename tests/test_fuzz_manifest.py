"""Fuzzing the ``bundle.json`` reader: whatever the bytes, it returns a valid manifest or raises
BundleError, never another exception. Inputs: random JSON trees, valid manifests with one
field mutated (wrong types, huge numbers, bad paths with ``..``/absolute/NUL/surrogates,
unknown option keys), deep nesting and raw bytes (invalid UTF-8 included)."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from t2i_sdk.bundle import BundleManifest, load_bundle  # noqa: E402
from t2i_sdk.bundle.manifest import parse_manifest_bytes  # noqa: E402
from t2i_sdk.bundle.options import ROLE_OPTIONS  # noqa: E402
from t2i_sdk.errors import BundleError  # noqa: E402
from fakes import fuzz_examples  # noqa: E402

WHERE = Path("fuzz/bundle.json")
SHA = "ab" * 32
# Hypothesis spends ~10-50 ms drawing one nested example: a few hundred each keeps the file
# near 20 s; the seeded storm below adds thousands of cheap mutations.
FUZZ = settings(max_examples=fuzz_examples(250), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STORM_CASES = fuzz_examples(5000)


def _valid() -> dict:
    """A manifest the reader accepts, with every role and a few options (a fresh copy)."""
    entry = {"kind": "gligen", "engine": "torch", "path": "drafter", "dtype": "float32",
             "files": {"model_index.json": SHA, "unet/w.safetensors": SHA},
             "options": {"guidance_scale": 4.0, "height": 64, "layout": {"max_side": 0.3}}}
    components = {
        "drafter": entry,
        "scorer": {**entry, "kind": "clip", "path": "scorer", "options": {}},
        "refiner": {**entry, "kind": "img2img", "path": "refiner",
                    "options": {"refine_steps": 2, "refine_strength": 0.5}},
        "rewriter": {**entry, "kind": "causal-lm", "path": "rewriter", "engine": "llama.cpp",
                     "options": {"temperature": 0.7, "examples": [["a", "b"]]}},
        "planner": {**entry, "kind": "causal-lm", "path": "planner", "options": {}}}
    return copy.deepcopy({"schema_version": 1, "name": "fuzz", "created_by": "t2i-sdk",
                          "components": components})


def _accepts(raw: bytes) -> BundleManifest | None:
    """The reader's verdict; fails the test on any exception but BundleError."""
    try:
        manifest = parse_manifest_bytes(raw, WHERE)
    except BundleError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000
        return None
    assert isinstance(manifest, BundleManifest)
    json.dumps(manifest.to_dict(), allow_nan=False)  # what was accepted can be written back
    return manifest


NASTY_TEXT = st.sampled_from(["", ".", "..", "../x", "a/../../b", "/etc/passwd", "C:\\x", "a\\b",
                              "a\x00b", "\ud800", "a//b", "./a", "a/", "ü/ß.json", " ", "~",
                              "x" * 5000])
NUMBERS = st.one_of(st.integers(), st.integers(min_value=-10 ** 400, max_value=10 ** 400),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=30), NASTY_TEXT)
JSON = st.recursive(SCALARS, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.one_of(st.text(max_size=10), NASTY_TEXT),
                                                kids, max_size=4)), max_leaves=15)
OPTION_KEYS = st.sampled_from(sorted({k for t in ROLE_OPTIONS.values() for k in t})
                              + ["layout", "guidance", "", "__class__"])


def _encode(data) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(JSON)
def test_random_json_trees(data):
    _accepts(_encode(data))


@st.composite
def mutated_manifests(draw):
    """A valid manifest with one value somewhere replaced, added or removed."""
    data = _valid()
    node, path = data, []
    while isinstance(node, dict) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)))
        path.append(key)
        if not isinstance(node[key], dict):
            break
        node = node[key]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "add", "remove", "option"]))
    target = parent if path else data
    if action == "remove" and path:
        target.pop(path[-1], None)
    elif action == "add" or not path:
        target[draw(st.one_of(OPTION_KEYS, NASTY_TEXT, st.text(max_size=8)))] = draw(JSON)
    elif action == "option":
        role = draw(st.sampled_from(sorted(data["components"])))
        data["components"][role]["options"][draw(OPTION_KEYS)] = draw(JSON)
    else:
        target[path[-1]] = draw(JSON)
    return data


@FUZZ
@given(mutated_manifests())
def test_mutated_manifests(data):
    _accepts(_encode(data))


@settings(max_examples=fuzz_examples(300), deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=300))
def test_raw_bytes(raw):
    _accepts(raw)


@settings(max_examples=fuzz_examples(200), deadline=None, derandomize=True, database=None)
@given(st.binary(min_size=1, max_size=40), st.integers(min_value=0, max_value=600))
def test_valid_manifest_with_bytes_spliced_in(junk, at):
    raw = _encode(_valid())
    at = at % len(raw)
    _accepts(raw[:at] + junk + raw[at:])


NASTY_VALUES = [None, True, False, 0, -1, 1.5, 64.5, 10 ** 400, -(10 ** 400), 1e308,
                float("nan"), float("inf"), "", "..", "../x", "/abs", "a\x00b", "\ud800",
                "a//b", "x" * 3000, [], [[]], [["a", "b"]], [["a"]], {}, {"x": 1},
                {"max_side": 0.3}, {"max_side": "big"}, "high", "prompt", "rewrite", 3]


def _storm_case(rng: random.Random) -> bytes:
    """A valid manifest with 1-3 random values replaced, added or removed; sometimes a few
    bytes of its encoding overwritten."""
    data = _valid()
    for _ in range(rng.randint(1, 3)):
        node = data
        while isinstance(node, dict) and node and rng.random() < 0.75:
            key = rng.choice(sorted(node))
            if not isinstance(node[key], (dict, list)) or rng.random() < 0.3:
                choice = rng.random()
                if choice < 0.6:
                    node[key] = copy.deepcopy(rng.choice(NASTY_VALUES))
                elif choice < 0.8:
                    del node[key]
                else:
                    new_key = rng.choice([v for v in NASTY_VALUES if isinstance(v, str)]
                                         + ["options", "layout", "path", "guidance"])
                    node[new_key] = copy.deepcopy(rng.choice(NASTY_VALUES))
                break
            node = node[key]
    raw = bytearray(_encode(data))
    for _ in range(rng.choice([0, 0, 0, 1, 3])):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw)


def test_seeded_mutation_storm():
    rng = random.Random(12)
    accepted = sum(_accepts(_storm_case(rng)) is not None for _ in range(STORM_CASES))
    assert 0 < accepted < STORM_CASES  # the storm reaches both verdicts


@pytest.mark.parametrize("depth", [100, 2_000, 100_000])
@pytest.mark.parametrize("open_, close", [("[", "]"), ('{"a":', "}")])
def test_deep_nesting(depth, open_, close):
    _accepts((open_ * depth + "1" + close * depth).encode())
    nested = json.dumps(_valid())[:-1] + ', "x": ' + open_ * depth + "1" + close * depth + "}"
    _accepts(nested.encode())
    opts = _valid()
    opts["components"]["drafter"]["options"] = "@"
    text = json.dumps(opts).replace('"@"', open_ * depth + "1" + close * depth)
    _accepts(text.encode())


@pytest.mark.parametrize("raw", [
    b"\xff\xfe{}", b"\xef\xbb\xbf" + _encode(_valid()),
    _encode(_valid()).replace(b"fuzz", b"\xc3("),
    b'{"schema_version": 1' + b"0" * 5000 + b"}", b"NaN", b'{"schema_version": NaN}',
    _encode(_valid()).replace(b'"guidance_scale": 4.0', b'"guidance_scale": Infinity'),
    _encode(_valid()).replace(b'"guidance_scale": 4.0', b'"guidance_scale": 1' + b"0" * 400),
    _encode(_valid()).replace(b'"name": "fuzz"', b'"name": "\\ud800"'),
    _encode(_valid()).replace(b'"unet/w.safetensors"', b'"unet/\\u0000w"'),
])
def test_known_nasty_inputs_are_bundle_errors(raw):
    assert _accepts(raw) is None


def test_the_valid_manifest_is_accepted():
    assert _accepts(_encode(_valid())) is not None


@settings(max_examples=fuzz_examples(100), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_manifests())
def test_load_bundle_without_hashing_never_crashes(tmp_path_factory, data):
    """What the reader accepts, the file checks handle too (paths reach the filesystem)."""
    bundle = tmp_path_factory.mktemp("b")
    (bundle / "bundle.json").write_bytes(_encode(data))
    try:
        load_bundle(bundle, verify=False)
    except BundleError:
        pass
