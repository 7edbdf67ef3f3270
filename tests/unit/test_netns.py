"""The namespace lab's plumbing, with a recording runner: what it runs, and that teardown always completes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fedledger.localnet.errors import NetnsError
from fedledger.localnet.netns import NetnsLab, run_checked


class Recorder:
    """Stands in for `ip`/`tc`: records each command, fails the ones matching ``fail_on``."""

    def __init__(self, fail_on: str | None = None, pids: str = "") -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.pids = pids

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        line = " ".join(argv)
        if self.fail_on is not None and self.fail_on in line:
            raise NetnsError(f"{line} failed with status 2: boom")
        return self.pids if argv[:3] == ["ip", "netns", "pids"] else ""

    def lines(self) -> list[str]:
        return [" ".join(c) for c in self.calls]


def test_create_builds_a_bridge_and_one_namespace_per_host() -> None:
    rec = Recorder()
    lab = NetnsLab(3, tag="ab12", runner=rec).create()
    lines = rec.lines()
    assert lines[0] == "ip link add flbrab12 type bridge"
    assert [h.netns for h in lab.hosts] == ["fl-ab12-0", "fl-ab12-1", "fl-ab12-2"]
    assert len({h.ip for h in lab.hosts}) == 3 and all(h.ip.startswith(lab.subnet + ".") for h in lab.hosts)
    for h in lab.hosts:
        assert f"ip netns add {h.netns}" in lines
        assert f"ip link add {h.veth} type veth peer name eth0 netns {h.netns}" in lines
        assert f"ip -n {h.netns} addr add {h.ip}/24 dev eth0" in lines
        assert len(h.veth) <= 15 and len(lab.bridge) <= 15  # Linux interface names
    assert lab.hosts[1].exec_argv(["fedledger", "x"]) == ["ip", "netns", "exec", "fl-ab12-1", "fedledger", "x"]


def test_a_failure_half_way_removes_what_was_made() -> None:
    rec = Recorder(fail_on="ip netns add fl-ab12-1")
    with pytest.raises(NetnsError, match="boom"):
        NetnsLab(3, tag="ab12", runner=rec).create()
    lines = rec.lines()
    assert "ip netns del fl-ab12-0" in lines and "ip link del flvab120" in lines and "ip link del flbrab12" in lines
    assert "ip netns del fl-ab12-2" not in lines  # never made


def test_teardown_goes_on_after_errors_and_reports_them() -> None:
    rec = Recorder()
    lab = NetnsLab(2, tag="cd", runner=rec).create()
    rec.fail_on = "ip netns del fl-cd-0"
    problems = lab.destroy()
    assert len(problems) == 1 and "fl-cd-0" in problems[0]
    assert "ip netns del fl-cd-1" in rec.lines() and rec.lines()[-1] == "ip link del flbrcd"
    assert lab.destroy() == []  # nothing left to remove


def test_the_context_manager_tears_down_when_the_body_raises() -> None:
    rec = Recorder()
    with pytest.raises(RuntimeError), NetnsLab(1, tag="ef", runner=rec):
        raise RuntimeError("test failed")
    assert "ip netns del fl-ef-0" in rec.lines() and "ip link del flbref" in rec.lines()


def test_faults_are_link_and_qdisc_changes() -> None:
    rec = Recorder()
    lab = NetnsLab(2, tag="aa", runner=rec).create()
    rec.calls.clear()
    lab.link_down(1)
    lab.link_up(1)
    lab.netem(0, 50, 10)
    lab.netem(0, 20)
    lab.clear_netem(0)
    lab.clear_netem(0)  # already clear: nothing to run
    assert rec.lines() == [
        "ip link set flvaa1 down", "ip link set flvaa1 up",
        "ip netns exec fl-aa-0 tc qdisc add dev eth0 root netem delay 50ms 10ms",
        "ip netns exec fl-aa-0 tc qdisc change dev eth0 root netem delay 20ms 0ms",
        "ip netns exec fl-aa-0 tc qdisc del dev eth0 root",
    ]
    with pytest.raises(NetnsError, match=">= 0"):
        lab.netem(0, -1)


def test_bad_parameters_and_failing_commands() -> None:
    with pytest.raises(NetnsError, match="1..200"):
        NetnsLab(0)
    with pytest.raises(NetnsError, match="tag"):
        NetnsLab(1, tag="bad-tag!")
    with pytest.raises(NetnsError, match="status 1"):
        run_checked(["false"])
    with pytest.raises(NetnsError, match="cannot run"):
        run_checked(["/nonexistent/ip"])
