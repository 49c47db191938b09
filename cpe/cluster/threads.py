"""How many compute threads an actor uses: the CPUs its placement bundle reserves.

On CPU a pool's ``devices_per_rank`` / ``devices_per_engine`` are the CPUs of each of
its bundles, and Ray exports an actor's CPU count as ``OMP_NUM_THREADS`` (unless the
user set that variable for the whole job), which torch and vLLM's CPU backend read at
start-up. So the thread count of every actor is set in one place, the pool config: one
CPU per bundle computes on one thread, two on two, and actors that run at the same time
never ask for more threads than their bundles add up to. On GPU a bundle carries
``cluster.cpus_per_gpu`` CPUs per GPU, and so as many host threads (the GPU presets: 4).
"""

from __future__ import annotations

import os


def bundle_threads() -> int:
    """This process's thread budget: ``OMP_NUM_THREADS`` as Ray set it, or 1 outside Ray
    (a worker built in-process by a test) so nothing oversubscribes a small machine."""
    raw = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(raw)) if raw.isdigit() else 1
