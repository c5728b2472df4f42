"""What every trainer shares: one time budget, the DDP "stop together" agreement, one loss check.

    clock = Clock(max_time=opt.max_time, max_cpu_time=opt.max_cpu_time)
    for it in ...:
        loss = step()
        check_loss(loss, first_loss, hint="try a lower -learning_rate")
        mean_loss, stop_now = agree(loss, stop.requested or clock.out_of_time())
        if stop_now: break

One meaning per flag name in all six experiments: `-max_time` is wall-clock seconds of this process,
`-max_cpu_time` is CPU seconds of this process (user + system, all threads). 0 means no limit. (The chatbot
keeps neuralconvo's camelCase: `--maxTime` is wall clock too; its `--maxCpuTime` counts the CPU seconds of
the runs it resumes as well, `cpu_before`, because its learning-rate schedule spans the whole budget.)
"""
import math
import time

import torch
import torch.distributed as dist

from common.cli import UserError


class Clock:
    """Wall and CPU seconds since the loop began (or since `cpu_before` CPU seconds of earlier runs)."""

    def __init__(self, max_time: float = 0, max_cpu_time: float = 0, cpu_before: float = 0.0):
        self.max_time, self.max_cpu_time, self.cpu_before = max_time, max_cpu_time, cpu_before
        self.t_wall, self.t_cpu = time.time(), time.process_time()

    def wall(self) -> float:
        return time.time() - self.t_wall

    def cpu(self) -> float:
        """CPU seconds of this process since the start, plus those the run spent before a resume."""
        return self.cpu_before + time.process_time() - self.t_cpu

    def out_of_time(self) -> bool:
        return bool((self.max_time > 0 and self.wall() >= self.max_time)
                    or (self.max_cpu_time > 0 and self.cpu() >= self.max_cpu_time))

    def reason(self) -> str:
        if self.max_time > 0 and self.wall() >= self.max_time:
            return f"-max_time {self.max_time:g}s of wall clock"
        if self.max_cpu_time > 0 and self.cpu() >= self.max_cpu_time:
            return f"-max_cpu_time {self.max_cpu_time:g} CPU s"
        return ""


def agree(*values, device=None):
    """Under DDP: every value averaged over the ranks; a stop flag (bool) is true if any rank set it, so all
    ranks stop at the same step. Without DDP the values come back as they are (bools stay bools)."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return values
    world = dist.get_world_size()
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return tuple(bool(s > 0) if isinstance(v, bool) else s / world for v, s in zip(values, t.tolist()))


def check_loss(loss: float, first: float | None, explode: float = 0, hint: str = "try a lower learning rate",
               where: str = "", terms: dict | None = None) -> None:
    """NaN/inf, or (explode > 0) a loss above `explode` x the first one, stops the run with one line; the
    checkpoints already written stay. `where` says at which step ("iteration 120"); `terms` (name -> value)
    are the parts of a summed loss, named in the line so that the culprit shows."""
    finite = math.isfinite(loss)
    if finite and not (explode > 0 and first is not None and loss > explode * first):
        return
    at = f" at {where}" if where else ""
    if terms:  # only now: a term may be a tensor, and reading it waits for the device
        at += " (" + ", ".join(f"{k} {v.item() if hasattr(v, 'item') else v:.4g}" for k, v in terms.items()) + ")"
    if not finite:
        what = "NaN" if math.isnan(loss) else loss
        raise UserError(f"loss is {what}{at}: stopping; checkpoints written so far are kept; {hint}")
    raise UserError(f"loss is exploding{at} ({loss:.4g} > {explode:g}x the first {first:.4g}): stopping; "
                    f"checkpoints written so far are kept; {hint}")
