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

exec "$PY" - "$SMKI_SHARED/vectors/gbcs" <<'PYTHON'
import hashlib
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

vectors = sys.argv[1]
keystore = os.path.join(vectors, "keystore")
rtds = os.path.join(vectors, "rtds")
ACB_KA = os.path.join(keystore, "90b3d51f30000002-ka.key")


class Reader:
    """Reads forward through bytes; running past the end is an error."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        if n > len(self.data) - self.at:
            raise ValueError("truncated: need %d, %d remain" % (n, len(self.data) - self.at))
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def u8(self):
        return self.take(1)[0]

    def expect(self, want, what):
        got = self.u8()
        if got != want:
            raise ValueError("%s: expected %02X, found %02X" % (what, want, got))

    def ber_len(self):
        first = self.u8()
        if first < 0x80:
            n = first
        else:
            octets = first & 0x7F
            if not 1 <= octets <= 4:
                raise ValueError("unsupported BER length form %02X" % first)
            n = int.from_bytes(self.take(octets), "big")
        if n > len(self.data) - self.at:
            raise ValueError("BER length %d exceeds what follows" % n)
        return n

    def left(self):
        return len(self.data) - self.at


def parse_command(msg):
    """General Ciphering (DD) around a General Signing APDU (DF), reference §5."""
    r = Reader(msg)
    r.expect(0xDD, "general-ciphering tag")
    for _ in range(6):
        r.expect(0x00, "empty general-ciphering field")
    if r.ber_len() != r.left():
        raise ValueError("general-ciphering length does not match the message")
    r.expect(0x11, "security control")
    invocation = r.take(4)
    start = r.at
    r.expect(0xDF, "general-signing tag")
    r.expect(0x09, "transaction-id length")
    cra = r.u8()
    counter = r.take(8)
    r.expect(0x08, "originator title length")
    originator = r.take(8)
    r.expect(0x08, "recipient title length")
    recipient = r.take(8)
    date = r.u8()
    if date == 0x0C:
        r.take(12)
    elif date != 0x00:
        raise ValueError("date-time tag %02X" % date)
    r.take(r.ber_len())  # other-info
    r.take(r.ber_len())  # content
    sig = r.u8()
    if sig == 0x40:
        r.take(64)
    elif sig != 0x00:
        raise ValueError("signature tag %02X" % sig)
    signing = msg[start:r.at]
    if r.left() != 12:
        raise ValueError("%d octets after the general-signing APDU, expected the 12-octet MAC" % r.left())
    return dict(invocation=invocation, signing=signing, cra=cra, counter=counter,
                originator=originator, recipient=recipient, mac=r.take(12))


def ka_cert(eui):
    path = os.path.join(keystore, eui.hex() + "-ka.pem")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def gbcs_mac(acb, cmd):
    device = ka_cert(cmd["recipient"])
    if device is None:
        raise ValueError("no KA certificate for recipient %s" % cmd["recipient"].hex())
    z = acb.exchange(ec.ECDH(), device.public_key())
    other_info = (bytes.fromhex("60857406080300") + cmd["originator"] + b"\x09" +
                  bytes([cmd["cra"]]) + cmd["counter"] + cmd["recipient"])
    key = hashlib.sha256(b"\x00\x00\x00\x01" + z + other_info).digest()[:16]
    enc = Cipher(algorithms.AES(key), modes.GCM(cmd["originator"] + cmd["invocation"])).encryptor()
    enc.authenticate_additional_data(b"\x11\x00\x00\x00\x00\x00" + cmd["signing"])
    enc.finalize()
    return enc.tag[:12]


with open(ACB_KA, "rb") as f:
    acb = serialization.load_pem_private_key(f.read(), None)

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
            cmd = parse_command(msg)
            origin = ka_cert(cmd["originator"])
            # A Device Certificate has an empty subject: a device-originated (HAN-local)
            # command is MACed under device-to-device KA keys the ACB does not hold.
            if origin is not None and len(origin.subject) == 0:
                print("skip %s: device-originated (%s), device-to-device KA" % (rel, cmd["originator"].hex()))
                skipped += 1
                continue
            got = gbcs_mac(acb, cmd)
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
