/* The certificate linter: reads a certificate's facts once (OpenSSL for the
 * structure, the bounded cursor where raw bytes are walked), tells which profile it
 * claims from its content, then applies that profile's row of rules (profile.c) and
 * the rules of reference §4 for all certificates, naming each violation by a stable
 * rule id. Pure: no I/O, no allocation that outlives the call. */
#include "policy.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>


#define DS SMKI_KU_DIGITAL_SIGNATURE
#define KA SMKI_KU_KEY_AGREEMENT

/* Attribute and name OIDs, as the contents octets of their DER encoding. */
static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_C[] = {0x55, 0x04, 0x06};
static const uint8_t OID_O[] = {0x55, 0x04, 0x0a};
static const uint8_t OID_OU[] = {0x55, 0x04, 0x0b};
static const uint8_t OID_UID[] = {0x55, 0x04, 0x2d}; /* x500UniqueIdentifier */
/* id-on-hardwareModuleName, 1.3.6.1.5.5.7.8.4 (RFC 4108 5) */
static const uint8_t OID_HW_MODULE[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04};

#define NO_EXPIRY "99991231235959Z"
#define NAME_MAX_ATTRS 24
#define EXT_MAX 32
#define OID_TEXT 80

typedef struct {
    const uint8_t *oid;
    size_t oid_len;
    uint8_t tag;
    const uint8_t *val;
    size_t val_len;
} attr_t;

typedef struct {
    attr_t a[NAME_MAX_ATTRS];
    size_t n;
    int multi_valued; /* an RDN with more than one attribute */
    int parsed;
} name_t;

typedef struct {
    int present, critical, decoded;
} ext_seen;

typedef struct {
    unsigned kind; /* SMKI_EXT_*, 0 unknown */
    int critical;
    char name[OID_TEXT];
} ext_info;

typedef struct {
    smki_lint_report *r;
    const smki_env *env;
    X509 *x;
    const smki_profile *p;
    name_t subject, issuer;
    int self_issued;

    int key_p256; /* id-ecPublicKey on P-256, an uncompressed point on the curve */
    uint8_t point[65];

    ext_info exts[EXT_MAX];
    size_t n_exts;
    ext_seen ku, ski, aki, basic, policies, san, eku;
    unsigned ku_bits;
    uint8_t ski_val[20];
    size_t ski_len;
    int aki_keyid, aki_issuer, aki_serial;
    uint8_t aki_val[20];
    size_t aki_len;
    int ca, has_pathlen;
    long pathlen;
    size_t n_policies;
    int policy_qualifiers;
    char policy_oid[OID_TEXT];
    /* subjectAltName */
    const char *san_bad; /* why it does not parse */
    size_t san_names, n_hw, n_dns_ip;
    char hw_type[OID_TEXT];
    uint8_t hw_serial[16];
    size_t hw_serial_len;
    int hw_serial_bad;
    int eku_server, eku_client, eku_other;

    /* The subject's attributes, counted. */
    size_t n_cn, n_ou, n_o, n_c, n_uid, n_party, n_other;
    const attr_t *ou, *uid, *party, *other;
    int ou_is_role; /* the OU is two hex digits */
    unsigned ou_code;
    uint8_t party_oid[32];
    size_t party_oid_len;
    int ambiguous; /* an issuing CA whose policy says neither org nor device */
} lint_t;

/* ---- Findings ------------------------------------------------------------------- */

static void add(lint_t *L, smki_lint_level lvl, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(lint_t *L, smki_lint_level lvl, const char *rule, const char *fmt, ...)
{
    smki_lint_report *r = L->r;
    if (lvl == SMKI_LINT_ERROR)
        r->errors++;
    else
        r->warnings++;
    if (r->count >= SMKI_LINT_MAX_FINDINGS) return;
    smki_lint_finding *f = &r->findings[r->count++];
    f->rule = rule;
    f->level = lvl;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}
#define ERR(L, rule, ...) add((L), SMKI_LINT_ERROR, (rule), __VA_ARGS__)
#define WARN(L, rule, ...) add((L), SMKI_LINT_WARNING, (rule), __VA_ARGS__)

/* Bytes from the certificate, made safe to print: escaped and cut short. */
typedef struct {
    char s[72];
} shown_t;
static shown_t shown(const uint8_t *p, size_t n)
{
    shown_t o;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k + 8 > sizeof o.s) {
            memcpy(o.s + k, "...", 3);
            k += 3;
            break;
        }
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"') {
            o.s[k++] = (char)p[i];
        } else {
            snprintf(o.s + k, sizeof o.s - k, "\\x%02X", p[i]);
            k += 4;
        }
    }
    o.s[k] = '\0';
    return o;
}

static void hex_of(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 <= cap; i++, k += 2) snprintf(out + k, cap - k, "%02X", p[i]);
    out[k < cap ? k : cap - 1] = '\0';
}

static void obj_text(const ASN1_OBJECT *o, char out[OID_TEXT], int numeric)
{
    if (!o || OBJ_obj2txt(out, OID_TEXT, o, numeric) <= 0) snprintf(out, OID_TEXT, "?");
}

/* An OID's text from its DER TLV (tag, length, contents). */
static void oid_tlv_text(const smki_der_tlv *t, char out[OID_TEXT], int numeric)
{
    const unsigned char *p = t->start;
    ASN1_OBJECT *o = d2i_ASN1_OBJECT(NULL, &p, (long)t->total);
    obj_text(o, out, numeric);
    ASN1_OBJECT_free(o);
}

static int oid_is(const attr_t *a, const uint8_t *oid, size_t len)
{
    return a->oid_len == len && memcmp(a->oid, oid, len) == 0;
}

/* ---- Names ------------------------------------------------------------------------ */

static int name_parse(const uint8_t *der, size_t len, name_t *nm)
{
    memset(nm, 0, sizeof *nm);
    smki_cursor_t c = smki_cursor(der, len);
    smki_der_tlv seq;
    GUARD(smki_der_expect(&c, der, SMKI_DER_STRICT, 0x30, "Name", &seq));
    ENSURE(c.left == 0, SMKI_E_INPUT, "octets after the Name");
    while (seq.body.left) {
        smki_der_tlv set;
        GUARD(smki_der_expect(&seq.body, der, SMKI_DER_STRICT, 0x31, "RelativeDistinguishedName", &set));
        size_t in_rdn = 0;
        while (set.body.left) {
            smki_der_tlv atv, oid, val;
            GUARD(smki_der_expect(&set.body, der, SMKI_DER_STRICT, 0x30, "AttributeTypeAndValue", &atv));
            GUARD(smki_der_expect(&atv.body, der, SMKI_DER_STRICT, 0x06, "attribute type", &oid));
            GUARD(smki_der_read(&atv.body, der, SMKI_DER_STRICT, &val));
            ENSURE(atv.body.left == 0, SMKI_E_INPUT, "octets after an attribute value");
            ENSURE(nm->n < NAME_MAX_ATTRS, SMKI_E_INPUT, "more than %d attributes in a name", NAME_MAX_ATTRS);
            attr_t *a = &nm->a[nm->n++];
            a->oid = oid.body.p;
            a->oid_len = oid.body.left;
            a->tag = val.tag;
            a->val = val.body.p;
            a->val_len = val.body.left;
            in_rdn++;
        }
        ENSURE(in_rdn > 0, SMKI_E_INPUT, "an empty RelativeDistinguishedName");
        if (in_rdn > 1) nm->multi_valued = 1;
    }
    nm->parsed = 1;
    return 0;
}

static const attr_t *name_first(const name_t *nm, const uint8_t *oid, size_t len)
{
    for (size_t i = 0; i < nm->n; i++)
        if (oid_is(&nm->a[i], oid, len)) return &nm->a[i];
    return NULL;
}

/* Is the attribute's value (a string) one of the comma-separated names? Names
 * compare by value, case-insensitively, whatever their string type (reference §4). */
static int name_listed(const attr_t *a, const char *list)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',') p++;
        size_t n = (size_t)(p - start);
        while (n && start[n - 1] == ' ') n--;
        if (n && a && n == a->val_len && strncasecmp(start, (const char *)a->val, n) == 0) return 1;
    }
    return 0;
}

/* Rebuild the name entry by entry and encode it afresh: OpenSSL re-emits a parsed
 * name's cached bytes, so only a rebuilt one shows a non-DER original. */
static int name_is_der(const X509_NAME *nm)
{
    const unsigned char *orig = NULL;
    size_t orig_len = 0;
    if (X509_NAME_get0_der(nm, &orig, &orig_len) != 1) return 0;
    X509_NAME *copy = X509_NAME_new();
    unsigned char *enc = NULL;
    int ok = copy != NULL, prev_set = -1;
    for (int i = 0; ok && i < X509_NAME_entry_count(nm); i++) {
        const X509_NAME_ENTRY *ne = X509_NAME_get_entry(nm, i);
        int set = X509_NAME_ENTRY_set(ne);
        ok = X509_NAME_add_entry(copy, ne, -1, i > 0 && set == prev_set ? -1 : 0) == 1;
        prev_set = set;
    }
    int len = ok ? i2d_X509_NAME(copy, &enc) : -1;
    ok = len >= 0 && (size_t)len == orig_len && memcmp(enc, orig, orig_len) == 0;
    OPENSSL_free(enc);
    X509_NAME_free(copy);
    return ok;
}

/* ---- Facts -------------------------------------------------------------------------- */

static void read_key(lint_t *L)
{
    X509_PUBKEY *xpk = X509_get_X509_PUBKEY(L->x);
    ASN1_OBJECT *alg = NULL;
    const unsigned char *pk = NULL;
    int pklen = 0;
    X509_ALGOR *palg = NULL;
    if (!xpk || X509_PUBKEY_get0_param(&alg, &pk, &pklen, &palg, xpk) != 1) {
        ERR(L, "key.alg", "subjectPublicKeyInfo does not decode");
        return;
    }
    char name[OID_TEXT];
    if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey) {
        obj_text(alg, name, 0);
        ERR(L, "key.alg", "public key algorithm %s: only id-ecPublicKey (P-256) is allowed", name);
        return;
    }
    int ptype = V_ASN1_UNDEF;
    const void *pval = NULL;
    X509_ALGOR_get0(NULL, &ptype, &pval, palg);
    if (ptype != V_ASN1_OBJECT) {
        ERR(L, "key.curve", "EC parameters are not a named curve: only prime256v1 (P-256) is allowed");
        return;
    }
    if (OBJ_obj2nid((const ASN1_OBJECT *)pval) != NID_X9_62_prime256v1) {
        obj_text((const ASN1_OBJECT *)pval, name, 0);
        ERR(L, "key.curve", "curve %s: only prime256v1 (P-256) is allowed", name);
        return;
    }
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(L->x);
    if (pklen != 65 || pk[0] != 0x04 || (bits && (bits->flags & ASN1_STRING_FLAG_BITS_LEFT) && (bits->flags & 7))) {
        ERR(L, "key.point", "public key is not an uncompressed P-256 point (65 octets from 04): %d octet(s)%s", pklen,
            pklen == 33 ? ", compressed" : "");
        return;
    }
    if (!X509_get0_pubkey(L->x)) {
        ERR(L, "key.point", "public key is not a point on P-256");
        return;
    }
    memcpy(L->point, pk, 65);
    L->key_p256 = 1;
}

/* The otherName hardwareModuleName (RFC 4108 5): SEQUENCE { hwType OID, hwSerialNum OCTET STRING }. */
static int read_hw_module(lint_t *L, smki_cursor_t v, const uint8_t *base)
{
    smki_der_tlv seq, type, serial;
    GUARD(smki_der_expect(&v, base, SMKI_DER_STRICT, 0x30, "HardwareModuleName", &seq));
    ENSURE(v.left == 0, SMKI_E_INPUT, "octets after HardwareModuleName");
    GUARD(smki_der_expect(&seq.body, base, SMKI_DER_STRICT, 0x06, "hwType", &type));
    GUARD(smki_der_expect(&seq.body, base, SMKI_DER_STRICT, 0x04, "hwSerialNum", &serial));
    ENSURE(seq.body.left == 0, SMKI_E_INPUT, "octets after hwSerialNum");
    oid_tlv_text(&type, L->hw_type, 1);
    L->hw_serial_len = serial.body.left;
    if (serial.body.left <= sizeof L->hw_serial) memcpy(L->hw_serial, serial.body.p, serial.body.left);
    return 0;
}

static int read_san(lint_t *L, const uint8_t *v, size_t len)
{
    smki_cursor_t c = smki_cursor(v, len);
    smki_der_tlv seq;
    GUARD(smki_der_expect(&c, v, SMKI_DER_STRICT, 0x30, "GeneralNames", &seq));
    ENSURE(c.left == 0, SMKI_E_INPUT, "octets after GeneralNames");
    while (seq.body.left) {
        smki_der_tlv gn;
        GUARD(smki_der_read(&seq.body, v, SMKI_DER_STRICT, &gn));
        L->san_names++;
        if (gn.tag == 0xa0) { /* [0] otherName: type-id OID, [0] EXPLICIT value */
            smki_der_tlv oid, val;
            GUARD(smki_der_expect(&gn.body, v, SMKI_DER_STRICT, 0x06, "otherName type-id", &oid));
            GUARD(smki_der_expect(&gn.body, v, SMKI_DER_STRICT, 0xa0, "otherName value", &val));
            ENSURE(gn.body.left == 0, SMKI_E_INPUT, "octets after an otherName");
            if (oid.body.left == sizeof OID_HW_MODULE && memcmp(oid.body.p, OID_HW_MODULE, sizeof OID_HW_MODULE) == 0) {
                L->n_hw++;
                GUARD(read_hw_module(L, val.body, v));
            }
        } else if (gn.tag == 0x82 || gn.tag == 0x87) { /* dNSName, iPAddress */
            L->n_dns_ip++;
        }
    }
    return 0;
}

/* OpenSSL's decoders, with every octet of the value consumed. */
#define DECODE(type, v, len, out)                                                                                      \
    do {                                                                                                               \
        const unsigned char *p_ = (v);                                                                                 \
        (out) = d2i_##type(NULL, &p_, (long)(len));                                                                    \
        if ((out) && p_ != (v) + (len)) {                                                                              \
            type##_free(out);                                                                                          \
            (out) = NULL;                                                                                              \
        }                                                                                                              \
    } while (0)

/* Decode the value again and re-encode it: a value OpenSSL reads but would encode
 * differently (an explicit DEFAULT, a padded BIT STRING) is not DER. */
static void check_ext_der(lint_t *L, X509_EXTENSION *e, const char *name, const uint8_t *v, size_t len)
{
    smki_cursor_t c = smki_cursor(v, len);
    if (smki_der_check_strict(c, v) < 0) {
        ERR(L, "der.strict", "extension %s: %s", name, smki_error_msg());
        return;
    }
    const X509V3_EXT_METHOD *m = X509V3_EXT_get(e);
    if (!m || !m->it) return;
    const ASN1_ITEM *it = ASN1_ITEM_ptr(m->it);
    const unsigned char *p = v;
    ASN1_VALUE *val = ASN1_item_d2i(NULL, &p, (long)len, it);
    if (!val || p != v + len) {
        ERR(L, "ext.encoding", "extension %s: the value does not decode as its type", name);
    } else {
        unsigned char *out = NULL;
        int n = ASN1_item_i2d(val, &out, it);
        if (n < 0 || (size_t)n != len || memcmp(out, v, len) != 0)
            ERR(L, "der.strict", "extension %s: the value is not DER (re-encoding it differs)", name);
        OPENSSL_free(out);
    }
    ASN1_item_free(val, it);
}

static void read_extension(lint_t *L, X509_EXTENSION *e)
{
    ASN1_OBJECT *obj = X509_EXTENSION_get_object(e);
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(e);
    const uint8_t *v = ASN1_STRING_get0_data(os);
    size_t len = (size_t)ASN1_STRING_length(os);
    int crit = X509_EXTENSION_get_critical(e) > 0;
    int nid = OBJ_obj2nid(obj);
    ext_info info = {0, crit, ""};
    obj_text(obj, info.name, 0);

    for (size_t i = 0; i < L->n_exts; i++)
        if (strcmp(L->exts[i].name, info.name) == 0) {
            ERR(L, "ext.duplicate", "extension %s appears more than once (RFC 5280 4.2)", info.name);
            return;
        }
    check_ext_der(L, e, info.name, v, len);

    ext_seen seen = {1, crit, 0};
    switch (nid) {
    case NID_key_usage: {
        ASN1_BIT_STRING *b;
        info.kind = SMKI_EXT_KEY_USAGE;
        DECODE(ASN1_BIT_STRING, v, len, b);
        if (b) {
            int n = ASN1_STRING_length(b);
            const uint8_t *d = ASN1_STRING_get0_data(b);
            L->ku_bits = (n > 0 ? d[0] : 0u) | (n > 1 ? (unsigned)d[1] << 8 : 0u);
            seen.decoded = 1;
        }
        ASN1_BIT_STRING_free(b);
        L->ku = seen;
        break;
    }
    case NID_subject_key_identifier: {
        ASN1_OCTET_STRING *s;
        info.kind = SMKI_EXT_SKI;
        DECODE(ASN1_OCTET_STRING, v, len, s);
        if (s) {
            L->ski_len = (size_t)ASN1_STRING_length(s);
            memcpy(L->ski_val, ASN1_STRING_get0_data(s), L->ski_len < 20 ? L->ski_len : 20);
            seen.decoded = 1;
        }
        ASN1_OCTET_STRING_free(s);
        L->ski = seen;
        break;
    }
    case NID_authority_key_identifier: {
        AUTHORITY_KEYID *a;
        info.kind = SMKI_EXT_AKI;
        DECODE(AUTHORITY_KEYID, v, len, a);
        if (a) {
            L->aki_keyid = a->keyid != NULL;
            L->aki_issuer = a->issuer != NULL;
            L->aki_serial = a->serial != NULL;
            if (a->keyid) {
                L->aki_len = (size_t)ASN1_STRING_length(a->keyid);
                memcpy(L->aki_val, ASN1_STRING_get0_data(a->keyid), L->aki_len < 20 ? L->aki_len : 20);
            }
            seen.decoded = 1;
        }
        AUTHORITY_KEYID_free(a);
        L->aki = seen;
        break;
    }
    case NID_basic_constraints: {
        BASIC_CONSTRAINTS *b;
        info.kind = SMKI_EXT_BASIC;
        DECODE(BASIC_CONSTRAINTS, v, len, b);
        if (b) {
            L->ca = b->ca != 0;
            L->has_pathlen = b->pathlen != NULL;
            L->pathlen = b->pathlen ? ASN1_INTEGER_get(b->pathlen) : -1;
            seen.decoded = 1;
        }
        BASIC_CONSTRAINTS_free(b);
        L->basic = seen;
        break;
    }
    case NID_certificate_policies: {
        CERTIFICATEPOLICIES *cp;
        info.kind = SMKI_EXT_POLICIES;
        DECODE(CERTIFICATEPOLICIES, v, len, cp);
        if (cp) {
            L->n_policies = (size_t)sk_POLICYINFO_num(cp);
            for (size_t i = 0; i < L->n_policies; i++) {
                POLICYINFO *pi = sk_POLICYINFO_value(cp, (int)i);
                if (i == 0) obj_text(pi->policyid, L->policy_oid, 1);
                if (pi->qualifiers && sk_POLICYQUALINFO_num(pi->qualifiers) > 0) L->policy_qualifiers = 1;
            }
            seen.decoded = 1;
        }
        CERTIFICATEPOLICIES_free(cp);
        L->policies = seen;
        break;
    }
    case NID_subject_alt_name:
        info.kind = SMKI_EXT_SAN;
        if (read_san(L, v, len) == 0)
            seen.decoded = 1;
        else
            L->san_bad = "its GeneralNames do not parse";
        L->san = seen;
        break;
    case NID_ext_key_usage: {
        EXTENDED_KEY_USAGE *eku;
        info.kind = SMKI_EXT_EKU;
        DECODE(EXTENDED_KEY_USAGE, v, len, eku);
        if (eku) {
            for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
                int k = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
                if (k == NID_server_auth)
                    L->eku_server = 1;
                else if (k == NID_client_auth)
                    L->eku_client = 1;
                else
                    L->eku_other = 1;
            }
            seen.decoded = 1;
        }
        EXTENDED_KEY_USAGE_free(eku);
        L->eku = seen;
        break;
    }
    case NID_crl_distribution_points:
        info.kind = SMKI_EXT_CRL_DP;
        break;
    case NID_info_access:
        info.kind = SMKI_EXT_AIA;
        break;
    default:
        break;
    }
    if (L->n_exts < EXT_MAX) L->exts[L->n_exts++] = info;
}

static int hex_digit(uint8_t ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static void read_subject_facts(lint_t *L)
{
    const name_t *s = &L->subject;
    for (size_t i = 0; i < s->n; i++) {
        const attr_t *a = &s->a[i];
        if (L->party_oid_len && oid_is(a, L->party_oid, L->party_oid_len)) {
            L->n_party++;
            L->party = a;
        } else if (oid_is(a, OID_CN, sizeof OID_CN)) {
            L->n_cn++;
        } else if (oid_is(a, OID_OU, sizeof OID_OU)) {
            L->n_ou++;
            if (!L->ou) L->ou = a;
        } else if (oid_is(a, OID_UID, sizeof OID_UID)) {
            L->n_uid++;
            if (!L->uid) L->uid = a;
        } else if (oid_is(a, OID_O, sizeof OID_O)) {
            L->n_o++;
        } else if (oid_is(a, OID_C, sizeof OID_C)) {
            L->n_c++;
        } else {
            L->n_other++;
            if (!L->other) L->other = a;
        }
    }
    if (L->ou && L->ou->val_len == 2) {
        int hi = hex_digit(L->ou->val[0]), lo = hex_digit(L->ou->val[1]);
        if (hi >= 0 && lo >= 0) {
            unsigned v = (unsigned)(hi << 4 | lo);
            L->ou_is_role = 1; /* two hex digits; 0x100 when they name no role */
            L->ou_code = smki_role_by_code(v) ? v : 0x100;
        }
    }
}

/* ---- Classification ------------------------------------------------------------------
 * A certificate claims a profile by its content (docs/profiles.md):
 *   - the environment's policy OID, when one is known, says SMKI or DCCKI (and for an
 *     issuing CA, organisation or device);
 *   - otherwise DCCKI is told by its own markers (serverAuth/clientAuth EKU, the Party
 *     Signifier attribute, or a CA without an SMKI role OU) when no SMKI marker (role
 *     OU, x500UniqueIdentifier, hardwareModuleName, empty subject) is present;
 *   - SMKI: a CA (cA TRUE, keyCertSign, or OU 00/07) is the root if OU=00 or
 *     self-issued, else an issuing CA; an end entity with a hardwareModuleName or an
 *     empty subject is a device; one with an OU or x500UniqueIdentifier an organisation. */
enum { BY_NONE, BY_ORG, BY_DEVICE, BY_DCCKI };

static smki_profile_id classify(lint_t *L, const char **why)
{
    int by = BY_NONE;
    const smki_env *env = L->env;
    if (!L->subject.parsed) {
        *why = "the subject name does not parse";
        return SMKI_PROFILE_UNKNOWN;
    }
    if (env && L->policy_oid[0]) {
        if (env->org_policy[0] && strcmp(L->policy_oid, env->org_policy) == 0)
            by = BY_ORG;
        else if (env->device_policy[0] && strcmp(L->policy_oid, env->device_policy) == 0)
            by = BY_DEVICE;
        else if (env->dccki_policy[0] && strcmp(L->policy_oid, env->dccki_policy) == 0)
            by = BY_DCCKI;
    }
    int role_ou = L->ou_is_role && L->ou_code <= 0xff;
    int smki_marks = role_ou || L->n_uid || L->n_hw || L->subject.n == 0;
    int dccki_marks = L->eku_server || L->eku_client || L->n_party;
    int ca = (L->basic.decoded && L->ca) || (L->ku.decoded && (L->ku_bits & SMKI_KU_KEY_CERT_SIGN)) ||
             (role_ou && (L->ou_code == SMKI_ROLE_ROOT || L->ou_code == SMKI_ROLE_ISSUING_AUTHORITY));
    int dccki = by == BY_DCCKI || (by == BY_NONE && !smki_marks && (dccki_marks || ca));

    if (dccki) {
        if (ca) return L->self_issued ? SMKI_PROFILE_DCCKI_ROOT : SMKI_PROFILE_DCCKI_ICA;
        if (L->eku_server) return SMKI_PROFILE_DCCKI_SERVER;
        if (L->eku_client) return SMKI_PROFILE_DCCKI_CLIENT;
        *why =
            "a DCCKI end-entity certificate (Party Signifier) without the serverAuth or clientAuth extended key usage";
        return SMKI_PROFILE_UNKNOWN;
    }
    if (ca) {
        if ((role_ou && L->ou_code == SMKI_ROLE_ROOT) ||
            (L->self_issued && !(role_ou && L->ou_code == SMKI_ROLE_ISSUING_AUTHORITY)))
            return SMKI_PROFILE_SMKI_ROOT;
        if (by == BY_DEVICE) return SMKI_PROFILE_SMKI_DCA;
        if (by != BY_ORG) L->ambiguous = 1;
        return SMKI_PROFILE_SMKI_OCA;
    }
    if (L->n_hw || L->subject.n == 0) return SMKI_PROFILE_DEVICE;
    if (L->n_ou || L->n_uid) return SMKI_PROFILE_ORGANISATION;
    *why = "neither an OU Remote Party Role, an x500UniqueIdentifier, a hardwareModuleName, nor a DCCKI marker";
    return SMKI_PROFILE_UNKNOWN;
}

/* ---- Rules for all certificates (reference §4) ------------------------------------------ */

static void check_version_serial(lint_t *L)
{
    long v = X509_get_version(L->x);
    if (v != X509_VERSION_3) ERR(L, "cert.version", "version %ld: X.509 v3 required", v + 1);
    const ASN1_BIT_STRING *iuid = NULL, *suid = NULL;
    X509_get0_uids(L->x, &iuid, &suid);
    if (iuid || suid)
        ERR(L, "cert.unique_id",
            "issuerUniqueID or subjectUniqueID present (RFC 5280 4.1.2.8: CAs must not generate them)");

    const ASN1_INTEGER *sn = X509_get0_serialNumber(L->x);
    int n = ASN1_STRING_length(sn);
    const uint8_t *d = ASN1_STRING_get0_data(sn);
    int zero = 1;
    for (int i = 0; i < n; i++)
        if (d[i]) zero = 0;
    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER || zero) {
        ERR(L, "serial.positive", "serialNumber is %s: it must be positive (RFC 5280 4.1.2.2)",
            zero ? "zero" : "negative");
        return;
    }
    /* DER contents octets: the magnitude, plus a 00 when its top bit is set. */
    int octets = n + (n > 0 && (d[0] & 0x80) ? 1 : 0);
    if (octets > 20)
        ERR(L, "serial.length", "serialNumber is %d octets: at most 20 (RFC 5280 4.1.2.2)", octets);
    else if (octets != 16)
        WARN(L, "serial.size", "serialNumber is %d octets: every observed SMKI certificate has 16 unpredictable octets",
             octets);
}

static int algor_is_ecdsa_sha256(const X509_ALGOR *a)
{
    const ASN1_OBJECT *obj = NULL;
    int ptype = V_ASN1_UNDEF;
    X509_ALGOR_get0(&obj, &ptype, NULL, a);
    return OBJ_obj2nid(obj) == NID_ecdsa_with_SHA256 && ptype == V_ASN1_UNDEF;
}

static void check_signature(lint_t *L)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *outer = NULL, *inner = X509_get0_tbs_sigalg(L->x);
    X509_get0_signature(&sig, &outer, L->x);
    const X509_ALGOR *algs[2] = {inner, outer};
    const char *where[2] = {"tbsCertificate signature", "signatureAlgorithm"};
    for (int i = 0; i < 2; i++)
        if (!algor_is_ecdsa_sha256(algs[i])) {
            char name[OID_TEXT];
            const ASN1_OBJECT *obj = NULL;
            X509_ALGOR_get0(&obj, NULL, NULL, algs[i]);
            obj_text(obj, name, 0);
            ERR(L, "sig.alg", "%s is %s: only ecdsa-with-SHA256 with absent parameters (RFC 5758 3.2)", where[i], name);
        }
    if (X509_ALGOR_cmp(inner, outer) != 0)
        ERR(L, "sig.alg", "the two signature algorithm fields differ (RFC 5280 4.1.1.2)");

    /* The signature value: an ECDSA-Sig-Value, two positive INTEGERs below the order
     * (when the algorithm is ECDSA at all; another one is named above). */
    if (!algor_is_ecdsa_sha256(outer)) return;
    const char *bad = NULL;
    int n = sig ? ASN1_STRING_length(sig) : 0;
    const uint8_t *d = sig ? ASN1_STRING_get0_data(sig) : NULL;
    if (!sig || ((sig->flags & ASN1_STRING_FLAG_BITS_LEFT) && (sig->flags & 7))) {
        bad = "the BIT STRING has unused bits";
    } else {
        smki_cursor_t c = smki_cursor(d, (size_t)n);
        smki_der_tlv seq, rs[2];
        if (smki_der_expect(&c, d, SMKI_DER_STRICT, 0x30, "ECDSA-Sig-Value", &seq) < 0 || c.left ||
            smki_der_expect(&seq.body, d, SMKI_DER_STRICT, 0x02, "r", &rs[0]) < 0 || smki_der_expect(&seq.body, d, SMKI_DER_STRICT, 0x02, "s", &rs[1]) < 0 ||
            seq.body.left)
            bad = "it is not an ECDSA-Sig-Value (SEQUENCE of two INTEGERs)";
        for (int i = 0; i < 2 && !bad; i++) {
            smki_cursor_t v = rs[i].body;
            if (v.left == 0 || (v.p[0] & 0x80)) {
                bad = "r or s is not positive";
                break;
            }
            while (v.left && v.p[0] == 0) smki_cur_skip(&v, 1);
            if (v.left == 0 || v.left > 32) bad = "r or s is zero or longer than P-256's order";
        }
        /* RTDS itself holds two device certificates (00db123456789023-ka,
         * 00db12345678909b-ds) whose s is padded with a 00: BER, not DER, inside the
         * BIT STRING. The certificate's own encoding is still DER, so this is a warning;
         * but verifiers that re-encode the signature (OpenSSL does) reject it. */
        if (!bad && smki_der_check_strict(smki_cursor(d, (size_t)n), d) < 0)
            WARN(L, "sig.encoding",
                 "signature value is not DER (%s): verifiers that insist on DER, OpenSSL among them, reject it",
                 smki_error_msg());
    }
    if (bad) ERR(L, "sig.encoding", "signature value: %s", bad);
}

/* ---- Extensions --------------------------------------------------------------------------- */

static void check_key_usage(lint_t *L)
{
    const smki_profile *p = L->p;
    if (!L->ku.present) {
        ERR(L, "keyusage.missing", "keyUsage absent: it must be present and critical");
        return;
    }
    if (!L->ku.critical) ERR(L, "keyusage.critical", "keyUsage is not critical");
    if (!L->ku.decoded) return;
    unsigned ku = L->ku_bits;
    L->r->key_usage = ku;
    if (p->ku_one_of) {
        unsigned hit = ku & p->ku_one_of;
        if (hit == (DS | KA) && p->ku_one_of == (DS | KA)) {
            ERR(L, "keyusage.ds_and_ka",
                "keyUsage has both digitalSignature and keyAgreement: one key pair and certificate for each");
            return;
        }
        if (hit == 0) {
            ERR(L, "keyusage.value", "keyUsage has neither digitalSignature nor keyAgreement (%s needs one)", p->name);
            return;
        }
    }
    if ((ku & p->ku_required) != p->ku_required)
        ERR(L, "keyusage.value", "keyUsage 0x%04X lacks bits 0x%04X that a %s certificate needs", ku,
            p->ku_required & ~ku, p->name);
    if (ku & ~p->ku_allowed)
        ERR(L, "keyusage.value", "keyUsage 0x%04X has bits 0x%04X that a %s certificate must not have", ku,
            ku & ~p->ku_allowed, p->name);
    if (p->id == SMKI_PROFILE_ORGANISATION && L->ou_is_role) {
        const smki_role_t *role = smki_role_by_code(L->ou_code);
        if (role && role->org_usages && (ku & (DS | KA) & ~role->org_usages))
            ERR(L, "keyusage.role", "role %s (%s) certificates are digitalSignature only", role->name, role->title);
    }
}

static void check_ski(lint_t *L)
{
    if (!L->ski.present) {
        ERR(L, "ski.missing", "subjectKeyIdentifier absent");
        return;
    }
    if (L->ski.critical) ERR(L, "ski.critical", "subjectKeyIdentifier is critical (RFC 5280 4.2.1.2: non-critical)");
    if (!L->ski.decoded) return;
    if (L->p->ski == SMKI_SKI_ANY) {
        if (L->ski_len == 0 || L->ski_len > 20) ERR(L, "ski.length", "subjectKeyIdentifier is %zu octets", L->ski_len);
        return;
    }
    if (L->ski_len != 8) {
        ERR(L, "ski.length",
            "subjectKeyIdentifier is %zu octets: 8 required (RFC 5280 4.2.1.2 method 2; OpenSSL's default is 20)",
            L->ski_len);
        return;
    }
    if (!L->key_p256) return; /* the key is already refused; its identifier cannot be checked */
    uint8_t want[SMKI_KEYID_LEN];
    if (smki_keyid_method2(L->point, sizeof L->point, want) < 0) {
        ERR(L, "ski.method", "the key identifier of the key cannot be computed: %s", smki_error_msg());
        return;
    }
    if (memcmp(want, L->ski_val, 8) != 0) {
        char got[20], exp[20];
        hex_of(L->ski_val, 8, got, sizeof got);
        hex_of(want, 8, exp, sizeof exp);
        ERR(L, "ski.method",
            "subjectKeyIdentifier %s is not RFC 5280 4.2.1.2 method 2 of the key (0x4 + low 60 bits of SHA-1 of "
            "the point): %s",
            got, exp);
    }
}

static void check_aki(lint_t *L)
{
    smki_aki_rule rule = L->p->aki;
    int self_ok = rule == SMKI_AKI_KEYID8_OR_SELF || rule == SMKI_AKI_KEYID_OR_SELF;
    if (!L->aki.present) {
        if (!self_ok || !L->self_issued)
            ERR(L, "aki.missing",
                "authorityKeyIdentifier absent: required on every certificate but a self-signed root (RFC 5280 "
                "4.2.1.1)");
        return;
    }
    if (L->aki.critical) ERR(L, "aki.critical", "authorityKeyIdentifier is critical (RFC 5280 4.2.1.1: non-critical)");
    if (!L->aki.decoded) return;
    int eight = rule == SMKI_AKI_KEYID8 || rule == SMKI_AKI_KEYID8_OR_SELF;
    if (!L->aki_keyid)
        ERR(L, "aki.form", "authorityKeyIdentifier has no keyIdentifier");
    else if (eight && L->aki_len != 8)
        ERR(L, "aki.length", "authorityKeyIdentifier keyIdentifier is %zu octets: 8 required", L->aki_len);
    if (eight && (L->aki_issuer || L->aki_serial))
        ERR(L, "aki.form", "authorityKeyIdentifier carries authorityCertIssuer/SerialNumber: [0] keyIdentifier only");
    if (self_ok && L->self_issued && L->aki_keyid && L->ski.decoded &&
        (L->aki_len != L->ski_len || memcmp(L->aki_val, L->ski_val, L->ski_len < 20 ? L->ski_len : 20) != 0))
        ERR(L, "aki.self", "a self-signed root's authorityKeyIdentifier differs from its subjectKeyIdentifier");
}

static void check_basic(lint_t *L)
{
    const smki_profile *p = L->p;
    if (p->basic == SMKI_BASIC_CA) {
        if (!L->basic.present) {
            ERR(L, "basic.missing", "basicConstraints absent: a CA certificate needs it, critical, with cA TRUE");
            return;
        }
        if (!L->basic.critical) ERR(L, "basic.critical", "basicConstraints is not critical (RFC 5280 4.2.1.9)");
        if (!L->basic.decoded) return;
        if (!L->ca) ERR(L, "basic.ca", "basicConstraints cA is FALSE on a %s", p->title);
        if (p->path_len >= 0 && (!L->has_pathlen || L->pathlen != p->path_len))
            ERR(L, "basic.pathlen", "pathLenConstraint %s: %d required on a %s", L->has_pathlen ? "differs" : "absent",
                p->path_len, p->title);
    } else if (p->basic == SMKI_BASIC_END_ENTITY && L->basic.present) {
        if (!L->basic.critical)
            WARN(L, "basic.critical",
                 "basicConstraints present but not critical (SMKI certificates carry it critical)");
        if (L->basic.decoded && L->ca) ERR(L, "basic.ca", "basicConstraints cA is TRUE on a %s", p->title);
        if (L->basic.decoded && L->has_pathlen)
            ERR(L, "basic.pathlen", "pathLenConstraint on an end-entity certificate (RFC 5280 4.2.1.9)");
    }
}

static void check_policies(lint_t *L)
{
    const smki_profile *p = L->p;
    if (!L->policies.present) {
        ERR(L, "policies.missing", "certificatePolicies absent: it must be present%s",
            p->policy_critical ? " and critical" : "");
        return;
    }
    if (p->policy_critical && !L->policies.critical) ERR(L, "policies.critical", "certificatePolicies is not critical");
    if (!L->policies.decoded) return;
    if (L->n_policies != 1)
        ERR(L, "policies.count", "certificatePolicies holds %zu policies: one, the environment's", L->n_policies);
    if (L->policy_qualifiers) WARN(L, "policies.qualifiers", "certificatePolicies carries policy qualifiers");
    const smki_env *env = L->env;
    if (!env || !p->policy || !L->policy_oid[0]) return;
    const char *want = NULL, *alt = NULL;
    switch (p->policy) {
    case SMKI_POLICY_ORG:
        want = env->org_policy;
        break;
    case SMKI_POLICY_DEVICE:
        want = env->device_policy;
        break;
    case SMKI_POLICY_ROOT:
        want = env->org_policy;
        alt = env->device_policy;
        break;
    case SMKI_POLICY_DCCKI:
        want = env->dccki_policy;
        break;
    }
    if (!want || !want[0]) return; /* not known in this environment */
    if (strcmp(L->policy_oid, want) != 0 && !(alt && alt[0] && strcmp(L->policy_oid, alt) == 0))
        ERR(L, "policies.oid", "policy %s is not environment %s's %s policy %s%s%s", L->policy_oid, env->name, p->name,
            want, alt ? " or " : "", alt ? alt : "");
}

static void check_san(lint_t *L)
{
    const smki_profile *p = L->p;
    int empty_subject = L->subject.n == 0;
    if (!L->san.present) {
        if (p->san == SMKI_SAN_HARDWARE_MODULE)
            ERR(L, "san.missing",
                "subjectAltName absent: a device certificate names its device in a hardwareModuleName");
        else if (p->san == SMKI_SAN_DNS_OR_IP)
            ERR(L, "san.missing",
                "subjectAltName absent: a TLS server certificate names its host (dNSName or iPAddress)");
        return;
    }
    if (L->san_bad) {
        ERR(L, "san.form", "subjectAltName: %s", L->san_bad);
        return;
    }
    if (p->san == SMKI_SAN_HARDWARE_MODULE) {
        if (!L->san.critical)
            ERR(L, "san.critical", "subjectAltName is not critical (the subject is empty: RFC 5280 4.2.1.6)");
        if (L->san_names != 1 || L->n_hw != 1) {
            ERR(L, "san.form", "subjectAltName holds %zu name(s): exactly one otherName hardwareModuleName (RFC 4108)",
                L->san_names);
            return;
        }
        if (L->hw_serial_len != 8)
            ERR(L, "eui64.length", "hwSerialNum is %zu octets: the Device ID is an EUI-64 of 8", L->hw_serial_len);
        else {
            L->r->has_id = 1;
            memcpy(L->r->id.b, L->hw_serial, 8);
        }
        if (L->env && L->env->hw_type[0] && strcmp(L->hw_type, L->env->hw_type) != 0)
            ERR(L, "hwtype.oid", "hwType %s is not environment %s's %s", L->hw_type, L->env->name, L->env->hw_type);
        return;
    }
    if (empty_subject && !L->san.critical)
        ERR(L, "san.critical", "subjectAltName is not critical although the subject is empty (RFC 5280 4.2.1.6)");
    if (!empty_subject && L->san.critical)
        WARN(L, "san.critical", "subjectAltName is critical although the subject is not empty (RFC 5280 4.2.1.6)");
    if (p->san == SMKI_SAN_DNS_OR_IP && L->n_dns_ip == 0)
        ERR(L, "san.form", "subjectAltName has no dNSName or iPAddress for TLS name checks");
}

static void check_eku(lint_t *L)
{
    const smki_profile *p = L->p;
    if (p->eku == SMKI_EKU_SERVER || p->eku == SMKI_EKU_CLIENT) {
        int want_server = p->eku == SMKI_EKU_SERVER;
        if (!L->eku.present || !L->eku.decoded)
            ERR(L, "dccki.eku", "extendedKeyUsage absent: %s required", want_server ? "serverAuth" : "clientAuth");
        else if ((want_server ? !L->eku_server : !L->eku_client) || (want_server ? L->eku_client : L->eku_server) ||
                 L->eku_other)
            ERR(L, "dccki.eku", "extendedKeyUsage must be exactly %s: one certificate per TLS role",
                want_server ? "serverAuth" : "clientAuth");
    }
}

/* Extensions the profile does not list. */
static void check_ext_allowed(lint_t *L)
{
    const smki_profile *p = L->p;
    for (size_t i = 0; i < L->n_exts; i++) {
        const ext_info *e = &L->exts[i];
        if (e->kind && (p->ext_allowed & e->kind)) continue;
        if (!e->kind && e->critical)
            ERR(L, "ext.unknown_critical", "unknown critical extension %s (RFC 5280 4.2: must be refused)", e->name);
        else if (p->extra_ext_error)
            ERR(L, "ext.unexpected", "extension %s is not part of the %s profile", e->name, p->name);
        else
            WARN(L, "ext.unexpected", "extension %s is not part of the %s profile", e->name, p->name);
    }
}

/* ---- Names ------------------------------------------------------------------------------- */

static int is_string_tag(uint8_t tag)
{
    return tag == 0x0c || tag == 0x13; /* UTF8String, PrintableString */
}

static void check_strings(lint_t *L)
{
    const name_t *s = &L->subject;
    for (size_t i = 0; i < s->n; i++) {
        const attr_t *a = &s->a[i];
        if (oid_is(a, OID_UID, sizeof OID_UID)) continue;
        if (!is_string_tag(a->tag))
            ERR(L, "subject.string",
                "a subject attribute is of ASN.1 type %u: UTF8String or PrintableString (RFC 5280 4.1.2.6)", a->tag);
        else if (a->tag == 0x13 && L->p->pki == SMKI_PKI_SMKI && !oid_is(a, OID_C, sizeof OID_C))
            WARN(L, "subject.string", "subject attribute \"%s\" is a PrintableString: SMKI issues UTF8String",
                 shown(a->val, a->val_len).s);
    }
    if (s->multi_valued) ERR(L, "subject.rdn", "the subject has a multi-valued RDN: one attribute per RDN");
}

static void check_subject(lint_t *L)
{
    const smki_profile *p = L->p;
    const name_t *s = &L->subject;
    if (!s->parsed) return;
    switch (p->subject) {
    case SMKI_SUBJECT_EMPTY:
        if (s->n)
            ERR(L, "device.subject", "a device certificate's subject must be empty; it has %zu attribute(s)", s->n);
        return;
    case SMKI_SUBJECT_SMKI_CA:
        if (L->n_ou != 1 || L->n_cn != 1 || s->n != 2)
            ERR(L, "ca.subject", "a %s's subject is OU=<role>, CN=<name> and nothing else", p->title);
        if (L->ou && (!L->ou_is_role || L->ou_code > 0xff || !(smki_role_by_code(L->ou_code)->on & p->roles)))
            ERR(L, "ca.role", "OU \"%s\" is not %s", shown(L->ou->val, L->ou->val_len).s,
                p->roles == SMKI_ROLE_ON_ROOT ? "00 (root)" : "07 (issuingAuthority)");
        break;
    case SMKI_SUBJECT_ORGANISATION: {
        if (L->n_ou == 0)
            ERR(L, "org.role", "no OU: an organisation certificate carries its Remote Party Role there (reference §3)");
        else if (L->n_ou > 1)
            ERR(L, "org.role", "%zu OUs: one Remote Party Role per certificate", L->n_ou);
        else if (!L->ou_is_role || L->ou_code > 0xff)
            ERR(L, "org.role", "OU \"%s\" is not a Remote Party Role (two hex digits: 01-06, 08, 7F, 87, 89)",
                shown(L->ou->val, L->ou->val_len).s);
        else if (!(smki_role_by_code(L->ou_code)->on & SMKI_ROLE_ON_ORGANISATION))
            ERR(L, "org.role", "OU %02X (%s) belongs on CA certificates, not organisation certificates", L->ou_code,
                smki_role_name(L->ou_code));
        else
            L->r->role = (int)L->ou_code;
        if (L->n_uid == 0)
            ERR(L, "org.uid", "no x500UniqueIdentifier: an organisation certificate carries its EUI-64 there");
        else if (L->n_uid > 1)
            ERR(L, "org.uid", "%zu x500UniqueIdentifiers: one EUI-64 per certificate", L->n_uid);
        else if (L->uid->tag != 0x03 || L->uid->val_len < 1 || L->uid->val[0] != 0)
            ERR(L, "org.uid", "x500UniqueIdentifier is not a BIT STRING without unused bits");
        else if (L->uid->val_len - 1 != 8)
            ERR(L, "eui64.length", "x500UniqueIdentifier holds %zu octets: an EUI-64 is 8", L->uid->val_len - 1);
        else {
            L->r->has_id = 1;
            memcpy(L->r->id.b, L->uid->val + 1, 8);
        }
        if (L->n_cn > 1) ERR(L, "subject.attr", "%zu CNs: at most one", L->n_cn);
        if (L->n_o || L->n_c || L->n_other || L->n_party)
            ERR(L, "subject.attr", "the subject has attributes beyond CN, OU and x500UniqueIdentifier");
        break;
    }
    case SMKI_SUBJECT_DCCKI_CA:
    case SMKI_SUBJECT_DCCKI_PARTY:
        if (L->n_cn > 1 || (L->n_cn == 0 && p->subject == SMKI_SUBJECT_DCCKI_CA))
            ERR(L, "dccki.subject", "the subject has %zu CNs: a %s has %s", L->n_cn, p->title,
                p->subject == SMKI_SUBJECT_DCCKI_CA ? "exactly one" : "at most one");
        if (p->subject == SMKI_SUBJECT_DCCKI_PARTY) {
            if (L->n_party != 1)
                ERR(L, "dccki.party_signifier", "%zu Party Signifier attributes (%s): exactly one", L->n_party,
                    L->env ? L->env->party_signifier_attr : "2.5.4.97");
            else if (!is_string_tag(L->party->tag) || L->party->val_len < 1 || L->party->val_len > 64)
                ERR(L, "dccki.party_signifier", "the Party Signifier is not a string of 1 to 64 characters");
        }
        if (L->n_uid || L->n_other || (L->ou_is_role && L->ou_code <= 0xff))
            ERR(L, "subject.attr",
                "the subject carries SMKI or unknown attributes (a role OU, x500UniqueIdentifier, ...)");
        break;
    default:
        return;
    }
    check_strings(L);
}

/* The issuer, and the CA names the environment configures. */
static void check_names(lint_t *L)
{
    const smki_profile *p = L->p;
    if (L->issuer.parsed && L->issuer.n == 0) ERR(L, "issuer.empty", "the issuer name is empty (RFC 5280 4.1.2.4)");
    if (p->self_signed == 1) {
        if (!L->self_issued)
            ERR(L, "root.self_signed", "a %s is self-signed: its issuer must equal its subject", p->title);
        else if (L->key_p256 && X509_verify(L->x, X509_get0_pubkey(L->x)) != 1)
            ERR(L, "root.signature", "the self-signature does not verify with the certificate's own key");
    } else if (p->self_signed == 0 && L->self_issued) {
        ERR(L, "issuer.self", "a %s is issued by a CA, but its issuer equals its subject", p->title);
    }
    const smki_env *env = L->env;
    if (!env) return;
    const char *issuer_names = NULL, *own_names = NULL;
    switch (p->id) {
    case SMKI_PROFILE_SMKI_ROOT:
        own_names = env->root_name;
        break;
    case SMKI_PROFILE_SMKI_OCA:
        issuer_names = env->root_name;
        own_names = env->oca_name;
        break;
    case SMKI_PROFILE_SMKI_DCA:
        issuer_names = env->root_name;
        own_names = env->dca_name;
        break;
    case SMKI_PROFILE_ORGANISATION:
        issuer_names = env->oca_name;
        break;
    case SMKI_PROFILE_DEVICE:
        issuer_names = env->dca_name;
        break;
    case SMKI_PROFILE_DCCKI_ROOT:
        own_names = env->dccki_root_name;
        break;
    case SMKI_PROFILE_DCCKI_ICA:
        issuer_names = env->dccki_root_name;
        own_names = env->dccki_ica_name;
        break;
    case SMKI_PROFILE_DCCKI_SERVER:
    case SMKI_PROFILE_DCCKI_CLIENT:
        issuer_names = env->dccki_ica_name;
        break;
    default:
        break;
    }
    if (issuer_names && issuer_names[0] && L->issuer.parsed) {
        const attr_t *cn = name_first(&L->issuer, OID_CN, sizeof OID_CN);
        if (!name_listed(cn, issuer_names))
            ERR(L, "issuer.name", "issuer CN \"%s\" is not one of environment %s's CAs for it (%s)",
                cn ? shown(cn->val, cn->val_len).s : "", env->name, issuer_names);
    }
    if (own_names && own_names[0] && L->subject.parsed) {
        const attr_t *cn = name_first(&L->subject, OID_CN, sizeof OID_CN);
        if (!name_listed(cn, own_names))
            ERR(L, "ca.name", "CA name \"%s\" is not one of environment %s's (%s)",
                cn ? shown(cn->val, cn->val_len).s : "", env->name, own_names);
    }
}

/* ---- Validity ---------------------------------------------------------------------------- */

typedef struct {
    int y, mo, d, h, mi, s;
} when_t;

static int digits(const uint8_t *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

static int days_in(int y, int mo)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mo == 2 && leap ? 29 : dm[mo - 1];
}

/* RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ through 2049, GeneralizedTime
 * YYYYMMDDHHMMSSZ from 2050; seconds always, no fractions, always Z. */
static const char *time_read(const ASN1_TIME *t, when_t *w)
{
    int type = ASN1_STRING_type(t);
    size_t n = (size_t)ASN1_STRING_length(t);
    const uint8_t *d = ASN1_STRING_get0_data(t);
    size_t ylen = type == V_ASN1_UTCTIME ? 2 : type == V_ASN1_GENERALIZEDTIME ? 4 : 0;
    if (!ylen) return "neither UTCTime nor GeneralizedTime";
    if (n != ylen + 11 || d[n - 1] != 'Z') return "not of the form YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ";
    for (size_t i = 0; i + 1 < n; i++)
        if (d[i] < '0' || d[i] > '9') return "not of the form YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ";
    w->y = digits(d, ylen);
    if (ylen == 2) w->y += w->y >= 50 ? 1900 : 2000;
    w->mo = digits(d + ylen, 2);
    w->d = digits(d + ylen + 2, 2);
    w->h = digits(d + ylen + 4, 2);
    w->mi = digits(d + ylen + 6, 2);
    w->s = digits(d + ylen + 8, 2);
    if (w->mo < 1 || w->mo > 12 || w->d < 1 || w->d > days_in(w->y, w->mo) || w->h > 23 || w->mi > 59 || w->s > 59)
        return "not a valid date and time";
    if (ylen == 4 && w->y < 2050) return "GeneralizedTime before 2050 (RFC 5280 4.1.2.5: UTCTime through 2049)";
    return NULL;
}

static int when_cmp(const when_t *a, const when_t *b)
{
    const int av[6] = {a->y, a->mo, a->d, a->h, a->mi, a->s}, bv[6] = {b->y, b->mo, b->d, b->h, b->mi, b->s};
    for (int i = 0; i < 6; i++)
        if (av[i] != bv[i]) return av[i] < bv[i] ? -1 : 1;
    return 0;
}

static void check_validity(lint_t *L)
{
    const smki_profile *p = L->p;
    const ASN1_TIME *nb = X509_get0_notBefore(L->x), *na = X509_get0_notAfter(L->x);
    when_t b, a;
    const char *why_b = time_read(nb, &b), *why_a = time_read(na, &a);
    if (why_b) ERR(L, "validity.encoding", "notBefore \"%s\": %s", shown(nb->data, (size_t)nb->length).s, why_b);
    if (why_a) ERR(L, "validity.encoding", "notAfter \"%s\": %s", shown(na->data, (size_t)na->length).s, why_a);
    if (p->validity == SMKI_VALIDITY_NO_EXPIRY &&
        !(ASN1_STRING_type(na) == V_ASN1_GENERALIZEDTIME && na->length == 15 && memcmp(na->data, NO_EXPIRY, 15) == 0))
        ERR(L, "device.not_after",
            "notAfter \"%s\": a device certificate has GeneralizedTime " NO_EXPIRY " (no expiry)",
            shown(na->data, (size_t)na->length).s);
    if (why_b || why_a) return;
    if (when_cmp(&b, &a) > 0) {
        ERR(L, "validity.order", "notBefore is after notAfter");
        return;
    }
    if (p->validity != SMKI_VALIDITY_YEARS || !L->env) return;
    unsigned years = L->env->years[p->id];
    if (p->id == SMKI_PROFILE_ORGANISATION && L->ou_is_role && L->ou_code <= 0xff &&
        (L->env->org_long_roles[L->ou_code / 8] & (1u << (L->ou_code % 8))))
        years = L->env->org_long_years;
    if (!years) return;
    when_t limit = b;
    limit.y += (int)years;
    if (when_cmp(&a, &limit) > 0)
        ERR(L, "validity.period",
            "valid from %04d-%02d-%02d to %04d-%02d-%02d: more than the %u years environment %s allows a %s", b.y, b.mo,
            b.d, a.y, a.mo, a.d, years, L->env->name, p->name);
}

/* ---- Strict DER -------------------------------------------------------------------------- */

/* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }: DER
 * omits a DEFAULT (X.690 11.5), but OpenSSL keeps an explicit FALSE and writes it
 * back, so re-encoding cannot show it. Walk the raw extensions for it. */
static void check_ext_defaults(lint_t *L, const uint8_t *tbs, size_t tbs_len)
{
    smki_cursor_t c = smki_cursor(tbs, tbs_len);
    smki_der_tlv t, field, exts;
    if (smki_der_read(&c, tbs, SMKI_DER_BER_LENGTHS, &t) < 0) return;
    while (t.body.left) {
        if (smki_der_read(&t.body, tbs, SMKI_DER_BER_LENGTHS, &field) < 0) return;
        if (field.tag != 0xa3) continue;
        if (smki_der_read(&field.body, tbs, SMKI_DER_BER_LENGTHS, &exts) < 0) return;
        while (exts.body.left) {
            smki_der_tlv ext, oid, crit;
            if (smki_der_read(&exts.body, tbs, SMKI_DER_BER_LENGTHS, &ext) < 0 || smki_der_read(&ext.body, tbs, SMKI_DER_BER_LENGTHS, &oid) < 0) return;
            if (ext.body.left && ext.body.p[0] == 0x01 && smki_der_read(&ext.body, tbs, SMKI_DER_BER_LENGTHS, &crit) == 0 && crit.body.left == 1 &&
                crit.body.p[0] == 0x00) {
                char name[OID_TEXT];
                oid_tlv_text(&oid, name, 0);
                ERR(L, "der.strict", "extension %s writes out critical FALSE, a DEFAULT that DER omits (X.690 11.5)",
                    name);
            }
        }
    }
}

/* OpenSSL tolerates BER in places and re-emits what it read, so DER is checked three
 * ways: a walk of every TLV (lengths, BOOLEAN, INTEGER, BIT STRING); the certificate
 * and its tbsCertificate encoded afresh and compared (DEFAULT values written out);
 * and the names and extension values the same way (read_extension). */
static void check_der(lint_t *L, const uint8_t *der, size_t len, const uint8_t *tbs, size_t tbs_len)
{
    unsigned char *out = NULL;
    int n = i2d_X509(L->x, &out);
    if (n < 0 || (size_t)n != len || memcmp(out, der, len) != 0)
        ERR(L, "der.strict", "the certificate is not DER: encoding it again gives different octets");
    OPENSSL_free(out);
    out = NULL;
    n = i2d_re_X509_tbs(L->x, &out);
    if (n < 0 || (size_t)n != tbs_len || memcmp(out, tbs, tbs_len) != 0)
        ERR(L, "der.strict",
            "the tbsCertificate is not DER (e.g. a DEFAULT value written out): encoding it again differs");
    OPENSSL_free(out);
    check_ext_defaults(L, tbs, tbs_len);
    if (!name_is_der(X509_get_issuer_name(L->x))) ERR(L, "der.strict", "the issuer name is not DER");
    if (!name_is_der(X509_get_subject_name(L->x))) ERR(L, "der.strict", "the subject name is not DER");
}

/* ---- The linter ---------------------------------------------------------------------------- */

static void set_party_oid(lint_t *L)
{
    const char *text = L->env ? L->env->party_signifier_attr : "2.5.4.97";
    ASN1_OBJECT *o = OBJ_txt2obj(text, 1);
    if (o && OBJ_length(o) <= sizeof L->party_oid) {
        L->party_oid_len = OBJ_length(o);
        memcpy(L->party_oid, OBJ_get0_data(o), L->party_oid_len);
    }
    ASN1_OBJECT_free(o);
}

static void lint_x509(lint_t *L, const smki_env *given)
{
    smki_lint_report *r = L->r;
    const unsigned char *nder = NULL;
    size_t nlen = 0;
    if (X509_NAME_get0_der(X509_get_subject_name(L->x), &nder, &nlen) != 1 || name_parse(nder, nlen, &L->subject) < 0)
        ERR(L, "der.parse", "the subject name does not parse: %s", smki_error_msg());
    if (X509_NAME_get0_der(X509_get_issuer_name(L->x), &nder, &nlen) != 1 || name_parse(nder, nlen, &L->issuer) < 0)
        ERR(L, "der.parse", "the issuer name does not parse: %s", smki_error_msg());
    L->self_issued = L->subject.n > 0 && X509_NAME_cmp(X509_get_issuer_name(L->x), X509_get_subject_name(L->x)) == 0;

    read_key(L);
    const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(L->x);
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) read_extension(L, sk_X509_EXTENSION_value(exts, i));

    L->env = given;
    if (!given) {
        L->env = smki_env_for_policy(L->policy_oid);
        r->env_inferred = L->env != NULL;
    }
    if (L->env) snprintf(r->env, sizeof r->env, "%s", L->env->name);
    set_party_oid(L);
    read_subject_facts(L);

    const char *why = NULL;
    r->profile = classify(L, &why);
    L->p = smki_profile_get(r->profile);
    if (why) ERR(L, "profile.unknown", "no profile fits: %s", why);
    if (L->ambiguous)
        WARN(L, "profile.ambiguous",
             "an issuing CA whose policy is neither the organisation nor the device policy of a known environment: "
             "linted as an organisation CA");
    if (!L->env)
        WARN(L, "env.none",
             "no environment given and policy %s matches none built in: policy and hwType values, CA names and "
             "validity periods were not checked (give one with --env)",
             L->policy_oid[0] ? L->policy_oid : "(none)");

    check_version_serial(L);
    check_signature(L);
    check_key_usage(L);
    check_ski(L);
    check_aki(L);
    check_basic(L);
    check_policies(L);
    check_san(L);
    check_eku(L);
    check_ext_allowed(L);
    check_subject(L);
    check_names(L);
    check_validity(L);
}

int smki_lint_der(const uint8_t *der, size_t len, const smki_env *env, smki_lint_report *out)
{
    ENSURE(out, SMKI_E_INTERNAL, "no report");
    memset(out, 0, sizeof *out);
    out->role = -1;
    if (env) GUARD(smki_env_check_configured(env));
    smki_error_clear();
    lint_t *L = OPENSSL_zalloc(sizeof *L);
    ENSURE(L, SMKI_E_NOMEM, "out of memory");
    L->r = out;

    /* The outer TLV and the tbsCertificate inside it, by the DER length rules. */
    smki_cursor_t c = smki_cursor(der, len);
    smki_der_tlv cert, tbs;
    if (smki_der_read(&c, der, SMKI_DER_BER_LENGTHS, &cert) < 0 || cert.tag != 0x30 || smki_der_read(&cert.body, der, SMKI_DER_BER_LENGTHS, &tbs) < 0 || tbs.tag != 0x30) {
        ERR(L, "der.parse", "not a certificate: %s",
            smki_error_code() ? smki_error_msg() : "no SEQUENCE { tbsCertificate SEQUENCE ... }");
        goto out;
    }
    if (c.left) ERR(L, "der.trailing", "%zu octet(s) after the certificate", c.left);
    if (smki_der_check_strict(smki_cursor(der, cert.total), der) < 0) ERR(L, "der.strict", "%s", smki_error_msg());

    const unsigned char *p = der;
    L->x = d2i_X509(NULL, &p, (long)cert.total);
    if (!L->x || p != der + cert.total) {
        unsigned long e = ERR_peek_last_error();
        ERR(L, "der.parse", "not an X.509 certificate: %s", e ? ERR_reason_error_string(e) : "trailing octets");
        goto out;
    }
    lint_x509(L, env);
    check_der(L, der, cert.total, tbs.start, tbs.total);
out:
    X509_free(L->x);
    OPENSSL_free(L);
    ERR_clear_error();
    smki_error_clear();
    return 0;
}

int smki_lint_is_clean(const smki_lint_report *r)
{
    return r && r->errors == 0;
}

const smki_lint_finding *smki_lint_find(const smki_lint_report *r, const char *rule)
{
    for (size_t i = 0; r && rule && i < r->count; i++)
        if (strcmp(r->findings[i].rule, rule) == 0) return &r->findings[i];
    return NULL;
}

void smki_lint_describe(const smki_lint_report *r, char *out, size_t cap)
{
    if (!cap) return;
    char role[SMKI_ROLE_TEXT_MAX] = "", id[SMKI_EUI64_TEXT_MAX] = "";
    if (r->role >= 0) smki_role_format((uint8_t)r->role, role);
    if (r->has_id) smki_eui64_format(&r->id, SMKI_EUI64_HYPHEN, id);
    unsigned ku = r->key_usage;
    const char *usage = (ku & (DS | KA)) == DS ? " DS" : (ku & (DS | KA)) == KA ? " KA" : "";
    int is_ee = r->profile == SMKI_PROFILE_ORGANISATION || r->profile == SMKI_PROFILE_DEVICE;
    snprintf(out, cap, "%s%s%s%s%s%s%s", smki_profile_get(r->profile)->name, role[0] ? " " : "", role,
             role[0] ? " " : "", role[0] ? smki_role_name((unsigned)r->role) : "", is_ee ? usage : "",
             id[0] ? " " : "");
    size_t n = strlen(out);
    if (id[0] && n < cap) snprintf(out + n, cap - n, "%s", id);
}
