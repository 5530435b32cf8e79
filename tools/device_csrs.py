#!/usr/bin/python3
"""Device CSRs as a GBCS CS02c response carries them (reference section 4): an empty
subject, a critical keyUsage of digitalSignature or keyAgreement, and a critical
subjectAltName of one otherName hardwareModuleName (RFC 4108) naming the Device ID.
For demos, tests and benchmarks of batches: real devices make their own.

usage: device_csrs.py OUT_DIR FIRST_EUI64_HEX COUNT [HWTYPE_OID]
Writes OUT_DIR/<eui>-ds.csr.der for even offsets and -ka for odd ones (DER)."""
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

HW_MODULE_NAME = ObjectIdentifier("1.3.6.1.5.5.7.8.4")


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(chunk))
    return b"\x06" + der_len(len(body)) + body


def main():
    out, first, count = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3])
    hw_type = sys.argv[4] if len(sys.argv) > 4 else "1.2.826.0.1.8641679.1.2.2.1"
    os.makedirs(out, exist_ok=True)
    for i in range(count):
        eui = (first + i // 2).to_bytes(8, "big")
        ka = i % 2 == 1
        key = ec.generate_private_key(ec.SECP256R1())
        inner = der_oid(hw_type) + b"\x04\x08" + eui
        hmn = b"\x30" + der_len(len(inner)) + inner
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(
                x509.KeyUsage(not ka, False, False, False, ka, False, False, False, False), critical=True
            )
            .add_extension(x509.SubjectAlternativeName([x509.OtherName(HW_MODULE_NAME, hmn)]), critical=True)
            .sign(key, hashes.SHA256())
        )
        name = "%s-%s.csr.der" % (eui.hex(), "ka" if ka else "ds")
        with open(os.path.join(out, name), "wb") as f:
            f.write(csr.public_bytes(serialization.Encoding.DER))


if __name__ == "__main__":
    main()
