"""Fuzzing the wire: property-based frames, handshakes and tickets; the relay answers each, stays up, keeps pace.

The pure checks (`protocol.check_input`, `tickets.verify`) take thousands of hypothesis examples;
the wire-level cases are drawn by hypothesis too (derandomized, so CI is reproducible) and then
replayed against a real relay, several at a time, while a canary session keeps sending inputs and
must keep getting its answers. Malformed WebSocket frames are written by hand on a raw socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import string
import struct
import time
from typing import Any
from urllib.parse import quote

import jwt
import msgpack
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_server import tickets
from realtime_server.protocol import BadFrame, FrameTooLarge, TicketExpired, Unauthorized, check_input

from .conftest import SECRET, RunningRelay, pack
from .reliability import ERROR_CLOSE, Canary, RawSocket, client_frame, wait_for
from .upstreams import FAULT_APPS, fault_upstream

# Reproducible in CI: a fixed seed per test, no example database, no wall-clock deadline (CI is loaded).
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True)
MAX_BYTES = 4096  # the fuzzed relay's RELAY_MAX_FRAME_BYTES
NOW = 1_800_000_000.0
LEEWAY = 5.0
COUNTS: dict[str, int] = {}  # cases run per test, printed in the summary test at the end


def _count(name: str, n: int = 1) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + n


# The input fields and the type each must have (README, "Wire protocol"; fal's realtime image apps).
FIELDS = {
    "prompt": "str", "negative_prompt": "str", "image_url": "str", "image_bytes": "bytes", "seed": "int",
    "num_inference_steps": "int", "num_images": "int", "width": "int", "height": "int", "strength": "number",
    "guidance_scale": "number", "enable_safety_checks": "bool", "sync_mode": "bool",
}
TYPE_NAMES = {"str": "a string", "bytes": "binary (msgpack bin)", "int": "an integer", "number": "a number",
              "bool": "a boolean"}
INT64 = st.integers(-(2**63), 2**64 - 1)
VALUES = {
    "str": st.text(max_size=20), "bytes": st.binary(max_size=20), "int": INT64,
    "number": st.one_of(INT64, st.floats(allow_nan=True, allow_infinity=True)), "bool": st.booleans(),
}
WRONG = {
    "str": st.one_of(INT64, st.floats(), st.booleans(), st.binary(max_size=8), st.lists(INT64, max_size=3)),
    "bytes": st.one_of(st.text(max_size=8), INT64, st.floats(), st.booleans(), 
                   st.dictionaries(st.text(max_size=3), INT64, max_size=2)),
    "int": st.one_of(st.text(max_size=8), st.floats(), st.booleans(), st.binary(max_size=8)),
    "number": st.one_of(st.text(max_size=8), st.booleans(), st.binary(max_size=8), st.lists(st.floats(), max_size=2)),
    "bool": st.one_of(INT64, st.text(max_size=8), st.floats(), st.binary(max_size=8)),
}
PY_TYPE = {str: "str", bytes: "bytes", int: "int", float: "float", bool: "bool", list: "list", dict: "dict",
           type(None): "NoneType"}

scalars = st.one_of(st.none(), st.booleans(), INT64, st.floats(), st.text(max_size=12), st.binary(max_size=12))
msgpack_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
well_typed = st.builds(
    lambda known, extra: {**known, **extra},
    st.fixed_dictionaries({}, optional={name: st.one_of(st.none(), VALUES[kind]) for name, kind in FIELDS.items()}),
    st.dictionaries(st.sampled_from(["mode", "x", "", "Prompt", "ünïcode"]), scalars, max_size=2),
)


@st.composite
def wrong_typed(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A well-typed map with exactly one known field of a wrong type; also the reason the relay must give."""
    base = draw(well_typed)
    name = draw(st.sampled_from(sorted(FIELDS)))
    value = draw(WRONG[FIELDS[name]])
    base.pop(name, None)
    frame = {**base, name: value}
    return frame, f"field '{name}' must be {TYPE_NAMES[FIELDS[name]]}, got {PY_TYPE[type(value)]}"


def _nested(depth: int) -> bytes:
    """`{"a": [[...[0]...]]}` with `depth` arrays, built by hand (msgpack's packer stops at 512)."""
    return b"\x81\xa1a" + b"\x91" * depth + b"\x00"


def _packed(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


# Headers that declare far more than the frame holds: map32, array32, bin32, str32, ext32, each 2**32-1.
HUGE_HEADERS = [bytes([marker]) + b"\xff\xff\xff\xff" for marker in (0xDF, 0xDD, 0xC6, 0xDB, 0xC9)]
huge_declared = st.tuples(st.sampled_from(HUGE_HEADERS), st.binary(max_size=16), st.booleans()).map(
    lambda t: (b"\x81\xa1a" + t[0] + t[1]) if t[2] else t[0] + t[1]
)
truncated = st.tuples(well_typed.map(_packed), st.floats(0, 1, exclude_max=True)).map(
    lambda t: t[0][: int(len(t[0]) * t[1])]
)


# Pure: protocol.check_input


@settings(FUZZ, max_examples=4000)
@given(st.binary(max_size=200))
def test_random_bytes_get_bad_frame_or_pass_as_maps(data: bytes) -> None:
    """Any bytes: a BadFrame naming the problem, or a map that msgpack (or, from '{', JSON) decodes the same way."""
    _count("check_input")
    try:
        payload = check_input(data, MAX_BYTES)
    except BadFrame as exc:
        assert exc.reason.startswith(("frame is not valid msgpack (", "frame must be a msgpack map of inputs, got ",
                                      "frame is not valid JSON (", "frame must be a JSON object of inputs, got ",
                                      "frame nests deeper than 16 levels", "field '")), exc.reason
    else:
        assert isinstance(payload, dict)
        if data[:1] == b"{":  # a JSON object (no msgpack map starts with '{')
            assert payload == json.loads(data)
        else:
            assert _packed(payload) == _packed(msgpack.unpackb(data, raw=False))


@settings(FUZZ, max_examples=600)
@given(msgpack_values)
def test_any_msgpack_value_is_a_map_or_refused(value: Any) -> None:
    """Any msgpack value: maps pass (unless a known field is mistyped), everything else names its type."""
    _count("check_input")
    frame = _packed(value)
    if not isinstance(value, dict):
        with pytest.raises(BadFrame) as refused:
            check_input(frame, MAX_BYTES)
        assert refused.value.reason == f"frame must be a msgpack map of inputs, got {PY_TYPE[type(value)]}"
        return
    try:
        assert _packed(check_input(frame, MAX_BYTES)) == frame
    except BadFrame as exc:
        assert exc.reason.startswith("field '") and exc.reason.split("'")[1] in FIELDS, exc.reason


@settings(FUZZ, max_examples=800)
@given(well_typed)
def test_well_typed_inputs_pass(inputs: dict[str, Any]) -> None:
    """Maps whose known fields have the right types (or null) pass, whatever else they carry."""
    _count("check_input")
    frame = _packed(inputs)
    if len(frame) <= MAX_BYTES:
        assert _packed(check_input(frame, MAX_BYTES)) == frame


@settings(FUZZ, max_examples=1200)
@given(wrong_typed())
def test_every_field_refuses_every_wrong_type(case: tuple[dict[str, Any], str]) -> None:
    """A known field of the wrong type gets BAD_FRAME naming the field, its type and what was sent."""
    _count("check_input")
    frame, reason = case
    with pytest.raises(BadFrame) as refused:
        check_input(_packed(frame), 1 << 20)
    assert refused.value.reason == reason


@settings(FUZZ, max_examples=600)
@given(truncated)
def test_truncated_frames_are_refused(frame: bytes) -> None:
    """Every strict prefix of a valid frame is refused as invalid msgpack."""
    _count("check_input")
    with pytest.raises(BadFrame) as refused:
        check_input(frame, MAX_BYTES)
    assert refused.value.reason == "frame is not valid msgpack (ValueError)"


@settings(FUZZ, max_examples=400)
@given(st.integers(0, 3000))
def test_nesting_is_capped(depth: int) -> None:
    """Nesting up to 16 levels passes; deeper is refused, by the relay's cap or msgpack's own stack limit."""
    _count("check_input")
    frame = _nested(depth)
    if depth + 2 <= 16:  # the map, `depth` arrays and the leaf
        assert _packed(check_input(frame, 1 << 20)) == frame
        return
    with pytest.raises(BadFrame) as refused:
        check_input(frame, 1 << 20)
    expected = "frame nests deeper than 16 levels" if depth < 1024 else "frame is not valid msgpack (StackError)"
    assert refused.value.reason == expected


@settings(FUZZ, max_examples=400)
@given(huge_declared)
def test_huge_declared_lengths_are_refused_without_allocating(frame: bytes) -> None:
    """A 4 GiB length declared in a few bytes is refused at once."""
    _count("check_input")
    started = time.perf_counter()
    with pytest.raises(BadFrame) as refused:
        check_input(frame, MAX_BYTES)
    assert refused.value.reason == "frame is not valid msgpack (ValueError)"
    assert time.perf_counter() - started < 0.5


@settings(FUZZ, max_examples=300)
@given(st.integers(0, 3 * MAX_BYTES))
def test_size_limit_is_exact(size: int) -> None:
    """Frames up to RELAY_MAX_FRAME_BYTES are read; one byte more is FRAME_TOO_LARGE with both sizes."""
    _count("check_input")
    frame = b"\x81\xa1a\xc6" + max(0, size - 8).to_bytes(4, "big") + b"\0" * max(0, size - 8)
    frame = frame[:size] if size < 8 else frame
    if len(frame) > MAX_BYTES:
        with pytest.raises(FrameTooLarge) as refused:
            check_input(frame, MAX_BYTES)
        assert refused.value.reason == f"frame is {len(frame)} bytes; this relay accepts at most {MAX_BYTES}"
    else:
        try:
            check_input(frame, MAX_BYTES)
        except BadFrame as exc:  # the short prefixes are truncated msgpack
            assert size < 8 and exc.reason == "frame is not valid msgpack (ValueError)"


# Pure: tickets.verify

B64 = string.ascii_letters + string.digits + "-_"


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {"iss": "t", "sub": "7", "aud": "fal-realtime", "apps": ["local/preview"], "iat": NOW - 10,
              "exp": NOW + 60, "jti": "j"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _segments(token: str) -> list[bytes] | None:
    try:
        return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]
    except ValueError:
        return None


@settings(FUZZ, max_examples=1500)
@given(st.one_of(st.text(max_size=200), st.lists(st.text(B64, max_size=60), min_size=1, max_size=4).map(".".join)))
def test_random_tokens_are_refused(token: str) -> None:
    """Random text and random JWT-shaped strings are refused as Unauthorized, never accepted."""
    _count("verify")
    with pytest.raises(Unauthorized):
        tickets.verify(SECRET, token, now=NOW)


@settings(FUZZ, max_examples=500)
@given(st.text(string.printable, min_size=64, max_size=80), st.sampled_from(["HS256", "HS384", "HS512", "none"]))
def test_tickets_signed_otherwise_are_refused(key: str, algorithm: str) -> None:
    """Another key, another algorithm, or `alg: none`: refused with the reason, whatever the claims."""
    _count("verify")
    if algorithm == "HS256" and key == SECRET:
        return
    token = _sign(_claims(), None if algorithm == "none" else key, algorithm)
    with pytest.raises(Unauthorized) as refused:
        tickets.verify(SECRET, token, now=NOW)
    expected = ("ticket signature does not match this relay's secret" if algorithm == "HS256"
                else "ticket must be signed with HS256")
    assert refused.value.reason == expected


@settings(FUZZ, max_examples=1500)
@given(st.data())
def test_tampered_tickets_are_refused(data: st.DataObject) -> None:
    """Changing, dropping or adding any character of a ticket never yields a ticket with other contents."""
    _count("verify")
    token = _sign(_claims(sub=data.draw(st.text(min_size=1, max_size=8)), apps=["a/b", "c/d"]))
    index = data.draw(st.integers(0, len(token) - 1))
    how = data.draw(st.sampled_from(["replace", "drop", "insert"]))
    char = data.draw(st.sampled_from(B64 + "."))
    if how == "replace":
        tampered = token[:index] + char + token[index + 1:]
    elif how == "drop":
        tampered = token[:index] + token[index + 1:]
    else:
        tampered = token[:index] + char + token[index:]
    try:
        accepted = tickets.verify(SECRET, tampered, now=NOW)
    except (Unauthorized, TicketExpired):
        return
    # Only an edit that decodes to the very same bytes (base64 padding bits) may pass.
    assert _segments(tampered) == _segments(token), (token, tampered, accepted)


offsets = st.one_of(
    st.sampled_from([-3600.0, -LEEWAY - 1, -LEEWAY, -1.0, 0.0, 1.0, LEEWAY, LEEWAY + 1, 600.0, 600 + LEEWAY,
                     600 + LEEWAY + 1, 86400.0]),
    st.floats(-1e6, 1e6), st.integers(-(10**6), 10**6),
)
typed_apps = st.one_of(st.lists(st.text(max_size=10), max_size=3), st.text(max_size=5), st.integers(),
                       st.lists(st.one_of(st.integers(), st.text(max_size=3)), min_size=1, max_size=2))


@settings(FUZZ, max_examples=1200)
@given(
    exp=offsets, iat=offsets, aud=st.sampled_from(["fal-realtime", "other", ["fal-realtime", "x"], ["x"]]),
    apps=typed_apps, sub=st.one_of(st.text(max_size=6), st.integers()), jti=st.sampled_from(["j", None, 5]),
    session=st.sampled_from([None, "s", 5]), role=st.sampled_from([None, "driver", "viewer", "admin"]),
)
def test_ticket_claims_pass_exactly_when_valid(exp, iat, aud, apps, sub, jti, session, role) -> None:
    """A correctly signed ticket passes iff every claim is well formed and its times are in bounds."""
    _count("verify")
    claims = _claims(exp=NOW + exp, iat=NOW + iat, aud=aud, apps=apps, sub=sub, jti=jti)
    if session is not None:
        claims["session"] = session
    if role is not None:
        claims["role"] = role
    exp_at, iat_at = claims["exp"], claims["iat"]  # the times as the ticket carries them
    defects = {
        "aud": "fal-realtime" not in (aud if isinstance(aud, list) else [aud]),
        "sub": not isinstance(sub, str), "jti": jti is None or not isinstance(jti, str),
        "expired": exp_at + LEEWAY < NOW, "future": iat_at - LEEWAY > NOW, "too-long": exp_at - NOW > 600 + LEEWAY,
        "apps": not (isinstance(apps, list) and all(isinstance(a, str) for a in apps)),
        "session": session is not None and (not isinstance(session, str) or role not in ("driver", "viewer")),
    }
    try:
        ticket = tickets.verify(SECRET, _sign(claims), leeway=LEEWAY, now=NOW)
    except TicketExpired as exc:
        assert defects["expired"] and exc.reason == "ticket has expired; fetch a new one"
    except Unauthorized as exc:
        assert any(defects.values()), exc.reason
    else:
        assert not any(defects.values()), (claims, ticket)
        assert ticket.sub == sub and ticket.apps == tuple(apps) and ticket.expires_at == exp_at
        assert ticket.role == (role if session is not None else None)


@pytest.mark.parametrize(("claim", "value"),
                         [("exp", math.nan), ("iat", math.nan), ("exp", 10**400), ("iat", -(10**400))],
                         ids=["nan-exp", "nan-iat", "huge-exp", "huge-iat"])
def test_out_of_range_times_are_refused(claim: str, value: float) -> None:
    """A signed ticket whose exp or iat is NaN or beyond any clock is refused, never accepted or crashing."""
    token = _sign(_claims(**{claim: value}))
    with pytest.raises(Unauthorized) as refused:
        tickets.verify(SECRET, token, now=NOW)
    assert refused.value.reason == "ticket's exp and iat must be numbers"


# Wire level: real relay, real sockets


@pytest.fixture
async def fuzzed(make_relay):
    async with fault_upstream() as url, make_relay(upstream_url=url, allowed_apps=FAULT_APPS, max_frame_bytes=MAX_BYTES,
                                                   max_connections_per_user=64) as relay:
        yield relay


def _draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples of `strategy`, the same on every run (derandomized, no database)."""
    drawn: list[Any] = []

    # Only generation runs here (the relay checks happen afterwards, concurrently), so the health checks
    # about slow or large draws would judge the strategies' cost, not the relay; they are off for this one.
    @settings(FUZZ, max_examples=count, phases=["generate"],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn


def _expected(frame: bytes | str) -> tuple[str, str] | None:
    """The (error, reason) the relay must answer `frame` with, or None when it must forward it."""
    try:
        if isinstance(frame, str):  # a JSON input, or refused as one
            check_input(frame.encode(), MAX_BYTES, text=True)
        else:
            check_input(frame, MAX_BYTES)
    except (BadFrame, FrameTooLarge) as exc:
        return exc.error.value, exc.reason
    return None


oversized = st.integers(MAX_BYTES + 1, 3 * MAX_BYTES).map(lambda n: _packed({"prompt": "x", "image_bytes": b"\0" * n}))
wire_frames = st.tuples(
    st.one_of(
        st.binary(max_size=64), msgpack_values.map(_packed), well_typed.map(_packed),
        wrong_typed().map(lambda case: _packed(case[0])), truncated, st.integers(0, 1100).map(_nested),
        huge_declared, st.text(max_size=40), oversized,
        st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8))).map(json.dumps),
    ),
    st.lists(st.integers(1, 64), max_size=3),  # fragment boundaries: the frame is sent in pieces when any
)


async def _replay(relay: RunningRelay, ticket: str, frame: bytes | str, cuts: list[int]) -> str | None:
    """Send one frame (maybe fragmented) on a fresh connection; return None if the answer is right, else why."""
    pieces: Any = frame
    if cuts and len(frame) > 1:
        points = sorted({c % len(frame) for c in cuts} - {0})
        pieces = [frame[a:b] for a, b in zip([0, *points], [*points, len(frame)], strict=False)]
    expected = _expected(frame)
    # In fragments, the relay stops at the fragment that crosses the limit, before the total is known.
    in_fragments = isinstance(frame, bytes) and len(frame) > MAX_BYTES and not isinstance(pieces, bytes)
    async with websockets.connect(relay.url("fault/ack", ticket=ticket), open_timeout=30, close_timeout=5,
                                  max_size=None) as ws:
        await ws.send(pieces)
        try:
            async with asyncio.timeout(15):
                answer = await ws.recv()
                if expected is None:
                    got = msgpack.unpackb(answer, raw=False)
                    sent = frame.encode() if isinstance(frame, str) else frame
                    return None if got["input"] == sent else f"forwarded {got['input']!r:.100}"
                payload = json.loads(answer)
                if in_fragments and payload["error"] == "FRAME_TOO_LARGE" and re.fullmatch(
                        rf"(frame is \d+|message is over {MAX_BYTES}) bytes; this relay accepts at most.*",
                        payload["reason"]):
                    pass
                elif (payload["error"], payload["reason"]) != expected:
                    return f"answered {payload} instead of {expected}"
                await ws.recv()
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            want = ERROR_CLOSE.get(expected[0]) if expected else None
            return None if code == want else f"closed with {code}, expected {want}"
    return "connection stayed open after the error"


async def test_wire_fuzz_frames(fuzzed: RunningRelay) -> None:
    """~2,000 fuzzed frames, some fragmented: each gets its exact x-fal-error or is forwarded; the canary keeps pace."""
    cases = _draw(wire_frames, 2000)
    ticket = fuzzed.ticket(sub="fuzzer", apps=("fault/ack",))
    failures: list[str] = []
    gate = asyncio.Semaphore(16)

    async def run(frame: bytes | str, cuts: list[int]) -> None:
        async with gate:
            problem = await _replay(fuzzed, ticket, frame, cuts)
            if problem:
                failures.append(f"{frame!r:.120}: {problem}")

    async with Canary(fuzzed) as canary:
        started = time.perf_counter()
        await canary.wait_answers(10)
        baseline = 10 / (time.perf_counter() - started)
        fuzz_start = time.perf_counter()
        async with asyncio.timeout(150):
            await asyncio.gather(*(run(frame, cuts) for frame, cuts in cases))
        fuzz_end = time.perf_counter()
    _count("wire", len(cases))
    assert not failures, f"{len(failures)} of {len(cases)} wrong, e.g. {failures[:5]}"
    answered, gap = canary.window(fuzz_start, fuzz_end)
    rate = answered / (fuzz_end - fuzz_start)
    assert rate >= 0.5 * baseline and gap < 2.0, f"canary {rate:.1f}/s vs {baseline:.1f}/s, gap {gap:.2f} s"
    await wait_for(lambda: fuzzed.app.state.limits.total == 0, what="all fuzz connections released")


def _handshakes() -> st.SearchStrategy[dict[str, Any]]:
    """Handshakes with exactly one defect (or none), with the answer each must get."""
    part = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
    bad_part = st.one_of(st.tuples(st.sampled_from("._-"), part).map("".join),
                         st.text(string.ascii_letters, min_size=101, max_size=120))
    printable = st.text(string.printable.strip() + " ", min_size=1, max_size=40).map(str.strip).filter(bool)

    def case(kind: str, **fields: Any) -> dict[str, Any]:
        return {"kind": kind, "app": "fault/ack", "apps": ("fault/ack",), "query": {}, "headers": {}, "sub_path": "",
                **fields}

    return st.one_of(
        st.builds(lambda n: case("valid", nonce=n), st.integers(0, 10**6)),  # distinct, so drawn often
        st.builds(lambda owner, alias: case("bad-app-id", app=f"{owner}/{alias}", expect=(
            "APP_NOT_ALLOWED", f"'{owner}/{alias}' is not a valid app id")), bad_part, part),
        st.builds(lambda owner, alias: case("unknown-app", app=f"{owner}/{alias}", apps=(f"{owner}/{alias}",), expect=(
            "APP_NOT_ALLOWED", f"app {owner}/{alias} is not served by this relay")),
            part.filter(lambda p: p[0].isalnum() and p != "fault"), part.filter(lambda p: p[0].isalnum())),
        st.builds(lambda app: case("app-not-in-ticket", app=app, expect=(
            "APP_NOT_ALLOWED", f"your ticket does not allow app {app}")),
            st.sampled_from([a for a in FAULT_APPS if a != "fault/ack"])),
        st.builds(lambda head, dots, tail: case("dot-dot", sub_path=f"{head}{dots}{tail}",
                                                expect=("APP_NOT_ALLOWED", "'fault/ack' is not a valid app id")),
                  st.sampled_from(["", "a/", "x", "deep/er/"]), st.sampled_from(["..", "..."]),
                  st.text(string.ascii_lowercase + "/", max_size=6).filter(lambda t: not t.startswith("/"))),
        # Any text, Unicode digits such as '²' and '٥' included; only plain 1-60 is a valid buffering.
        st.builds(lambda value: case("max-buffering", query={"max_buffering": value}, expect=(
            "BAD_REQUEST", "max_buffering must be a whole number from 1 to 60")),
            st.one_of(printable, st.text(min_size=1, max_size=8).map(str.strip).filter(bool)).filter(
                lambda v: not (v.isascii() and v.isdigit() and 1 <= int(v) <= 60))),
        st.builds(lambda host: case("origin", headers={"Origin": f"https://{host}.example"}, expect=(
            "ORIGIN_NOT_ALLOWED",
            f"origin https://{host}.example may not use this relay; add it to RELAY_ALLOWED_ORIGINS")),
            st.text(string.ascii_lowercase, min_size=1, max_size=12)),
        st.builds(lambda token: case("garbage-ticket", token=token, expect=("UNAUTHORIZED", None)), printable),
        st.builds(lambda key: case("unknown-key", token="", headers={"Authorization": f"Key {key}"}, expect=(
            "UNAUTHORIZED", "API key is not known to this relay")), printable.filter(lambda k: k != "relay-key-1")),
        st.builds(lambda scheme: case("other-scheme", token="", headers={"Authorization": f"{scheme} relay-key-1"},
                                      expect=("UNAUTHORIZED", "no ticket: pass ?fal_jwt_token=<ticket> or "
                                                              "'Authorization: Key <relay key>'")),
                  st.sampled_from(["Bearer", "Basic", "Token", "Keys"])),
        st.builds(lambda other: case("session-mismatch", session="s1", query={"session": other}, expect=(
            "BAD_REQUEST", "the session query parameter does not match the ticket's session")),
            st.text(string.ascii_letters + string.digits, min_size=1, max_size=8).filter(lambda s: s != "s1")),
    )


async def _handshake(relay: RunningRelay, case: dict[str, Any], n: int) -> str | None:
    token = case.get("token")
    if token is None:
        claims = {"session": case["session"], "role": "driver"} if case.get("session") else {}
        token = relay.ticket(sub=f"hs-{n % 40}", apps=case["apps"], **claims)
    query = ({"fal_jwt_token": token} if token else {}) | case["query"]
    path = f"/{case['app']}/{case['sub_path'] + '/' if case['sub_path'] else ''}realtime"
    url = f"{relay.base}{path}" + ("?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
                                   if query else "")
    headers = {k: v for k, v in case["headers"].items() if k != "Origin"}
    async with websockets.connect(url, open_timeout=30, additional_headers=headers,
                                  origin=case["headers"].get("Origin")) as ws:
        if case["kind"] == "valid":
            await ws.send(pack(seq=n))
            async with asyncio.timeout(15):
                got = msgpack.unpackb(await ws.recv(), raw=False)
            return None if got["ack"] == 1 else f"valid handshake answered {got}"
        async with asyncio.timeout(15):
            payload = json.loads(await ws.recv())
            error, reason = case["expect"]
            if payload["error"] != error or (reason is not None and payload["reason"] != reason):
                return f"{case['kind']}: answered {payload}, expected {case['expect']}"
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                return None if code == ERROR_CLOSE[error] else f"{case['kind']}: closed with {code}"
    return f"{case['kind']}: not closed"


async def test_wire_fuzz_handshakes(fuzzed: RunningRelay) -> None:
    """~600 handshakes, each with one defect: each gets that defect's code and reason; valid ones get frames."""
    cases = _draw(_handshakes(), 600)
    failures: list[str] = []
    gate = asyncio.Semaphore(12)

    async def run(case: dict[str, Any], n: int) -> None:
        async with gate:
            problem = await _handshake(fuzzed, case, n)
            if problem:
                failures.append(f"{case}: {problem}")

    async with Canary(fuzzed) as canary, asyncio.timeout(120):
        start = time.perf_counter()
        await asyncio.gather(*(run(case, n) for n, case in enumerate(cases)))
        answered, gap = canary.window(start, time.perf_counter())
    _count("wire", len(cases))
    assert not failures, f"{len(failures)} of {len(cases)} wrong, e.g. {failures[:5]}"
    assert {c["kind"] for c in cases} >= {"valid", "bad-app-id", "max-buffering", "garbage-ticket", "origin"}
    assert gap < 2.0 and answered > 0, f"canary stalled for {gap:.2f} s"


async def test_superscript_max_buffering_is_a_bad_request(fuzzed: RunningRelay) -> None:
    """max_buffering=² (a Unicode digit int() cannot read) is BAD_REQUEST, not an internal error."""
    url = fuzzed.url("fault/ack", ticket=fuzzed.ticket(apps=("fault/ack",)), max_buffering=quote("²"))
    async with websockets.connect(url) as ws, asyncio.timeout(15):
        payload = json.loads(await ws.recv())
    assert (payload["error"], payload["reason"]) == ("BAD_REQUEST", "max_buffering must be a whole number from 1 to 60")


async def test_random_bytes_instead_of_http_are_answered(fuzzed: RunningRelay) -> None:
    """200 connections that send random bytes instead of a handshake get a 4xx or a hang-up, fast."""
    cases = _draw(st.binary(min_size=1, max_size=300), 200)

    async def run(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", fuzzed.port)
        try:
            writer.write(data)
            writer.write_eof()
            async with asyncio.timeout(10):
                return await reader.read(4096)
        finally:
            writer.close()

    async with Canary(fuzzed) as canary, asyncio.timeout(90):
        answers = await asyncio.gather(*(run(data) for data in cases))
        await canary.wait_answers(3)
    _count("wire", len(cases))
    assert all(a == b"" or a.startswith(b"HTTP/1.1 4") for a in answers), [a[:60] for a in answers if a][:5]


async def test_random_bytes_after_the_handshake_never_crash_the_relay(fuzzed: RunningRelay) -> None:
    """300 connections write random bytes or random frames: closed by protocol or relay, never an internal error."""
    frames = st.builds(lambda opcode, payload, fin, rsv: client_frame(opcode, payload, fin=fin, rsv=rsv),
                       st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]), st.binary(max_size=120),
                       st.booleans(), st.sampled_from([0, 0, 0, 1, 4]))
    raw_bytes = st.binary(min_size=1, max_size=200)
    cases = _draw(st.one_of(raw_bytes, st.lists(frames, min_size=1, max_size=3).map(b"".join)), 300)
    path = f"/fault/ack/realtime?fal_jwt_token={fuzzed.ticket(sub='raw', apps=('fault/ack',))}"
    codes: list[int | None] = []
    gate = asyncio.Semaphore(16)

    async def run(data: bytes) -> None:
        async with gate:
            raw = await RawSocket.open(fuzzed, path)
            try:
                raw.writer.write(data)
                try:
                    codes.append(await raw.close_code(limit=1.0))
                except TimeoutError:  # an incomplete frame: the relay waits for the rest, as it should
                    codes.append(None)
            finally:
                raw.close()

    async with Canary(fuzzed) as canary, asyncio.timeout(120):
        await asyncio.gather(*(run(data) for data in cases))
        await canary.wait_answers(3)
    _count("wire", len(cases))
    assert 1011 not in codes, codes
    assert fuzzed.metric("relay_errors_total", code="INTERNAL_ERROR") == 0
    assert {1002, 1007} <= set(codes), sorted(set(codes), key=str)
    await wait_for(lambda: fuzzed.app.state.limits.total == 0, what="raw connections released")


BINARY, TEXT, CONT, CLOSE, PING, PONG = 0x2, 0x1, 0x0, 0x8, 0x9, 0xA


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([client_frame(0x3, b"x")], 1002),
        ([client_frame(BINARY, _packed({"a": 1}), rsv=4)], 1002),
        ([client_frame(BINARY, _packed({"a": 1}), mask=False)], 1002),
        ([client_frame(PING, b"x" * 126)], 1002),
        ([client_frame(PING, b"x", fin=False)], 1002),
        ([client_frame(CONT, b"x")], 1002),
        ([client_frame(BINARY, b"\x81", fin=False), client_frame(BINARY, b"\xa1")], 1002),
        ([client_frame(BINARY, b"", declared=2**63 - 1)], 1009),
        ([client_frame(BINARY, b"", declared=2 * MAX_BYTES + 1)], 1009),
        ([client_frame(BINARY, b"\x81", fin=False)] + [client_frame(CONT, b"\0" * 4000, fin=False)] * 3, 1009),
        ([client_frame(TEXT, b"\xff\xfe")], 1007),
        ([client_frame(CLOSE, b"\x03\xe7")], 1002),
        ([client_frame(CLOSE, b"\x03")], 1002),
    ],
    ids=["reserved-opcode", "rsv-bit", "unmasked", "long-control", "fragmented-ping", "orphan-continuation",
         "interleaved-data", "length-2^63", "length-over-max", "fragments-over-max", "bad-utf8", "close-code-999",
         "close-1-byte"],
)
async def test_malformed_websocket_frames_are_closed_by_the_protocol(fuzzed: RunningRelay, frames, code) -> None:
    """Frames that break RFC 6455 get an x-fal-error saying which rule, then a 1002/1007/1009 close;
    others carry on."""
    path = f"/fault/ack/realtime?fal_jwt_token={fuzzed.ticket(sub='raw', apps=('fault/ack',))}"
    async with Canary(fuzzed) as canary:
        raw = await RawSocket.open(fuzzed, path)
        answers = []
        try:
            raw.writer.write(b"".join(frames))
            while (answer := await raw.next_frame()) is not None and answer[0] != CLOSE:
                answers.append(answer)
            assert answer is not None, "the relay hung up without a close frame"
        finally:
            raw.close()
        await canary.wait_answers(3)
    assert struct.unpack("!H", answer[1][:2])[0] == code
    assert [opcode for opcode, _ in answers] == [TEXT]
    error = json.loads(answers[0][1])
    assert error["type"] == "x-fal-error" and error["reason"]
    assert error["error"] == ("FRAME_TOO_LARGE" if code == 1009 else "BAD_FRAME")
    _count("wire")
    await wait_for(lambda: fuzzed.app.state.limits.total == 0, what="raw connection released")


@pytest.mark.parametrize("opcode", [PING, PONG], ids=["ping", "pong"])
async def test_control_frame_flood_leaves_others_unaffected(fuzzed: RunningRelay, opcode: int) -> None:
    """20,000 pings (or unsolicited pongs) in one burst: the flooder's next input is answered; the canary keeps pace."""
    path = f"/fault/ack/realtime?fal_jwt_token={fuzzed.ticket(sub='flood', apps=('fault/ack',))}"
    async with Canary(fuzzed) as canary:
        raw = await RawSocket.open(fuzzed, path)
        try:
            start = time.perf_counter()
            raw.writer.write(b"".join(client_frame(opcode, b"%05d" % i) for i in range(20_000)))
            raw.writer.write(client_frame(BINARY, pack(seq=1)))
            pongs = 0
            for _ in range(20_002):  # every pong, then the answer
                frame = await raw.next_frame(limit=30)
                assert frame is not None, "relay hung up on the flooder"
                if frame[0] == PONG:
                    pongs += 1
                elif frame[0] == BINARY:
                    assert msgpack.unpackb(frame[1], raw=False)["ack"] == 1
                    break
            else:
                raise AssertionError("the flooder's input was never answered")
            answered, gap = canary.window(start, time.perf_counter())
        finally:
            raw.close()
    _count("wire")
    if opcode == PING:
        assert pongs > 0
    assert gap < 2.0, f"canary stalled for {gap:.2f} s during the flood"


def test_case_count_summary() -> None:
    """The run covered at least 10,000 fuzz cases across the pure and wire-level properties."""
    if len(COUNTS) < 2:  # run on its own: nothing to sum
        pytest.fail("run the whole module to count its cases")
    total = sum(COUNTS.values())
    print(f"\nfuzz cases: {COUNTS} total {total}")
    assert total >= 10_000, COUNTS
