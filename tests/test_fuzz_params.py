"""Fuzzed input: property-based tests (Hypothesis) over every experiment's
parameters (``mmslib.params.EXPERIMENTS``) and over trace files.

Properties:

- a value of a type no parameter takes (a dict, a set, bytes, a complex
  number, an object) given to any parameter of any experiment is rejected with
  one ``ParamError`` naming that parameter; an unknown parameter name is
  rejected with one naming it;
- any mix of values (numbers at and beyond the limits, NaN, infinities,
  strings as a shell user types them, lists, None) either validates or is
  rejected with one ``ParamError`` naming a parameter; never another exception;
- any trace file (text or bytes) is read or rejected with one ``ParamError``
  naming ``trace``; never another exception;
- nothing is started meanwhile: no child process.

At least 1,000 invalid inputs are tried (counted, and asserted; ten times as
many in ``make check-long``); the count is printed (``-s``).
"""
from __future__ import annotations

import math
import os
import string
from dataclasses import fields

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmslib import params
from mmslib.errors import ParamError

EXPERIMENTS = dict(params.EXPERIMENTS)
FIELDS = {k: [f.name for f in fields(c) if not f.name.startswith("_")] for k, c in EXPERIMENTS.items()}
SCALE = 10 if os.environ.get("MMSLIB_LONG") == "1" else 1  # make check-long: 10x the examples
SETTINGS = dict(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
COUNTS = {"rejected": 0, "accepted": 0, "tracebacks": 0}


@pytest.fixture(scope="module", autouse=True)
def nothing_started():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before, f"processes started while validating: {after - before}"
    print(f"\n[fuzz] {COUNTS['rejected']} invalid inputs rejected with one ParamError, "
          f"{COUNTS['accepted']} valid, {COUNTS['tracebacks']} other exceptions")


def _outcome(experiment, raw, out_dir):
    raw = dict(raw)
    raw.setdefault("output_dir", str(out_dir))
    try:
        params.build(experiment, raw)
    except ParamError as e:
        COUNTS["rejected"] += 1
        return e
    except Exception:  # noqa: BLE001 - any other exception is the finding
        COUNTS["tracebacks"] += 1
        raise
    COUNTS["accepted"] += 1
    return None


# Values no parameter takes.
ABSURD = st.one_of(
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sets(st.integers(), min_size=1, max_size=3).map(frozenset),
    st.binary(max_size=10),
    st.complex_numbers(allow_nan=False, allow_infinity=False).filter(lambda z: z.imag != 0),
    st.just(object()),
    st.lists(st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2), min_size=1,
             max_size=2),
)


@settings(max_examples=700 * SCALE, **SETTINGS)
@given(data=st.data())
def test_a_value_of_no_parameter_type_is_one_param_error_naming_it(data, tmp_path_factory):
    experiment = data.draw(st.sampled_from(sorted(EXPERIMENTS)), "experiment")
    name = data.draw(st.sampled_from(FIELDS[experiment]), "parameter")
    value = data.draw(ABSURD, "value")
    e = _outcome(experiment, {name: value}, tmp_path_factory.getbasetemp() / "fuzz")
    assert e is not None, f"{experiment}: {name}={value!r} accepted"
    assert e.name == name, f"{experiment}: {name}={value!r} rejected naming {e.name!r}: {e}"
    assert name in str(e)


IDENT = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20)


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(experiment=st.sampled_from(sorted(EXPERIMENTS)), name=IDENT, value=st.integers())
def test_an_unknown_parameter_is_one_param_error_naming_it(experiment, name, value, tmp_path_factory):
    if name in FIELDS[experiment]:
        return
    e = _outcome(experiment, {name: value}, tmp_path_factory.getbasetemp() / "fuzz")
    assert e is not None and e.name == name, e


EDGY = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-10**12, max_value=10**12), st.sampled_from([0, -1, 1, 2**31, 2**63, -2**63]),
    st.sampled_from([10**400, -10**400, "1E310", "9" * 400, "1e310Gi", "-1e-400"]),  # beyond any float
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e-300]),
    st.text(max_size=12),
    st.sampled_from(["", " ", "0", "-1", "1e3", "1_000", "nan", "inf", "[1, 2]", "1,2", "[]", "[", "none",
                     "yes", "10Gi", "100m", "-5Mi", "1e999", "0x10", "traditional", "mms", "kserve", "triton",
                     "a b", "[traditional, mms]", "{}", "\x00", "..", "/", "-"]),
    st.lists(st.one_of(st.integers(-5, 2000), st.floats(allow_nan=True), st.text(max_size=4)), max_size=4),
)


@settings(max_examples=400 * SCALE, **SETTINGS)
@given(data=st.data())
def test_any_mix_of_values_is_valid_or_one_param_error(data, tmp_path_factory):
    experiment = data.draw(st.sampled_from(sorted(EXPERIMENTS)), "experiment")
    names = data.draw(st.lists(st.sampled_from(FIELDS[experiment]), min_size=1, max_size=4, unique=True))
    raw = {n: data.draw(EDGY, n) for n in names if n != "output_dir"}
    e = _outcome(experiment, raw, tmp_path_factory.getbasetemp() / "fuzz")
    if e is not None:
        assert e.name in FIELDS[experiment] or e.name in raw, f"{raw} rejected naming {e.name!r}: {e}"
        assert str(e).startswith(f"parameter {e.name!r}: got ") and "allowed: " in str(e)


# ------------------------------------------------------------------ trace files

ROW = st.one_of(
    st.tuples(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["m00000", "m00001", "x", ""])
              ).map(",".join),
    st.text(max_size=30),
    st.sampled_from(["0,m00000", "0.5,m00001", "-1,m00000", "nan,m00000", "1e999,m00000", "1,m00000,extra",
                     "1", ",", '"0",m00000', "0,\"m00000", "\x00,m00000", "1;m00000"]),
)
HEADER = st.one_of(st.just("offset_s,model"), st.sampled_from(["model,offset_s", "offset_s", "", " offset_s , model "]),
                   st.text(max_size=20))


@settings(max_examples=300 * SCALE, **SETTINGS)
@given(data=st.data())
def test_any_trace_file_is_read_or_one_param_error_naming_trace(data, tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "fuzz-trace.csv"  # one file, rewritten per example
    if data.draw(st.booleans(), "binary"):
        path.write_bytes(data.draw(st.binary(max_size=200), "bytes"))
    else:
        rows = data.draw(st.lists(ROW, max_size=8), "rows")
        path.write_text("\n".join([data.draw(HEADER, "header"), *rows]) + "\n", encoding="utf-8",
                        errors="surrogatepass")
    e = _outcome("traffic", {"arrival": "trace", "trace": str(path), "models": [2]},
                 tmp_path_factory.getbasetemp() / "fuzz")
    if e is not None:
        assert e.name == "trace", e


def test_at_least_1000_invalid_inputs_were_tried():
    """Runs last in this module (pytest keeps file order): the properties above rejected >= 1,000 inputs."""
    if COUNTS["rejected"] + COUNTS["accepted"] == 0:
        pytest.skip("run with the property tests above")
    assert COUNTS["tracebacks"] == 0
    assert COUNTS["rejected"] >= 1000, COUNTS
