"""Generator files: a .pt written by train.py / convert.py, or an original .t7 (read by lua_checkpoint)."""
import dataclasses
import os

from common import checkpoint
from common.cli import UserError
from dcgan.lua_checkpoint import load_t7
from dcgan.model import GANConfig, Generator


def load_generator(path, map_location="cpu"):
    """A generator from a .t7 (original) or a .pt (train.py / convert.py) -> (Generator in eval mode, cfg)."""
    if not path:
        raise UserError("no generator given: set net=path/to/<name>_<epoch>_net_G.pt (or an original .t7)")
    if not os.path.isfile(path):
        raise UserError(f"net={path}: no such file (give the path of a <name>_<epoch>_net_G.pt or .t7 file)")
    if path.endswith(".t7"):
        return load_t7(path)
    ck = checkpoint.load(path, "dcgan_G", map_location=map_location)
    cfg = GANConfig(**ck["config"])
    G = Generator(cfg)
    G.load_state_dict(ck["model"])
    return G.eval(), cfg


def save_generator(G, cfg, path, source=""):
    return checkpoint.save(path, "dcgan_G", {"model": {k: v.cpu() for k, v in G.state_dict().items()},
                                             "config": dataclasses.asdict(cfg), "source": source})


class RunLock:
    """`<checkpoints_dir>/<name>.lock`: held (fcntl.flock, with this process's pid in it) by the train.py
    writing `<name>_*` checkpoints there, so that a second run into the same folder and name stops at once
    with one line instead of interleaving its checkpoints with the first's. The kernel releases the lock
    when the holder dies (even by kill -9); a clean exit also removes the file (and the folder, when the
    lock created it and the run wrote nothing there)."""

    def __init__(self, folder, name):
        self.folder, self.name = folder, name
        self.path = os.path.join(folder, f"{name}.lock")
        self.fd, self.made_folder = None, False

    def acquire(self):
        import fcntl
        self.made_folder = not os.path.isdir(self.folder)
        os.makedirs(self.folder, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise UserError(f"checkpoints_dir={self.folder}: another train.py (pid {pid}) is writing "
                                f"{self.name}_* checkpoints there ({self.path} is locked); wait for it, or pass "
                                f"another name= or checkpoints_dir=") from None
            try:  # the holder may have removed the file between our open and our lock: lock the new one
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            try:
                os.unlink(self.path)  # while still holding it, so nobody locks a file about to vanish
            except FileNotFoundError:
                pass
            os.close(self.fd)
            self.fd = None
            if self.made_folder:
                try:
                    os.rmdir(self.folder)  # only if empty
                except OSError:
                    pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def earlier_checkpoints(folder, name):
    """-> [(epoch, G path)] of `<name>_<epoch>_net_G.pt` / `_net_D.pt` files in `folder`, by epoch."""
    found = {}
    if os.path.isdir(folder):
        for fn in os.listdir(folder):
            if fn.startswith(f"{name}_") and fn.endswith(("_net_G.pt", "_net_D.pt")):
                epoch = fn[len(name) + 1: -len("_net_G.pt")]
                if epoch.isdigit():
                    found[int(epoch)] = os.path.join(folder, f"{name}_{epoch}_net_G.pt")
    return sorted(found.items())
