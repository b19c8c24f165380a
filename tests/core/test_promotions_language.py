"""The rule language: valid zh/en rules parse to the same rule; every bad rule is pointed at."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import i18n
from core.promotions.language import RuleSyntaxError, check_rule, parse_rule, tokenize

SEED_ZH = "当 库存 < 安全库存 且 近7日销量环比 > 40% 时 触发 清仓加赠品"
SEED_EN = "WHEN stock < safety_stock AND sales_7d_wow > 40% THEN clearance_gift"
EXPIRY_ZH = "当 已到临期预警日 且 到期前预计销量 < 批次数量 时 触发 临期降价"


def test_seed_rule_in_chinese_and_english_is_the_same_rule() -> None:
    zh, en = parse_rule(SEED_ZH), parse_rule(SEED_EN)
    assert zh.condition == en.condition or zh.render("en") == en.render("en")
    assert zh.action == en.action == "clearance_gift"
    assert zh.subject == "sku"
    assert zh.render("en") == SEED_EN
    assert en.render("zh_CN") == SEED_ZH
    assert zh.metrics == {"stock", "safety_stock", "sales_7d_wow"}


@pytest.mark.parametrize(
    "text",
    [
        "当库存<安全库存且近7日销量环比>40%时触发清仓加赠品",  # no spaces
        "当　库存　＜　安全库存　且　近7日销量环比　＞　40％　时　触发　清仓加赠品",  # full-width
        "when STOCK < Safety_Stock and SALES_7D_WOW > 40% then CLEARANCE_GIFT",  # any case
        "如果 库存 < 安全库存 并且 近7日销量环比 > 40% 则 清仓加赠品",  # synonyms, no 触发
    ],
)
def test_spellings_of_the_seed_rule(text: str) -> None:
    assert parse_rule(text).render("zh") == SEED_ZH


def test_expiry_rule_is_a_lot_rule() -> None:
    r = parse_rule(EXPIRY_ZH)
    assert r.subject == "lot"
    assert r.action == "markdown"
    assert r.evaluate({"in_alert_window": True, "expected_sales_before_expiry": 9, "lot_qty": 10})
    assert not r.evaluate(
        {"in_alert_window": True, "expected_sales_before_expiry": 10, "lot_qty": 10}
    )
    assert not r.evaluate(
        {"in_alert_window": False, "expected_sales_before_expiry": 0, "lot_qty": 10}
    )


def test_precedence_parentheses_and_not() -> None:
    r = parse_rule("WHEN stock < 5 OR stock > 100 AND NOT (sales_7d >= 3) THEN markdown")
    # AND binds tighter than OR
    assert r.evaluate({"stock": 1, "sales_7d": 10})
    assert r.evaluate({"stock": 200, "sales_7d": 0})
    assert not r.evaluate({"stock": 200, "sales_7d": 3})
    assert not r.evaluate({"stock": 50, "sales_7d": 0})
    assert r.render("en") == "WHEN stock < 5 OR (stock > 100 AND NOT sales_7d >= 3) THEN markdown"
    assert parse_rule(r.render("zh")).render("en") == r.render("en")


def test_undefined_measure_never_triggers() -> None:
    r = parse_rule(SEED_EN)
    assert not r.evaluate({"stock": 1, "safety_stock": 5, "sales_7d_wow": None})


def test_no_eval_python_is_just_unknown_words() -> None:
    err = check_rule("WHEN __import__('os') THEN markdown")
    assert err is not None and err.pos == 5


def _err(text: str) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(text)
    return info.value


# (rule, offending word, expected suggestion or None, fragment of the message)
BAD_RULES = [
    ("", "", None, "empty"),
    ("stock < 3 THEN markdown", "stock", None, "starts with"),
    ("WHNE stock < 3 THEN markdown", "WHNE", "when", "starts with"),
    ("当 库纯 < 安全库存 时 触发 清仓加赠品", "库纯", "库存", "Unknown measure"),
    ("WHEN stok < 3 THEN markdown", "stok", "stock", "Unknown measure"),
    ("WHEN stock 3 THEN markdown", "3", None, "comparison"),
    ("WHEN stock < THEN markdown", "THEN", None, "measure"),
    ("WHEN 3 < 4 THEN markdown", "3", None, "both sides are numbers"),
    ("当 近7日销量环比 > 40 时 触发 清仓加赠品", "40", None, "percentage"),
    ("WHEN stock > 4% THEN markdown", "4%", None, "not a percentage"),
    ("WHEN stock < sales_7d_wow THEN markdown", "sales_7d_wow", None, "percentage"),
    ("WHEN (stock < 3 THEN markdown", "(", None, "never closed"),
    ("WHEN stock < 3) THEN markdown", ")", None, "no matching"),
    ("WHEN stock < 3 THEN markdwn", "markdwn", "markdown", "Unknown promotion"),
    ("当 库存 < 3 时 触发 清仓加赠", "清仓加赠", "清仓加赠品", "Unknown promotion"),
    ("WHEN stock < 3 THEN", "", None, "too early"),
    ("WHEN stock < 3", "", None, "too early"),
    ("WHEN stock < 3 THEN markdown now", "now", None, "must end here"),
    ("WHEN stock < # THEN markdown", "#", None, "not allowed"),
    ("WHEN in_alert_window > 1 THEN markdown", ">", None, "yes/no"),
    ("WHEN stock < 3 AND THEN markdown", "THEN", None, "measure"),
    ("WHEN stock < 1.2.3 THEN markdown", "1.2.3", None, "not a number"),
    ("当 库存 < 3 触发 临期降价", "触发", None, "before"),
    ("WHEN stock % 3 THEN markdown", "%", None, "must follow a number"),
]


@pytest.mark.parametrize(("text", "word", "suggestion", "fragment"), BAD_RULES)
def test_every_bad_rule_points_at_the_bad_word(
    text: str, word: str, suggestion: str | None, fragment: str
) -> None:
    e = _err(text)
    assert e.word == word or (word == "" and e.pos == len(text))
    if word:
        assert text[e.pos : e.pos + e.length] == word
    assert e.suggestion == suggestion
    assert fragment in e.message()
    assert e.message().startswith(f"Character {e.pos + 1}: ")
    line, caret = e.pointer().split("\n")
    assert line == text
    assert caret.strip() == "^" * len(caret.strip()) and caret.strip()


def test_caret_lines_up_under_chinese_words() -> None:
    e = _err("当 库纯 < 安全库存 时 触发 清仓加赠品")
    _line, caret = e.pointer().split("\n")
    # 当 is double width (2 columns) + one space: the caret starts at column 3, covers 4
    assert caret == "   ^^^^"


def test_errors_are_translated() -> None:
    try:
        i18n.set_language("zh_CN")
        e = _err("WHEN stok < 3 THEN markdown")
        assert e.message() == "第 6 个字符：不认识的指标“stok”。是不是想写“stock”？"
    finally:
        i18n.set_language("en")


def test_tokenizer_longest_match_without_spaces() -> None:
    kinds = [t.kind for t in tokenize("当近28日销量>=10时触发临期降价")]
    assert kinds == ["WHEN", "METRIC", "OP", "NUMBER", "THEN", "TRIGGER", "ACTION", "END"]


WORDS = [
    "当", "时", "触发", "且", "或", "非", "WHEN", "THEN", "AND", "OR", "NOT", "库存", "安全库存",
    "近7日销量环比", "stock", "cover_days", "in_alert_window", "清仓加赠品", "markdown", "<",
    ">=", "=", "≠", "(", ")", "（", "40", "40%", "1.5", "%", "#", "库纯", "x", " ", "　",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)))
def test_any_text_parses_or_fails_with_a_pointed_error(text: str) -> None:
    try:
        rule = parse_rule(text)
    except RuleSyntaxError as e:
        assert 0 <= e.pos <= len(text)
        assert e.message() and "^" in e.pointer()
    else:
        # a rule that parses survives a round trip through both languages
        assert parse_rule(rule.render("zh")).render("en") == rule.render("en")
        assert parse_rule(rule.render("en")).render("zh") == rule.render("zh")


def _conditions():
    from core.promotions.language import METRICS, All, Any_, Compare, Flag, MetricRef, Not, Number

    flags = [m.key for m in METRICS if m.kind == "flag"]
    measures = [m for m in METRICS if m.kind != "flag"]

    def compare(m, op: str, v: float, flip: bool) -> Compare:
        metric, number = MetricRef(m.key, 0), Number(v, m.kind == "percent", 0)
        return Compare(number, op, metric) if flip else Compare(metric, op, number)

    comparisons = st.builds(
        compare,
        st.sampled_from(measures),
        st.sampled_from(["<", "<=", ">", ">=", "=", "!="]),
        st.integers(0, 500).map(float),
        st.booleans(),
    )
    leaf = st.one_of(comparisons, st.sampled_from(flags).map(lambda k: Flag(MetricRef(k, 0))))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            inner.map(Not),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: All(tuple(xs))),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: Any_(tuple(xs))),
        ),
        max_leaves=6,
    )


@settings(max_examples=200, deadline=None)
@given(_conditions(), st.sampled_from(["markdown", "clearance_gift"]))
def test_generated_rules_round_trip_and_evaluate_the_same(cond, action) -> None:
    from core.promotions.language import Rule

    rule = Rule(cond, action, "")
    zh, en = rule.render("zh_CN"), rule.render("en")
    assert parse_rule(zh).render("en") == en
    assert parse_rule(en).render("zh_CN") == zh
    values = {"stock": 3, "safety_stock": 5, "sales_7d_wow": 41.0, "in_alert_window": True}
    assert parse_rule(zh).evaluate(values) == rule.evaluate(values)
