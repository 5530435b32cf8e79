/* Release by construction: the lint gate of device certificates without decoding
 * them. A device issuer's certificates differ from one another only in five slots:
 * the serial's contents, notBefore's contents, the public point, the SKI and the
 * hwSerialNum (keyUsage DS or KA picks one of two templates). The issuer builds one
 * template certificate per key usage with smki_ca_assemble, finds its slots by walking it
 * with the bounded cursor (smki_ca_fast_learn) and lints it in full (smki_lint_der); from
 * then on a certificate is released when its tbsCertificate is the template's octet
 * for octet outside the slots, each slot holds what the full linter accepts there,
 * and the signature is a strict DER ECDSA-Sig-Value (smki_ca_fast_check). Such a
 * certificate lints exactly as the template does, so the verdict is the full
 * linter's; anything else is "not proven", and the caller then runs the full linter,
 * whose verdict decides. tests/unit/test_ca.c holds the two to each other over
 * issued and damaged certificates, and fuzz_fast_lint does so over arbitrary bytes. */
#include <string.h>

#include "ca_private.h"

static const uint8_t OID_SKI[] = {0x55, 0x1d, 0x0e};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_HW_MODULE[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04};

/* ---- Learning the template's slots ------------------------------------------------ */

/* One TLV of the template, read by base's DER reader with DER's length rules (a
 * template cut short is refused as input, as the cursor always refused it). */
static int take_any(smki_cursor_t *c, uint8_t *tag, smki_cursor_t *body)
{
    smki_der_tlv t;
    *tag = 0; /* out-parameters set on every path */
    *body = smki_cursor(NULL, 0);
    if (smki_der_read(c, NULL, SMKI_DER_STRICT, &t) < 0) return smki_failure(smki_error_wrap("template"));
    *tag = t.tag;
    *body = t.body;
    return 0;
}

static int take(smki_cursor_t *c, uint8_t tag, const char *what, smki_cursor_t *body)
{
    uint8_t t;
    GUARD(take_any(c, &t, body));
    ENSURE(t == tag, SMKI_E_INTERNAL, "template: %s has tag 0x%02x, not 0x%02x", what, t, tag);
    return 0;
}

static int is(const smki_cursor_t *c, const uint8_t *want, size_t n)
{
    return c->left == n && memcmp(c->p, want, n) == 0;
}

static void slot_set(ca_fast_ref *ref, ca_slot_kind kind, const uint8_t *at, size_t len)
{
    ref->slots[kind].kind = kind;
    ref->slots[kind].off = (size_t)(at - ref->der);
    ref->slots[kind].len = len;
}

/* subjectAltName's value: GeneralNames { [0] otherName { hardwareModuleName,
 * [0] { HardwareModuleName { hwType, hwSerialNum } } } }. */
static int learn_san(ca_fast_ref *ref, smki_cursor_t v)
{
    smki_cursor_t names, other, oid, expl, hm, type, serial;
    GUARD(take(&v, 0x30, "GeneralNames", &names));
    GUARD(take(&names, 0xa0, "otherName", &other));
    GUARD(take(&other, 0x06, "type-id", &oid));
    ENSURE(is(&oid, OID_HW_MODULE, sizeof OID_HW_MODULE), SMKI_E_INTERNAL, "template: otherName not hardwareModuleName");
    GUARD(take(&other, 0xa0, "otherName value", &expl));
    GUARD(take(&expl, 0x30, "HardwareModuleName", &hm));
    GUARD(take(&hm, 0x06, "hwType", &type));
    GUARD(take(&hm, 0x04, "hwSerialNum", &serial));
    ENSURE(serial.left == 8 && hm.left == 0 && names.left == 0 && v.left == 0, SMKI_E_INTERNAL,
           "template: the subjectAltName is not one hardwareModuleName with an 8-octet serial");
    slot_set(ref, CA_SLOT_HW_SERIAL, serial.p, 8);
    return 0;
}

int smki_ca_fast_learn(ca_fast_ref *ref, const uint8_t *der, size_t len)
{
    memset(ref, 0, sizeof *ref);
    ENSURE(len <= sizeof ref->der, SMKI_E_INTERNAL, "template of %zu octets", len);
    memcpy(ref->der, der, len);
    ref->len = len;
    smki_cursor_t c = smki_cursor(ref->der, len), cert, tbs, x, validity, nb, spki, x3, exts;
    uint8_t tag;
    GUARD(take(&c, 0x30, "Certificate", &cert));
    ENSURE(c.left == 0 && ref->der[1] == 0x82, SMKI_E_INTERNAL, "template: not one Certificate with a 2-octet length");
    GUARD(take(&cert, 0x30, "tbsCertificate", &tbs));
    ref->tbs_end = (size_t)(tbs.p + tbs.left - ref->der);
    GUARD(take(&tbs, 0xa0, "version", &x));
    GUARD(take(&tbs, 0x02, "serialNumber", &x));
    ENSURE(x.left == SMKI_SERIAL_LEN, SMKI_E_INTERNAL, "template: serialNumber of %zu octets", x.left);
    slot_set(ref, CA_SLOT_SERIAL, x.p, SMKI_SERIAL_LEN);
    GUARD(take(&tbs, 0x30, "signature", &x));
    GUARD(take(&tbs, 0x30, "issuer", &x));
    GUARD(take(&tbs, 0x30, "validity", &validity));
    GUARD(take_any(&validity, &tag, &nb));
    ENSURE((tag == 0x17 && nb.left == 13) || (tag == 0x18 && nb.left == 15), SMKI_E_INTERNAL,
           "template: notBefore is neither UTCTime nor GeneralizedTime with seconds");
    slot_set(ref, CA_SLOT_NOT_BEFORE, nb.p, nb.left);
    GUARD(take(&tbs, 0x30, "subject", &x));
    const uint8_t *spki_at = tbs.p;
    GUARD(take(&tbs, 0x30, "subjectPublicKeyInfo", &spki));
    ENSURE(spki.p - spki_at == 2 && spki.left == 89 && memcmp(spki_at, SMKI_CA_SPKI_P256_PREFIX, 26) == 0, SMKI_E_INTERNAL,
           "template: the key is not the named-curve P-256 form");
    slot_set(ref, CA_SLOT_POINT, spki_at + sizeof SMKI_CA_SPKI_P256_PREFIX, SMKI_POINT_LEN);
    GUARD(take(&tbs, 0xa3, "extensions", &x3));
    ENSURE(tbs.left == 0, SMKI_E_INTERNAL, "template: fields after the extensions");
    GUARD(take(&x3, 0x30, "Extensions", &exts));
    while (exts.left) {
        smki_cursor_t ext, oid, val, crit;
        GUARD(take(&exts, 0x30, "Extension", &ext));
        GUARD(take(&ext, 0x06, "extnID", &oid));
        if (ext.left && ext.p[0] == 0x01) GUARD(take(&ext, 0x01, "critical", &crit));
        GUARD(take(&ext, 0x04, "extnValue", &val));
        if (is(&oid, OID_SKI, sizeof OID_SKI)) {
            smki_cursor_t kid;
            GUARD(take(&val, 0x04, "keyIdentifier", &kid));
            ENSURE(kid.left == SMKI_KEYID_LEN && val.left == 0, SMKI_E_INTERNAL, "template: SKI of %zu octets", kid.left);
            slot_set(ref, CA_SLOT_SKI, kid.p, SMKI_KEYID_LEN);
        } else if (is(&oid, OID_SAN, sizeof OID_SAN)) {
            GUARD(learn_san(ref, val));
        }
    }
    for (int k = 0; k < CA_SLOT_COUNT; k++) {
        ENSURE(ref->slots[k].len, SMKI_E_INTERNAL, "template: slot %d not found", k);
        ENSURE(k == 0 || ref->slots[k].off >= ref->slots[k - 1].off + ref->slots[k - 1].len, SMKI_E_INTERNAL,
               "template: slots out of order");
    }
    return 0;
}

/* ---- Checking one certificate ------------------------------------------------------- */

static int digits(const uint8_t *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

/* What the linter accepts as notBefore (RFC 5280 4.1.2.5): UTCTime YYMMDDHHMMSSZ
 * (13 octets) or, from 2050, GeneralizedTime YYYYMMDDHHMMSSZ (15); a real date. */
static int time_ok(const uint8_t *d, size_t n)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t ylen = n == 13 ? 2 : 4;
    if (d[n - 1] != 'Z') return 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (d[i] < '0' || d[i] > '9') return 0;
    int y = digits(d, ylen);
    if (ylen == 2) y += y >= 50 ? 1900 : 2000;
    else if (y < 2050) return 0;
    int mo = digits(d + ylen, 2), day = digits(d + ylen + 2, 2);
    if (mo < 1 || mo > 12 || day < 1) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (day > dm[mo - 1] + (mo == 2 && leap)) return 0;
    return digits(d + ylen + 4, 2) <= 23 && digits(d + ylen + 6, 2) <= 59 && digits(d + ylen + 8, 2) <= 59;
}

/* RFC 5280 4.2.1.2 method 2, computed here rather than taken from the assembler. */
static int ski_ok(const uint8_t *d, const uint8_t point[SMKI_POINT_LEN])
{
    uint8_t want[SMKI_KEYID_LEN];
    return smki_keyid_method2(point, SMKI_POINT_LEN, want) == 0 && memcmp(d, want, SMKI_KEYID_LEN) == 0;
}

/* An INTEGER of an ECDSA-Sig-Value in strict DER: positive, non-zero, minimal, at
 * most 32 octets of magnitude. Returns its TLV's length, 0 if it is not one. */
static size_t sig_int(const uint8_t *p, size_t left)
{
    if (left < 3 || p[0] != 0x02) return 0;
    size_t n = p[1];
    if (n < 1 || n > 33 || n + 2 > left) return 0;
    const uint8_t *v = p + 2;
    if (v[0] & 0x80) return 0;             /* negative */
    if (v[0] == 0) {
        if (n == 1 || !(v[1] & 0x80)) return 0; /* zero, or a 00 that is not needed */
    } else if (n > 32) {
        return 0;
    }
    return n + 2;
}

static int sig_ok(const uint8_t *s, size_t n)
{
    if (n < 8 || s[0] != 0x30 || s[1] != n - 2) return 0;
    size_t r = sig_int(s + 2, n - 2);
    if (!r) return 0;
    size_t t = sig_int(s + 2 + r, n - 2 - r);
    return t && r + t == n - 2;
}

static const char *slot_bad(const ca_slot *sl, const uint8_t *d, const uint8_t point[SMKI_POINT_LEN],
                            const uint8_t hw_serial[8])
{
    switch (sl->kind) {
    case CA_SLOT_SERIAL: return d[0] >= 0x40 && d[0] <= 0x7f ? NULL : "the serial is not 16 octets from 0x40..";
    case CA_SLOT_NOT_BEFORE: return time_ok(d, sl->len) ? NULL : "notBefore is not a valid time";
    case CA_SLOT_POINT:
        return point[0] == 0x04 && memcmp(d, point, SMKI_POINT_LEN) == 0 ? NULL : "the key is not the CSR's";
    case CA_SLOT_SKI: return ski_ok(d, point) ? NULL : "the SKI is not method 2 of the key";
    case CA_SLOT_HW_SERIAL: return memcmp(d, hw_serial, 8) == 0 ? NULL : "the hwSerialNum is not the CSR's";
    default: return "unknown slot";
    }
}

int smki_ca_fast_check(const ca_fast_ref *ref, const uint8_t *der, size_t len, const uint8_t point[SMKI_POINT_LEN],
                  const uint8_t hw_serial[8], const char **why)
{
    const char *bad = NULL;
    if (!ref || !ref->ready) {
        bad = "no linted template";
        goto out;
    }
    /* Certificate ::= SEQUENCE (2-octet length, as the template's) { tbs, alg, sig } */
    if (len < ref->tbs_end + sizeof SMKI_CA_ALG_ECDSA_SHA256 + 3 || len - 4 < 0x100 || len - 4 > 0xffff ||
        der[0] != 0x30 || der[1] != 0x82 || ((size_t)der[2] << 8 | der[3]) != len - 4) {
        bad = "the outer SEQUENCE is not the template's shape";
        goto out;
    }
    size_t at = 4;
    for (int k = 0; k < CA_SLOT_COUNT && !bad; k++) {
        const ca_slot *sl = &ref->slots[k];
        if (memcmp(der + at, ref->der + at, sl->off - at) != 0)
            bad = "an octet outside the slots differs from the linted template";
        else
            bad = slot_bad(sl, der + sl->off, point, hw_serial);
        at = sl->off + sl->len;
    }
    if (bad) goto out;
    if (memcmp(der + at, ref->der + at, ref->tbs_end - at) != 0) {
        bad = "an octet outside the slots differs from the linted template";
        goto out;
    }
    at = ref->tbs_end;
    if (memcmp(der + at, SMKI_CA_ALG_ECDSA_SHA256, sizeof SMKI_CA_ALG_ECDSA_SHA256) != 0) {
        bad = "signatureAlgorithm is not ecdsa-with-SHA256";
        goto out;
    }
    at += sizeof SMKI_CA_ALG_ECDSA_SHA256;
    /* BIT STRING, short length, no unused bits, to the last octet */
    if (der[at] != 0x03 || der[at + 1] >= 0x80 || at + 2 + der[at + 1] != len || der[at + 1] < 1 || der[at + 2] != 0) {
        bad = "the signature BIT STRING is malformed";
        goto out;
    }
    if (!sig_ok(der + at + 3, (size_t)der[at + 1] - 1)) bad = "the signature is not a strict DER ECDSA-Sig-Value";
out:
    if (why) *why = bad;
    return bad == NULL;
}

static _Thread_local int last_fast;

void smki_ca_fast_note(int fast)
{
    last_fast = fast;
}

int smki_ca_last_release_was_fast(void)
{
    return last_fast;
}
