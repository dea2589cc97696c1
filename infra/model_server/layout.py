"""Where things are inside the server pod: paths, port, user, labels. The Deployment, the local pod-run test
and the Dockerfile agree on these; change them here only."""

from __future__ import annotations

MODELS_DIR = "/models"
CATALOG_DIR = "/etc/corral/catalog"
TMP_DIR = "/tmp"
PORT = 11434
PORT_NAME = "http"
USER_ID = 10001
SERVER_CONTAINER = "server"
PREPULL_CONTAINER = "catalog-apply"

# Pod template annotations: the catalog checksum rolls pods on a catalog change; the estimates are what the
# policies compare (the server's /api/ps estimator, via infra.sizing).
CHECKSUM_ANNOTATION = "checksum/catalog"
MEMORY_ANNOTATION = "corral.dev/memory-estimate-bytes"
GPU_MEMORY_ANNOTATION = "corral.dev/gpu-memory-bytes"
CATALOG_BYTES_ANNOTATION = "corral.dev/catalog-bytes"


def labels(name: str) -> dict[str, str]:
    """The labels of every object, and (all of them) the selector of the server pods."""
    return {"app.kubernetes.io/name": "corral", "app.kubernetes.io/instance": name}
