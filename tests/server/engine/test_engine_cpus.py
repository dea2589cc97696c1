"""The default thread count follows the CPU quota of the process's cgroup (a Kubernetes CPU limit), read from
cgroup trees laid out in a temporary folder as the kernel lays them out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.engine.cpus import cpu_quota, default_threads

AFFINITY = len(os.sched_getaffinity(0))


def _tree(root: Path, files: dict[str, str], proc: str) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc_file = root / "proc-self-cgroup"
    proc_file.write_text(proc)
    return proc_file


@pytest.mark.parametrize(
    ("files", "proc", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, "0::/\n", 1.5),  # cgroup v2, inside a container
        ({"cpu.max": "max 100000\n"}, "0::/\n", None),
        (  # v2 outside: the pod's limit is on a parent of the container's cgroup
            {"kubepods/pod1/ctr/cpu.max": "max 100000", "kubepods/pod1/cpu.max": "250000 100000"},
            "0::/kubepods/pod1/ctr\n",
            2.5,
        ),
        (  # the smallest limit on the way up wins
            {"a/b/cpu.max": "400000 100000", "a/cpu.max": "50000 100000"},
            "0::/a/b\n",
            0.5,
        ),
        (  # cgroup v1, the cpu controller mounted together with cpuacct
            {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "300000", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000"},
            "4:memory:/docker/x\n3:cpu,cpuacct:/docker/x\n",
            3.0,
        ),
        (  # v1 without a quota
            {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"},
            "1:cpu:/\n2:cpuacct:/\n",
            None,
        ),
        ({"cpu.max": "lots\n"}, "0::/\n", None),  # unreadable content counts as no limit
    ],
    ids=["v2", "v2-max", "v2-parent", "v2-smallest", "v1", "v1-none", "garbage"],
)
def test_the_quota_is_read_from_the_processs_cgroup(
    tmp_path: Path, files: dict[str, str], proc: str, quota: float | None
) -> None:
    proc_file = _tree(tmp_path, files, proc)
    assert cpu_quota(tmp_path, proc_file) == quota


def test_threads_are_capped_by_the_quota_rounded_down_and_never_zero(tmp_path: Path) -> None:
    proc_file = _tree(tmp_path, {"cpu.max": "150000 100000"}, "0::/\n")
    assert default_threads(tmp_path, proc_file) == 1
    (tmp_path / "cpu.max").write_text("20000 100000")  # 200m
    assert default_threads(tmp_path, proc_file) == 1
    (tmp_path / "cpu.max").write_text(f"{AFFINITY * 400000} 100000")  # more than the CPUs it may run on
    assert default_threads(tmp_path, proc_file) == AFFINITY


def test_without_cgroup_information_every_cpu_it_may_run_on_counts(tmp_path: Path) -> None:
    assert cpu_quota(tmp_path, tmp_path / "missing") is None
    assert default_threads(tmp_path, tmp_path / "missing") == AFFINITY
