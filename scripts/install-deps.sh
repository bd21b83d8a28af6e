#!/usr/bin/env bash
# Installs the Debian 12 packages Tsunagu builds and tests with; does nothing when all are present.
# Runs unattended (CI=true, no standard input): never prompts.
# `install-deps.sh fuzz` also installs Clang and libFuzzer, for `make fuzz`.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcpprest-dev libssl-dev libsqlite3-dev libsodium-dev nlohmann-json3-dev catch2
  nginx-light openssl
  # systemd-analyze checks the service unit (deploy/tsunagu-server.service).
  systemd
  # PostgreSQL: libpq for the scale-out storage, and the server itself, which the tests run in a
  # temporary cluster of their own (initdb, pg_ctl, a Unix socket in the test's directory).
  libpq-dev postgresql
  # The web page's end-to-end tests: Debian's Chromium (never a downloaded browser) and a
  # Japanese font, so that screenshots show the page as a supervisor sees it.
  chromium fonts-ipafont-gothic
)
if [ "${1:-}" = "fuzz" ]; then
  packages+=(clang libclang-rt-14-dev)
fi
# node and npm run the end-to-end tests (playwright-core comes from npm at build time). A node
# installed another way (e.g. with its own npm) is used as it is.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A machine just booted may be running its daily apt jobs: wait for their lock rather than fail,
# and retry downloads a mirror dropped.
apt_options=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=5)
apt-get "${apt_options[@]}" update -qq
# The tests run nginx and PostgreSQL of their own (own prefix, own cluster on a Unix socket): the
# services these packages start system-wide (nginx's default site on port 80, a cluster on port
# 5432) are not started by the install, so a port already taken cannot fail it. They stay
# enabled as Debian sets them (a deployment may use them: deploy/, --postgres), and start at boot.
starts_services=false
for p in nginx-light postgresql; do
  if [[ " ${missing[*]} " == *" $p "* ]]; then starts_services=true; fi
done
policy=/usr/sbin/policy-rc.d
if [ "$starts_services" = true ] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get "${apt_options[@]}" install -y -qq --no-install-recommends "${missing[@]}" </dev/null
