import os
import socket
import time

import pytest
import torch.multiprocessing as mp

from common.cli import UserError
from common.training import Clock, agree, check_loss


def test_clock_budgets(monkeypatch):
    now = {"wall": 1000.0, "cpu": 50.0}
    monkeypatch.setattr(time, "time", lambda: now["wall"])
    monkeypatch.setattr(time, "process_time", lambda: now["cpu"])
    c = Clock(max_time=10, max_cpu_time=0)
    now["wall"] += 9.5
    assert not c.out_of_time()
    now["wall"] += 0.5
    assert c.out_of_time() and "wall clock" in c.reason()
    c = Clock(max_cpu_time=5, cpu_before=3.0)  # a resumed run: 3 CPU s already spent
    now["cpu"] += 1.9
    assert c.cpu() == pytest.approx(4.9) and not c.out_of_time()
    now["cpu"] += 0.1
    assert c.out_of_time() and "CPU s" in c.reason()
    assert not Clock().out_of_time()  # 0 = no limit


def test_check_loss():
    check_loss(2.0, 1.0, explode=3)
    with pytest.raises(UserError, match="loss is NaN at iteration 7.*kept.*lower"):
        check_loss(float("nan"), 1.0, where="iteration 7", hint="try a lower -learning_rate")
    with pytest.raises(UserError, match="exploding"):
        check_loss(3.5, 1.0, explode=3)
    check_loss(3.5, 1.0)  # explode=0: only non-finite losses stop


def test_agree_alone_returns_values_unchanged():
    assert agree(1.5, True, False) == (1.5, True, False)


def _rank(rank, port, out):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    out[rank] = agree([1.0, 3.0][rank], rank == 1, False)
    dist.destroy_process_group()


def test_agree_under_ddp_means_values_and_ors_flags():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with mp.Manager() as m:
        out = m.dict()
        mp.start_processes(_rank, args=(port, out), nprocs=2, start_method="fork")
        assert out[0] == out[1] == (2.0, True, False)


def test_check_loss_names_the_terms_of_a_summed_loss():
    with pytest.raises(UserError, match=r"loss is NaN at iter 3 \(box 0\.5, caption nan\): stopping"):
        check_loss(float("nan"), 1.0, where="iter 3", terms={"box": 0.5, "caption": float("nan")})
    with pytest.raises(UserError, match=r"loss is inf"):
        check_loss(float("inf"), None)


def test_clock_on_the_real_clocks_sleeping_is_wall_time_not_cpu_time():
    """A sleep spends wall seconds and (next to) no CPU seconds: -max_time counts it, -max_cpu_time does not."""
    wall, cpu = Clock(max_time=0.1), Clock(max_cpu_time=0.1)
    time.sleep(0.2)
    assert wall.out_of_time() and wall.wall() >= 0.2
    assert not cpu.out_of_time() and cpu.cpu() < 0.1
