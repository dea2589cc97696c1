#!/usr/bin/env bash
# Build one Go-built tool of Corral's deployment toolchain from the Go module proxy, and cache it under
#   ${CORRAL_TOOLS_CACHE:-$HOME/.cache/corral/tools}/<tool>-<version>/
# A tool whose folder holds a `.complete` stamp is not rebuilt. A build happens in a scratch folder next to
# the cache entry and is moved into place only when it succeeded, so an interrupted build leaves nothing
# half-written behind.
#
# usage: build.sh TOOL...     TOOL is one of: pulumi kubernetes-provider language-python etcd kubernetes kwok
#        build.sh all         every tool but language-python (what `make tools` runs)
#
# Versions live in versions.env beside this script (one place, read by infra/toolchain/tools.py too).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${CORRAL_TOOLS_CACHE:-$HOME/.cache/corral/tools}"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -mod=mod"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

log() { printf '[tools] %s\n' "$*" >&2; }

# A `replace` line for every module the given go.mod redirects to a registry version (not a local folder).
registry_replaces() {
    awk '
        /^replace[ \t]*\($/ { inblock = 1; next }
        inblock && /^\)/ { inblock = 0; next }
        inblock { line = $0 }
        /^replace[ \t]+[^(]/ { line = $0; sub(/^replace[ \t]+/, "", line) }
        line != "" {
            split(line, parts, "=>")
            target = parts[2]; gsub(/^[ \t]+|[ \t]+$/, "", target)
            if (target !~ /^\.\.?\//) print "replace " line
            line = ""
        }' "$1"
}

# Path of a module's go.mod in the module cache (downloads it if needed).
module_gomod() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'; }
module_dir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p'; }

new_scratch_module() {  # $1 = folder, $2 = module name
    mkdir -p "$1"
    printf 'module %s\n\ngo 1.26\n' "$2" >"$1/go.mod"
}

build_pulumi() {  # $1 = output folder
    local mod="$work/mod"
    new_scratch_module "$mod" corral.local/pulumi-cli
    mkdir -p "$1/bin"
    registry_replaces "$(module_gomod "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION")" >>"$mod/go.mod"
    (cd "$mod" && go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION" \
        "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION")
    (cd "$mod" && go build -trimpath -ldflags "-s -w \
        -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
        -o "$1/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

build_kubernetes_provider() {  # $1 = output folder
    local src="$work/provider"
    cp -r "$(module_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_MODULE_VERSION")" "$src"
    chmod -R u+w "$src"
    # The module points its SDK at a sibling folder that the module zip does not contain: use the release.
    sed -i -E "s#^(\s*)(replace\s+)?github.com/pulumi/pulumi-kubernetes/sdk/v4 => \.\./sdk\s*\$#\1\2github.com/pulumi/pulumi-kubernetes/sdk/v4 => github.com/pulumi/pulumi-kubernetes/sdk/v4 v$K8S_PROVIDER_VERSION#" "$src/go.mod"
    # The provider embeds its schema (with its version set) and Terraform mapping as compact JSON, which its
    # own `go generate` step writes from the two files the module ships; this does the same.
    python3 - "$src/cmd/pulumi-resource-kubernetes" "$K8S_PROVIDER_VERSION" <<'PY'
import json, pathlib, sys
folder, version = pathlib.Path(sys.argv[1]), sys.argv[2]
schema = json.loads((folder / "schema.json").read_text())
schema["version"] = version
(folder / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
mapping = json.loads((folder / "terraform-mapping.json").read_text())
(folder / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))
PY
    (cd "$src" && go build -trimpath -ldflags "-s -w \
        -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
        -o "$1/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes)
}

build_etcd() {  # $1 = output folder
    # `go install` refuses the server module: its go.mod points its sibling modules at local folders. In a scratch
    # module those replaces do not apply, and the siblings resolve to the releases the server requires.
    local mod="$work/mod" pkg=go.etcd.io/etcd/server/v3
    new_scratch_module "$mod" corral.local/etcd
    registry_replaces "$(module_gomod "$pkg@$ETCD_VERSION")" >>"$mod/go.mod"
    (cd "$mod" && go get "$pkg@$ETCD_VERSION")
    (cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$1/etcd" "$pkg")
}

build_kubernetes() {  # $1 = output folder: kube-apiserver, kube-scheduler, kube-controller-manager
    local mod="$work/mod" staging="v0.${KUBERNETES_VERSION#v1.}"
    new_scratch_module "$mod" corral.local/kubernetes
    # k8s.io/kubernetes points its staging modules at folders inside its repository; use their releases.
    sed -n -E 's#^\s*(k8s.io/[a-z0-9-]+) => \./staging/src/.*$#replace \1 => \1 '"$staging"'#p' \
        "$(module_gomod "k8s.io/kubernetes@$KUBERNETES_VERSION")" >>"$mod/go.mod"
    local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler
        k8s.io/kubernetes/cmd/kube-controller-manager)
    local p
    (cd "$mod" && go get "${pkgs[@]/%/@$KUBERNETES_VERSION}")
    local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
    local ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
        -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
        -X k8s.io/component-base/version.gitTreeState=clean"
    # One `go build` for the three commands so the packages they share compile once.
    (cd "$mod" && go build -trimpath -ldflags "$ld" -o "$1/" "${pkgs[@]}")
}

build_kwok() {  # $1 = output folder
    GOBIN="$1" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    # kwok ships no default stages inside the binary; the module's kustomize folder holds them: nodes become
    # Ready and keep a heartbeat (with a lease), pods become Running and Ready, finish and get deleted.
    mkdir -p "$1/stages"
    local dir
    dir="$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")"
    local stage=kustomize/stage
    cp "$dir/$stage/node/fast/node-initialize.yaml" "$dir/$stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
        "$dir/$stage/pod/fast/pod-ready.yaml" "$dir/$stage/pod/fast/pod-complete.yaml" \
        "$dir/$stage/pod/fast/pod-delete.yaml" "$1/stages/"
    chmod -R u+w "$1/stages"
}

build_language_python() {  # $1 = output folder
    # The language host left the sdk/v3 module after v3.79.0 and its own module is not on the proxy; v3.79.0
    # is the newest release that still ships it. `go install` refuses it (sdk's go.mod has a replace).
    local mod="$work/mod" pkg=github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
    new_scratch_module "$mod" corral.local/language-python
    registry_replaces "$(module_gomod "github.com/pulumi/pulumi/sdk/v3@$LANGUAGE_PYTHON_VERSION")" >>"$mod/go.mod"
    (cd "$mod" && go get "$pkg@$LANGUAGE_PYTHON_VERSION")
    (cd "$mod" && go build -trimpath -ldflags "-s -w \
        -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGUAGE_PYTHON_VERSION" \
        -o "$1/pulumi-language-python" "$pkg")
}

# The whole entry point is one function so that bash has parsed all of it before it runs (editing this file
# during a long build cannot change what the running build does next).
build_one() {
    tool="$1"
    case "$tool" in
        pulumi) version="$PULUMI_VERSION" ;;
        kubernetes-provider) version="$K8S_PROVIDER_VERSION" ;;
        language-python) version="$LANGUAGE_PYTHON_VERSION" ;;
        etcd) version="$ETCD_VERSION" ;;
        kubernetes) version="$KUBERNETES_VERSION" ;;
        kwok) version="$KWOK_VERSION" ;;
        *) log "unknown tool '$tool'"; exit 2 ;;
    esac
    dest="$cache/$tool-$version"
    if [[ -f "$dest/.complete" ]]; then
        log "$tool $version: cached in $dest"
        exit 0
    fi
    if ! command -v go >/dev/null; then
        log "$tool $version is not built and there is no 'go' on PATH: install Go 1.26 or newer and run this again"
        exit 2
    fi
    mkdir -p "$cache"
    work="$(mktemp -d "$cache/.build-$tool-XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/out" "$work/bin"
    log "$tool $version: building from the Go module proxy (cold: several minutes) ..."
    start=$SECONDS
    "build_${tool//-/_}" "$work/out"
    touch "$work/out/.complete"
    rm -rf "$dest"
    mv "$work/out" "$dest"
    log "$tool $version: built in $((SECONDS - start)) s -> $dest"
}

# `all`: two lanes in parallel (the Pulumi pair, then the Kubernetes set), so one lane's downloads and
# single-threaded links overlap the other's compiles.
main() {
    if [[ $# -eq 0 ]]; then
        log "usage: build.sh all | TOOL..."; exit 2
    fi
    if [[ "$1" == all ]]; then
        local a b status=0
        bash "$0" pulumi kubernetes-provider & a=$!
        bash "$0" etcd kubernetes kwok & b=$!
        wait "$a" || status=1
        wait "$b" || status=1
        return "$status"
    fi
    local t
    for t in "$@"; do
        (build_one "$t")
    done
}

main "$@"; exit $?
