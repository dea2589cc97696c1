"""How many llama.cpp threads a model gets when ``num_thread`` is 0: the CPUs this process may actually use.

That is the CPUs it may run on (its affinity), capped by its cgroup's CPU quota: in Kubernetes a container's
CPU limit, which leaves the affinity at every CPU of the node. The cap matters because llama.cpp's OpenMP
threads spin at every barrier (many per token) while they wait for their siblings: with more threads than the
quota lets run at once, the waiting threads burn the quota the working ones need, and decoding slows by orders
of magnitude (a 40-token request took minutes on 2 CPUs shared by 4 threads). The quota is rounded down, so no
thread waits for CPU time the container does not have.

cgroup v2 (``cpu.max``: ``<quota> <period>`` or ``max``) is read for the process's own cgroup and every parent,
the smallest limit winning; cgroup v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, -1 for none) for the
process's cgroup of the ``cpu`` controller. Inside a container the process's cgroup is usually the root of
the mount. Anything unreadable counts as no limit.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def default_threads(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The CPUs this process may run on, capped by its CPU quota (rounded down); at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    return max(1, cpus)


def cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPUs' worth of time this process's cgroup may use (2.5 for a 2500m limit), or None for no limit."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            limits += _v2_limits(cgroup_root, path)
        elif "cpu" in controllers.split(","):
            limits += _v1_limit(cgroup_root / controllers, path)
    return min(limits) if limits else None


def _v2_limits(root: Path, path: str) -> list[float]:
    """``cpu.max`` of the cgroup at ``path`` and of each parent up to the mount's root."""
    limits = []
    folder = root / path.lstrip("/")
    while True:
        limit = _ratio(folder / "cpu.max")
        if limit is not None:
            limits.append(limit)
        if folder == root or root not in folder.parents:
            return limits
        folder = folder.parent


def _v1_limit(controller: Path, path: str) -> list[float]:
    for folder in (controller / path.lstrip("/"), controller):  # the cgroup, or the mount when it is its root
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            period = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return [quota / period] if quota > 0 and period > 0 else []
    return []


def _ratio(path: Path) -> float | None:
    try:
        quota, _, period = path.read_text().strip().partition(" ")
    except OSError:
        return None
    if quota == "max":
        return None
    try:
        value, length = int(quota), int(period or "100000")
    except ValueError:
        return None
    return value / length if value > 0 and length > 0 else None
