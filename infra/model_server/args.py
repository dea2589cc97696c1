"""``ModelServerArgs``: what a ModelServer is built from, and the numbers derived from it (sizes, estimates)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.quantity import GIB, MIB, format_bytes, parse_quantity
from infra.settings import StackSettings
from infra.sizing import CatalogBundle, models_memory_bytes, volume_bytes


@dataclass(frozen=True)
class ModelServerArgs:
    """``settings``: the stack's settings; ``catalog``: the catalog files and model facts (infra.sizing);
    ``api_key``: the key's value when ``settings.api_key.create`` (a Pulumi secret), else None."""

    settings: StackSettings
    catalog: CatalogBundle
    api_key: pulumi.Input[str] | None = None

    @property
    def models_memory_bytes(self) -> int:
        """The loaded models' worst case (server.memory's estimate, as /api/ps reports it)."""
        s = self.settings
        return models_memory_bytes(
            self.catalog,
            num_parallel=s.num_parallel,
            context_length=s.context_length,
            kv_cache_type=s.kv_cache_type,
            max_loaded=s.max_loaded_models,
        )

    @property
    def memory_estimate_bytes(self) -> int:
        """Models plus the stack's overhead: the pod's memory unless the stack sets it, and what must fit the GPUs."""
        return self.models_memory_bytes + self.settings.memory_overhead_mib * MIB

    @property
    def gpu_memory_bytes(self) -> int:
        """Memory of the GPUs one pod gets, as the stack declares it (0 when it declares none)."""
        gpu = self.settings.gpu
        return int(gpu.memory_gib * GIB) * gpu.count

    @property
    def memory(self) -> str:
        return self.settings.memory or format_bytes(self.memory_estimate_bytes)

    @property
    def volume_size(self) -> str:
        """The stack's size, else the catalog's blobs x headroom + the largest model."""
        return self.settings.storage.size or format_bytes(volume_bytes(self.catalog, self.settings.storage.headroom))

    @property
    def volume_bytes(self) -> int:
        return int(parse_quantity(self.volume_size))

    @property
    def scratch_bytes(self) -> int:
        """The writable catalog folder: room for weights that `catalog apply` assembles from packages."""
        return sum(m.weights_bytes for m in self.catalog.models) + 64 * MIB

    @property
    def max_replicas(self) -> int:
        scaling = self.settings.autoscaling
        return scaling.max_replicas if scaling else self.settings.replicas
