#!/usr/bin/env bash
# The short kill test of make test: tools/kill_ra.sh with a few kills of a small device
# batch's execution and of a ceremony (make soak runs the long one). Every CSR issued
# once, every file written, no temporary left, the trail verified and anchored; the
# ceremony finished by smki commands alone.
#
# Environment (ctest sets it): SMKI_BIN, SMKI_SRC.
set -euo pipefail
: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
SMKI_SRC=${SMKI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KILL_EXEC_MS=120 KILL_INIT_MS=250 exec "$SMKI_SRC/tools/kill_ra.sh" "$SMKI_BIN" 6 40
