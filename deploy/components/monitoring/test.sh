#!/usr/bin/env bash
# Checks the monitoring component: prometheusrule.yaml is generated from rules.yaml, the rules are
# valid (promtool check rules) and behave as tests/alerts.test.yaml says (promtool test rules), and,
# when kubectl is installed, the component builds with kustomize.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

./generate-prometheusrule.sh --check
promtool check rules rules.yaml
promtool test rules tests/alerts.test.yaml

if command -v kubectl >/dev/null; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$here" "$tmp/monitoring"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents:\n  - monitoring\n' >"$tmp/kustomization.yaml"
  kubectl kustomize "$tmp" >"$tmp/out.yaml"
  echo "kustomize: $(grep -c '^kind:' "$tmp/out.yaml") objects ($(grep '^kind:' "$tmp/out.yaml" | sort | tr '\n' ' '))"
fi
