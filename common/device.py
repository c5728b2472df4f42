"""The originals' device flags (-gpuid / -gpu: -1 means CPU) as a torch.device, and seeding."""
from __future__ import annotations  # torch is imported where used: a script's -h stays fast

import os
import random
import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def get_device(gpuid: int, cpu_flag: str = "-gpuid -1") -> torch.device:
    """-1 -> CPU; N >= 0 -> CUDA device N, else Apple MPS, else CPU with one line saying so.

    The originals default to GPU 0 and fall back to CPU when cunn is missing; we keep that so the
    commands people know run on a laptop, but say it once.
    """
    import torch
    if gpuid < 0:
        return torch.device("cpu")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        if gpuid >= n:
            print(f"warning: GPU {gpuid} asked for but only {n} CUDA device(s) exist; using cuda:0",
                  file=sys.stderr)
            gpuid = 0
        return torch.device("cuda", gpuid)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    print(f"note: no CUDA or MPS device found, running on CPU (pass {cpu_flag} to silence this)",
          file=sys.stderr)
    return torch.device("cpu")


def native_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX512-BF16 or AMX): there bf16 autocast is 2-4x faster;
    on AVX2-only CPUs oneDNN emulates it, slower than float32 (and has no bf16 LSTM)."""
    import torch
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """-precision auto|fp32|bf16|fp16 -> what runs: auto is bf16 on a native-bf16 CPU or a bf16 GPU,
    else fp32; fp16 only on CUDA. An impossible request is one UserError line."""
    import torch

    from common.cli import UserError
    if precision not in PRECISIONS:
        raise UserError(f"-precision {precision}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UserError("-precision fp16 needs a CUDA GPU; on a CPU use bf16 (native on AVX512-BF16/AMX) or fp32")
    return precision


def autocast(device: torch.device, precision: str):
    """The autocast context for a resolved precision (a no-op for fp32)."""
    import contextlib

    import torch
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type if device.type in ("cuda", "cpu") else "cpu", dtype=dtype)


def seed_everything(seed: int) -> None:
    import torch
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Torch CPU (and CUDA) RNG state, storable with weights_only checkpoints."""
    import torch
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import torch
    if not state:
        return
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def init_distributed(gpuid: int, cpu_flag: str = "-gpuid -1") -> tuple[torch.device, int, int]:
    """-> (device, rank, world_size). Under torchrun (WORLD_SIZE > 1) join the process group first:
    NCCL with one GPU per process (LOCAL_RANK) when -gpuid asks for a GPU and CUDA exists, else gloo on
    the CPU with the cores shared out between the processes. Alone: get_device(gpuid), 0, 1."""
    import torch
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return get_device(gpuid, cpu_flag), 0, 1
    import torch.distributed as dist
    use_cuda = gpuid >= 0 and torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return device, dist.get_rank(), world


def close_distributed() -> None:
    """Leave the process group together: a barrier first, so no process tears gloo down while another is
    still saving (a gloo peer destroyed early aborted with "terminate called without an active exception",
    1 run in 15 of colorize's two-process test). Not while an exception is on its way out (a `finally`): the
    other processes may be inside another collective, and a barrier would then wait for them forever."""
    import sys
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        if sys.exc_info()[0] is None:
            dist.barrier()
        dist.destroy_process_group()
