"""Where things are in the load-test pods: paths, the master's port, names and labels. The component, the tests
and the README agree on these; change them here only."""

from __future__ import annotations

LOCUSTFILE_DIR = "/etc/corral/load-test"
LOCUSTFILE = f"{LOCUSTFILE_DIR}/locustfile.py"
RUN_FILE = f"{LOCUSTFILE_DIR}/run.json"
RESULTS_DIR = "/results"
TMP_DIR = "/tmp"
MASTER_PORT = 5557
MASTER_PORT_NAME = "locust"
MASTER_CONTAINER = "locust-master"
WORKER_CONTAINER = "locust-worker"
RESULTS_CONTAINER = "results"
# How long the master waits for its workers before it gives up (workers pull the image and connect).
EXPECT_WORKERS_SECONDS = 300
# Beyond the run time and the wait for workers: the last requests, the reports, a slow node.
DEADLINE_MARGIN_SECONDS = 300

MASTER, WORKER, RESULTS = "master", "worker", "results"


def base_name(server_name: str) -> str:
    """Prefix of every load-test object of the server called ``server_name``."""
    return f"{server_name}-load-test"


def labels(server_name: str, role: str) -> dict[str, str]:
    """Labels of one role's objects and (all of them) its pod selector. The name differs from the server's
    (``corral``), so the server's Service never selects a load-test pod."""
    return {
        "app.kubernetes.io/name": "corral-load-test",
        "app.kubernetes.io/instance": server_name,
        "app.kubernetes.io/component": role,
    }


def results_path(run_id: str) -> str:
    """The run's folder on the results volume."""
    return f"{RESULTS_DIR}/{run_id}"
