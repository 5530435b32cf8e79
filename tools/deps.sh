#!/usr/bin/env bash
# Installs the Debian 12 packages smki needs, and only those that are missing.
# Idempotent: a machine that has them all is left alone (no apt-get at all).
# Usage: tools/deps.sh [bench]
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config   # toolchain
  libssl-dev                         # OpenSSL 3: X.509, ASN.1, crypto
  libp11-dev libp11-kit-dev          # libp11 for PKCS#11 key use; the PKCS#11 header
  softhsm2                           # the default embedded HSM
  liblmdb-dev lmdb-utils             # the store
  libpq-dev                          # the store's PostgreSQL engine (libpq)
  postgresql-15                      # tests: a throwaway cluster (initdb, pg_ctl) for the PostgreSQL engine
  libcmocka-dev                      # unit tests
  clang libclang-rt-14-dev           # libFuzzer and the fuzz build
  gnutls-bin python3-cryptography    # independent cross-checks in tests
  opensc                             # pkcs11-tool: an independent look into the token in tests
  valgrind                           # leak checks
  libh2o-evloop-dev                  # repo: the HTTP server (h2o, its own event loop; TLS on OpenSSL)
  curl                               # repo: the integration tests' HTTP client
  libxml2-dev libxmlsec1-dev         # duis: XML parsing, C14N and XMLDSig (OpenSSL back end)
  xmlsec1                            # duis: the independent XMLDSig check in the tests
  # A second PKCS#11 implementation in tests (tpm2_pkcs11.sh): tpm2-pkcs11 over a software
  # TPM, behind the TPM resource manager (a TPM holds 3 loaded objects; tabrmd swaps them,
  # as /dev/tpmrm0 does on a real machine) on a private D-Bus session bus.
  libtpm2-pkcs11-1 libtpm2-pkcs11-tools swtpm swtpm-tools tpm2-tools
  tpm2-abrmd libtss2-tcti-tabrmd0 dbus
  p11-kit-modules                    # p11-kit-proxy.so: the proxy as a module in tests (p11kit_proxy.sh)
  libnss3                            # NSS softokn as a PKCS#11 module whose C_Initialize needs init_args (nss_softokn.sh)
  lintian systemd man-db groff-base dpkg-dev  # install.sh: the .deb checked by lintian (dpkg-shlibdeps for
                                     # its dependencies), the units by systemd-analyze, the man pages by man and groff
)
# `tools/deps.sh bench`: also what make bench, make soak and make deb-check drive (a load generator, and
# nginx as the static-file peer of the repository); not needed to build or test.
if [ "${1:-}" = bench ]; then
  PACKAGES+=(wrk nginx-light)
  PACKAGES+=(strace) # tools/bench_ca_batch.sh -s: the client's sends and polls per CSR (its round trips)
  # make deb-check: a clean Debian 12 root for the .deb, booted with systemd for the units
  PACKAGES+=(debootstrap systemd-container)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "smki: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "smki: these packages are missing and this user cannot install them: ${missing[*]}" >&2
    echo "smki: run as root, or: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
