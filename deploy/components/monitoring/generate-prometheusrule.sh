#!/usr/bin/env bash
# Generates prometheusrule.yaml (a monitoring.coreos.com/v1 PrometheusRule) from rules.yaml, the
# one source of truth for routewarden's alerts, which promtool checks and tests directly.
#   ./generate-prometheusrule.sh           rewrite prometheusrule.yaml
#   ./generate-prometheusrule.sh --check   exit 1 (with a diff) when prometheusrule.yaml is out of date
# The rule groups are copied verbatim under `spec:`, indented two spaces, so no YAML library is needed
# and nothing in the rules can be changed on the way.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

render() {
  cat <<'HEADER'
# Generated from rules.yaml by generate-prometheusrule.sh; edit rules.yaml, then run the script.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: routewarden
  namespace: routewarden-system
  labels:
    app.kubernetes.io/name: routewarden
    app.kubernetes.io/component: monitoring
spec:
HEADER
  # From the `groups:` key on; comments above it describe the file, not the resource.
  sed -n '/^groups:/,$p' "$here/rules.yaml" | sed -e 's/^\(.\)/  \1/'
}

case "${1:-}" in
  "")
    render >"$here/prometheusrule.yaml"
    ;;
  --check)
    if ! diff -u "$here/prometheusrule.yaml" <(render); then
      echo "prometheusrule.yaml is out of date: run $0" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
