/* Issuing: a template per issuer, prepared once, and one certificate at a time
 * assembled as DER around the CSR's own SubjectPublicKeyInfo, signed over the
 * SHA-256 of its tbsCertificate and linted before it leaves. No X509 object is made
 * per certificate: re-encoding a decoded key would halve the rate (issue 3). */
#include <openssl/asn1.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_private.h"
#include "ca_test.h"
#include "der.h"

const uint8_t SMKI_CA_ALG_ECDSA_SHA256[12] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
const uint8_t SMKI_CA_SPKI_P256_PREFIX[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};

/* Extension OIDs (id-ce, RFC 5280 4.2.1) and name attributes (X.520), contents octets. */
static const uint8_t OID_KU[] = {0x55, 0x1d, 0x0f};
static const uint8_t OID_SKI[] = {0x55, 0x1d, 0x0e};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_BASIC[] = {0x55, 0x1d, 0x13};
static const uint8_t OID_POLICIES[] = {0x55, 0x1d, 0x20};
static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};
static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_OU[] = {0x55, 0x04, 0x0b};
static const uint8_t OID_UID[] = {0x55, 0x04, 0x2d}; /* x500UniqueIdentifier */
/* id-on-hardwareModuleName, 1.3.6.1.5.5.7.8.4 (RFC 4108 5) */
static const uint8_t OID_HW_MODULE[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04};
/* RFC 5280 4.1.2.5: a certificate without a well-defined expiration date. */
static const char NO_EXPIRY[] = "99991231235959Z";

/* ---- Serial numbers ------------------------------------------------------------------- */

static _Thread_local uint8_t fixed_serial[SMKI_SERIAL_LEN];
static _Thread_local int has_fixed_serial;

/* Serials are drawn from the CSPRNG SERIAL_POOL at a time: one call per certificate
 * cost more than the serial's bytes. Each thread has its own pool, an entry is
 * wiped once taken, and a child process after fork() starts with an empty pool so
 * that it never repeats its parent's serials. */
#define SERIAL_POOL 32
static _Thread_local uint8_t serial_pool[SERIAL_POOL * SMKI_SERIAL_LEN];
static _Thread_local size_t serial_pool_left;
static pthread_once_t serial_fork_once = PTHREAD_ONCE_INIT;

static void serial_pool_drop(void)
{
    OPENSSL_cleanse(serial_pool, sizeof serial_pool);
    serial_pool_left = 0;
}

static void serial_fork_register(void)
{
    (void)pthread_atfork(NULL, NULL, serial_pool_drop);
}

void smki_ca_test_fix_serial(const uint8_t serial[SMKI_SERIAL_LEN])
{
    has_fixed_serial = serial != NULL;
    if (serial) memcpy(fixed_serial, serial, SMKI_SERIAL_LEN);
}

int smki_ca_serial_new(uint8_t serial[SMKI_SERIAL_LEN], int *is_fixed)
{
    *is_fixed = has_fixed_serial;
    if (has_fixed_serial) {
        memcpy(serial, fixed_serial, SMKI_SERIAL_LEN);
        return 0;
    }
    if (serial_pool_left == 0) {
        ENSURE(pthread_once(&serial_fork_once, serial_fork_register) == 0, SMKI_E_INTERNAL, "pthread_once failed");
        ENSURE_SSL(RAND_priv_bytes(serial_pool, sizeof serial_pool) == 1, SMKI_E_CRYPTO,
                   "the CSPRNG failed drawing serials");
        serial_pool_left = SERIAL_POOL;
    }
    uint8_t *take = serial_pool + --serial_pool_left * SMKI_SERIAL_LEN;
    memcpy(serial, take, SMKI_SERIAL_LEN);
    OPENSSL_cleanse(take, SMKI_SERIAL_LEN);
    /* The first octet is forced into 0x40..0x7F: its top bit clear, so the INTEGER is
     * positive without a 00 octet in front, and not zero, so DER keeps all 16
     * octets (X.690 8.3.2). 126 random bits remain, well above the 64 that RFC 5280
     * 4.1.2.2 and the CA/B Forum ask for, and every serial is exactly 16 octets as in
     * every observed SMKI certificate. */
    serial[0] = (uint8_t)(0x40 | (serial[0] & 0x3f));
    return 0;
}

/* ---- Pieces ------------------------------------------------------------------------------ */

/* Well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF), no control
 * characters; counts characters. */
static int utf8_chars(const char *s, size_t *chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        unsigned c = *p, need, min;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return -1;
            p++;
            n++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) need = 1, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0) need = 2, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0) need = 3, min = 0x10000, c &= 0x07;
        else return -1;
        p++;
        for (unsigned i = 0; i < need; i++, p++) {
            if ((*p & 0xc0) != 0x80) return -1;
            c = c << 6 | (*p & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || (c >= 0x80 && c < 0xa0)) return -1;
        n++;
    }
    *chars = n;
    return 0;
}

int smki_ca_check_cn(const char *cn, const char *what)
{
    size_t chars = 0;
    ENSURE(cn && utf8_chars(cn, &chars) == 0, SMKI_E_USAGE, "%s '%.64s' is not UTF-8 text without control characters",
           what, cn ? cn : "");
    /* ub-common-name (RFC 5280 appendix A.1) */
    ENSURE(chars >= 1 && chars <= 64, SMKI_E_USAGE, "%s must have 1 to 64 characters, not %zu", what, chars);
    return 0;
}

static void rdn_utf8(smki_writer_t *w, const uint8_t *oid, size_t oid_len, const char *text)
{
    smki_der_mark set = smki_wr_der_begin(w, 0x31);
    smki_der_mark atv = smki_wr_der_begin(w, 0x30);
    smki_wr_der(w, 0x06, oid, oid_len);
    smki_wr_der(w, 0x0c, text, strlen(text));
    smki_wr_der_end(w, atv);
    smki_wr_der_end(w, set);
}

int smki_ca_name_ou_cn(const char *ou, const char *cn, uint8_t *out, size_t cap, size_t *len)
{
    smki_writer_t w;
    smki_writer_fixed(&w, out, cap);
    smki_der_mark name = smki_wr_der_begin(&w, 0x30);
    /* OU before CN, as the RTDS certificates name their CAs ("OU = 07, CN = Z1"). */
    if (ou) rdn_utf8(&w, OID_OU, sizeof OID_OU, ou);
    if (cn) rdn_utf8(&w, OID_CN, sizeof OID_CN, cn);
    smki_wr_der_end(&w, name);
    GUARD(smki_wr_check(&w, "a CA name"));
    *len = w.len;
    return 0;
}

/* An organisation's subject in the order of keystore/90b3d51f30010000-ds.pem:
 * [CN], OU = role (two hex digits), x500UniqueIdentifier = BIT STRING of the EUI-64
 * (03 09 00 <8 octets>); strings as UTF8String (reference §4). */
static int org_subject(const char *cn, uint8_t role, const smki_eui64_t *eui, uint8_t *out, size_t cap, size_t *len)
{
    char ou[SMKI_ROLE_TEXT_MAX];
    smki_role_format(role, ou);
    smki_writer_t w;
    smki_writer_fixed(&w, out, cap);
    smki_der_mark name = smki_wr_der_begin(&w, 0x30);
    if (cn) rdn_utf8(&w, OID_CN, sizeof OID_CN, cn);
    rdn_utf8(&w, OID_OU, sizeof OID_OU, ou);
    smki_der_mark set = smki_wr_der_begin(&w, 0x31);
    smki_der_mark atv = smki_wr_der_begin(&w, 0x30);
    smki_wr_der(&w, 0x06, OID_UID, sizeof OID_UID);
    uint8_t bits[9] = {0x00};
    memcpy(bits + 1, eui->b, 8);
    smki_wr_der(&w, 0x03, bits, sizeof bits);
    smki_wr_der_end(&w, atv);
    smki_wr_der_end(&w, set);
    smki_wr_der_end(&w, name);
    GUARD(smki_wr_check(&w, "the subject name"));
    *len = w.len;
    return 0;
}

/* keyUsage as a DER named-bit BIT STRING: trailing zero bits removed (X.690 11.2.2). */
static void ku_bits(smki_writer_t *w, unsigned ku)
{
    uint8_t b[2] = {(uint8_t)(ku & 0xff), (uint8_t)(ku >> 8 & 0xff)};
    size_t n = b[1] ? 2 : 1;
    uint8_t last = b[n - 1];
    uint8_t unused = 0;
    while (last && !(last & 1)) {
        last >>= 1;
        unused++;
    }
    uint8_t content[3] = {unused, b[0], b[1]};
    smki_wr_der(w, 0x03, content, n + 1);
}

static smki_der_mark ext_begin(smki_writer_t *w, const uint8_t *oid, size_t oid_len, int critical, smki_der_mark *outer)
{
    static const uint8_t CRITICAL[] = {0x01, 0x01, 0xff};
    *outer = smki_wr_der_begin(w, 0x30);
    smki_wr_der(w, 0x06, oid, oid_len);
    if (critical) smki_wr_raw(w, CRITICAL, sizeof CRITICAL); /* FALSE is the DEFAULT: omitted (X.690 11.5) */
    return smki_wr_der_begin(w, 0x04);
}

static void ext_end(smki_writer_t *w, smki_der_mark value, smki_der_mark outer)
{
    smki_wr_der_end(w, value);
    smki_wr_der_end(w, outer);
}

static void write_extensions(smki_writer_t *w, const ca_tbs *t)
{
    smki_der_mark outer, v, m, m2, m3;
    smki_der_mark x3 = smki_wr_der_begin(w, 0xa3);
    smki_der_mark exts = smki_wr_der_begin(w, 0x30);

    v = ext_begin(w, OID_KU, sizeof OID_KU, 1, &outer);
    ku_bits(w, t->ku);
    ext_end(w, v, outer);

    v = ext_begin(w, OID_SKI, sizeof OID_SKI, 0, &outer);
    smki_wr_der(w, 0x04, t->ski, SMKI_KEYID_LEN);
    ext_end(w, v, outer);

    if (t->hw_serial) { /* critical: the subject is empty (RFC 5280 4.2.1.6) */
        v = ext_begin(w, OID_SAN, sizeof OID_SAN, 1, &outer);
        m = smki_wr_der_begin(w, 0x30);               /* GeneralNames */
        m2 = smki_wr_der_begin(w, 0xa0);              /* [0] otherName */
        smki_wr_der(w, 0x06, OID_HW_MODULE, sizeof OID_HW_MODULE);
        m3 = smki_wr_der_begin(w, 0xa0);              /* [0] EXPLICIT value */
        smki_der_mark hm = smki_wr_der_begin(w, 0x30);    /* HardwareModuleName */
        smki_wr_der(w, 0x06, t->hw_type, t->hw_type_len);
        smki_wr_der(w, 0x04, t->hw_serial, 8);
        smki_wr_der_end(w, hm);
        smki_wr_der_end(w, m3);
        smki_wr_der_end(w, m2);
        smki_wr_der_end(w, m);
        ext_end(w, v, outer);
    }
    if (t->basic) {
        static const uint8_t CA_TRUE[] = {0x01, 0x01, 0xff};
        static const uint8_t PATHLEN0[] = {0x02, 0x01, 0x00};
        v = ext_begin(w, OID_BASIC, sizeof OID_BASIC, 1, &outer);
        m = smki_wr_der_begin(w, 0x30);
        smki_wr_raw(w, CA_TRUE, sizeof CA_TRUE);
        if (t->basic == 2) smki_wr_raw(w, PATHLEN0, sizeof PATHLEN0);
        smki_wr_der_end(w, m);
        ext_end(w, v, outer);
    }

    v = ext_begin(w, OID_POLICIES, sizeof OID_POLICIES, t->policy_critical, &outer);
    m = smki_wr_der_begin(w, 0x30);
    m2 = smki_wr_der_begin(w, 0x30); /* PolicyInformation, no qualifiers */
    smki_wr_der(w, 0x06, t->policy, t->policy_len);
    smki_wr_der_end(w, m2);
    smki_wr_der_end(w, m);
    ext_end(w, v, outer);

    if (t->aki) { /* [0] keyIdentifier only */
        v = ext_begin(w, OID_AKI, sizeof OID_AKI, 0, &outer);
        m = smki_wr_der_begin(w, 0x30);
        smki_wr_der(w, 0x80, t->aki, SMKI_KEYID_LEN);
        smki_wr_der_end(w, m);
        ext_end(w, v, outer);
    }
    if (t->more_exts) smki_wr_raw(w, t->more_exts, t->more_exts_len); /* DCCKI: SAN, EKU (dccki.c) */
    smki_wr_der_end(w, exts);
    smki_wr_der_end(w, x3);
}

int smki_ca_assemble(const ca_tbs *t, smki_key *key, uint8_t *out, size_t cap, size_t *len)
{
    static const uint8_t V3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};
    smki_writer_t w;
    smki_writer_fixed(&w, out, cap);
    smki_der_mark cert = smki_wr_der_begin(&w, 0x30);
    smki_der_mark tbs = smki_wr_der_begin(&w, 0x30);
    smki_wr_raw(&w, V3, sizeof V3);
    smki_wr_der_uint(&w, t->serial, SMKI_SERIAL_LEN);
    smki_wr_raw(&w, SMKI_CA_ALG_ECDSA_SHA256, sizeof SMKI_CA_ALG_ECDSA_SHA256);
    smki_wr_raw(&w, t->issuer, t->issuer_len);
    smki_der_mark validity = smki_wr_der_begin(&w, 0x30);
    smki_ca_derw_time(&w, t->not_before);
    if (t->not_after < 0)
        smki_wr_der(&w, 0x18, NO_EXPIRY, sizeof NO_EXPIRY - 1);
    else
        smki_ca_derw_time(&w, t->not_after);
    smki_wr_der_end(&w, validity);
    smki_wr_raw(&w, t->subject, t->subject_len);
    smki_wr_raw(&w, t->spki, t->spki_len);
    write_extensions(&w, t);
    smki_wr_der_end(&w, tbs);
    GUARD(smki_wr_check(&w, "the tbsCertificate"));

    /* The tbsCertificate now starts where the Certificate's contents do. */
    uint8_t digest[SHA256_DIGEST_LENGTH], sig[SMKI_SIG_MAX] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    size_t sig_len = 8;
    if (key) {
        sig_len = sizeof sig;
        GUARD(smki_ca_sha256(out + cert, w.len - cert, digest));
        GUARD(smki_key_sign_digest(key, digest, SMKI_SIG_DER, sig, &sig_len));
    }
    smki_wr_raw(&w, SMKI_CA_ALG_ECDSA_SHA256, sizeof SMKI_CA_ALG_ECDSA_SHA256);
    smki_der_mark bits = smki_wr_der_begin(&w, 0x03);
    smki_wr_u8(&w, 0x00);
    smki_wr_raw(&w, sig, sig_len);
    smki_wr_der_end(&w, bits);
    smki_wr_der_end(&w, cert);
    GUARD(smki_wr_check(&w, "the certificate"));
    *len = w.len;
    return 0;
}

int smki_ca_lint_release(const uint8_t *der, size_t len, const smki_env *env, smki_profile_id want, smki_lint_report *rep)
{
    GUARD(smki_lint_der(der, len, env, rep));
    if (smki_lint_is_clean(rep) && rep->profile == want) return 0;
    char rules[256] = "";
    const char *first = rep->profile != want ? "it lints as another profile" : "";
    size_t k = 0;
    for (size_t i = 0; i < rep->count; i++) {
        if (rep->findings[i].level != SMKI_LINT_ERROR) continue;
        if (!first[0]) first = rep->findings[i].message;
        int n = snprintf(rules + k, sizeof rules - k, "%s%s", k ? ", " : "", rep->findings[i].rule);
        if (n < 0 || (size_t)n >= sizeof rules - k) break;
        k += (size_t)n;
    }
    return SMKI_FAIL(SMKI_E_INTERNAL,
                     "the %s certificate built here fails its profile (lint: %s; %s): not released, nothing stored",
                     smki_profile_get(want)->name, rules[0] ? rules : smki_profile_get(rep->profile)->name, first);
}

/* ---- The issuer template ------------------------------------------------------------ */

struct smki_ca_issuer {
    smki_env env;
    smki_key *key;
    smki_profile_id profile; /* the CA's own */
    smki_profile_id leaf;    /* what it issues; UNKNOWN: CA certificates only (ceremony) */
    uint8_t *cert;
    size_t cert_len;
    uint8_t name[512]; /* its subject: the issuer of what it signs */
    size_t name_len;
    uint8_t ski[SMKI_KEYID_LEN];
    int64_t not_after;
    uint8_t policy[64];
    size_t policy_len;
    uint8_t hw_type[64];
    size_t hw_type_len;
    ca_fast_ref *fast; /* device issuers: the templates, DS and KA (lint_fast.c) */
};

static int64_t now_seconds(void);

static int64_t asn1_time_seconds(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return -1;
    der_civil c = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
    return smki_ca_der_time_from_civil(&c);
}

/* The device templates: a certificate as smki_ca_build makes one, with a placeholder
 * key (P-256's generator), serial, Device ID and signature, never signed by the CA
 * nor released; linted in full here. A template that does not lint clean is simply
 * not used: every certificate then goes through the full linter, which names what
 * is wrong. */
static int fast_prepare(smki_ca_issuer *is, smki_lint_report *rep)
{
    static const uint8_t G[SMKI_POINT_LEN] = {
        0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
        0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f,
        0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce,
        0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};
    static const uint8_t EMPTY_NAME[] = {0x30, 0x00};
    static const uint8_t SERIAL[SMKI_SERIAL_LEN] = {0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t HW[8] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0};
    is->fast = calloc(2, sizeof *is->fast);
    ENSURE(is->fast, SMKI_E_NOMEM, "out of memory");
    uint8_t spki[sizeof SMKI_CA_SPKI_P256_PREFIX + SMKI_POINT_LEN], ski[SMKI_KEYID_LEN], der[SMKI_CERT_DER_MAX];
    memcpy(spki, SMKI_CA_SPKI_P256_PREFIX, sizeof SMKI_CA_SPKI_P256_PREFIX);
    memcpy(spki + sizeof SMKI_CA_SPKI_P256_PREFIX, G, SMKI_POINT_LEN);
    GUARD(smki_keyid_method2(G, SMKI_POINT_LEN, ski));
    for (int i = 0; i < 2; i++) {
        /* The fields of smki_ca_build's device certificate. */
        ca_tbs t = {
            .profile = SMKI_PROFILE_DEVICE,
            .serial = SERIAL,
            .issuer = is->name,
            .issuer_len = is->name_len,
            .not_before = now_seconds(),
            .not_after = -1,
            .subject = EMPTY_NAME,
            .subject_len = sizeof EMPTY_NAME,
            .spki = spki,
            .spki_len = sizeof spki,
            .ku = i == 0 ? SMKI_KU_DIGITAL_SIGNATURE : SMKI_KU_KEY_AGREEMENT,
            .ski = ski,
            .aki = is->ski,
            .policy = is->policy,
            .policy_len = is->policy_len,
            .policy_critical = 1,
            .hw_type = is->hw_type,
            .hw_type_len = is->hw_type_len,
            .hw_serial = HW,
        };
        size_t len = 0;
        if (smki_ca_assemble(&t, NULL, der, sizeof der, &len) < 0 || smki_ca_fast_learn(&is->fast[i], der, len) < 0 ||
            smki_lint_der(der, len, &is->env, rep) < 0) {
            smki_error_clear(); /* no template: the full linter releases every certificate */
            is->fast[i].ready = 0;
            continue;
        }
        is->fast[i].ready = smki_lint_is_clean(rep) && rep->profile == SMKI_PROFILE_DEVICE;
    }
    return 0;
}

const ca_fast_ref *smki_ca_issuer_fast_ref(const smki_ca_issuer *is, int usage)
{
    return is && is->fast ? &is->fast[usage == SMKI_USAGE_KA] : NULL;
}

static int issuer_prepare(smki_ca_issuer *is, const uint8_t *cert, size_t len)
{
    int rc = 0;
    smki_lint_report *rep = calloc(1, sizeof *rep);
    ENSURE(rep, SMKI_E_NOMEM, "out of memory");
    const unsigned char *p = cert;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    ENSURE_SSL_GOTO(x && p == cert + len, SMKI_E_CORRUPT, out, "the CA certificate does not decode");
    GUARD_GOTO(smki_lint_der(cert, len, &is->env, rep), out);
    is->profile = rep->profile;
    ENSURE_GOTO(smki_lint_is_clean(rep) && smki_profile_get(rep->profile)->is_ca, SMKI_E_REFUSED, out,
                "the issuer's certificate is not a clean CA certificate of environment %s (%s%s%s)", is->env.name,
                smki_profile_get(rep->profile)->name, rep->count ? ": " : "",
                rep->count ? rep->findings[0].message : "");
    EVP_PKEY *pub = smki_key_public(is->key);
    ENSURE_GOTO(pub && EVP_PKEY_eq(X509_get0_pubkey(x), pub) == 1, SMKI_E_REFUSED, out,
                "the CA key %s is not the key of its certificate", smki_key_ref(is->key));
    const unsigned char *nder = NULL;
    size_t nlen = 0;
    ENSURE_SSL_GOTO(X509_NAME_get0_der(X509_get_subject_name(x), &nder, &nlen) == 1 && nlen <= sizeof is->name,
                    SMKI_E_CORRUPT, out, "the CA certificate's subject");
    memcpy(is->name, nder, nlen);
    is->name_len = nlen;
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    ENSURE_GOTO(ski && ASN1_STRING_length(ski) == SMKI_KEYID_LEN, SMKI_E_REFUSED, out,
                "the CA certificate's subjectKeyIdentifier is not of %d octets", SMKI_KEYID_LEN);
    memcpy(is->ski, ASN1_STRING_get0_data(ski), SMKI_KEYID_LEN);
    is->not_after = asn1_time_seconds(X509_get0_notAfter(x));

    const char *policy = NULL;
    if (is->profile == SMKI_PROFILE_SMKI_OCA) {
        is->leaf = SMKI_PROFILE_ORGANISATION;
        policy = is->env.org_policy;
    } else if (is->profile == SMKI_PROFILE_SMKI_DCA) {
        is->leaf = SMKI_PROFILE_DEVICE;
        policy = is->env.device_policy;
        GUARD_GOTO(smki_ca_der_oid_from_text(is->env.hw_type, is->hw_type, sizeof is->hw_type, &is->hw_type_len), out);
    } else if (is->profile == SMKI_PROFILE_DCCKI_ICA) {
        is->leaf = SMKI_PROFILE_DCCKI_SERVER; /* and DCCKI_CLIENT: dccki.c */
        policy = is->env.dccki_policy;
        ENSURE_GOTO(policy[0], SMKI_E_USAGE, out, "environment %s has no DCCKI policy OID (dccki_policy)",
                    is->env.name);
    }
    if (policy) GUARD_GOTO(smki_ca_der_oid_from_text(policy, is->policy, sizeof is->policy, &is->policy_len), out);
    if (is->leaf == SMKI_PROFILE_DEVICE) GUARD_GOTO(fast_prepare(is, rep), out);
out:
    X509_free(x);
    free(rep);
    return rc;
}

int smki_ca_issuer_new(const smki_env *env, const uint8_t *cert, size_t cert_len, smki_key *key,
                       smki_ca_issuer **out)
{
    int rc = 0;
    *out = NULL;
    smki_ca_issuer *is = calloc(1, sizeof *is);
    if (!is) {
        smki_key_free(key);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    is->key = key;
    ENSURE_GOTO(env && key && cert && cert_len, SMKI_E_INTERNAL, fail, "smki_ca_issuer_new: missing argument");
    GUARD_GOTO(smki_env_check_configured(env), fail);
    is->env = *env;
    is->cert = malloc(cert_len);
    ENSURE_GOTO(is->cert, SMKI_E_NOMEM, fail, "out of memory");
    memcpy(is->cert, cert, cert_len);
    is->cert_len = cert_len;
    GUARD_GOTO(issuer_prepare(is, cert, cert_len), fail);
    *out = is;
    return 0;
fail:
    smki_ca_issuer_free(is);
    return rc;
}

void smki_ca_issuer_free(smki_ca_issuer *is)
{
    if (!is) return;
    smki_key_free(is->key);
    free(is->cert);
    free(is->fast);
    free(is);
}

void smki_ca_issuer_view_of(smki_ca_issuer *is, ca_issuer_view *v)
{
    *v = (ca_issuer_view){&is->env, is->key, is->profile, is->name, is->name_len, is->ski, is->not_after,
                          is->policy, is->policy_len};
}

const smki_env *smki_ca_issuer_env(const smki_ca_issuer *is)
{
    return &is->env;
}

smki_profile_id smki_ca_issuer_profile(const smki_ca_issuer *is)
{
    return is->profile;
}

const uint8_t *smki_ca_issuer_cert(const smki_ca_issuer *is, size_t *len)
{
    *len = is->cert_len;
    return is->cert;
}

int smki_ca_issuer_open(smki_ca_db *db, const char *env, smki_profile_id leaf, const smki_hsm_opts *o,
                        smki_ca_issuer **out)
{
    *out = NULL;
    smki_ca_kind kind;
    if (leaf == SMKI_PROFILE_ORGANISATION)
        kind = SMKI_CA_OCA;
    else if (leaf == SMKI_PROFILE_DEVICE)
        kind = SMKI_CA_DCA;
    else if (leaf == SMKI_PROFILE_DCCKI_SERVER || leaf == SMKI_PROFILE_DCCKI_CLIENT)
        kind = SMKI_CA_DCCKI_ICA;
    else
        return SMKI_FAIL(SMKI_E_USAGE, "smki issues %s certificates only through a ceremony or not yet",
                         smki_profile_get(leaf)->name);
    smki_ca_record *rec = calloc(1, sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    smki_env e;
    smki_key *key = NULL;
    int rc = smki_ca_get(db, env, kind, rec);
    if (rc == SMKI_E_NOTFOUND)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no %s CA yet: run 'smki ca init --env %s' first", env,
                       kind == SMKI_CA_OCA ? "organisation" : kind == SMKI_CA_DCA ? "device" : "DCCKI issuing",
                       env);
    if (rc == 0 && rec->cert.status == SMKI_STATUS_REVOKED)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "the %s CA of environment %s is revoked: it issues nothing more",
                       smki_ca_kind_name(kind), env);
    if (rc == 0) rc = smki_ca_env_get(db, env, &e);
    if (rc == 0) {
        rc = smki_key_open(rec->key_ref, o, &key);
        if (rc < 0) smki_error_wrap("the %s CA's key of environment %s", smki_ca_kind_name(kind), env);
    }
    if (rc == 0) rc = smki_ca_issuer_new(&e, rec->cert.der, rec->cert.der_len, key, out);
    free(rec);
    return rc;
}

/* ---- One certificate ------------------------------------------------------------------- */

static int64_t now_seconds(void)
{
    return (int64_t)time(NULL);
}

static int check_request(const smki_ca_issuer *is, const smki_issue_req *r, smki_profile_id *profile)
{
    ENSURE(r && r->csr, SMKI_E_USAGE, "no CSR in the request");
    const smki_csr *csr = r->csr;
    smki_profile_id p = r->profile;
    if (p == SMKI_PROFILE_UNKNOWN) p = csr->has_hw_module_name ? SMKI_PROFILE_DEVICE : SMKI_PROFILE_ORGANISATION;
    ENSURE(p == SMKI_PROFILE_DEVICE || p == SMKI_PROFILE_ORGANISATION, SMKI_E_USAGE,
           "a request is for an organisation or a device certificate, not %s", smki_profile_get(p)->name);
    ENSURE(is->leaf == p, SMKI_E_USAGE, "the %s CA of environment %s does not issue %s certificates",
           smki_profile_get(is->profile)->name, is->env.name, smki_profile_get(p)->name);
    ENSURE(csr->spki_len == sizeof SMKI_CA_SPKI_P256_PREFIX + SMKI_POINT_LEN &&
               memcmp(csr->spki, SMKI_CA_SPKI_P256_PREFIX, sizeof SMKI_CA_SPKI_P256_PREFIX) == 0 &&
               memcmp(csr->spki + sizeof SMKI_CA_SPKI_P256_PREFIX, csr->point, SMKI_POINT_LEN) == 0,
           SMKI_E_REFUSED, "the CSR's public key is not a named-curve P-256 key with an uncompressed point");
    ENSURE(csr->usage == SMKI_USAGE_DS || csr->usage == SMKI_USAGE_KA, SMKI_E_REFUSED,
           "the CSR requests neither digitalSignature nor keyAgreement");
    if (p == SMKI_PROFILE_DEVICE) {
        ENSURE(r->role < 0, SMKI_E_USAGE, "a device certificate carries no Remote Party Role: drop --role");
        ENSURE(!r->cn, SMKI_E_USAGE, "a device certificate's subject is empty: it takes no CN");
        GUARD(smki_csr_check_request(csr, 1, r->eui, 0));
    } else {
        ENSURE(r->role >= 0 && r->eui, SMKI_E_USAGE,
               "an organisation certificate needs the Remote Party Role and the organisation's EUI-64 (--role, "
               "--eui): the CSR does not name them");
        const smki_role_t *role = smki_role_by_code((unsigned)r->role);
        ENSURE(role && (role->on & SMKI_ROLE_ON_ORGANISATION), SMKI_E_REFUSED,
               "role %02X (%s) is not a Remote Party Role of organisation certificates", (unsigned)r->role,
               smki_role_name((unsigned)r->role));
        unsigned ku = csr->usage == SMKI_USAGE_DS ? SMKI_KU_DIGITAL_SIGNATURE : SMKI_KU_KEY_AGREEMENT;
        ENSURE(!role->org_usages || (role->org_usages & ku), SMKI_E_REFUSED,
               "role %s (%s) certificates are digitalSignature only: the CSR requests keyAgreement", role->name,
               role->title);
        GUARD(smki_csr_check_request(csr, 0, NULL, 0));
        if (r->cn) GUARD(smki_ca_check_cn(r->cn, "the CN"));
    }
    *profile = p;
    return 0;
}

int smki_ca_build(smki_ca_issuer *is, const smki_issue_req *r, smki_cert *out)
{
    ENSURE(is && out, SMKI_E_INTERNAL, "smki_ca_build: no issuer or output");
    smki_profile_id profile = SMKI_PROFILE_UNKNOWN;
    GUARD(check_request(is, r, &profile));
    const smki_csr *csr = r->csr;
    int64_t now = r->not_before > 0 ? r->not_before : now_seconds();
    ENSURE(is->not_after < 0 || now <= is->not_after, SMKI_E_REFUSED,
           "the %s CA certificate of environment %s has expired", smki_profile_get(is->profile)->name, is->env.name);

    memset(out, 0, offsetof(smki_cert, der));
    out->profile = profile;
    out->usage = csr->usage;
    out->status = r->status ? r->status : SMKI_STATUS_IN_USE;
    _Static_assert(sizeof out->env == sizeof is->env.name, "environment names of one size");
    memcpy(out->env, is->env.name, sizeof out->env); /* NUL-terminated in the same size */
    memcpy(out->issuer_ski, is->ski, SMKI_KEYID_LEN);
    GUARD(smki_keyid_method2(csr->point, SMKI_POINT_LEN, out->ski));
    out->not_before = now;

    uint8_t subject[256];
    size_t subject_len;
    ca_tbs t = {
        .profile = profile,
        .serial = out->serial,
        .issuer = is->name,
        .issuer_len = is->name_len,
        .not_before = now,
        .spki = csr->spki,
        .spki_len = csr->spki_len,
        .ku = csr->usage == SMKI_USAGE_DS ? SMKI_KU_DIGITAL_SIGNATURE : SMKI_KU_KEY_AGREEMENT,
        .ski = out->ski,
        .aki = is->ski,
        .policy = is->policy,
        .policy_len = is->policy_len,
        .policy_critical = 1,
    };
    if (profile == SMKI_PROFILE_DEVICE) {
        static const uint8_t EMPTY_NAME[] = {0x30, 0x00};
        out->role = -1;
        out->has_eui = 1;
        out->eui = csr->hw_serial;
        out->not_after = -1;
        t.not_after = -1;
        t.subject = EMPTY_NAME;
        t.subject_len = sizeof EMPTY_NAME;
        t.hw_type = is->hw_type;
        t.hw_type_len = is->hw_type_len;
        t.hw_serial = csr->hw_serial.b;
    } else {
        uint8_t role = (uint8_t)r->role;
        unsigned years = is->env.years[SMKI_PROFILE_ORGANISATION];
        if (is->env.org_long_roles[role / 8] & (1u << (role % 8))) years = is->env.org_long_years;
        ENSURE(years > 0, SMKI_E_USAGE, "environment %s sets no validity for organisation certificates of role %02X",
               is->env.name, role);
        out->role = role;
        out->has_eui = 1;
        out->eui = *r->eui;
        out->not_after = t.not_after = smki_ca_der_time_add_years_end(now, years);
        GUARD(org_subject(r->cn, role, r->eui, subject, sizeof subject, &subject_len));
        t.subject = subject;
        t.subject_len = subject_len;
    }
    int fixed;
    GUARD(smki_ca_serial_new(out->serial, &fixed));
    GUARD(smki_ca_assemble(&t, is->key, out->der, sizeof out->der, &out->der_len));

    /* Lint before release: a device certificate proven to be its linted template
     * but for the slots is clean (lint_fast.c); any other goes through the full
     * linter. The report is large; one per thread is reused. */
    int fast = profile == SMKI_PROFILE_DEVICE &&
               smki_ca_fast_check(smki_ca_issuer_fast_ref(is, csr->usage), out->der, out->der_len, csr->point, csr->hw_serial.b,
                             NULL);
    smki_ca_fast_note(fast);
    if (fast) return 0;
    static _Thread_local smki_lint_report rep;
    GUARD(smki_ca_lint_release(out->der, out->der_len, &is->env, profile, &rep));
    return 0;
}

/* ---- Issue and record -------------------------------------------------------------------- */

typedef struct {
    const smki_ca_db *db;
    const smki_cert *cert;
} put_arg;

static int put_one(smki_txn *t, void *arg)
{
    const put_arg *a = arg;
    return smki_ca_cert_put(t, a->db, a->cert);
}

typedef struct {
    const uint8_t *issuer_ski;
    smki_cert *found;
} dup_run;

static int dup_one(const smki_cert *c, void *arg)
{
    dup_run *d = arg;
    if (memcmp(c->issuer_ski, d->issuer_ski, SMKI_KEYID_LEN) != 0) return 0;
    *d->found = *c;
    return 1;
}

/* In t: an in-use device certificate of this key (SKI) and Device ID from the CA of
 * issuer_ski: SMKI_E_EXISTS naming it. */
typedef struct {
    smki_ca_db *db;
    const uint8_t *ski, *issuer_ski;
    const smki_eui64_t *eui;
} dup_query;

static int device_dup_in(smki_txn *t, void *arg)
{
    const dup_query *d = arg;
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.ski = d->ski;
    q.eui = d->eui;
    q.profile = SMKI_PROFILE_DEVICE;
    q.status = SMKI_STATUS_IN_USE;
    smki_cert *found = calloc(1, sizeof *found);
    ENSURE(found, SMKI_E_NOMEM, "out of memory");
    dup_run r = {d->issuer_ski, found};
    int rc = smki_ca_find_txn(t, d->db, &q, dup_one, &r);
    if (rc == 0 && found->der_len) {
        char serial[2 * SMKI_SERIAL_LEN + 1], eui[SMKI_EUI64_TEXT_MAX];
        smki_hex_encode(found->serial, SMKI_SERIAL_LEN, serial, 0);
        smki_eui64_format(d->eui, SMKI_EUI64_HYPHEN, eui);
        rc = SMKI_FAIL(SMKI_E_EXISTS,
                       "device %s already holds in-use certificate %s from this CA for this very key: nothing issued "
                       "('smki ca show %s --out FILE' writes it; a second one only with --allow-duplicate-key)",
                       eui, serial, serial);
    }
    free(found);
    return rc;
}

int smki_ca_check_new_device(smki_ca_issuer *is, smki_ca_db *db, const smki_issue_req *r)
{
    ENSURE(is && db && r, SMKI_E_INTERNAL, "smki_ca_check_new_device: missing argument");
    smki_profile_id profile;
    GUARD(check_request(is, r, &profile)); /* the CA's own refusals come first */
    if (profile != SMKI_PROFILE_DEVICE) return 0;
    uint8_t ski[SMKI_KEYID_LEN];
    GUARD(smki_keyid_method2(r->csr->point, SMKI_POINT_LEN, ski));
    dup_query d = {db, ski, is->ski, &r->csr->hw_serial};
    return smki_store_read(db->store, device_dup_in, &d);
}

int smki_ca_check_new_device_txn(smki_txn *t, smki_ca_db *db, const smki_cert *c)
{
    ENSURE(t && db && c, SMKI_E_INTERNAL, "smki_ca_check_new_device_txn: missing argument");
    if (c->profile != SMKI_PROFILE_DEVICE || !c->has_eui) return 0;
    dup_query d = {db, c->ski, c->issuer_ski, &c->eui};
    return device_dup_in(t, &d);
}

/* A clash of 126-bit random serials does not happen in practice; if it ever did the
 * store refuses it (NOOVERWRITE) and a fresh serial is drawn. */
#define SERIAL_ATTEMPTS 3

int smki_ca_issue(smki_ca_issuer *is, smki_ca_db *db, const smki_issue_req *r, smki_cert *out)
{
    ENSURE(db, SMKI_E_INTERNAL, "smki_ca_issue: no store");
    int rc = 0;
    for (int attempt = 0; attempt < SERIAL_ATTEMPTS; attempt++) {
        GUARD(smki_ca_build(is, r, out));
        put_arg a = {db, out};
        rc = smki_store_write(db->store, put_one, &a);
        if (rc != SMKI_E_EXISTS || has_fixed_serial) break;
    }
    if (rc < 0) {
        smki_error_wrap("issued certificate not recorded, so not released");
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int smki_ca_issue_batch(smki_ca_issuer *is, smki_ca_db *db, smki_batch *b, const smki_issue_req *r,
                        smki_cert *out)
{
    ENSURE(db && b, SMKI_E_INTERNAL, "smki_ca_issue_batch: no store or batch");
    GUARD(smki_ca_build(is, r, out));
    return smki_ca_cert_queue(b, db, out);
}
