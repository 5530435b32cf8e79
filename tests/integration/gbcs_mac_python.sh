#!/usr/bin/env bash
# An independent reading of the GBCS MAC (reference §5): Debian's python3-cryptography,
# not smki's C code, parses every wrapped RTDS command, derives the MAC key by static
# ECDH (ACB KA key x recipient device KA certificate) and the SP 800-56A KDF, computes
# the AES-128-GCM tag and compares its first 12 octets with the ones in the file.
# Needs SMKI_SHARED (the folder holding vectors/). Exits non-zero on any mismatch.
set -euo pipefail

: "${SMKI_SHARED:?set SMKI_SHARED to the folder holding vectors/}"
# The python3 on PATH may lack the cryptography package; Debian's has it.
PY=/usr/bin/python3
if ! "$PY" -c 'import cryptography' 2>/dev/null; then
    echo "gbcs_mac_python: $PY cannot import cryptography (apt-get install python3-cryptography)" >&2
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$PY" - "$SMKI_SHARED/vectors/gbcs" "$HERE" <<'PYTHON'
import os
import sys

# The one reading of GBCS messages and of the MAC (§5) the integration tests share:
# gbcs_return.py, beside this script (no bytecode written into the source tree).
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
from gbcs_return import load_cert, load_key, mac_of, parse  # noqa: E402

vectors = sys.argv[1]
keystore = os.path.join(vectors, "keystore")
rtds = os.path.join(vectors, "rtds")
ACB_KA = os.path.join(keystore, "90b3d51f30000002-ka.key")

acb = load_key(ACB_KA)

passed = failed = skipped = 0
for folder in sorted(os.listdir(rtds)):
    path_folder = os.path.join(rtds, folder)
    if not os.path.isdir(path_folder):
        continue
    for name in sorted(os.listdir(path_folder)):
        if not name.endswith("_COMMAND_GBCS.HEX"):
            continue
        rel = folder + "/" + name
        with open(os.path.join(path_folder, name)) as f:
            msg = bytes.fromhex("".join(f.read().split()))
        if msg[:1] == b"\xDF":
            print("skip %s: signed, not wrapped (DF)" % rel)
            skipped += 1
            continue
        try:
            cmd = parse(msg)
            if not cmd["wrapped"]:
                raise ValueError("not a General Ciphering (DD) command")
            origin = load_cert(keystore, cmd["originator"], "ka")
            # A Device Certificate has an empty subject: a device-originated (HAN-local)
            # command is MACed under device-to-device KA keys the ACB does not hold.
            if origin is not None and len(origin.subject) == 0:
                print("skip %s: device-originated (%s), device-to-device KA" % (rel, cmd["originator"].hex()))
                skipped += 1
                continue
            device = load_cert(keystore, cmd["recipient"], "ka")
            if device is None:
                raise ValueError("no KA certificate for recipient %s" % cmd["recipient"].hex())
            got = mac_of(cmd, acb, device.public_key())
        except ValueError as e:
            print("FAIL %s: %s" % (rel, e))
            failed += 1
            continue
        if got == cmd["mac"]:
            print("ok   %s: MAC %s (%s -> %s, counter %d)" % (
                rel, got.hex(), cmd["originator"].hex(), cmd["recipient"].hex(),
                int.from_bytes(cmd["counter"], "big")))
            passed += 1
        else:
            print("FAIL %s: file MAC %s, computed %s" % (rel, cmd["mac"].hex(), got.hex()))
            failed += 1

print("%d skipped" % skipped)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or passed == 0 else 0)
PYTHON
