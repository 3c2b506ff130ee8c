"""Finite GBNF grammars: the sentences of a grammar with no repetition, listed.

llama.cpp decodes under a GBNF grammar natively. transformers has no grammar sampler, but a
grammar whose language is finite (a caption template: "a photo of " + one of a few thousand
object phrases) can be listed and decoded as a token trie (``pytorch/token_trie.py``), so both
backends accept the same sentences. Supported: ``name ::= alternatives`` rules (one per line,
``#`` comments; names of letters, digits and ``-`` as llama.cpp reads them), double-quoted
literals with the escapes ``\\"``, ``\\\\``, ``\\n``, ``\\r``, ``\\t``, rule references, ``|``,
parentheses and ``?``. Repetition (``*``, ``+``, recursion), character classes and other
escapes raise :class:`GrammarError`: a language this module cannot list exactly.
"""
from __future__ import annotations

import re

MAX_SENTENCES = 200_000  # a larger language is a sign of a wrong grammar, not a caption set

_RULE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*::=\s*(.*)$")
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|[A-Za-z][A-Za-z0-9-]*|[()|?*+.])')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class GrammarError(ValueError):
    """A grammar this module cannot list: syntax, a missing rule, repetition, or too large."""


def sentences(grammar: str, *, root: str = "root", limit: int = MAX_SENTENCES) -> list[str]:
    """Every sentence of ``grammar`` from rule ``root``, sorted, without duplicates."""
    rules = _parse_rules(grammar)
    if root not in rules:
        raise GrammarError(f"the grammar has no rule {root!r}")
    memo: dict[str, frozenset[str]] = {}

    def expand_rule(name: str, active: tuple[str, ...]) -> frozenset[str]:
        if name in active:
            raise GrammarError(f"rule {name!r} refers to itself: its language is not finite")
        if name not in memo:
            if name not in rules:
                raise GrammarError(f"rule {name!r} is used but never defined")
            memo[name] = expand(rules[name], active + (name,))
        return memo[name]

    def expand(node, active) -> frozenset[str]:
        out = _expand(node, active)
        if len(out) > limit:
            raise GrammarError(f"the grammar has more than {limit} sentences")
        return out

    def _expand(node, active) -> frozenset[str]:
        kind, value = node
        if kind == "literal":
            return frozenset((value,))
        if kind == "ref":
            return expand_rule(value, active)
        if kind == "optional":
            return expand(value, active) | {""}
        if kind == "choice":
            return frozenset().union(*(expand(v, active) for v in value))
        out = frozenset(("",))  # sequence: every concatenation of its parts
        for part in value:
            tails = expand(part, active)
            if len(out) * len(tails) > limit:
                raise GrammarError(f"the grammar has more than {limit} sentences")
            out = frozenset(a + b for a in out for b in tails)
        return out

    return sorted(expand_rule(root, ()))


def _parse_rules(grammar: str) -> dict[str, tuple]:
    rules: dict[str, tuple] = {}
    for number, line in enumerate(grammar.splitlines(), 1):
        line = _strip_comment(line)
        if not line.strip():
            continue
        match = _RULE.match(line)
        if match is None:
            raise GrammarError(f"grammar line {number} is not 'name ::= ...': {line.strip()!r}")
        name, body = match.groups()
        if name in rules:
            raise GrammarError(f"rule {name!r} is defined twice (line {number})")
        rules[name] = _Parser(body, number).parse()
    return rules


def _strip_comment(line: str) -> str:
    """``line`` up to a ``#`` outside a string literal."""
    in_string = escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
        elif char == "#" and not in_string:
            return line[:i]
    return line


class _Parser:
    """Recursive descent over one rule body: choice := sequence ('|' sequence)*;
    sequence := item*; item := (literal | name | '(' choice ')') '?'?"""

    def __init__(self, body: str, line: int):
        self.tokens, self.line, self.i = self._tokenize(body, line), line, 0

    def _tokenize(self, body: str, line: int) -> list[str]:
        tokens, pos = [], 0
        while body[pos:].strip():
            match = _TOKEN.match(body, pos)
            if match is None:
                raise GrammarError(f"grammar line {line}: cannot read {body[pos:].strip()!r}")
            tokens.append(match.group(1))
            pos = match.end()
        return tokens

    def parse(self):
        node = self._choice()
        if self.i != len(self.tokens):
            self._fail(f"unexpected {self.tokens[self.i]!r}")
        return node

    def _choice(self):
        options = [self._sequence()]
        while self._peek() == "|":
            self.i += 1
            options.append(self._sequence())
        return options[0] if len(options) == 1 else ("choice", tuple(options))

    def _sequence(self):
        items = []
        while self._peek() not in (None, "|", ")"):
            items.append(self._item())
        return ("sequence", tuple(items))

    def _item(self):
        token = self.tokens[self.i]
        self.i += 1
        if token.startswith('"'):
            node = ("literal", re.sub(r"\\(.)", self._escape, token[1:-1]))
        elif token == "(":
            node = self._choice()
            if self._peek() != ")":
                self._fail("a '(' is never closed")
            self.i += 1
        elif token in ("*", "+", ".") or token.startswith("["):
            self._fail(f"{token!r} (repetition or a character class) makes the language "
                       "unbounded or too large to list")
        elif token in (")", "?"):
            self._fail(f"unexpected {token!r}")
        else:
            node = ("ref", token)
        if self._peek() == "?":
            self.i += 1
            node = ("optional", node)
        return node

    def _escape(self, match) -> str:
        if match.group(1) not in _ESCAPES:
            known = " ".join("\\" + e for e in _ESCAPES)
            self._fail(f"escape \\{match.group(1)} is not supported (known: {known})")
        return _ESCAPES[match.group(1)]

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _fail(self, what: str):
        raise GrammarError(f"grammar line {self.line}: {what}")
