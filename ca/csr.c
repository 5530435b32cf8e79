/* CSR intake: PKCS#10 (RFC 2986) requests read strictly through the bounded cursor,
 * their proof of possession verified, and the checks that tie a CSR to a request.
 * Device CSRs arrive in manufacturing batches, so the path is kept to what one
 * ECDSA verification costs: no re-encoding, and the key is built from the point
 * instead of through OpenSSL's generic decoder. */
/* The proof of possession goes through EC_KEY and ECDSA_do_verify, which OpenSSL 3
 * marks deprecated: its provider path costs a key copy and a context per CSR, about
 * a tenth of the verification itself (see load_key). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_private.h"

enum {
    TAG_BOOLEAN = 0x01,
    TAG_INTEGER = 0x02,
    TAG_BIT_STRING = 0x03,
    TAG_OCTET_STRING = 0x04,
    TAG_OID = 0x06,
    TAG_SEQUENCE = 0x30,
    TAG_SET = 0x31,
    TAG_ATTRIBUTES = 0xa0, /* [0] IMPLICIT SET OF Attribute */
};

/* Encodings compared as octets (tag and length included). */
static const uint8_t OID_EXTENSION_REQUEST[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};
static const uint8_t OID_KEY_USAGE[] = {0x06, 0x03, 0x55, 0x1d, 0x0f};
static const uint8_t OID_SUBJECT_ALT_NAME[] = {0x06, 0x03, 0x55, 0x1d, 0x11};
/* id-on-hardwareModuleName 1.3.6.1.5.5.7.8.4 (RFC 4108), content octets only. */
static const uint8_t OID_HW_MODULE_NAME_CONTENT[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04};
/* AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758 3.2). */
static const uint8_t ALG_ECDSA_SHA256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
/* SubjectPublicKeyInfo of a P-256 key: id-ecPublicKey, namedCurve prime256v1, a
 * 66-octet BIT STRING holding 04 || X || Y. The only form a certificate may carry
 * (reference §4), and the CA copies it verbatim. */
static const uint8_t P256_SPKI_HEAD[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                         0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
#define P256_SPKI_LEN (sizeof P256_SPKI_HEAD + SMKI_POINT_LEN)

/* ---- DER through the cursor ------------------------------------------------------- */

/* One TLV with the expected tag, read by base's DER reader with DER's length rules
 * (X.690 10.1: definite, shortest form). val covers the content; whole (if not NULL)
 * the tag, length and content. */
static int der_take(smki_cursor_t *c, uint8_t tag, const char *what, smki_cursor_t *val, const uint8_t **whole,
                    size_t *whole_len)
{
    smki_der_tlv t;
    if (smki_der_expect(c, NULL, SMKI_DER_STRICT, tag, what, &t) < 0) return smki_failure(smki_error_wrap("CSR"));
    *val = t.body;
    if (whole) {
        *whole = t.start;
        *whole_len = t.total;
    }
    return 0;
}

/* An OBJECT IDENTIFIER: subidentifiers in their shortest form, the last one complete
 * (X.690 8.19.2). */
static int der_take_oid(smki_cursor_t *c, const char *what, const uint8_t **whole, size_t *whole_len)
{
    smki_der_tlv t;
    if (smki_der_expect(c, NULL, SMKI_DER_STRICT, TAG_OID, what, &t) < 0 || smki_der_check_oid(&t, what) < 0)
        return smki_failure(smki_error_wrap("CSR malformed"));
    *whole = t.start;
    *whole_len = t.total;
    return 0;
}

static int der_end(const smki_cursor_t *c, const char *what)
{
    ENSURE(c->left == 0, SMKI_E_INPUT, "CSR malformed: %zu unexpected octet(s) at the end of %s", c->left, what);
    return 0;
}

static int bytes_are(const uint8_t *p, size_t len, const uint8_t *want, size_t want_len)
{
    return len == want_len && memcmp(p, want, len) == 0;
}

/* An OID as text for messages: "basicConstraints (2.5.29.19)", or dotted alone when
 * OpenSSL has no name for it. Only used on refusal paths. */
static void oid_name(const ASN1_OBJECT *obj, char *out, size_t cap)
{
    char dotted[80];
    if (!obj || OBJ_obj2txt(dotted, sizeof dotted, obj, 1) <= 0) {
        snprintf(out, cap, "(malformed OID)");
        return;
    }
    int nid = OBJ_obj2nid(obj);
    if (nid != NID_undef)
        snprintf(out, cap, "%s (%s)", OBJ_nid2sn(nid), dotted);
    else
        snprintf(out, cap, "%s", dotted);
}

/* The same from an OID's encoding, tag included. */
static void oid_text(const uint8_t *der, size_t len, char *out, size_t cap)
{
    const unsigned char *p = der;
    ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    oid_name(obj, out, cap);
    ASN1_OBJECT_free(obj);
    ERR_clear_error();
}

/* Text from outside, made safe to quote in a message. */
static void quote_safe(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++) out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
}

/* ---- PEM -------------------------------------------------------------------------- */

static int has_pem_begin(const uint8_t *data, size_t len)
{
    static const char marker[] = "-----BEGIN ";
    const size_t m = sizeof marker - 1;
    for (size_t i = 0; i + m <= len; i++)
        if (memcmp(data + i, marker, m) == 0) return 1;
    return 0;
}

/* One PEM block of a request type; explanatory text before it is allowed (RFC 7468
 * 5.2), anything but white space after it is not. *der is OPENSSL_malloc'd. */
static int pem_decode(const uint8_t *data, size_t len, unsigned char **der, size_t *der_len)
{
    ENSURE(has_pem_begin(data, len), SMKI_E_INPUT,
           "CSR is neither DER (it does not begin with a SEQUENCE) nor PEM (no BEGIN line)");
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    ENSURE_SSL(bio != NULL, SMKI_E_NOMEM, "out of memory");
    char *name = NULL, *header = NULL, *rest = NULL;
    unsigned char *body = NULL;
    long body_len = 0;
    int rc = 0;
    ENSURE_SSL_GOTO(PEM_read_bio(bio, &name, &header, &body, &body_len) == 1, SMKI_E_INPUT, out,
                    "CSR PEM does not decode (bad base64, or no END line)");
    char shown[48];
    quote_safe(name, shown, sizeof shown);
    ENSURE_GOTO(strcmp(name, "CERTIFICATE REQUEST") == 0 || strcmp(name, "NEW CERTIFICATE REQUEST") == 0, SMKI_E_INPUT,
                out, "PEM block \"%s\" is not a CERTIFICATE REQUEST", shown);
    ENSURE_GOTO(header[0] == '\0', SMKI_E_INPUT, out, "PEM headers refused: a CSR is neither encrypted nor annotated");
    ENSURE_GOTO(body_len > 0, SMKI_E_INPUT, out, "empty PEM CERTIFICATE REQUEST");
    long rest_len = BIO_get_mem_data(bio, &rest);
    size_t trailing = 0;
    for (long i = 0; i < rest_len; i++)
        if (!(rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\r' || rest[i] == '\n')) trailing++;
    ENSURE_GOTO(trailing == 0, SMKI_E_INPUT, out, "%zu octet(s) of trailing data after the PEM block", trailing);
    *der = body;
    *der_len = (size_t)body_len;
    body = NULL;
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(body);
    BIO_free(bio);
    return rc;
}

/* ---- The key ---------------------------------------------------------------------- */

/* P-256 made once: a CSR's key is this group plus its point. OpenSSL 3's generic
 * SubjectPublicKeyInfo decoder costs more than the ECDSA verification itself, and
 * its provider keys still cost a copy of the group's parameters and a verification
 * context per key (about 60 000 instructions, 7% of a verification). An EC_KEY on
 * the shared group with the point set costs a third of that and checks the same
 * things: the encoding, coordinates below p, the point on the curve. P-256 has
 * cofactor 1, so a point on the curve is in the prime-order group: partial
 * validation is full validation (NIST SP 800-56A 5.6.2.3.4). */
static CRYPTO_ONCE p256_once = CRYPTO_ONCE_STATIC_INIT;
static EC_GROUP *p256; /* never freed: shared by all threads for the process */
static EVP_MD *sha256;

static void p256_init(void)
{
    p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Anything but the canonical form goes through hsm's loader, whose refusal names
 * what is wrong (not EC, another curve, compressed, off the curve, malformed). */
static int refuse_key(const smki_csr *c)
{
    ERR_clear_error();
    EVP_PKEY *pk = NULL;
    if (smki_pub_load(c->spki, c->spki_len, &pk) < 0) return smki_failure(smki_error_wrap("CSR"));
    EVP_PKEY_free(pk);
    return SMKI_FAIL(SMKI_E_REFUSED, "CSR public key refused: its SubjectPublicKeyInfo is not the named-curve P-256 "
                                     "form with an uncompressed point (explicit curve parameters?), and a certificate "
                                     "would carry these octets as they are");
}

static int load_key(smki_csr *c)
{
    if (c->spki_len != P256_SPKI_LEN || memcmp(c->spki, P256_SPKI_HEAD, sizeof P256_SPKI_HEAD) != 0)
        return refuse_key(c);
    smki_cursor_t cur = smki_cursor(c->spki, c->spki_len);
    const uint8_t *point;
    GUARD(smki_cur_skip(&cur, sizeof P256_SPKI_HEAD));
    GUARD(smki_cur_take(&cur, SMKI_POINT_LEN, &point));
    if (point[0] != 0x04) return refuse_key(c);
    ENSURE(CRYPTO_THREAD_run_once(&p256_once, p256_init) == 1 && p256 != NULL && sha256 != NULL, SMKI_E_CRYPTO,
           "cannot set up P-256");
    EC_KEY *ec = EC_KEY_new();
    ENSURE_SSL(ec != NULL && EC_KEY_set_group(ec, p256) == 1, SMKI_E_NOMEM, "out of memory");
    if (EC_KEY_oct2key(ec, point, SMKI_POINT_LEN, NULL) != 1) { /* not on the curve, or a coordinate >= p */
        EC_KEY_free(ec);
        return refuse_key(c);
    }
    c->ec = ec;
    c->key = EVP_PKEY_new();
    ENSURE_SSL(c->key != NULL && EC_KEY_up_ref(ec) == 1, SMKI_E_NOMEM, "out of memory");
    if (EVP_PKEY_assign_EC_KEY(c->key, ec) != 1) {
        EC_KEY_free(ec);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    memcpy(c->point, point, SMKI_POINT_LEN);
    return 0;
}

/* ---- Extensions --------------------------------------------------------------------- */

static const char *const KEY_USAGE_BITS[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};
#define BIT_DIGITAL_SIGNATURE 0
#define BIT_KEY_AGREEMENT 4

/* keyUsage: exactly one of digitalSignature or keyAgreement (GBCS 12, reference §4). */
static int parse_key_usage(smki_csr *c, smki_cursor_t *value)
{
    smki_cursor_t bits;
    uint8_t unused;
    GUARD(der_take(value, TAG_BIT_STRING, "keyUsage BIT STRING", &bits, NULL, NULL));
    GUARD(der_end(value, "keyUsage"));
    ENSURE(bits.left > 0, SMKI_E_INPUT, "CSR keyUsage: empty BIT STRING");
    GUARD(smki_cur_u8(&bits, &unused));
    ENSURE(unused <= 7 && (bits.left > 0 || unused == 0), SMKI_E_INPUT,
           "CSR keyUsage: BIT STRING with %u unused bits is malformed", unused);
    int ds = 0, ka = 0;
    char others[256] = "";
    size_t used = 0;
    for (size_t octet_at = 0; bits.left > 0; octet_at++) {
        uint8_t octet;
        GUARD(smki_cur_u8(&bits, &octet));
        ENSURE(bits.left > 0 || (octet & ((1u << unused) - 1)) == 0, SMKI_E_INPUT,
               "CSR keyUsage: bits set among the BIT STRING's unused bits");
        for (unsigned j = 0; j < 8; j++) {
            if (!((octet >> (7 - j)) & 1)) continue;
            size_t bit = octet_at * 8 + j;
            if (bit == BIT_DIGITAL_SIGNATURE) {
                ds = 1;
            } else if (bit == BIT_KEY_AGREEMENT) {
                ka = 1;
            } else if (used + 40 < sizeof others) {
                int n = bit < sizeof KEY_USAGE_BITS / sizeof KEY_USAGE_BITS[0]
                            ? snprintf(others + used, sizeof others - used, "%s%s", used ? ", " : "",
                                       KEY_USAGE_BITS[bit])
                            : snprintf(others + used, sizeof others - used, "%sbit %zu", used ? ", " : "", bit);
                if (n > 0) used += (size_t)n;
            }
        }
    }
    ENSURE(used == 0, SMKI_E_REFUSED,
           "CSR keyUsage requests %s: only exactly one of digitalSignature (DS) or keyAgreement (KA) is allowed",
           others);
    ENSURE(!(ds && ka), SMKI_E_REFUSED,
           "CSR keyUsage requests both DS and KA (digitalSignature and keyAgreement): a key serves exactly one");
    ENSURE(ds || ka, SMKI_E_REFUSED, "CSR keyUsage requests neither digitalSignature (DS) nor keyAgreement (KA)");
    c->usage = ds ? SMKI_USAGE_DS : SMKI_USAGE_KA;
    return 0;
}

static const char *general_name_kind(int type)
{
    switch (type) {
    case GEN_OTHERNAME: return "otherName";
    case GEN_EMAIL: return "rfc822Name";
    case GEN_DNS: return "dNSName";
    case GEN_X400: return "x400Address";
    case GEN_DIRNAME: return "directoryName";
    case GEN_EDIPARTY: return "ediPartyName";
    case GEN_URI: return "uniformResourceIdentifier";
    case GEN_IPADD: return "iPAddress";
    case GEN_RID: return "registeredID";
    default: return "unknown name";
    }
}

/* HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }
 * (RFC 4108 5); in GBCS the serial is the 8-octet Device ID. */
static int parse_hw_module_name(smki_csr *c, const uint8_t *seq, size_t seq_len)
{
    smki_cursor_t all = smki_cursor(seq, seq_len);
    smki_cursor_t body, serial;
    const uint8_t *type_der;
    size_t type_len;
    GUARD(der_take(&all, TAG_SEQUENCE, "HardwareModuleName", &body, NULL, NULL));
    GUARD(der_end(&all, "hardwareModuleName"));
    GUARD(der_take_oid(&body, "hwType", &type_der, &type_len));
    GUARD(der_take(&body, TAG_OCTET_STRING, "hwSerialNum", &serial, NULL, NULL));
    GUARD(der_end(&body, "HardwareModuleName"));
    ENSURE(serial.left == 8, SMKI_E_REFUSED,
           "CSR hardwareModuleName: hwSerialNum of %zu octets refused: a Device ID is an EUI-64 of exactly 8 octets",
           serial.left);
    GUARD(smki_cur_copy(&serial, c->hw_serial.b, 8));

    /* der_take_oid checked the encoding: tag, length (short, 81 or 82) and subidentifiers */
    size_t head = type_der[1] < 0x80 ? 2 : 2 + (size_t)(type_der[1] & 0x7f);
    int n = smki_ca_oid_text(type_der + head, type_len - head, c->hw_type, sizeof c->hw_type);
    if (n == -2) { /* an arc past 64 bits: OpenSSL's arithmetic */
        const unsigned char *p = type_der;
        ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)type_len);
        ENSURE_SSL(obj != NULL, SMKI_E_INPUT, "CSR hardwareModuleName: hwType is not an OBJECT IDENTIFIER");
        n = OBJ_obj2txt(c->hw_type, sizeof c->hw_type, obj, 1);
        ASN1_OBJECT_free(obj);
    }
    ENSURE(n > 0 && (size_t)n < sizeof c->hw_type, SMKI_E_REFUSED,
           "CSR hardwareModuleName: hwType OID is malformed or longer than %d characters", SMKI_CSR_OID_TEXT_MAX - 1);
    c->has_hw_module_name = 1;
    return 0;
}

/* The one form a device CSR sends, read in place with the strict DER reader:
 * GeneralNames of exactly one [0] otherName of type hardwareModuleName whose [0]
 * EXPLICIT value is one SEQUENCE. Anything else, allowed or not, takes OpenSSL's
 * GeneralNames decoder below, whose result names what is wrong; the two reach the
 * same parse_hw_module_name. 1: the form, *hw set to the SEQUENCE; 0: not this form. */
static int san_is_one_hw_module_name(const uint8_t *der, size_t len, const uint8_t **hw, size_t *hw_len)
{
    smki_cursor_t all = smki_cursor(der, len), names, other, oid, value, seq;
    int ok = der_take(&all, TAG_SEQUENCE, "GeneralNames", &names, NULL, NULL) == 0 && all.left == 0 &&
             der_take(&names, 0xa0, "otherName", &other, NULL, NULL) == 0 && names.left == 0 &&
             der_take(&other, TAG_OID, "type-id", &oid, NULL, NULL) == 0 &&
             bytes_are(oid.p, oid.left, OID_HW_MODULE_NAME_CONTENT, sizeof OID_HW_MODULE_NAME_CONTENT) &&
             der_take(&other, 0xa0, "value", &value, NULL, NULL) == 0 && other.left == 0 &&
             der_take(&value, TAG_SEQUENCE, "HardwareModuleName", &seq, hw, hw_len) == 0 && value.left == 0;
    if (!ok) smki_error_clear();
    return ok;
}

/* subjectAltName: nothing but one otherName hardwareModuleName. */
static int parse_san(smki_csr *c, smki_cursor_t *value)
{
    size_t len = value->left;
    const uint8_t *der, *hw;
    size_t hw_len;
    GUARD(smki_cur_take(value, len, &der));
    if (san_is_one_hw_module_name(der, len, &hw, &hw_len)) return parse_hw_module_name(c, hw, hw_len);
    const unsigned char *p = der;
    GENERAL_NAMES *names = d2i_GENERAL_NAMES(NULL, &p, (long)len);
    ENSURE_SSL(names != NULL, SMKI_E_INPUT, "CSR subjectAltName does not decode as GeneralNames");
    int rc = 0;
    ENSURE_GOTO((size_t)(p - der) == len, SMKI_E_INPUT, out, "CSR subjectAltName: trailing octets after GeneralNames");
    int count = sk_GENERAL_NAME_num(names);
    ENSURE_GOTO(count == 1, SMKI_E_REFUSED, out,
                "CSR subjectAltName holds %d names: only one otherName hardwareModuleName is allowed", count);
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, 0);
    ENSURE_GOTO(name->type == GEN_OTHERNAME, SMKI_E_REFUSED, out,
                "CSR subjectAltName %s refused: only otherName hardwareModuleName (1.3.6.1.5.5.7.8.4) is allowed",
                general_name_kind(name->type));
    const OTHERNAME *other = name->d.otherName;
    if (!bytes_are(OBJ_get0_data(other->type_id), OBJ_length(other->type_id), OID_HW_MODULE_NAME_CONTENT,
                   sizeof OID_HW_MODULE_NAME_CONTENT)) {
        char oid[128];
        oid_name(other->type_id, oid, sizeof oid);
        rc = SMKI_FAIL(SMKI_E_REFUSED,
                       "CSR subjectAltName otherName %s refused: only hardwareModuleName (1.3.6.1.5.5.7.8.4)", oid);
        goto out;
    }
    ENSURE_GOTO(other->value != NULL && other->value->type == V_ASN1_SEQUENCE, SMKI_E_INPUT, out,
                "CSR hardwareModuleName is not a SEQUENCE");
    rc = parse_hw_module_name(c, ASN1_STRING_get0_data(other->value->value.sequence),
                              (size_t)ASN1_STRING_length(other->value->value.sequence));
out:
    GENERAL_NAMES_free(names);
    return rc;
}

/* Extensions ::= SEQUENCE OF Extension (RFC 5280 4.1). keyUsage and subjectAltName are
 * read; any other is ignored unless critical, which is refused: the CA cannot honour
 * what it does not understand, and will not pretend to. */
static int parse_extensions(smki_csr *c, smki_cursor_t *exts, int *has_key_usage)
{
    int has_san = 0;
    while (exts->left > 0) {
        smki_cursor_t ext, value;
        const uint8_t *oid;
        size_t oid_len;
        int critical = 0;
        GUARD(der_take(exts, TAG_SEQUENCE, "Extension", &ext, NULL, NULL));
        GUARD(der_take_oid(&ext, "extnID", &oid, &oid_len));
        if (smki_der_peek(&ext) == TAG_BOOLEAN) {
            smki_cursor_t flag;
            uint8_t v = 0;
            GUARD(der_take(&ext, TAG_BOOLEAN, "critical", &flag, NULL, NULL));
            ENSURE(flag.left == 1, SMKI_E_INPUT, "CSR malformed: extension's critical flag is not one octet");
            GUARD(smki_cur_u8(&flag, &v));
            ENSURE(v == 0x00 || v == 0xff, SMKI_E_INPUT, "CSR malformed: critical flag 0x%02x is not a DER BOOLEAN",
                   v);
            critical = v == 0xff;
        }
        GUARD(der_take(&ext, TAG_OCTET_STRING, "extnValue", &value, NULL, NULL));
        GUARD(der_end(&ext, "Extension"));
        if (bytes_are(oid, oid_len, OID_KEY_USAGE, sizeof OID_KEY_USAGE)) {
            ENSURE(!*has_key_usage, SMKI_E_INPUT, "CSR requests keyUsage twice");
            *has_key_usage = 1;
            GUARD(parse_key_usage(c, &value));
        } else if (bytes_are(oid, oid_len, OID_SUBJECT_ALT_NAME, sizeof OID_SUBJECT_ALT_NAME)) {
            ENSURE(!has_san, SMKI_E_INPUT, "CSR requests subjectAltName twice");
            has_san = 1;
            GUARD(parse_san(c, &value));
        } else if (critical) {
            char text[128];
            oid_text(oid, oid_len, text, sizeof text);
            return SMKI_FAIL(SMKI_E_REFUSED, "CSR requests critical extension %s, which the CA does not understand",
                             text);
        }
    }
    return 0;
}

/* Attributes: extensionRequest (PKCS#9, RFC 2985 5.4.2) at most once, with one value.
 * Other attributes (challengePassword, ...) mean nothing to the CA and are skipped. */
static int parse_attributes(smki_csr *c, smki_cursor_t *attrs)
{
    int has_ext_request = 0, has_key_usage = 0;
    while (attrs->left > 0) {
        smki_cursor_t attr, values, exts;
        const uint8_t *oid;
        size_t oid_len;
        GUARD(der_take(attrs, TAG_SEQUENCE, "Attribute", &attr, NULL, NULL));
        GUARD(der_take_oid(&attr, "attribute type", &oid, &oid_len));
        GUARD(der_take(&attr, TAG_SET, "attribute values", &values, NULL, NULL));
        GUARD(der_end(&attr, "Attribute"));
        if (!bytes_are(oid, oid_len, OID_EXTENSION_REQUEST, sizeof OID_EXTENSION_REQUEST)) continue;
        ENSURE(!has_ext_request, SMKI_E_INPUT, "CSR holds two extensionRequest attributes");
        has_ext_request = 1;
        GUARD(der_take(&values, TAG_SEQUENCE, "extensionRequest Extensions", &exts, NULL, NULL));
        ENSURE(values.left == 0, SMKI_E_INPUT, "CSR extensionRequest holds more than one value");
        GUARD(parse_extensions(c, &exts, &has_key_usage));
    }
    ENSURE(has_key_usage, SMKI_E_REFUSED,
           "CSR requests no keyUsage: it must request exactly one of digitalSignature (DS) or keyAgreement (KA)");
    return 0;
}

/* ---- The request -------------------------------------------------------------------- */

static int check_signature_algorithm(const uint8_t *alg, size_t len)
{
    if (bytes_are(alg, len, ALG_ECDSA_SHA256, sizeof ALG_ECDSA_SHA256)) return 0;
    const unsigned char *p = alg;
    X509_ALGOR *a = d2i_X509_ALGOR(NULL, &p, (long)len);
    if (!a) {
        ERR_clear_error();
        return SMKI_FAIL(SMKI_E_INPUT, "CSR signatureAlgorithm is not an AlgorithmIdentifier");
    }
    char name[128];
    const ASN1_OBJECT *obj;
    X509_ALGOR_get0(&obj, NULL, NULL, a);
    oid_name(obj, name, sizeof name);
    int same_oid = OBJ_obj2nid(obj) == NID_ecdsa_with_SHA256;
    X509_ALGOR_free(a);
    ENSURE(!same_oid, SMKI_E_REFUSED, "CSR signature algorithm ecdsa-with-SHA256 refused: parameters must be absent "
                                      "(RFC 5758 3.2)");
    return SMKI_FAIL(SMKI_E_REFUSED, "CSR signature algorithm %s refused: only ecdsa-with-SHA256", name);
}

static int read_subject(smki_csr *c)
{
    const unsigned char *p = c->subject_der;
    c->subject = d2i_X509_NAME(NULL, &p, (long)c->subject_len);
    ENSURE_SSL(c->subject != NULL, SMKI_E_INPUT, "CSR subject is not a Name");
    ENSURE((size_t)(p - c->subject_der) == c->subject_len, SMKI_E_INPUT, "CSR subject: trailing octets in the Name");
    c->is_subject_empty = c->subject_len == 2; /* 30 00 */
    ENSURE(c->is_subject_empty || X509_NAME_entry_count(c->subject) > 0, SMKI_E_INPUT,
           "CSR subject holds empty relative distinguished names");
    return 0;
}

/* An INTEGER of an ECDSA-Sig-Value: its contents in the shortest form (X.690
 * 8.3.2), not negative, at most 32 octets of magnitude (P-256). *be, *len: the
 * magnitude, big-endian. */
static int sig_integer(smki_cursor_t *c, const char *what, const uint8_t **be, size_t *len)
{
    smki_cursor_t v;
    GUARD(der_take(c, TAG_INTEGER, what, &v, NULL, NULL));
    ENSURE(v.left > 0, SMKI_E_INPUT, "CSR signature: %s is an empty INTEGER", what);
    ENSURE(!(v.p[0] & 0x80), SMKI_E_INPUT, "CSR signature: %s is negative", what);
    if (v.p[0] == 0 && v.left > 1) {
        ENSURE(v.p[1] & 0x80, SMKI_E_INPUT, "CSR signature: %s is not in its shortest form (BER, not DER)", what);
        GUARD(smki_cur_skip(&v, 1));
    }
    ENSURE(v.left <= 32, SMKI_E_INPUT, "CSR signature: %s of %zu octets is too large for P-256", what, v.left);
    *len = v.left;
    return smki_cur_take(&v, v.left, be);
}

/* The signature over certificationRequestInfo, as encoded, with the CSR's own key. */
static int verify_possession(const smki_csr *c, const uint8_t *tbs, size_t tbs_len, smki_cursor_t *sig, int verified)
{
    uint8_t unused, digest[32];
    ENSURE(sig->left > 0, SMKI_E_INPUT, "CSR signature: empty BIT STRING");
    GUARD(smki_cur_u8(sig, &unused));
    ENSURE(unused == 0, SMKI_E_INPUT, "CSR signature: BIT STRING with %u unused bits", unused);
    size_t sig_len = sig->left;
    const uint8_t *sig_der;
    GUARD(smki_cur_take(sig, sig_len, &sig_der));
    /* ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }, strict DER */
    smki_cursor_t all = smki_cursor(sig_der, sig_len), seq;
    const uint8_t *r_be, *s_be;
    size_t r_len, s_len;
    GUARD(der_take(&all, TAG_SEQUENCE, "ECDSA-Sig-Value", &seq, NULL, NULL));
    GUARD(der_end(&all, "the signature BIT STRING"));
    GUARD(sig_integer(&seq, "r", &r_be, &r_len));
    GUARD(sig_integer(&seq, "s", &s_be, &s_len));
    GUARD(der_end(&seq, "ECDSA-Sig-Value"));
    if (verified) return 0; /* these exact octets verified before (smki_csr_parse_ex): the form is checked, not the maths */
    ENSURE_SSL(EVP_Digest(tbs, tbs_len, digest, NULL, sha256, NULL) == 1, SMKI_E_CRYPTO, "SHA-256 failed");
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(r_be, (int)r_len, NULL), *s = BN_bin2bn(s_be, (int)s_len, NULL);
    int ok = es && r && s && ECDSA_SIG_set0(es, r, s) == 1;
    if (!ok) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    /* 1 verifies; 0 does not; -1 also for r or s out of [1, n-1] */
    int v = ECDSA_do_verify(digest, sizeof digest, es, c->ec);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    ENSURE(v == 1, SMKI_E_VERIFY,
           "CSR proof of possession failed: its signature does not verify with its own public key");
    return 0;
}

/* CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm,
 * signature BIT STRING }; certificationRequestInfo ::= SEQUENCE { version INTEGER,
 * subject Name, subjectPKInfo, attributes [0] } (RFC 2986 4). Cheap checks first, the
 * signature last. */
static int parse_der(smki_csr *c, int verified)
{
    smki_cursor_t all = smki_cursor(c->der, c->der_len), req, info, alg, sig, version, subject, spki, attrs;
    const uint8_t *tbs, *alg_der;
    size_t tbs_len, alg_len;
    uint8_t v;
    GUARD(der_take(&all, TAG_SEQUENCE, "CertificationRequest", &req, NULL, NULL));
    ENSURE(all.left == 0, SMKI_E_INPUT, "%zu octet(s) of trailing data after the CSR", all.left);
    GUARD(der_take(&req, TAG_SEQUENCE, "certificationRequestInfo", &info, &tbs, &tbs_len));
    GUARD(der_take(&req, TAG_SEQUENCE, "signatureAlgorithm", &alg, &alg_der, &alg_len));
    GUARD(der_take(&req, TAG_BIT_STRING, "signature", &sig, NULL, NULL));
    GUARD(der_end(&req, "CertificationRequest"));

    GUARD(der_take(&info, TAG_INTEGER, "version", &version, NULL, NULL));
    ENSURE(version.left == 1 && smki_cur_u8(&version, &v) == 0 && v == 0, SMKI_E_INPUT,
           "CSR version refused: PKCS#10 knows only version 0 (RFC 2986 4.1)");
    GUARD(der_take(&info, TAG_SEQUENCE, "subject", &subject, &c->subject_der, &c->subject_len));
    GUARD(der_take(&info, TAG_SEQUENCE, "subjectPKInfo", &spki, &c->spki, &c->spki_len));
    GUARD(der_take(&info, TAG_ATTRIBUTES, "attributes", &attrs, NULL, NULL));
    GUARD(der_end(&info, "certificationRequestInfo"));

    GUARD(load_key(c)); /* before the algorithm: "not an EC key" says more than "RSA signature" */
    GUARD(check_signature_algorithm(alg_der, alg_len));
    GUARD(read_subject(c));
    GUARD(parse_attributes(c, &attrs));
    return verify_possession(c, tbs, tbs_len, &sig, verified);
}

int smki_csr_parse(const uint8_t *data, size_t len, smki_csr **out)
{
    return smki_csr_parse_ex(data, len, NULL, out);
}

int smki_csr_parse_ex(const uint8_t *data, size_t len, const smki_csr_parse_opts *o, smki_csr **out)
{
    ENSURE(out != NULL, SMKI_E_INTERNAL, "smki_csr_parse: no output");
    *out = NULL;
    ENSURE(data != NULL && len > 0, SMKI_E_INPUT, "empty CSR");
    ENSURE(len <= SMKI_CSR_MAX, SMKI_E_INPUT, "CSR of %zu octets is over the %d-octet limit", len, SMKI_CSR_MAX);
    unsigned char *pem_der = NULL;
    const uint8_t *der = data;
    size_t der_len = len;
    if (data[0] != TAG_SEQUENCE) {
        GUARD(pem_decode(data, len, &pem_der, &der_len));
        der = pem_der;
    }
    /* One allocation: the record, then its own copy of the DER. */
    smki_csr *c = calloc(1, sizeof *c + der_len);
    if (!c) {
        OPENSSL_free(pem_der);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    uint8_t *copy = (uint8_t *)(c + 1);
    memcpy(copy, der, der_len);
    OPENSSL_free(pem_der);
    c->der = copy;
    c->der_len = der_len;
    /* The proof of possession is skipped only for the very octets given, hashed now, that
     * match the caller's record of octets it verified before. */
    int verified = 0;
    if (o && o->verified_sha256) {
        uint8_t h[32];
        unsigned hl = sizeof h;
        verified = EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL) == 1 && hl == 32 &&
                   CRYPTO_memcmp(h, o->verified_sha256, 32) == 0;
        ERR_clear_error();
    }
    int rc = parse_der(c, verified);
    if (o && o->skipped_verify) *o->skipped_verify = rc == 0 && verified;
    if (rc < 0) {
        smki_csr_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void smki_csr_free(smki_csr *c)
{
    if (!c) return;
    EVP_PKEY_free(c->key);
    EC_KEY_free(c->ec);
    X509_NAME_free(c->subject);
    free(c);
}

/* ---- OIDs as text --------------------------------------------------------------------- */

int smki_ca_oid_text(const uint8_t *content, size_t len, char *out, size_t cap)
{
    smki_cursor_t c = smki_cursor(content, len);
    size_t k = 0;
    int first = 1;
    if (len == 0 || cap == 0) return -1;
    while (c.left) {
        uint64_t v = 0;
        uint8_t octet = 0x80;
        while (octet & 0x80) {
            if (smki_cur_u8(&c, &octet) < 0) return -1; /* ends inside a subidentifier */
            if (v > (UINT64_MAX >> 7)) return -2;
            v = v << 7 | (octet & 0x7f);
        }
        char digits[24]; /* the arc's decimal digits, backwards */
        size_t n = 0;
        uint64_t arc = v;
        if (first) { /* X.690 8.19.4: the first two arcs share one subidentifier */
            unsigned top = v < 40 ? 0 : v < 80 ? 1 : 2;
            arc = v - 40u * top;
            if (k + 1 >= cap) return -1;
            out[k++] = (char)('0' + top);
            first = 0;
        }
        do {
            digits[n++] = (char)('0' + arc % 10);
            arc /= 10;
        } while (arc);
        if (k + n + 1 >= cap) return -1;
        out[k++] = '.';
        while (n) out[k++] = digits[--n];
    }
    out[k] = '\0';
    return (int)k;
}

/* ---- Tying a CSR to a request ------------------------------------------------------- */

static const char *usage_text(int usage)
{
    return usage == SMKI_USAGE_DS ? "DS (digitalSignature)" : usage == SMKI_USAGE_KA ? "KA (keyAgreement)" : "none";
}

int smki_csr_check_request(const smki_csr *c, int is_device, const smki_eui64_t *eui, smki_key_usage want)
{
    ENSURE(c != NULL, SMKI_E_INTERNAL, "smki_csr_check_request: no CSR");
    char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX];
    if (is_device) {
        ENSURE(c->has_hw_module_name, SMKI_E_REFUSED,
               "device request refused: the CSR has no hardwareModuleName subjectAltName (no Device ID)");
        if (!c->is_subject_empty) {
            char name[256], shown[256];
            X509_NAME_oneline(c->subject, name, sizeof name);
            quote_safe(name, shown, sizeof shown);
            return SMKI_FAIL(SMKI_E_REFUSED, "device request refused: the CSR's subject must be empty, not \"%s\"",
                             shown);
        }
        if (eui && smki_eui64_cmp(eui, &c->hw_serial) != 0) {
            smki_eui64_format(eui, SMKI_EUI64_HYPHEN, a);
            smki_eui64_format(&c->hw_serial, SMKI_EUI64_HYPHEN, b);
            return SMKI_FAIL(SMKI_E_REFUSED,
                             "EUI-64 mismatch: the request is for device %s, the CSR's hardwareModuleName says %s", a,
                             b);
        }
    } else if (c->has_hw_module_name) {
        smki_eui64_format(&c->hw_serial, SMKI_EUI64_HYPHEN, b);
        return SMKI_FAIL(SMKI_E_REFUSED,
                         "organisation request refused: the CSR carries a hardwareModuleName (Device ID %s)", b);
    }
    ENSURE(want == 0 || c->usage == want, SMKI_E_REFUSED,
           "key usage mismatch: the request is for %s, the CSR requests %s", usage_text(want), usage_text(c->usage));
    return 0;
}
