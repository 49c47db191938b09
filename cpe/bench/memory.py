"""Peak resident memory of a process tree, per process and in total, sampled while a
contender runs (Ray actors show up by their class: ``ray::PolicyWorker`` ...)."""

from __future__ import annotations

import threading
from collections import defaultdict

import psutil


def process_label(proc: psutil.Process) -> str:
    """``ray::ClassName`` for a Ray actor or task, else the program's name."""
    try:
        name = proc.name()
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"
    title = " ".join(cmdline)
    if title.startswith("ray::"):
        return title.split()[0].split(".")[0]
    return name


class PeakMemory:
    """Samples every ``interval_s`` from a background thread until ``stop``."""

    def __init__(self, root_pid: int, interval_s: float = 0.5):
        self.root_pid, self.interval_s = root_pid, interval_s
        self.peak_by_label: dict[str, float] = defaultdict(float)
        self.peak_total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PeakMemory:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        now: dict[str, float] = defaultdict(float)
        for proc in procs:
            try:
                rss = proc.memory_info().rss / 2**30
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            now[process_label(proc)] += rss
        for label, gib in now.items():
            self.peak_by_label[label] = max(self.peak_by_label[label], gib)
        self.peak_total = max(self.peak_total, sum(now.values()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def result(self) -> dict:
        """GiB: the peak of the sum, and each label's own peak (summed over the
        processes that share it, e.g. two policy ranks)."""
        return {
            "peak_total_gib": round(self.peak_total, 3),
            "peak_by_process_gib": {k: round(v, 3) for k, v in sorted(self.peak_by_label.items())},
        }
