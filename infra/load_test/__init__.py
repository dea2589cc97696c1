"""The optional in-cluster load test: a Locust master Job, its workers, their Service, the locustfile in a
ConfigMap and a results volume (``corral:index:LoadTest``)."""

from .args import LoadTestArgs
from .component import TYPE_TOKEN, LoadTest

__all__ = ["TYPE_TOKEN", "LoadTest", "LoadTestArgs"]
