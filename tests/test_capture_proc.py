"""The process sampler on a real child: threads and fds as the child opens them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.capture.proc import ProcSampler
from labkit.frames.proc import load_proc

pytestmark = pytest.mark.slow

GROWER = """
import os, sys, threading, time
evs, fhs = [], []
for i in range(20):
    e = threading.Event(); evs.append(e)
    threading.Thread(target=e.wait, daemon=True).start()
    fhs.append(open(os.devnull))
    time.sleep(0.05)
print("grown", flush=True)
time.sleep(0.5)
"""


def test_sampler_sees_threads_and_fds_grow_and_stops_when_process_ends(tmp_path: Path) -> None:
    t0 = time.perf_counter_ns()
    child = subprocess.Popen([sys.executable, "-c", GROWER], stdout=subprocess.PIPE, text=True)
    s = ProcSampler(child.pid, tmp_path / "proc.csv", interval_s=0.02).start()
    child.wait(timeout=30)
    s._thread.join(timeout=5)  # ends by itself once the pid is gone
    assert not s._thread.is_alive()
    df = load_proc(tmp_path / "proc.csv", t0)
    assert list(df.columns) == ["t_s", "rss_bytes", "threads", "fds", "cpu_percent", "children"]
    assert len(df) > 20
    assert df.threads.max() - df.threads.iloc[0] >= 18
    assert df.fds.max() - df.fds.iloc[0] >= 18
    assert (df.rss_bytes > 1_000_000).all()
    assert df.t_s.is_monotonic_increasing and df.t_s.iloc[0] >= 0


def test_sampler_on_a_missing_pid_writes_nothing(tmp_path: Path) -> None:
    s = ProcSampler(2**22 + 12345, tmp_path / "proc.csv", interval_s=0.02).start()
    s.stop()
    assert not (tmp_path / "proc.csv").exists()


CLIENT = """
import socket, sys, time
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
print(port, flush=True)
time.sleep(0.5)
"""


def test_the_descriptor_table_at_the_peak_says_where_leaked_sockets_go(tmp_path: Path) -> None:
    from labkit.analysis.clues import suspects
    from labkit.frames.evidence import Evidence
    from labkit.frames.proc import load_fd_table

    child = subprocess.Popen([sys.executable, "-c", CLIENT], stdout=subprocess.PIPE, text=True)
    s = ProcSampler(child.pid, tmp_path / "proc.csv", interval_s=0.02,
                    fds_path=tmp_path / "proc_fds.json").start()
    port = int(child.stdout.readline())
    child.wait(timeout=30)
    s._thread.join(timeout=5)
    table = load_fd_table(tmp_path / "proc_fds.json")
    groups = table.groupby("where").size()
    assert groups[f"tcp sockets to 127.0.0.1:{port}"] == 30
    assert groups[f"tcp sockets bound at 127.0.0.1:{port}"] == 1  # the listening socket
    symptom = suspects(Evidence(fd_table=table)).iloc[0]
    assert symptom.suspect == f"30 of the {len(table)} fds open at their peak are tcp " \
                              f"sockets to 127.0.0.1:{port}"


def test_socket_endpoints_name_every_tcp_state_and_ipv6_peers() -> None:
    import os
    import socket

    from labkit.capture.proc import socket_endpoints

    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    client.shutdown(socket.SHUT_WR)  # client: FIN_WAIT1/2, the accepted side: CLOSE_WAIT
    assert accepted.recv(1) == b""
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v6.bind(("::1", 0))
    try:
        found = socket_endpoints(os.getpid())
        port = server.getsockname()[1]
        assert found[client.fileno()].rsplit(" ", 1) in (  # states the old parser lacked
            [f"tcp 127.0.0.1:{client.getsockname()[1]} -> 127.0.0.1:{port}", w]
            for w in ("FIN_WAIT1", "FIN_WAIT2"))
        assert found[accepted.fileno()].startswith(f"tcp 127.0.0.1:{port} -> ")
        assert found[accepted.fileno()].endswith("CLOSE_WAIT")
        assert found[server.fileno()] == f"tcp 127.0.0.1:{port} -> 0.0.0.0:0 LISTEN"
        assert found[v6.fileno()] == f"udp [::1]:{v6.getsockname()[1]} -> [::]:0"
    finally:
        for s in (server, client, accepted, v6):
            s.close()
