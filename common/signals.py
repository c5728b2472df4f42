"""One signal policy for every trainer: SIGINT and SIGTERM finish the step, save, exit 130/143.

    with StopOnSignal() as stop:
        for it in range(start, n):
            step()
            if stop.requested:
                break
        save_checkpoint()           # the loop saves before it leaves, signal or not
    stop.exit_if_stopped(f"checkpoint saved to {path}; resume with -init_from {path}")

A second signal while the step is still running stops at once (KeyboardInterrupt), for a user who
really means it. Handlers can only be installed from the main thread; elsewhere this is a no-op.
"""
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    def __init__(self):
        self.signum = None
        self._old = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + self.signum if self.signum else 0

    def _handle(self, signum, frame):
        if self.signum is not None:  # the second one: stop now
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this step (again to stop at once)",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        return False

    def exit_if_stopped(self, message: str = "") -> None:
        """After the checkpoint is written: print where it is and exit 130 (SIGINT) or 143 (SIGTERM)."""
        if self.requested:
            name = signal.Signals(self.signum).name
            print(f"stopped by {name}" + (f": {message}" if message else ""), file=sys.stderr, flush=True)
            sys.exit(self.exit_code)
