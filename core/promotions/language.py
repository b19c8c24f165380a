"""The promotion rule language: small, readable, bilingual, parsed without ``eval``.

A rule reads like the sentence a category manager would say, in Chinese or English::

    当 库存 < 安全库存 且 近7日销量环比 > 40% 时 触发 清仓加赠品
    WHEN stock < safety_stock AND sales_7d_wow > 40% THEN clearance_gift

Grammar (recursive descent, one function per line)::

    rule       := WHEN condition THEN [TRIGGER] action        (zh: 当 … 时 [触发] …)
    condition  := and_expr { OR and_expr }                     (或 / OR)
    and_expr   := not_expr { AND not_expr }                    (且 / 并且 / AND)
    not_expr   := NOT not_expr | primary                       (非 / NOT)
    primary    := "(" condition ")" | flag | operand CMP operand
    operand    := metric | number ["%"]
    CMP        := < <= > >= = != (and the full-width / ≤ ≥ ≠ forms)

Chinese needs no spaces: words are found by longest match against the vocabulary, so
``当库存<安全库存`` tokenises the same as the spaced form. Every error carries the
character offset and length of the offending word, so the editor can point a caret at it,
and a suggestion (the closest known word) when the word looks like a typo.

Types are checked while parsing: a percentage measure must be compared with a percentage
(``> 40%``), a count with a plain number, and at least one side of a comparison must be a
measure. Comparisons involving an undefined value (e.g. week-on-week change when last
week sold nothing) are false, never an error at evaluation time.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.i18n import N_, _, current_language

# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Metric:
    """A measure a rule can test. ``kind`` is count | days | percent | flag."""

    key: str
    en: str
    zh: str
    kind: str
    #: lot: defined per inventory lot; sku: per store×SKU (also available in lot rules).
    scope: str
    doc: str


METRICS: tuple[Metric, ...] = (
    Metric("stock", "stock", "库存", "count", "sku", N_("units on hand of the SKU in the store")),
    Metric("safety_stock", "safety_stock", "安全库存", "count", "sku", N_("safety stock")),
    Metric("max_stock", "max_stock", "最大库存", "count", "sku", N_("maximum stock")),
    Metric(
        "sales_7d", "sales_7d", "近7日销量", "count", "sku", N_("units sold in the last 7 days")
    ),
    Metric(
        "sales_prev_7d",
        "sales_prev_7d",
        "前7日销量",
        "count",
        "sku",
        N_("units sold in the 7 days before that"),
    ),
    Metric(
        "sales_28d", "sales_28d", "近28日销量", "count", "sku", N_("units sold in the last 28 days")
    ),
    Metric(
        "sales_7d_wow",
        "sales_7d_wow",
        "近7日销量环比",
        "percent",
        "sku",
        N_("change of the last 7 days' sales on the previous 7 days"),
    ),
    Metric(
        "daily_rate",
        "daily_rate",
        "日均销量",
        "count",
        "sku",
        N_("average units sold per day (7 days)"),
    ),
    Metric(
        "cover_days",
        "cover_days",
        "可售天数",
        "days",
        "sku",
        N_("days the stock lasts at the current rate"),
    ),
    Metric("lot_qty", "lot_qty", "批次数量", "count", "lot", N_("units left in the lot")),
    Metric(
        "days_to_expiry",
        "days_to_expiry",
        "距过期天数",
        "days",
        "lot",
        N_("days until the lot expires"),
    ),
    Metric(
        "expected_sales_before_expiry",
        "expected_sales_before_expiry",
        "到期前预计销量",
        "count",
        "lot",
        N_("units of the lot expected to sell before expiry at the current rate"),
    ),
    Metric(
        "in_alert_window",
        "in_alert_window",
        "已到临期预警日",
        "flag",
        "lot",
        N_("the lot's alert date (expiry minus the SKU's alert days) has come"),
    ),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class Action:
    key: str
    en: str
    zh: str
    doc: str


ACTIONS: tuple[Action, ...] = (
    Action("markdown", "markdown", "临期降价", N_("markdown sized to clear the lot before expiry")),
    Action(
        "clearance_gift",
        "clearance_gift",
        "清仓加赠品",
        N_("clearance offer with a gift from a slow-moving SKU bought with it"),
    ),
)
ACTION_BY_KEY = {a.key: a for a in ACTIONS}

#: Keyword spellings -> keyword kind. English keywords are case-insensitive.
KEYWORDS: dict[str, str] = {
    "当": "WHEN",
    "如果": "WHEN",
    "when": "WHEN",
    "if": "WHEN",
    "时": "THEN",
    "则": "THEN",
    "then": "THEN",
    "触发": "TRIGGER",
    "trigger": "TRIGGER",
    "且": "AND",
    "并且": "AND",
    "and": "AND",
    "或": "OR",
    "或者": "OR",
    "or": "OR",
    "非": "NOT",
    "not": "NOT",
}

OPERATORS: dict[str, str] = {
    "<=": "<=",
    ">=": ">=",
    "!=": "!=",
    "==": "=",
    "<>": "!=",
    "<": "<",
    ">": ">",
    "=": "=",
    "＜": "<",
    "＞": ">",
    "＝": "=",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
}

_PUNCT = {"(": "(", ")": ")", "（": "(", "）": ")", "%": "%", "％": "%"}


def _vocabulary() -> dict[str, tuple[str, str]]:
    """Every spelling -> (token kind, canonical value)."""
    vocab: dict[str, tuple[str, str]] = {}
    for word, kind in KEYWORDS.items():
        vocab[word] = (kind, kind)
    for m in METRICS:
        vocab[m.en.lower()] = ("METRIC", m.key)
        vocab[m.zh] = ("METRIC", m.key)
    for a in ACTIONS:
        vocab[a.en.lower()] = ("ACTION", a.key)
        vocab[a.zh] = ("ACTION", a.key)
    return vocab


VOCAB = _vocabulary()
_CJK_WORDS = sorted((w for w in VOCAB if not w.isascii()), key=len, reverse=True)

# --------------------------------------------------------------------------- errors


class RuleSyntaxError(ValueError):
    """A rule that does not parse, pointing at the offending word.

    ``message()`` is translated when called (so a language switch re-renders it);
    ``pointer()`` returns the rule line and a caret line under the bad word, aligned for
    double-width CJK characters.
    """

    def __init__(
        self,
        text: str,
        pos: int,
        length: int,
        template: str,
        suggestion: str | None = None,
        **params: Any,
    ) -> None:
        self.text = text
        self.pos = pos
        self.length = max(1, length)
        self.template = template
        self.suggestion = suggestion
        self.params = params
        super().__init__(self.message())

    @property
    def word(self) -> str:
        return self.text[self.pos : self.pos + self.length]

    def message(self) -> str:
        head = _("Character {pos}: ").format(pos=self.pos + 1)
        msg = head + _(self.template).format(**self.params)
        if self.suggestion:
            sep = "" if current_language().startswith("zh") else " "
            msg += sep + _("Did you mean “{suggestion}”?").format(suggestion=self.suggestion)
        return msg

    def pointer(self) -> str:
        line = self.text.replace("\n", " ")
        pad = sum(_width(c) for c in line[: self.pos])
        marks = sum(_width(c) for c in line[self.pos : self.pos + self.length]) or 1
        return f"{line}\n{' ' * pad}{'^' * marks}"


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _suggest(word: str, choices: list[str]) -> str | None:
    hits = difflib.get_close_matches(word.lower() if word.isascii() else word, choices, 1, 0.5)
    return hits[0] if hits else None


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # WHEN THEN TRIGGER AND OR NOT METRIC ACTION NUMBER OP ( ) % WORD END
    value: str
    pos: int
    length: int


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def tokenize(text: str) -> list[Token]:
    """Split a rule into tokens; unknown words become WORD tokens (the parser reports them)."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace() or ch == "\u3000":
            i += 1
            continue
        two = text[i : i + 2]
        if two in OPERATORS:
            tokens.append(Token("OP", OPERATORS[two], i, 2))
            i += 2
            continue
        if ch in OPERATORS:
            tokens.append(Token("OP", OPERATORS[ch], i, 1))
            i += 1
            continue
        if ch in _PUNCT:
            kind = _PUNCT[ch]
            tokens.append(Token(kind, kind, i, 1))
            i += 1
            continue
        if ch.isascii() and (ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit())):
            j = i
            while j < n and text[j].isascii() and (text[j].isdigit() or text[j] == "."):
                j += 1
            tokens.append(Token("NUMBER", text[i:j], i, j - i))
            i = j
            continue
        if ch.isascii() and _is_word_char(ch):
            j = i
            while j < n and text[j].isascii() and _is_word_char(text[j]):
                j += 1
            word = text[i:j]
            kind, value = VOCAB.get(word.lower(), ("WORD", word))
            tokens.append(Token(kind, value, i, j - i))
            i = j
            continue
        if not ch.isascii() and _is_word_char(ch):
            for w in _CJK_WORDS:
                if text.startswith(w, i):
                    kind, value = VOCAB[w]
                    tokens.append(Token(kind, value, i, len(w)))
                    i += len(w)
                    break
            else:
                # An unknown Chinese word runs until a known word, a space or a symbol.
                j = i + 1
                while (
                    j < n
                    and _is_word_char(text[j])
                    and (not text[j].isascii() or text[j].isdigit())
                    and not any(text.startswith(w, j) for w in _CJK_WORDS)
                ):
                    j += 1
                tokens.append(Token("WORD", text[i:j], i, j - i))
                i = j
            continue
        tokens.append(Token("CHAR", ch, i, 1))
        i += 1
    tokens.append(Token("END", "", n, 1))
    return tokens


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class MetricRef:
    key: str
    pos: int

    @property
    def kind(self) -> str:
        return METRIC_BY_KEY[self.key].kind


@dataclass(frozen=True)
class Number:
    value: float
    percent: bool
    pos: int


Operand = MetricRef | Number


@dataclass(frozen=True)
class Compare:
    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True)
class Flag:
    metric: MetricRef


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Condition, ...]


Condition = Compare | Flag | Not | All | Any_


@dataclass(frozen=True)
class Rule:
    condition: Condition
    action: str  # ACTIONS key
    text: str
    metrics: frozenset[str] = field(default_factory=frozenset)

    @property
    def subject(self) -> str:
        """``lot`` when any lot measure is used (one evaluation per lot), else ``sku``."""
        return "lot" if any(METRIC_BY_KEY[k].scope == "lot" for k in self.metrics) else "sku"

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        return _eval(self.condition, values)

    def render(self, lang: str) -> str:
        """The same rule written in ``lang`` (zh_CN or en), e.g. to switch the editor."""
        zh = lang.lower().startswith("zh")
        body = _render(self.condition, zh, top=True)
        act = ACTION_BY_KEY[self.action]
        return f"当 {body} 时 触发 {act.zh}" if zh else f"WHEN {body} THEN {act.en}"


def _num_text(n: Number) -> str:
    v = int(n.value) if float(n.value).is_integer() else n.value
    return f"{v}%" if n.percent else f"{v}"


def _render(c: Condition, zh: bool, top: bool = False) -> str:
    if isinstance(c, Compare):
        parts = []
        for o in (c.left, c.right):
            if isinstance(o, MetricRef):
                m = METRIC_BY_KEY[o.key]
                parts.append(m.zh if zh else m.en)
            else:
                parts.append(_num_text(o))
        return f"{parts[0]} {c.op} {parts[1]}"
    if isinstance(c, Flag):
        m = METRIC_BY_KEY[c.metric.key]
        return m.zh if zh else m.en
    if isinstance(c, Not):
        return ("非 " if zh else "NOT ") + _render(c.item, zh)
    joiner = (" 且 " if zh else " AND ") if isinstance(c, All) else (" 或 " if zh else " OR ")
    text = joiner.join(_render(i, zh) for i in c.items)
    return text if top else f"({text})"


def _value(o: Operand, values: Mapping[str, Any]) -> float | None:
    if isinstance(o, Number):
        return o.value
    v = values.get(o.key)
    if v is None or isinstance(v, bool):
        return None
    return float(v)


_CMP = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: math.isclose(a, b, rel_tol=0, abs_tol=1e-9),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=0, abs_tol=1e-9),
}


def _eval(c: Condition, values: Mapping[str, Any]) -> bool:
    if isinstance(c, Compare):
        a, b = _value(c.left, values), _value(c.right, values)
        if a is None or b is None:
            return False
        return bool(_CMP[c.op](a, b))
    if isinstance(c, Flag):
        return bool(values.get(c.metric.key))
    if isinstance(c, Not):
        return not _eval(c.item, values)
    if isinstance(c, All):
        return all(_eval(i, values) for i in c.items)
    return any(_eval(i, values) for i in c.items)


# --------------------------------------------------------------------------- parser


_KNOWN_WORDS = sorted({*VOCAB.keys()})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.metrics: set[str] = set()

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "END":
            self.i += 1
        return t

    def fail(self, tok: Token, template: str, suggestion: str | None = None, **params: Any):
        raise RuleSyntaxError(self.text, tok.pos, tok.length, template, suggestion, **params)

    def fail_unknown(self, tok: Token, expected: str) -> None:
        """Reports a token that does not fit, with a typo suggestion for unknown words."""
        if tok.kind == "END":
            self.fail(
                tok, N_("The rule stops too early: {expected} is missing."), expected=_(expected)
            )
        if tok.kind == "WORD":
            self.fail(
                tok,
                N_("Unknown word “{word}”: {expected} expected here."),
                _suggest(tok.value, _KNOWN_WORDS),
                word=tok.value,
                expected=_(expected),
            )
        if tok.kind == "CHAR":
            self.fail(
                tok,
                N_("The character “{word}” is not allowed in a rule."),
                word=tok.value,
            )
        self.fail(
            tok,
            N_("“{word}” is not allowed here: {expected} expected."),
            word=self.text[tok.pos : tok.pos + tok.length],
            expected=_(expected),
        )

    # grammar
    def rule(self) -> Rule:
        if self.tok.kind == "END":
            self.fail(self.tok, N_("The rule is empty. Start with “当” or “WHEN”."))
        if self.tok.kind != "WHEN":
            t = self.tok
            if t.kind == "WORD":
                self.fail(
                    t,
                    N_("A rule starts with “当” or “WHEN”, not “{word}”."),
                    _suggest(t.value, ["when", "当", "如果", "if"]),
                    word=t.value,
                )
            self.fail(
                t,
                N_("A rule starts with “当” or “WHEN”, not “{word}”."),
                word=self.text[t.pos : t.pos + t.length],
            )
        self.advance()
        cond = self.condition()
        if self.tok.kind != "THEN":
            if self.tok.kind == "TRIGGER":
                self.fail(self.tok, N_("Write “时” (or “THEN”) before “触发”."))
            if self.tok.kind == ")":
                self.fail(self.tok, N_("This “)” has no matching “(”."))
            self.fail_unknown(self.tok, N_("“且”/“AND”, “或”/“OR” or “时”/“THEN”"))
        self.advance()
        if self.tok.kind == "TRIGGER":
            self.advance()
        t = self.tok
        if t.kind != "ACTION":
            if t.kind == "WORD":
                names = [a.zh for a in ACTIONS] + [a.en for a in ACTIONS]
                self.fail(
                    t,
                    N_("Unknown promotion “{word}”. Known: {known}."),
                    _suggest(t.value, names),
                    word=t.value,
                    known=", ".join(names),
                )
            self.fail_unknown(t, N_("a promotion (e.g. “清仓加赠品” or “markdown”)"))
        self.advance()
        if self.tok.kind != "END":
            self.fail(
                self.tok,
                N_("Unexpected “{word}” after the promotion: the rule must end here."),
                word=self.text[self.tok.pos : self.tok.pos + self.tok.length],
            )
        return Rule(cond, t.value, self.text, frozenset(self.metrics))

    def condition(self) -> Condition:
        items = [self.and_expr()]
        while self.tok.kind == "OR":
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Any_(tuple(items))

    def and_expr(self) -> Condition:
        items = [self.not_expr()]
        while self.tok.kind == "AND":
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else All(tuple(items))

    def not_expr(self) -> Condition:
        if self.tok.kind == "NOT":
            self.advance()
            return Not(self.not_expr())
        return self.primary()

    def primary(self) -> Condition:
        t = self.tok
        if t.kind == "(":
            self.advance()
            inner = self.condition()
            if self.tok.kind != ")":
                if self.tok.kind in ("THEN", "END"):
                    self.fail(t, N_("This “(” is never closed: add “)”."))
                self.fail_unknown(self.tok, N_("“)”"))
            self.advance()
            return inner
        if t.kind == "METRIC" and METRIC_BY_KEY[t.value].kind == "flag":
            self.advance()
            self.metrics.add(t.value)
            if self.tok.kind == "OP":
                self.fail(
                    self.tok,
                    N_("“{word}” is a yes/no condition: it cannot be compared with a value."),
                    word=self.text[t.pos : t.pos + t.length],
                )
            return Flag(MetricRef(t.value, t.pos))
        left, ltok = self.operand()
        op = self.tok
        if op.kind != "OP":
            if op.kind == "%":
                self.fail(op, N_("A “%” must follow a number."))
            self.fail_unknown(op, N_("a comparison (<, <=, >, >=, =, !=)"))
        self.advance()
        right, rtok = self.operand()
        self.check_types(left, ltok, right, rtok)
        return Compare(left, op.value, right)

    def operand(self) -> tuple[Operand, Token]:
        t = self.tok
        if t.kind == "METRIC":
            if METRIC_BY_KEY[t.value].kind == "flag":
                self.fail(
                    t,
                    N_("“{word}” is a yes/no condition: it cannot be compared with a value."),
                    word=self.text[t.pos : t.pos + t.length],
                )
            self.advance()
            self.metrics.add(t.value)
            return MetricRef(t.value, t.pos), t
        if t.kind == "NUMBER":
            self.advance()
            try:
                value = float(t.value)
            except ValueError:
                self.fail(t, N_("“{word}” is not a number."), word=t.value)
            percent = False
            if self.tok.kind == "%":
                percent = True
                self.advance()
            return Number(value, percent, t.pos), t
        if t.kind == "WORD":
            names = [m.zh for m in METRICS] + [m.en for m in METRICS]
            self.fail(
                t,
                N_("Unknown measure “{word}”."),
                _suggest(t.value, names),
                word=t.value,
            )
        self.fail_unknown(t, N_("a measure (e.g. “库存” or “stock”) or a number"))
        raise AssertionError  # fail() always raises

    def check_types(self, left: Operand, ltok: Token, right: Operand, rtok: Token) -> None:
        if isinstance(left, Number) and isinstance(right, Number):
            self.fail(ltok, N_("Compare a measure with a value: both sides are numbers."))
        pairs = ((left, ltok, right, rtok), (right, rtok, left, ltok))
        for side, tok, other, other_tok in pairs:
            if isinstance(side, MetricRef) and isinstance(other, Number):
                word = self.text[tok.pos : tok.pos + tok.length]
                if side.kind == "percent" and not other.percent:
                    self.fail(
                        other_tok,
                        N_("“{word}” is a percentage: write the value with “%”, e.g. 40%."),
                        word=word,
                    )
                if side.kind != "percent" and other.percent:
                    self.fail(
                        Token("NUMBER", "", other_tok.pos, other_tok.length + 1),
                        N_("“{word}” is not a percentage: write the value without “%”."),
                        word=word,
                    )
        if isinstance(left, MetricRef) and isinstance(right, MetricRef):
            kinds = {left.kind, right.kind}
            if len(kinds) > 1 and "percent" in kinds:
                self.fail(
                    rtok,
                    N_("A percentage cannot be compared with a quantity."),
                )


def parse_rule(text: str) -> Rule:
    """Parse a rule or raise :class:`RuleSyntaxError` pointing at the bad word."""
    return _Parser(text).rule()


def check_rule(text: str) -> RuleSyntaxError | None:
    """The error of a rule text, or None when it parses (for the live editor)."""
    try:
        parse_rule(text)
    except RuleSyntaxError as e:
        return e
    return None
