#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/k8s/ offline, with tools from
# Debian's archive only (installed if missing):
#
#  1. yamllint (syntax, duplicate keys, indentation, truthy values like `on`
#     that YAML 1.1 turns into booleans), also on deploy/docker-compose.yml;
#  2. tests/compose/validate-k8s.py: a strict schema check against the
#     python3-kubernetes models (generated from the Kubernetes OpenAPI
#     schema; 22.6.0 = API 1.22) plus cross-reference checks. Debian ships
#     no kubeconform/kubeval, and kubectl 1.20 (kubernetes-client) can only
#     validate against a live API server;
#  3. `kubectl kustomize deploy/k8s` (renders offline, no server) where a
#     kubectl is installed; Debian's kubernetes-client 1.20 is not installed
#     for it (it conflicts with a kubectl package where one is present);
#  4. docker-compose config -q on deploy/docker-compose.yml, if installed.
#
# Ends with "validate-k8s: N passed, N failed"; exits 1 on a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tests/deps.sh yamllint python3-kubernetes python3-yaml
passed=0
failed=0
step() { # name, command...
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "validate-k8s: ok: $name"
    else
        failed=$((failed + 1))
        echo "validate-k8s: FAIL: $name"
    fi
}

yl_conf='{extends: default, rules: {line-length: {max: 100}, document-start: disable, comments: {min-spaces-from-content: 1}}}'
step "yamllint deploy/k8s/*.yaml deploy/docker-compose.yml" \
    yamllint -s -d "$yl_conf" deploy/k8s/*.yaml deploy/docker-compose.yml
step "schema and references (python3-kubernetes models)" \
    /usr/bin/python3 tests/compose/validate-k8s.py deploy/k8s/*.yaml
if command -v kubectl >/dev/null; then
    step "kubectl kustomize deploy/k8s renders $(kubectl kustomize deploy/k8s 2>/dev/null | grep -c '^kind:') objects" \
        sh -c 'kubectl kustomize deploy/k8s >/dev/null'
fi
if command -v docker-compose >/dev/null; then
    step "docker-compose config -q" \
        env SLUICE_TOKEN=validate SLUICE_PG_PASSWORD=validate docker-compose -f deploy/docker-compose.yml config -q
fi
echo "validate-k8s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
