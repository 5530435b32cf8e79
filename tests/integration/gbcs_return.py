"""An independent reading of GBCS responses and alerts (reference §5) with Debian's
python3-cryptography, not smki's C code: parse the General Signing APDU (DF) and its
General Ciphering wrapper (DD), verify the signature with the originator's DS
certificate and the MAC with a recipient's KA private key and the originator's KA
certificate, and build variants for the refusal tests.

  gbcs_return.py verify KEYSTORE_OR_TRUST KEYFILE... -- MESSAGE...
      every message must verify (signature and/or MAC); prints one line each
  gbcs_return.py set-title IN OUT originator|recipient EUI64
      rewrite a title (the signature and MAC are left as they were)
  gbcs_return.py remac IN OUT KA_KEY KA_CERT
      recompute the MAC of a wrapped message with ECDH(KA_KEY, KA_CERT)
"""
import hashlib
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class Reader:
    """Reads forward through bytes; running past the end is an error."""

    def __init__(self, data, at=0):
        self.data, self.at = data, at

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
            return first
        octets = first & 0x7F
        if not 1 <= octets <= 4:
            raise ValueError("unsupported BER length form %02X" % first)
        return int.from_bytes(self.take(octets), "big")


def parse(msg):
    """DD wrapper (optional) around a DF APDU. Offsets index msg."""
    r = Reader(msg)
    m = dict(wrapped=msg[0] == 0xDD)
    if m["wrapped"]:
        r.expect(0xDD, "general-ciphering tag")
        for _ in range(6):
            r.expect(0x00, "empty general-ciphering field")
        if r.ber_len() != len(msg) - r.at:
            raise ValueError("general-ciphering length does not match the message")
        r.expect(0x11, "security control")
        m["invocation"] = r.take(4)
    m["start"] = r.at
    r.expect(0xDF, "general-signing tag")
    r.expect(0x09, "transaction-id length")
    m["cra"] = r.u8()
    m["counter"] = r.take(8)
    r.expect(0x08, "originator title length")
    m["originator_at"] = r.at
    m["originator"] = r.take(8)
    r.expect(0x08, "recipient title length")
    m["recipient_at"] = r.at
    m["recipient"] = r.take(8)
    date = r.u8()
    if date == 0x0C:
        r.take(12)
    elif date != 0x00:
        raise ValueError("date-time tag %02X" % date)
    r.take(r.ber_len())  # other-information
    r.take(r.ber_len())  # content
    m["signed"] = msg[m["start"] + 1:r.at]
    sig = r.u8()
    m["signature"] = r.take(64) if sig == 0x40 else None
    if sig not in (0x40, 0x00):
        raise ValueError("signature tag %02X" % sig)
    m["apdu"] = msg[m["start"]:r.at]
    if m["wrapped"]:
        m["mac_at"] = r.at
        m["mac"] = r.take(12)
    if r.at != len(msg):
        raise ValueError("%d octets after the message" % (len(msg) - r.at))
    return m


def load_cert(trust, eui, usage):
    path = os.path.join(trust, eui.hex() + "-" + usage + ".pem")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        data = f.read()
    return x509.load_pem_x509_certificate(data) if b"BEGIN" in data else x509.load_der_x509_certificate(data)


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def mac_of(m, key, peer_public):
    z = key.exchange(ec.ECDH(), peer_public)
    other = (bytes.fromhex("60857406080300") + m["originator"] + b"\x09" + bytes([m["cra"]]) + m["counter"] +
             m["recipient"])
    k = hashlib.sha256(b"\x00\x00\x00\x01" + z + other).digest()[:16]
    enc = Cipher(algorithms.AES(k), modes.GCM(m["originator"] + m["invocation"])).encryptor()
    enc.authenticate_additional_data(b"\x11\x00\x00\x00\x00\x00" + m["apdu"])
    enc.finalize()
    return enc.tag[:12]


def read_msg(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        return bytes.fromhex("".join(data.decode("ascii").split()))
    except (UnicodeDecodeError, ValueError):
        return data


def write_hex(path, msg):
    with open(path, "w") as f:
        f.write(msg.hex().upper())


def verify(trust, keyfiles, files):
    keys = []  # (public point of the key's certificate owner = recipient EUI, private key)
    for kf in keyfiles:
        key = load_key(kf)
        eui = bytes.fromhex(os.path.basename(kf)[:16])
        keys.append((eui, key))
    failed = 0
    for f in files:
        m = parse(read_msg(f))
        done = []
        try:
            if m["signature"] is not None:
                cert = load_cert(trust, m["originator"], "ds")
                sig = m["signature"]
                der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
                cert.public_key().verify(der, m["signed"], ec.ECDSA(hashes.SHA256()))
                done.append("signature")
            if m["wrapped"]:
                peer = load_cert(trust, m["originator"], "ka").public_key()
                mine = [k for eui, k in keys if eui == m["recipient"]]
                if not any(mac_of(m, k, peer) == m["mac"] for k in mine):
                    raise ValueError("MAC does not verify (%d key(s) of %s)" % (len(mine), m["recipient"].hex()))
                done.append("MAC")
            if not done:
                raise ValueError("neither signature nor MAC")
            print("ok   %s: cra %02x %s (%s -> %s)" % (f, m["cra"], " and ".join(done), m["originator"].hex(),
                                                     m["recipient"].hex()))
        except Exception as e:  # noqa: BLE001 - any failure is a failed message
            print("FAIL %s: %r" % (f, e))
            failed += 1
    print("%d verified, %d failed" % (len(files) - failed, failed))
    return 1 if failed or not files else 0


def main(argv):
    cmd = argv[1]
    if cmd == "verify":
        sep = argv.index("--")
        return verify(argv[2], argv[3:sep], argv[sep + 1:])
    if cmd == "set-title":
        msg = bytearray(read_msg(argv[2]))
        m = parse(bytes(msg))
        at = m[argv[4] + "_at"]
        msg[at:at + 8] = bytes.fromhex(argv[5])
        write_hex(argv[3], bytes(msg))
        return 0
    if cmd == "remac":
        msg = bytearray(read_msg(argv[2]))
        m = parse(bytes(msg))
        with open(argv[5], "rb") as f:
            peer = x509.load_pem_x509_certificate(f.read()).public_key()
        msg[m["mac_at"]:m["mac_at"] + 12] = mac_of(m, load_key(argv[4]), peer)
        write_hex(argv[3], bytes(msg))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
