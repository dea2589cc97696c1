"""The Go-built deployment tools (Pulumi CLI, Kubernetes provider, control plane), built from the Go module proxy.

``build.sh`` builds one tool into ``${CORRAL_TOOLS_CACHE:-~/.cache/corral/tools}/<tool>-<version>/``;
:mod:`infra.toolchain.tools` finds the binaries and names the command that builds a missing one.
"""
