"""Caveats: conformance expressions, types, partial evaluation, errors and limits."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from rebac.caveats import CaveatLimits, CaveatOutcome, CelCaveatEvaluator, compile_caveat, merge_context
from rebac.caveats.types import convert_value, parse_duration, parse_timestamp, parse_type
from rebac.errors import (
    CaveatEvaluationError,
    CaveatLimitExceededError,
    LimitExceededError,
    SchemaCompileError,
    SourcePosition,
)
from rebac.schema.definitions import CaveatDefinition, CaveatParameter
from tests.conformance_paths import CASES_FILE

CONFORMANCE = CASES_FILE


def caveat(expression: str, **params: str) -> CaveatDefinition:
    return CaveatDefinition("c", tuple(CaveatParameter(k, v) for k, v in params.items()), expression)


def outcome(expression: str, context: dict, **params: str):
    return compile_caveat(caveat(expression, **params)).evaluate(context)


# (expression, parameter types, merged context, expected) from the conformance single-caveat checks.
CONFORMANCE_TABLE = [
    ("somecondition == 42", {"somecondition": "int"}, {"somecondition": 42}, True),
    ("somecondition == 42", {"somecondition": "int"}, {"somecondition": 41}, False),
    ("anothercondition == 'hello world'", {"anothercondition": "string"}, {"anothercondition": "hello world"}, True),
    ("anothercondition == 'hello world'", {"anothercondition": "string"}, {"anothercondition": "hi there"}, False),
    ("thirdcondition", {"thirdcondition": "bool"}, {"thirdcondition": True}, True),
    ("thirdcondition", {"thirdcondition": "bool"}, {"thirdcondition": False}, False),
    ("memberparam >= 42", {"memberparam": "int"}, {"memberparam": 42}, True),
    ("memberparam >= 42", {"memberparam": "int"}, {"memberparam": 1}, False),
    ("teamparam < 42", {"teamparam": "int"}, {"teamparam": 41}, True),
    ("teamparam < 42", {"teamparam": "int"}, {"teamparam": 100}, False),
    ("current_time < expiration", {"current_time": "timestamp", "expiration": "timestamp"},
     {"current_time": "2022-01-01T00:00:00Z", "expiration": "2023-12-01T00:00:00Z"}, True),
    ("current_time < expiration", {"current_time": "timestamp", "expiration": "timestamp"},
     {"current_time": "2023-12-01T00:01:00Z", "expiration": "2023-12-01T00:00:00Z"}, False),
    ("now < expires_at", {"expires_at": "timestamp", "now": "timestamp"},
     {"now": "2023-01-01T00:00:00Z", "expires_at": "2024-10-03T07:16:28.068632-07:00"}, True),
    ("now < expires_at", {"expires_at": "timestamp", "now": "timestamp"},
     {"now": "2025-01-01T00:00:00Z", "expires_at": "2024-10-03T14:16:30.776734Z"}, False),
    ("user_ip.in_cidr(cidr)", {"user_ip": "ipaddress", "cidr": "string"}, {"user_ip": "10.2.3.4", "cidr": "10.0.0.0/8"}, True),
    ("user_ip.in_cidr(cidr)", {"user_ip": "ipaddress", "cidr": "string"}, {"user_ip": "10.2.3.4", "cidr": "10.1.0.0/16"}, False),
    ("user_ip.in_cidr(cidr)", {"user_ip": "ipaddress", "cidr": "string"}, {"user_ip": "1.2.3.4", "cidr": "10.0.0.0/8"}, False),
    ("somelist.all(i, i >= 42)", {"somelist": "list<int>"}, {"somelist": [42, 43]}, True),
    ("somelist.all(i, i >= 42)", {"somelist": "list<int>"}, {"somelist": []}, True),
    ("somelist.all(i, i >= 42)", {"somelist": "list<int>"}, {"somelist": [42, 41]}, False),
    ("count < limit", {"limit": "uint", "count": "uint"}, {"limit": 4, "count": 3}, True),
    ("count < limit", {"limit": "uint", "count": "uint"}, {"limit": 2, "count": 3}, False),
    ("actual == required", {"actual": "string", "required": "string"}, {"actual": "admin", "required": "admin"}, True),
    ("actual == required", {"actual": "string", "required": "string"}, {"actual": "unknown", "required": "admin"}, False),
    ("day_of_week == 'tuesday'", {"day_of_week": "string"}, {"day_of_week": "tuesday"}, True),
    ('day_of_week == "friday"', {"day_of_week": "string"}, {"day_of_week": "monday"}, False),
    ("somecondition == somesecret", {"somesecret": "int", "somecondition": "int"}, {"somesecret": 41, "somecondition": 41}, True),
    ("somecondition == somesecret", {"somesecret": "int", "somecondition": "int"}, {"somesecret": 42, "somecondition": 41}, False),
]


class TestConformance:
    @pytest.mark.parametrize(("expression", "params", "context", "expected"), CONFORMANCE_TABLE)
    def test_conformance_expression_decides_as_upstream(self, expression, params, context, expected):
        """Every caveat expression of the conformance cases decides as upstream's checks expect."""
        result = outcome(expression, context, **params)
        assert result.outcome is (CaveatOutcome.TRUE if expected else CaveatOutcome.FALSE)

    @pytest.mark.parametrize(("expression", "params", "context", "expected"), CONFORMANCE_TABLE)
    def test_without_context_every_conformance_caveat_is_partial(self, expression, params, context, expected):
        """With no context at all each conformance caveat is undecided and names all it reads."""
        result = outcome(expression, {}, **params)
        assert result.is_partial
        assert result.missing == tuple(sorted(params))

    def test_every_conformance_caveat_definition_compiles(self):
        """Every caveat declared in a conformance schema compiles (if the file exists)."""
        if not CONFORMANCE.exists():
            pytest.skip("shared conformance data not present on this machine")
        pattern = re.compile(r"caveat\s+([\w/]+)\s*\(([^)]*)\)\s*\{([^}]*)\}", re.DOTALL)
        seen = 0
        for line in CONFORMANCE.read_text().splitlines():
            for name, params, body in pattern.findall(json.loads(line)["schema"]):
                pairs = [p.strip().split(None, 1) for p in params.split(",") if p.strip()]
                defn = CaveatDefinition(name, tuple(CaveatParameter(n, t) for n, t in pairs), body.strip())
                assert compile_caveat(defn).name == name
                seen += 1
        assert seen >= 20


class TestPartialEvaluation:
    def test_or_decided_by_a_true_side_despite_a_missing_one(self):
        """`a || b` with a=true is decided true though b is missing."""
        assert outcome("a || b", {"a": True}, a="bool", b="bool").outcome is CaveatOutcome.TRUE

    def test_and_decided_by_a_false_side_despite_a_missing_one(self):
        """`a && b` with a=false is decided false though b is missing."""
        assert outcome("a && b", {"a": False}, a="bool", b="bool").outcome is CaveatOutcome.FALSE

    def test_missing_lists_only_parameters_that_still_matter(self):
        """`(a && b) || c` with b=false and a, c missing names only c."""
        result = outcome("(a && b) || c", {"b": False}, a="bool", b="bool", c="bool")
        assert (result.outcome, result.missing) == (CaveatOutcome.PARTIAL, ("c",))

    def test_missing_names_are_sorted_and_merged(self):
        """Unknowns from both sides of `&&` merge into one sorted list."""
        result = outcome("zeta > 1 && alpha == 'x'", {}, zeta="int", alpha="string")
        assert result.missing == ("alpha", "zeta")

    def test_unreferenced_declared_parameter_is_not_required(self):
        """A declared but unused parameter never makes the caveat partial."""
        assert outcome("a", {"a": True}, a="bool", unused="int").outcome is CaveatOutcome.TRUE

    def test_ternary_with_missing_condition_is_partial(self):
        """An unknown `? :` condition leaves the result undecided on the condition's parameter."""
        result = outcome("flag ? n > 1 : n < 1", {"n": 5}, flag="bool", n="int")
        assert result.missing == ("flag",)

    def test_error_absorbed_by_deciding_side(self):
        """CEL's commutative `||`: an erroring side does not matter when the other is true."""
        assert outcome("m['x'] == 1 || ok", {"m": {}, "ok": True}, m="map<int>", ok="bool").is_true

    def test_runtime_error_raises_clear_error(self):
        """A runtime error that decides the result raises CaveatEvaluationError naming the caveat."""
        with pytest.raises(CaveatEvaluationError, match="caveat `c`"):
            outcome("m['x'] == 1", {"m": {}}, m="map<int>")


class TestContextMerging:
    def test_relationship_context_overrides_request_context(self):
        """SpiceDB precedence: the relationship's stored value wins for the same parameter."""
        merged = merge_context({"limit": 10, "count": 3}, {"limit": 2})
        assert merged == {"limit": 2, "count": 3}
        assert outcome("count < limit", merged, limit="int", count="int").outcome is CaveatOutcome.FALSE

    def test_engine_evaluator_protocol(self):
        """CelCaveatEvaluator evaluates a definition against a merged context."""
        verdict = CelCaveatEvaluator().evaluate(caveat("x == 1", x="int"), {"x": 1})
        assert verdict.is_true
        assert not verdict.is_partial
        assert verdict.missing == ()


class TestTypes:
    @pytest.mark.parametrize(
        ("expression", "params", "context"),
        [
            ("d == duration('1h30m')", {"d": "duration"}, {"d": "1h30m"}),
            ("t + d > timestamp('2024-01-01T00:00:00Z')", {"t": "timestamp", "d": "duration"},
             {"t": "2023-12-31T23:00:00Z", "d": "2h"}),
            ("b == b'abc'", {"b": "bytes"}, {"b": "YWJj"}),
            ("x > 1.5", {"x": "double"}, {"x": 2}),
            ("n == 9223372036854775807", {"n": "int"}, {"n": "9223372036854775807"}),
            ("m['k'].size() == 2", {"m": "map<list<string>>"}, {"m": {"k": ["a", "b"]}}),
            ("v == 'x'", {"v": "any"}, {"v": "x"}),
            ("ip.in_cidr('2001:db8::/32')", {"ip": "ipaddress"}, {"ip": "2001:db8::1"}),
            ("n == 3", {"n": "int"}, {"n": 3.0}),
        ],
    )
    def test_json_values_convert_like_spicedb(self, expression, params, context):
        """JSON context values convert to their declared types as SpiceDB does."""
        assert outcome(expression, context, **params).is_true

    @pytest.mark.parametrize(
        ("type_text", "value", "fragment"),
        [
            ("int", "abc", "integer"),
            ("int", 1.5, "integer"),
            ("int", True, "integer"),
            ("uint", -1, "out of range"),
            ("int", 2**63, "out of range"),
            ("bool", "true", "bool"),
            ("timestamp", "2024-01-01", "RFC 3339"),
            ("duration", "1 hour", "duration"),
            ("ipaddress", "10.0.0.300", "does not appear"),
            ("list<int>", [1, "x"], "integer"),
            ("bytes", "@@@", "base64"),
        ],
    )
    def test_wrong_context_value_names_parameter(self, type_text, value, fragment):
        """A context value of the wrong type raises CaveatEvaluationError naming parameter and type."""
        with pytest.raises(CaveatEvaluationError, match=f"`p` of type {type_text.replace('<', '.').replace('>', '.')}") as info:
            convert_value("p", parse_type(type_text), value)
        assert fragment in str(info.value)

    def test_duration_and_timestamp_parsing(self):
        """Go durations and RFC 3339 timestamps (with offsets and fractions) parse exactly."""
        assert parse_duration("1h30m") == timedelta(minutes=90)
        assert parse_duration("-1.5h") == timedelta(minutes=-90)
        assert parse_duration("300ms") == timedelta(milliseconds=300)
        assert parse_timestamp("2024-10-03T07:16:28.068632-07:00") == datetime(2024, 10, 3, 14, 16, 28, 68632, UTC)

    def test_unknown_parameter_type_is_compile_error(self):
        """An unknown parameter type is a SchemaCompileError at the parameter."""
        defn = CaveatDefinition("c", (CaveatParameter("x", "float", SourcePosition(1, 10)),), "x > 1")
        with pytest.raises(SchemaCompileError, match="unknown caveat parameter type `float`") as info:
            compile_caveat(defn)
        assert info.value.position == SourcePosition(1, 10)


class TestCompileErrors:
    @pytest.mark.parametrize(
        ("expression", "params", "fragment", "position"),
        [
            ("missing == 1", {"x": "int"}, "undeclared reference to `missing`", SourcePosition(1, 1)),
            ("x == 1 &&\n  y == 'a'", {"x": "int", "y": "int"}, "no `==` for int and string", SourcePosition(2, 3)),
            ("x + 1", {"x": "int"}, "must result in a bool", SourcePosition(1, 1)),
            ("x.startsWith('a')", {"x": "int"}, "unknown method `startsWith`", SourcePosition(1, 3)),
            ("x == ", {"x": "int"}, "syntax error", None),
            ("ip.in_cidr(1)", {"ip": "ipaddress"}, "unknown method `in_cidr`", SourcePosition(1, 4)),
            ("l.all(i, i)", {"l": "list<int>"}, "predicate of `all` must be bool", SourcePosition(1, 10)),
        ],
    )
    def test_bad_expression_is_compile_error_with_position(self, expression, params, fragment, position):
        """Unknown parameters, type mismatches and non-bool results fail with line:column."""
        with pytest.raises(SchemaCompileError, match=fragment) as info:
            compile_caveat(caveat(expression, **params))
        if position is not None:
            assert info.value.position == position
        else:
            assert info.value.position is not None

    def test_compiled_caveats_are_cached(self):
        """Compiling an equal definition twice returns the same compiled caveat."""
        assert compile_caveat(caveat("x == 1", x="int")) is compile_caveat(caveat("x == 1", x="int"))

    def test_deep_nesting_rejected_at_compile_time(self):
        """A pathologically nested expression is refused before any recursive walk."""
        with pytest.raises(SchemaCompileError, match="nested too deeply"):
            compile_caveat(caveat("(" * 300 + "x" + ")" * 300, x="bool"))


class TestLimits:
    def test_nested_comprehension_cut_off_quickly(self):
        """A cubic comprehension over a large list is refused in well under a second."""
        compiled = compile_caveat(caveat("l.all(x, l.all(y, l.all(z, x + y + z > 0)))", l="list<int>"))
        started = time.perf_counter()
        with pytest.raises(CaveatLimitExceededError, match="over the limit"):
            compiled.evaluate({"l": list(range(1, 2000))})
        assert time.perf_counter() - started < 0.5

    def test_limit_error_is_a_caveat_and_limit_error(self):
        """The limit error is both a CaveatEvaluationError and a LimitExceededError."""
        assert issubclass(CaveatLimitExceededError, CaveatEvaluationError)
        assert issubclass(CaveatLimitExceededError, LimitExceededError)

    def test_small_comprehension_within_limits_evaluates(self):
        """The same expression over a small list evaluates normally."""
        compiled = compile_caveat(caveat("l.all(x, l.all(y, x + y > 0))", l="list<int>"))
        assert compiled.evaluate({"l": [1, 2, 3]}).is_true

    def test_configurable_limit(self):
        """A lower configured max_cost cuts off what the default allows."""
        defn = caveat("l.exists(x, x == 99)", l="list<int>")
        with pytest.raises(CaveatLimitExceededError):
            compile_caveat(defn, limits=CaveatLimits(max_cost=50)).evaluate({"l": list(range(100))})
        assert compile_caveat(defn).evaluate({"l": list(range(100))}).is_true

    def test_expression_length_limit(self):
        """An over-long expression is a compile error, not a slow parse."""
        with pytest.raises(SchemaCompileError, match="longer than"):
            compile_caveat(caveat("x" + " || x" * 50, x="bool"), limits=CaveatLimits(max_expression_length=100))
