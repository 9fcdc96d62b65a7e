#!/usr/bin/env bash
# Puts `prometheus` and `promtool` on PATH, from Debian's `prometheus` package, when either is missing.
# Called by the observability tests (test/observability/prometheus.setup.ts) before they check the alert rules
# or start a Prometheus; returns at once when both are installed. Prints the two paths.
#
# The package's service is not started by this script: in containers /usr/sbin/policy-rc.d refuses service
# starts during installs, and the tests start their own Prometheus on a free port anyway.
set -euo pipefail

found() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

if ! found; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "prometheus/promtool missing and apt-get is not available: install Prometheus 2.x" >&2
    exit 1
  }
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "installing prometheus needs root (or sudo)" >&2; exit 1; }
    as_root=(sudo -n)
  fi
  # Test files run in parallel: one install at a time; the second finds it installed.
  exec 9>"${TMPDIR:-/tmp}/writebehind-ensure-prometheus.lock"
  flock 9
  if ! found; then
    echo "[ensure-prometheus] installing Debian's prometheus package" >&2
    install() {
      DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends prometheus >&2
    }
    # A fresh machine has no package lists yet: update once, then try again.
    install || { "${as_root[@]}" apt-get update -q >&2 && install; }
  fi
  found || { echo "prometheus/promtool still not on PATH after the install" >&2; exit 1; }
fi
command -v prometheus
command -v promtool
