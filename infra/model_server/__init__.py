"""The ``corral:index:ModelServer`` component: one module per concern.

``component`` wires the children; ``workload`` (Deployment, init container, probes, resources, GPU placement),
``storage`` (PVC, catalog ConfigMap), ``network`` (Service, Ingress, NetworkPolicy), ``autoscaling`` (HPA, PDB),
``monitoring`` (ServiceMonitor), ``gpu`` (device plugin), ``security`` (restricted contexts) build the specs;
``layout`` holds the pod's paths, port and user; ``args`` derives the sizes from the stack and the catalog.
"""

from .args import ModelServerArgs
from .component import TYPE_TOKEN, ModelServer

__all__ = ["TYPE_TOKEN", "ModelServer", "ModelServerArgs"]
