"""Loopback only: every listening socket of every process a run starts (the
server with its metrics port, Triton's stubs, MLServer's
workers, k6 and its API port) is on 127.0.0.0/8, for each runtime.

The sockets are listed with psutil in the middle of a performance level, when
everything is up at once (k6 included), for every process carrying the test's
token in its environment (so nothing started by the run escapes the list).
"""
from __future__ import annotations

import ipaddress

import psutil
import pytest

from mmslib import params, performance

from conftest import tagged_pids
from test_runtimes import ensure_env


def listening(pids):
    """(pid, name, address, port) of every listening TCP socket, and bound UDP socket, of ``pids``."""
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            conns = (getattr(p, "net_connections", None) or p.connections)(kind="inet")
            name = p.name()
        except psutil.Error:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN or (c.type == 2 and not c.raddr):  # 2: SOCK_DGRAM
                out.append((pid, name, c.laddr.ip, c.laddr.port))
    return out


def loopback(ip: str) -> bool:
    a = ipaddress.ip_address(ip.split("%")[0])
    if a.version == 6 and a.ipv4_mapped:
        a = a.ipv4_mapped
    return a in ipaddress.ip_network("127.0.0.0/8")


def test_loopback_check_can_fail():
    assert loopback("127.0.0.1") and loopback("127.3.2.1") and loopback("::ffff:127.0.0.1")
    assert not loopback("0.0.0.0") and not loopback("::") and not loopback("10.0.0.2") and not loopback("::1")


@pytest.mark.parametrize("name", ["kserve", "triton", "mlserver"])
def test_every_listening_socket_is_on_loopback(name, tmp_path, no_leftovers):
    if name != "kserve":
        ensure_env(name)
    seen = []

    def look(cell, backend):
        seen.append(listening(tagged_pids(no_leftovers)))
    # one mode: a traditional server is started by the same command as a host (runtime.command)
    p = params.performance(runtime=name, models=1, modes=["mms"], qps=[20], duration_s=1.5,
                           warmup_s=0.3, output_dir=str(tmp_path / "o"))
    performance.run(p, progress=False, on_level=look)
    socks = [s for level in seen for s in level]
    names = sorted({s[1] for s in socks})
    print(f"\n[loopback] {name}: {len(socks)} listening sockets of {names}, at "
          f"{sorted({s[2] for s in socks})}")
    assert len(seen) == 1
    assert any(s[1] == "k6" for s in socks), socks  # the generator was up and looked at
    ports = {s[3] for s in socks}
    assert len(ports) >= 3, socks  # the server's REST and gRPC (metrics where separate), k6's API
    outside = [s for s in socks if not loopback(s[2])]
    assert outside == [], f"listening outside 127.0.0.0/8: {outside}"
