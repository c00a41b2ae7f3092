"""Runs per client address, with real clients against a real server on loopback: one
address cannot take the whole server whatever tokens it uses, another address still
gets in, and X-Forwarded-For counts only behind a trusted proxy."""
from __future__ import annotations

import pytest

from conftest import live
from visitors import Visitor, token

PER_ADDRESS = 20
LIMITS = {"DP_MAX_RUNS_PER_ADDRESS": str(PER_ADDRESS), "DP_MAX_RUNS": "200", "DP_MAX_WIDTH": "8"}


def configure_until_refused(url: str, connections: int, **visitor) -> tuple[int, dict, list[Visitor]]:
    """Open `connections` tabs (a token each) and configure 3 runs on each until the
    server refuses; returns (runs configured, the refusal, the visitors)."""
    made, runs = [], 0
    for _ in range(connections):
        v = Visitor(url, tok=token(), **visitor)
        made.append(v)
        for run in ("main", "b", "c"):
            reply = v.call("configure", {"run": run, "config": {"model": {"hidden": [4, 4]}}})
            if not reply["ok"]:
                return runs, reply, made
            runs += 1
    return runs, {}, made


def close_all(visitors: list[Visitor]) -> None:
    for v in visitors:
        v.sio.disconnect()


def test_one_address_is_capped_and_another_still_gets_in():
    with live(LIMITS) as server:
        runs, refusal, crowd = configure_until_refused(server.url, 25)
        try:
            assert runs == PER_ADDRESS
            assert refusal["error"]["field"] == "run"
            assert "20 allowed" in refusal["error"]["message"] and "DP_MAX_RUNS_PER_ADDRESS" in refusal["error"]["message"]
            # the same machine from another loopback address is another client address
            other = Visitor(server.url, source="127.0.0.2")
            assert other.call("configure", {"config": {"model": {"hidden": [4, 4]}}})["ok"]
            other.sio.disconnect()
            # a forwarded header from an untrusted peer changes nothing: still the peer's address
            spoof = Visitor(server.url, headers={"X-Forwarded-For": "203.0.113.9"})
            reply = spoof.call("configure", {"config": {"model": {"hidden": [4, 4]}}})
            assert not reply["ok"] and "from your address" in reply["error"]["message"]
            spoof.sio.disconnect()
        finally:
            close_all(crowd)


def test_behind_a_trusted_proxy_the_forwarded_address_counts():
    with live({**LIMITS, "DP_TRUSTED_PROXIES": "1"}) as server:
        first = {"X-Forwarded-For": "198.51.100.7"}
        runs, refusal, crowd = configure_until_refused(server.url, 25, headers=first)
        try:
            assert runs == PER_ADDRESS and "from your address" in refusal["error"]["message"]
            # another client behind the same proxy (all connections come from 127.0.0.1)
            second = Visitor(server.url, headers={"X-Forwarded-For": "198.51.100.8"})
            assert second.call("configure", {"config": {"model": {"hidden": [4, 4]}}})["ok"]
            second.sio.disconnect()
        finally:
            close_all(crowd)


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_per_address_limit_of_zero_or_less_is_refused_at_start(limit):
    """A server that could hold no run from any address is a setting mistake, not a policy."""
    from app.settings import Serving
    with pytest.raises(ValueError, match="max_runs_per_address"):
        Serving(max_runs_per_address=int(limit))
