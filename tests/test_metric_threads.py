"""The metric stage's thread pools (issue 16, item 6): set on entry, restored on exit, sized to the free cores."""

import pytest
import torch
from threadpoolctl import threadpool_info

from ganbench.metrics import threads
from ganbench.metrics.threads import metric_thread_count, metric_threads


def _pool_sizes() -> set[int]:
    return {p["num_threads"] for p in threadpool_info()}


def test_pools_are_limited_inside_and_restored_after():
    before_torch, before_pools = torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()]
    with metric_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1 and _pool_sizes() == {1}
    assert torch.get_num_threads() == before_torch
    assert [p["num_threads"] for p in threadpool_info()] == before_pools


def test_the_count_leaves_the_cores_other_processes_use(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda: 3)
    assert metric_thread_count() == 5
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda: 20)
    assert metric_thread_count() == 1  # a machine busier than its cores still gets one thread
    monkeypatch.setenv(threads.ENV, "3")
    assert metric_thread_count() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv(threads.ENV, bad)
        with pytest.raises(ValueError, match=threads.ENV):
            metric_thread_count()


def test_busy_cores_do_not_count_this_process(monkeypatch, tmp_path):
    # /proc/loadavg says 4 runnable tasks; if this process has 2 of them, 2 belong to others
    monkeypatch.setattr(threads, "_own_runnable_threads", lambda: 2)
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            f = tmp_path / "loadavg"
            f.write_text("1.00 1.00 1.00 4/300 12345\n")
            return real_open(f, *args, **kwargs)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    assert threads.busy_cores_elsewhere() == 2
