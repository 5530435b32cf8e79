/* libFuzzer target for the CSR intake (ca/csr.c). The first octet picks how the rest
 * reaches smki_csr_parse: as-is (DER, or PEM text the fuzzer wrote); base64 in a
 * CERTIFICATE REQUEST PEM block; or as the content of a certificationRequestInfo that
 * the harness signs with a fixed key, so that mutated extensions, names and keys get
 * past the proof of possession (seeds of that mode carry the fixed key's SPKI).
 * A CSR that parses keeps its invariants; one that does not is refused with a code
 * and a message, and nothing leaks either way. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

enum { AS_IS, PEM_REQUEST, SIGNED_INFO, MODES };

/* The fixed key of SIGNED_INFO seeds: a test key, public in this file on purpose. */
static const char FIXED_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg57wCgaNOMG/l73O0\n"
                                "1Qo+Q5izeNiHy/sDW+L++TaDA5yhRANCAAQmP6Fm77Ex5rTAV0ZC3sFqH+BO8Woh\n"
                                "z/KvindeOqFtiBzk9+Ox2CyXUHV8d7lrhLaDo+uV79gant/ueGrQi8W3\n"
                                "-----END PRIVATE KEY-----\n";
static const uint8_t ALG_ECDSA_SHA256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_csr: invariant failed: %s\n", what);
    abort();
}

static EVP_PKEY *fixed_key(void)
{
    static EVP_PKEY *key;
    if (!key) {
        BIO *bio = BIO_new_mem_buf(FIXED_KEY, -1);
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        require(key != NULL, "the fixed key loads");
    }
    return key;
}

static size_t put_tlv_head(uint8_t *out, uint8_t tag, size_t len)
{
    out[0] = tag;
    if (len < 0x80) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len < 0x100) {
        out[1] = 0x81;
        out[2] = (uint8_t)len;
        return 3;
    }
    out[1] = 0x82;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
}

/* SEQUENCE { SEQUENCE { info }, ecdsa-with-SHA256, BIT STRING { 00 sig } }, the
 * signature made with the fixed key over the inner SEQUENCE. */
static uint8_t *signed_request(const uint8_t *info, size_t info_len, size_t *len)
{
    if (info_len > 16000) info_len = 16000;
    uint8_t *tbs = malloc(info_len + 4);
    require(tbs != NULL, "malloc");
    size_t tbs_len = put_tlv_head(tbs, 0x30, info_len);
    memcpy(tbs + tbs_len, info, info_len);
    tbs_len += info_len;

    uint8_t sig[80];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    require(md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, fixed_key(), NULL) == 1 &&
                EVP_DigestSign(md, sig, &sig_len, tbs, tbs_len) == 1,
            "signing with the fixed key");
    EVP_MD_CTX_free(md);

    size_t body_len = tbs_len + sizeof ALG_ECDSA_SHA256 + 2 + 1 + sig_len;
    uint8_t *out = malloc(body_len + 4);
    require(out != NULL, "malloc");
    size_t at = put_tlv_head(out, 0x30, body_len);
    memcpy(out + at, tbs, tbs_len);
    at += tbs_len;
    memcpy(out + at, ALG_ECDSA_SHA256, sizeof ALG_ECDSA_SHA256);
    at += sizeof ALG_ECDSA_SHA256;
    at += put_tlv_head(out + at, 0x03, sig_len + 1);
    out[at++] = 0x00;
    memcpy(out + at, sig, sig_len);
    at += sig_len;
    free(tbs);
    *len = at;
    return out;
}

/* Base64 in lines of 64 between BEGIN/END lines, in a buffer of exactly *len octets. */
static uint8_t *pem_wrap(const uint8_t *der, size_t der_len, size_t *len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
    static const char end[] = "-----END CERTIFICATE REQUEST-----\n";
    size_t b64_len = 4 * ((der_len + 2) / 3);
    uint8_t *b64 = malloc(b64_len + 1);
    uint8_t *out = malloc(sizeof begin + sizeof end + b64_len + b64_len / 64 + 2);
    require(out && b64, "malloc");
    require((size_t)EVP_EncodeBlock(b64, der, (int)der_len) == b64_len, "base64 length");
    size_t at = sizeof begin - 1;
    memcpy(out, begin, at);
    for (size_t i = 0; i < b64_len; i += 64) {
        size_t n = b64_len - i < 64 ? b64_len - i : 64;
        memcpy(out + at, b64 + i, n);
        at += n;
        out[at++] = '\n';
    }
    memcpy(out + at, end, sizeof end - 1);
    at += sizeof end - 1;
    free(b64);
    *len = at;
    return out;
}

static void check_parsed(const smki_csr *c)
{
    require(c->usage == SMKI_USAGE_DS || c->usage == SMKI_USAGE_KA, "usage is exactly DS or KA");
    require(c->point[0] == 0x04, "the point is uncompressed");
    require(c->spki_len == 91 && c->spki >= c->der && c->spki_len <= c->der_len &&
                (size_t)(c->spki - c->der) <= c->der_len - c->spki_len,
            "the SPKI is 91 octets inside the request");
    require(memcmp(c->spki + 26, c->point, SMKI_POINT_LEN) == 0, "the point is the SPKI's");
    require(c->subject != NULL && c->is_subject_empty == (c->subject_len == 2), "the subject is recorded");
    require(!c->has_hw_module_name || c->hw_type[0] != '\0', "a hardwareModuleName has a hwType");

    /* The SPKI octets the CA would copy load, through hsm, as the same key. */
    EVP_PKEY *again = NULL;
    require(smki_pub_load(c->spki, c->spki_len, &again) == 0, "the SPKI octets load");
    require(EVP_PKEY_eq(c->key, again) == 1, "the SPKI octets are the same key");
    uint8_t point[SMKI_POINT_LEN];
    require(smki_pub_point(again, point) == 0 && memcmp(point, c->point, sizeof point) == 0,
            "the SPKI octets hold the same point");
    EVP_PKEY_free(again);

    /* The request's own DER parses again, to the same record. */
    smki_csr *twice = NULL;
    require(smki_csr_parse(c->der, c->der_len, &twice) == 0, "the request's DER parses again");
    require(twice->usage == c->usage && twice->has_hw_module_name == c->has_hw_module_name &&
                memcmp(twice->hw_serial.b, c->hw_serial.b, 8) == 0 && strcmp(twice->hw_type, c->hw_type) == 0 &&
                twice->is_subject_empty == c->is_subject_empty,
            "a second parse reads the same");
    smki_csr_free(twice);

    /* Request checks answer yes or a refusal, never anything else. */
    for (int device = 0; device < 2; device++) {
        int rc = smki_csr_check_request(c, device, device ? &c->hw_serial : NULL, c->usage);
        require(rc == 0 || rc == SMKI_E_REFUSED, "check_request accepts or refuses");
        if (rc == 0) require(device ? c->has_hw_module_name && c->is_subject_empty : !c->has_hw_module_name,
                             "check_request's yes holds");
    }
    smki_eui64_t other = c->hw_serial;
    other.b[7] ^= 1;
    require(smki_csr_check_request(c, 1, &other, 0) == SMKI_E_REFUSED, "another EUI-64 is refused");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int mode = data[0] % MODES;
    size_t len = size - 1;
    uint8_t *buf;
    if (mode == PEM_REQUEST) {
        buf = pem_wrap(data + 1, len, &len);
    } else if (mode == SIGNED_INFO) {
        buf = signed_request(data + 1, len, &len);
    } else {
        buf = malloc(len ? len : 1);
        require(buf != NULL, "malloc");
        if (len) memcpy(buf, data + 1, len);
    }

    smki_csr *c = NULL;
    smki_error_clear();
    int rc = smki_csr_parse(buf, len, &c);
    if (rc == 0) {
        require(c != NULL, "success gives a CSR");
        check_parsed(c);
    } else {
        require(c == NULL, "a refusal gives no CSR");
        require(rc == SMKI_E_INPUT || rc == SMKI_E_REFUSED || rc == SMKI_E_VERIFY,
                "refusals are SMKI_E_INPUT, SMKI_E_REFUSED or SMKI_E_VERIFY");
        require(smki_error_code() == rc, "the error context holds the code");
        require(smki_error_msg()[0] != '\0', "a refusal has a message");
    }
    smki_csr_free(c);
    /* smki_csr_parse_ex with these octets' SHA-256 on record: the same answer, except that
     * a signature that does not verify is no longer checked (only its encoding is). */
    uint8_t h[32];
    unsigned hl = sizeof h;
    require(EVP_Digest(buf, len, h, &hl, EVP_sha256(), NULL) == 1, "SHA-256");
    int skipped = -1;
    smki_csr_parse_opts po = {h, &skipped};
    smki_csr *c2 = NULL;
    int rc2 = smki_csr_parse_ex(buf, len, &po, &c2);
    require(rc2 == rc || (rc == SMKI_E_VERIFY && rc2 == 0), "parse_ex differs only by the skipped verification");
    require(rc2 != 0 || skipped == 1, "parse_ex says it skipped");
    require((rc2 == 0) == (c2 != NULL), "parse_ex gives a CSR exactly on success");
    smki_csr_free(c2);
    ERR_clear_error();
    free(buf);
    return 0;
}
