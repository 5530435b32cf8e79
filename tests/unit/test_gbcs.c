/* The GBCS codec (gbcs/gbcs.h) on the DCC's RTDS messages and on every malformed
 * variant: each refusal of the parser, building and round trip, signing with a file key
 * and a SoftHSM key, signature and MAC verification from both sides, and the
 * every-byte tamper proof over every RTDS command. */
#include "helpers.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gbcs/gbcs.h"

#define RTDS "vectors/gbcs/rtds"
#define KEYSTORE "vectors/gbcs/keystore"
#define ACB_KA "file:%s/90b3d51f30000002-ka.key"
#define SUPPLIER_DS_KEY "90b3d51f30010000-ds.key"
#define SUPPLIER_DS_CERT "90b3d51f30010000-ds.pem"
#define AT_2020 1577836800 /* 2020-01-01T00:00:00Z: inside the RTDS remote-party certificates' validity */

/* ---- Helpers -------------------------------------------------------------------- */
typedef struct {
    char path[1600];
    char name[256];
} rtds_file;

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const rtds_file *)a)->path, ((const rtds_file *)b)->path);
}

/* Every RTDS message file whose name contains `needle` (NULL: all). */
static rtds_file *rtds_list(const char *needle, size_t *count)
{
    const char *root = test_shared_path(RTDS);
    char rootcopy[1024];
    snprintf(rootcopy, sizeof rootcopy, "%s", root);
    rtds_file *out = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(rootcopy);
    if (!d) fail_msg("cannot open %s", rootcopy);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char sub[1300];
        snprintf(sub, sizeof sub, "%s/%s", rootcopy, de->d_name);
        DIR *s = opendir(sub);
        if (!s) continue;
        struct dirent *fe;
        while ((fe = readdir(s)) != NULL) {
            if (fe->d_name[0] == '.' || !strstr(fe->d_name, ".HEX")) continue;
            if (needle && !strstr(fe->d_name, needle)) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                out = realloc(out, cap * sizeof *out);
                assert_non_null(out);
            }
            snprintf(out[n].path, sizeof out[n].path, "%s/%s", sub, fe->d_name);
            snprintf(out[n].name, sizeof out[n].name, "%s", fe->d_name);
            n++;
        }
        closedir(s);
    }
    closedir(d);
    qsort(out, n, sizeof *out, cmp_files);
    *count = n;
    return out;
}

static uint8_t *load_msg(const char *path, size_t *len)
{
    uint8_t *b = NULL;
    assert_ok(smki_gbcs_read_file(path, &b, len));
    return b;
}

static uint8_t *load_rtds(const char *rel, size_t *len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", RTDS, rel);
    char full[1200];
    snprintf(full, sizeof full, "%s", test_shared_path(p));
    return load_msg(full, len);
}

static smki_key *open_file_key(const char *keystore_name)
{
    char ref[1200];
    snprintf(ref, sizeof ref, "file:%s/%s", test_shared_path(KEYSTORE), keystore_name);
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, NULL, &k));
    return k;
}

static EVP_PKEY *load_pub(const char *keystore_name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", test_shared_path(KEYSTORE), keystore_name);
    EVP_PKEY *k = NULL;
    assert_ok(smki_pub_load_file(p, &k));
    return k;
}

static smki_gbcs_certdir *keystore_cache;
static smki_gbcs_certdir *keystore_dir(void)
{
    if (!keystore_cache) assert_ok(smki_gbcs_certdir_open(test_shared_path(KEYSTORE), &keystore_cache));
    return keystore_cache;
}
static smki_gbcs_certdir *keystore_dir_take(void)
{
    smki_gbcs_certdir *d = keystore_cache;
    keystore_cache = NULL;
    return d;
}

/* The pre-command of ECS01a immediate (supplier 90B3D51F30010000 -> 00DB1234567890A0). */
#define PRE_ECS01A "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX"
#define CMD_ECS01A "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_COMMAND_GBCS.HEX"
#define CMD_CS08 "11.2_CS08/CS08_11.2_SUCCESS_COMMAND_GBCS.HEX"
#define CMD_URP "4.14_ECS21b/ECS21b_4.14_URP_SUCCESS_COMMAND_GBCS.HEX"
#define CMD_DF_ONLY "NA_CS02aSignature/CS02aSignature_NA_ERROR_COMMAND_GBCS.HEX"
#define CMD_PCS01 "NA_PCS01/PCS01_NA_SUCCESS_COMMAND_GBCS.HEX"
#define RESP_CS08 "11.2_CS08/CS08_11.2_SUCCESS_RESPONSE_GBCS.HEX"

/* ---- Every RTDS file parses ------------------------------------------------------- */
static void test_parse_accepts_every_rtds_file(void **state)
{
    (void)state;
    size_t n;
    rtds_file *f = rtds_list(NULL, &n);
    assert_true(n >= 100);
    size_t kinds[4] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = load_msg(f[i].path, &len);
        smki_gbcs_msg m;
        int rc = smki_gbcs_parse(b, len, &m);
        if (rc < 0) fail_msg("%s: %s", f[i].name, smki_error_msg());
        kinds[m.kind]++;
        /* The name says what it is; the parse must agree. */
        if (strstr(f[i].name, "_RESPONSE_")) assert_int_equal(m.gsa.cra, SMKI_GBCS_CRA_RESPONSE);
        if (strstr(f[i].name, "_ALERT_")) assert_int_equal(m.gsa.cra, SMKI_GBCS_CRA_ALERT);
        if (strstr(f[i].name, "COMMAND_")) assert_int_equal(m.gsa.cra, SMKI_GBCS_CRA_COMMAND);
        if (strstr(f[i].name, "_PRECOMMAND_")) {
            assert_int_equal(m.kind, SMKI_GBCS_SIGNING);
            assert_int_equal(m.gsa.sig_state, SMKI_GBCS_SIG_NONE);
        }
        /* Offsets: the signed region starts after DF and ends with the content. */
        assert_int_equal(b[m.gsa.offset], 0xDF);
        assert_int_equal(m.gsa.signed_offset, m.gsa.offset + 1);
        assert_ptr_equal(m.gsa.content + m.gsa.content_len, b + m.gsa.signed_offset + m.gsa.signed_len);
        if (m.kind == SMKI_GBCS_CIPHERING) {
            assert_int_equal(m.aad_offset, m.gsa.offset);
            assert_int_equal(m.aad_offset + m.aad_len + SMKI_GBCS_MAC_LEN, len);
            assert_ptr_equal(m.mac, b + len - SMKI_GBCS_MAC_LEN);
        } else {
            assert_int_equal(m.gsa.offset + m.gsa.len, len);
        }
        free(b);
    }
    assert_true(kinds[SMKI_GBCS_SIGNING] > 0 && kinds[SMKI_GBCS_CIPHERING] > 0);
    free(f);
}

/* ---- Every RTDS command verifies (signature and MAC) ------------------------------- */
static void test_verify_command_accepts_every_rtds_command_with_published_keys(void **state)
{
    (void)state;
    char ref[1200];
    snprintf(ref, sizeof ref, ACB_KA, test_shared_path(KEYSTORE));
    smki_key *acb = NULL;
    assert_ok(smki_key_open(ref, NULL, &acb));
    size_t n;
    rtds_file *f = rtds_list("_COMMAND_GBCS", &n);
    size_t macs = 0, sigs = 0;
    for (size_t i = 0; i < n; i++) {
        if (strstr(f[i].name, "PRECOMMAND")) continue;
        size_t len;
        uint8_t *b = load_msg(f[i].path, &len);
        smki_gbcs_msg m;
        assert_ok(smki_gbcs_parse(b, len, &m));
        smki_gbcs_verify_report rep;
        int rc = smki_gbcs_verify_command(&m, keystore_dir(), acb, AT_2020, &rep);
        if (strstr(f[i].name, "PCS01_")) {
            /* HAN-local, device to device, unsigned: not verifiable with published keys. */
            assert_fails(rc, SMKI_E_VERIFY, "HAN-local");
        } else {
            if (rc < 0) fail_msg("%s: %s", f[i].name, smki_error_msg());
            sigs += rep.signature_checked;
            macs += rep.mac_checked;
        }
        free(b);
    }
    print_message("%zu signatures and %zu MACs verified\n", sigs, macs);
    assert_int_equal(macs, 44);
    assert_int_equal(sigs, 28); /* 27 wrapped critical commands + the DF-only CS02a */
    free(f);
    smki_key_free(acb);
}

/* ---- Signing and wrapping --------------------------------------------------------- */
static void test_sign_precommand_gives_the_rtds_command_signed_region(void **state)
{
    (void)state;
    size_t plen, clen;
    uint8_t *pre = load_rtds(PRE_ECS01A, &plen);
    uint8_t *cmd = load_rtds(CMD_ECS01A, &clen);
    smki_key *ds = open_file_key(SUPPLIER_DS_KEY);
    uint8_t *signed_apdu = NULL;
    size_t slen = 0;
    assert_ok(smki_gbcs_sign(ds, pre, plen, &signed_apdu, &slen));
    assert_int_equal(slen, plen + 65);
    assert_memory_equal(signed_apdu, pre, plen);
    assert_int_equal(signed_apdu[plen], 0x40);
    smki_gbcs_msg m, c;
    assert_ok(smki_gbcs_parse(signed_apdu, slen, &m));
    assert_int_equal(m.gsa.sig_state, SMKI_GBCS_SIG_PRESENT);
    EVP_PKEY *pub = load_pub(SUPPLIER_DS_CERT);
    assert_ok(smki_gbcs_verify_signature(&m, pub));
    /* The DCC's command carries the same signed region, signed by the same key. */
    assert_ok(smki_gbcs_parse(cmd, clen, &c));
    assert_int_equal(c.gsa.signed_len, m.gsa.signed_len);
    assert_memory_equal(cmd + c.gsa.signed_offset, signed_apdu + m.gsa.signed_offset, m.gsa.signed_len);
    assert_ok(smki_gbcs_verify_signature(&c, pub));
    /* A signed APDU is not signed twice. */
    uint8_t *again = NULL;
    size_t alen;
    assert_fails(smki_gbcs_sign(ds, signed_apdu, slen, &again, &alen), SMKI_E_REFUSED, "already carries a signature");
    /* A command (DD) is not a pre-command. */
    assert_fails(smki_gbcs_sign(ds, cmd, clen, &again, &alen), SMKI_E_INPUT, "only a general-signing APDU");
    EVP_PKEY_free(pub);
    smki_key_free(ds);
    free(signed_apdu);
    free(pre);
    free(cmd);
}

/* Wrapping the DCC's own signed APDU with the ACB key gives the DCC's command exactly. */
static void test_wrap_reproduces_the_rtds_command_byte_for_byte(void **state)
{
    (void)state;
    size_t clen;
    uint8_t *cmd = load_rtds(CMD_ECS01A, &clen);
    smki_gbcs_msg c;
    assert_ok(smki_gbcs_parse(cmd, clen, &c));
    char ref[1200];
    snprintf(ref, sizeof ref, ACB_KA, test_shared_path(KEYSTORE));
    smki_key *acb = NULL;
    assert_ok(smki_key_open(ref, NULL, &acb));
    EVP_PKEY *dev = load_pub("00db1234567890a0-ka.pem");
    uint8_t *out = NULL;
    size_t olen = 0;
    assert_ok(smki_gbcs_wrap(cmd + c.gsa.offset, c.gsa.len, acb, dev, c.invocation_counter, &out, &olen));
    assert_int_equal(olen, clen);
    assert_memory_equal(out, cmd, clen);
    free(out);
    /* A pre-command (no signature field) is not wrapped. */
    size_t plen;
    uint8_t *pre = load_rtds(PRE_ECS01A, &plen);
    assert_fails(smki_gbcs_wrap(pre, plen, acb, dev, 0, &out, &olen), SMKI_E_REFUSED, "sign it first");
    free(pre);
    EVP_PKEY_free(dev);
    smki_key_free(acb);
    free(cmd);
}

/* The ECDH is symmetric: what one side MACs the other verifies with its own key. */
static void test_mac_verifies_from_either_side(void **state)
{
    (void)state;
    size_t clen;
    uint8_t *cmd = load_rtds(CMD_CS08, &clen);
    smki_gbcs_msg c;
    assert_ok(smki_gbcs_parse(cmd, clen, &c));
    smki_key *a = open_file_key("90b3d51f30000002-ka.key");
    smki_key *b = open_file_key("90b3d51f30010000-ka.key");
    EVP_PKEY *apub = load_pub("90b3d51f30000002-ka.pem");
    EVP_PKEY *bpub = load_pub("90b3d51f30010000-ka.pem");
    uint8_t *out = NULL;
    size_t olen = 0;
    assert_ok(smki_gbcs_wrap(cmd + c.gsa.offset, c.gsa.len, a, bpub, 7, &out, &olen));
    smki_gbcs_msg w;
    assert_ok(smki_gbcs_parse(out, olen, &w));
    assert_int_equal(w.invocation_counter, 7);
    assert_ok(smki_gbcs_verify_mac(&w, a, bpub));
    assert_ok(smki_gbcs_verify_mac(&w, b, apub));
    /* A third party's key does not. */
    EVP_PKEY *dev = load_pub("00db1234567890a0-ka.pem");
    assert_fails(smki_gbcs_verify_mac(&w, b, dev), SMKI_E_VERIFY, "MAC does not verify");
    /* The invocation counter is in the IV: another counter, another MAC. */
    uint8_t *out2 = NULL;
    size_t olen2 = 0;
    assert_ok(smki_gbcs_wrap(cmd + c.gsa.offset, c.gsa.len, a, bpub, 8, &out2, &olen2));
    assert_memory_not_equal(out + olen - 12, out2 + olen2 - 12, 12);
    EVP_PKEY_free(dev);
    EVP_PKEY_free(apub);
    EVP_PKEY_free(bpub);
    smki_key_free(a);
    smki_key_free(b);
    free(out);
    free(out2);
    free(cmd);
}

/* A response is MACed by the device with the supplier's KA key: the supplier verifies
 * it with its own KA key and the device's KA certificate. */
static void test_verify_mac_of_a_response_from_the_recipient_side(void **state)
{
    (void)state;
    size_t rlen;
    uint8_t *r = load_rtds(RESP_CS08, &rlen);
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(r, rlen, &m));
    assert_int_equal(m.gsa.cra, SMKI_GBCS_CRA_RESPONSE);
    if (m.kind == SMKI_GBCS_CIPHERING) {
        char eui[17];
        smki_hex_encode(m.gsa.originator, 8, eui, 0);
        char name[64];
        snprintf(name, sizeof name, "%s-ka.pem", eui);
        EVP_PKEY *dev = load_pub(name);
        smki_hex_encode(m.gsa.recipient, 8, eui, 0);
        snprintf(name, sizeof name, "%s-ka.key", eui);
        smki_key *sup = open_file_key(name);
        assert_ok(smki_gbcs_verify_mac(&m, sup, dev));
        smki_key_free(sup);
        EVP_PKEY_free(dev);
    }
    free(r);
}


/* ---- Synthetic messages for the refusals ------------------------------------------- */
static const uint8_t SUP[8] = {0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00};
static const uint8_t DEV[8] = {0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0};
static const uint8_t CONTENT[5] = {0xD9, 0x20, 0x00, 0x10, 0x01};

static smki_gbcs_fields base_fields(void)
{
    smki_gbcs_fields f;
    memset(&f, 0, sizeof f);
    f.cra = SMKI_GBCS_CRA_COMMAND;
    f.counter = 0x1000;
    f.originator = SUP;
    f.recipient = DEV;
    f.message_code = 0x0019;
    f.content = CONTENT;
    f.content_len = sizeof CONTENT;
    f.sig_state = SMKI_GBCS_SIG_NONE;
    return f;
}

/* The base pre-command: DF 09 01 <counter 8> 08 <SUP> 08 <DEV> 00 02 00 19 05 <content>
 * offsets:              0  1  2  3..10      11 12..19 20 21..28 29 30 31 32 33 34..38 */
static uint8_t *base_pre(size_t *len)
{
    smki_gbcs_fields f = base_fields();
    uint8_t *b = NULL;
    assert_ok(smki_gbcs_build_signing(&f, &b, len));
    assert_int_equal(*len, 39);
    return b;
}

static int parse_edit(const uint8_t *b, size_t len, size_t at, uint8_t v)
{
    uint8_t *c = malloc(len);
    assert_non_null(c);
    memcpy(c, b, len);
    c[at] = v;
    smki_gbcs_msg m;
    int rc = smki_gbcs_parse(c, len, &m);
    free(c);
    return rc;
}

static void test_parse_refuses_wrong_tags_and_field_lengths(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = base_pre(&len);
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(b, len, &m));
    assert_fails(parse_edit(b, len, 0, 0xDE), SMKI_E_INPUT, "expected DF (general-signing) or DD");
    assert_fails(parse_edit(b, len, 1, 0x08), SMKI_E_INPUT, "transaction-id length");
    assert_fails(parse_edit(b, len, 11, 0x07), SMKI_E_INPUT, "originator system title length");
    assert_fails(parse_edit(b, len, 20, 0x09), SMKI_E_INPUT, "recipient system title length");
    assert_fails(parse_edit(b, len, 29, 0x0B), SMKI_E_INPUT, "date-time at offset 29");
    assert_fails(parse_edit(b, len, 30, 0x01), SMKI_E_INPUT, "the message code needs 2");
    assert_fails(parse_edit(b, len, 33, 0x06), SMKI_E_INPUT, "BER length 6 exceeds");
    assert_fails(parse_edit(b, len, 33, 0x04), SMKI_E_INPUT, "signature field at offset 38: expected 00 (absent) or 40 (64 octets), found 01");
    free(b);
}

static void test_parse_refuses_a_bad_cra_flag(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = base_pre(&len);
    assert_fails(parse_edit(b, len, 2, 0x00), SMKI_E_INPUT, "CRA flag at offset 2");
    assert_fails(parse_edit(b, len, 2, 0x04), SMKI_E_INPUT, "found 04");
    assert_fails(parse_edit(b, len, 2, 0xFF), SMKI_E_INPUT, "CRA flag");
    for (uint8_t cra = 1; cra <= 3; cra++) assert_ok(parse_edit(b, len, 2, cra));
    smki_gbcs_fields f = base_fields();
    f.cra = 4;
    uint8_t *o = NULL;
    size_t olen;
    assert_fails(smki_gbcs_build_signing(&f, &o, &olen), SMKI_E_USAGE, "CRA flag 4");
    free(b);
}

static void test_parse_refuses_every_truncation(void **state)
{
    (void)state;
    const char *files[] = {PRE_ECS01A, CMD_ECS01A, CMD_URP, CMD_DF_ONLY, RESP_CS08};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        uint8_t *b = load_rtds(files[f], &len);
        smki_gbcs_msg full;
        assert_ok(smki_gbcs_parse(b, len, &full));
        for (size_t n = 0; n < len; n++) {
            uint8_t *c = malloc(n ? n : 1);
            memcpy(c, b, n);
            smki_gbcs_msg m;
            int rc = smki_gbcs_parse(c, n, &m);
            /* A signed DF cut right after its content is a well-formed pre-command. */
            if (full.kind == SMKI_GBCS_SIGNING && full.gsa.sig_state == SMKI_GBCS_SIG_PRESENT &&
                n == full.gsa.signed_offset + full.gsa.signed_len) {
                assert_ok(rc);
                assert_int_equal(m.gsa.sig_state, SMKI_GBCS_SIG_NONE);
            } else if (rc != SMKI_E_INPUT) {
                fail_msg("%s cut to %zu of %zu octets: rc %d", files[f], n, len, rc);
            }
            free(c);
        }
        free(b);
    }
}

static void test_parse_refuses_trailing_bytes(void **state)
{
    (void)state;
    const char *files[] = {PRE_ECS01A, CMD_ECS01A, CMD_DF_ONLY};
    const char *needles[] = {"signature field", "trailing bytes", "trailing octet"};
    for (size_t f = 0; f < 3; f++) {
        size_t len;
        uint8_t *b = load_rtds(files[f], &len);
        uint8_t *c = malloc(len + 2);
        memcpy(c, b, len);
        c[len] = 0x00;
        c[len + 1] = 0x00;
        smki_gbcs_msg m;
        /* A pre-command may end with one 00 (signature absent), not with more. */
        assert_fails(smki_gbcs_parse(c, len + 2, &m), SMKI_E_INPUT, f == 0 ? "trailing octet" : needles[f]);
        if (f == 0) assert_ok(smki_gbcs_parse(c, len + 1, &m));
        else assert_fails(smki_gbcs_parse(c, len + 1, &m), SMKI_E_INPUT, NULL);
        free(c);
        free(b);
    }
}

static void test_parse_long_form_lengths_minimal_only(void **state)
{
    (void)state;
    smki_gbcs_fields f = base_fields();
    uint8_t big[300];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)i;
    uint8_t *o = NULL;
    size_t olen;
    /* 200 octets: 81 C8; 300: 82 01 2C. Both parse and round-trip. */
    size_t sizes[] = {127, 128, 200, 255, 256, 300};
    for (size_t k = 0; k < 6; k++) {
        f.content = big;
        f.content_len = sizes[k];
        assert_ok(smki_gbcs_build_signing(&f, &o, &olen));
        smki_gbcs_msg m;
        assert_ok(smki_gbcs_parse(o, olen, &m));
        assert_int_equal(m.gsa.content_len, sizes[k]);
        assert_memory_equal(m.gsa.content, big, sizes[k]);
        free(o);
    }
    /* Non-minimal: 81 05 and 82 00 05 for 5 octets; 85 (five length octets); 80 (indefinite). */
    size_t len;
    uint8_t *b = base_pre(&len);
    uint8_t msg[64];
    memcpy(msg, b, 33);
    msg[33] = 0x81;
    msg[34] = 0x05;
    memcpy(msg + 35, CONTENT, 5);
    smki_gbcs_msg m;
    assert_fails(smki_gbcs_parse(msg, 40, &m), SMKI_E_INPUT, "non-minimal long form 0x81 for 5");
    msg[33] = 0x82;
    msg[34] = 0x00;
    msg[35] = 0x05;
    memcpy(msg + 36, CONTENT, 5);
    assert_fails(smki_gbcs_parse(msg, 41, &m), SMKI_E_INPUT, "non-minimal long form 0x82");
    msg[33] = 0x85;
    assert_fails(smki_gbcs_parse(msg, 41, &m), SMKI_E_INPUT, "unsupported BER length form 0x85");
    msg[33] = 0x80;
    assert_fails(smki_gbcs_parse(msg, 41, &m), SMKI_E_INPUT, "unsupported BER length form 0x80");
    msg[33] = 0x84;
    msg[34] = 0xFF;
    assert_fails(smki_gbcs_parse(msg, 41, &m), SMKI_E_INPUT, "exceeds");
    free(b);
}

static void test_parse_date_time_present_and_absent(void **state)
{
    (void)state;
    static const uint8_t DT[12] = {0x07, 0xEA, 0x0B, 0x17, 0x01, 0x14, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00};
    smki_gbcs_fields f = base_fields();
    f.date_time = DT;
    uint8_t *o = NULL;
    size_t olen;
    assert_ok(smki_gbcs_build_signing(&f, &o, &olen));
    assert_int_equal(olen, 39 + 12);
    assert_int_equal(o[29], 0x0C);
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(o, olen, &m));
    assert_non_null(m.gsa.date_time);
    assert_memory_equal(m.gsa.date_time, DT, 12);
    assert_int_equal(m.gsa.message_code, 0x0019);
    /* A date-time cut short. */
    assert_fails(smki_gbcs_parse(o, 35, &m), SMKI_E_INPUT, "date-time at offset 29");
    free(o);
    size_t len;
    uint8_t *b = base_pre(&len);
    assert_ok(smki_gbcs_parse(b, len, &m));
    assert_null(m.gsa.date_time);
    free(b);
}

static void test_parse_other_information_forms(void **state)
{
    (void)state;
    static const uint8_t ID[8] = {0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x02, 0x00, 0x00};
    static const uint8_t REST[8] = {0, 0, 0, 0, 0, 0, 0x07, 0xD2};
    smki_gbcs_fields f = base_fields();
    f.supplementary_id = ID;
    uint8_t *o = NULL;
    size_t olen;
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_build_signing(&f, &o, &olen));
    assert_ok(smki_gbcs_parse(o, olen, &m));
    assert_memory_equal(m.gsa.supplementary_id, ID, 8);
    assert_false(m.gsa.has_urp_counter);
    free(o);
    f.has_urp_counter = 1;
    f.urp_counter = 1004;
    f.other_info_rest = REST;
    f.other_info_rest_len = 8;
    assert_ok(smki_gbcs_build_signing(&f, &o, &olen));
    assert_ok(smki_gbcs_parse(o, olen, &m));
    assert_int_equal(m.gsa.urp_counter, 1004);
    assert_null(m.gsa.urp_cert);
    assert_int_equal(m.gsa.other_info_rest_len, 8);
    free(o);
    /* other-info of 5 (code + 3) and of 13 (code + ID + 3): refused. */
    size_t len;
    uint8_t *b = base_pre(&len);
    uint8_t msg[80];
    static const size_t bad[] = {1, 5, 13};
    for (size_t k = 0; k < 3; k++) {
        memcpy(msg, b, 30);
        msg[30] = (uint8_t)bad[k];
        memset(msg + 31, 0x11, bad[k]);
        msg[31 + bad[k]] = 5;
        memcpy(msg + 32 + bad[k], CONTENT, 5);
        assert_fails(smki_gbcs_parse(msg, 37 + bad[k], &m), SMKI_E_INPUT, "other-information at offset 31");
    }
    /* A certificate or undecoded octets after the counter, not both; nothing after an absent ID. */
    f.urp_cert = REST;
    f.urp_cert_len = 8;
    assert_fails(smki_gbcs_build_signing(&f, &o, &olen), SMKI_E_USAGE, "not both");
    f = base_fields();
    f.has_urp_counter = 1;
    assert_fails(smki_gbcs_build_signing(&f, &o, &olen), SMKI_E_USAGE, "supplementary remote party ID");
    free(b);
}

static void test_parse_refuses_bad_general_ciphering(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = load_rtds(CMD_CS08, &len);
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(b, len, &m));
    assert_int_equal(b[7], len - 8); /* short-form length */
    assert_fails(parse_edit(b, len, 1, 0x01), SMKI_E_INPUT, "empty transaction-id");
    assert_fails(parse_edit(b, len, 3, 0x01), SMKI_E_INPUT, "empty recipient title");
    assert_fails(parse_edit(b, len, 6, 0x01), SMKI_E_INPUT, "absent key-info");
    assert_fails(parse_edit(b, len, 7, (uint8_t)(len - 9)), SMKI_E_INPUT, "trailing bytes");
    assert_fails(parse_edit(b, len, 7, (uint8_t)(len - 7)), SMKI_E_INPUT, "exceeds");
    assert_fails(parse_edit(b, len, 8, 0x31), SMKI_E_INPUT, "security control at offset 8");
    assert_fails(parse_edit(b, len, 8, 0x10), SMKI_E_INPUT, "expected 11");
    assert_fails(parse_edit(b, len, 13, 0xDD), SMKI_E_INPUT, "general-signing tag DF");
    /* The signature field inside a command: 00 or 40, never missing. */
    size_t sig_at = m.gsa.signed_offset + m.gsa.signed_len;
    assert_fails(parse_edit(b, len, sig_at, 0x41), SMKI_E_INPUT, "signature field");
    /* The DF APDU must end exactly where the MAC starts. */
    assert_fails(parse_edit(b, len, m.gsa.signed_offset + m.gsa.signed_len - m.gsa.content_len - 1,
                            (uint8_t)(m.gsa.content_len - 1)),
                 SMKI_E_INPUT, NULL);
    /* A DD too short for a MAC. */
    static const uint8_t TINY[] = {0xDD, 0, 0, 0, 0, 0, 0, 0x08, 0x11, 0, 0, 0, 0, 1, 2, 3};
    assert_fails(smki_gbcs_parse(TINY, sizeof TINY, &m), SMKI_E_INPUT, "the MAC alone needs 12");
    static const uint8_t EMPTY[1] = {0};
    assert_fails(smki_gbcs_parse(EMPTY, 0, &m), SMKI_E_INPUT, "empty");
    free(b);
}

/* DD 09: a General Block Transfer routing header, reported as such. */
static void test_parse_block_transfer_header(void **state)
{
    (void)state;
    uint8_t msg[64];
    size_t n = 0;
    msg[n++] = 0xDD;
    msg[n++] = 0x09;
    msg[n++] = 0x01;
    for (int i = 0; i < 8; i++) msg[n++] = (uint8_t)(i == 7 ? 0x42 : 0);
    msg[n++] = 0x08;
    memcpy(msg + n, SUP, 8);
    n += 8;
    msg[n++] = 0x08;
    memcpy(msg + n, DEV, 8);
    n += 8;
    msg[n++] = 0x00;
    size_t body = n;
    for (int i = 0; i < 10; i++) msg[n++] = (uint8_t)(0xE0 + i);
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(msg, n, &m));
    assert_int_equal(m.kind, SMKI_GBCS_BLOCK);
    assert_int_equal(m.block.cra, 1);
    assert_int_equal(m.block.counter, 0x42);
    assert_memory_equal(m.block.originator, SUP, 8);
    assert_memory_equal(m.block.recipient, DEV, 8);
    assert_null(m.block.date_time);
    assert_int_equal(m.block.body_offset, body);
    assert_int_equal(m.block.body_len, 10);
    assert_string_equal(smki_gbcs_kind_name(m.kind), "block-transfer");
    /* Header fields are checked like the others. */
    assert_fails(parse_edit(msg, n, 2, 0x07), SMKI_E_INPUT, "CRA flag");
    assert_fails(parse_edit(msg, n, 11, 0x09), SMKI_E_INPUT, "originator system title");
    assert_fails(smki_gbcs_parse(msg, 20, &m), SMKI_E_INPUT, NULL);
    /* Nothing to verify in it. */
    assert_fails(smki_gbcs_verify_signature(&m, NULL), SMKI_E_INPUT, "block-transfer");
}

/* Every RTDS message: parse, build from the fields, get the same bytes. */
static void test_build_round_trips_every_rtds_message(void **state)
{
    (void)state;
    size_t n;
    rtds_file *f = rtds_list(NULL, &n);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = load_msg(f[i].path, &len);
        smki_gbcs_msg m;
        assert_ok(smki_gbcs_parse(b, len, &m));
        /* From the fields (other-info rebuilt from its parts) ... */
        smki_gbcs_fields fl = m.gsa;
        fl.other_info = NULL;
        uint8_t *o = NULL;
        size_t olen;
        assert_ok(smki_gbcs_build_signing(&fl, &o, &olen));
        if (olen != m.gsa.len || memcmp(o, b + m.gsa.offset, olen) != 0) fail_msg("%s: rebuild differs", f[i].name);
        free(o);
        /* ... and with other-info as given. */
        assert_ok(smki_gbcs_build_signing(&m.gsa, &o, &olen));
        assert_int_equal(olen, m.gsa.len);
        assert_memory_equal(o, b + m.gsa.offset, olen);
        free(o);
        free(b);
    }
    free(f);
}

static void test_decode_input_hex_text_with_whitespace_or_binary(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = base_pre(&len);
    char text[200];
    size_t t = 0;
    for (size_t i = 0; i < len; i++) t += (size_t)snprintf(text + t, sizeof text - t, "%02x%s", b[i], i % 8 == 7 ? "\r\n " : "");
    uint8_t *o = NULL;
    size_t olen;
    assert_ok(smki_gbcs_decode_input((const uint8_t *)text, t, &o, &olen));
    assert_int_equal(olen, len);
    assert_memory_equal(o, b, len);
    free(o);
    assert_ok(smki_gbcs_decode_input(b, len, &o, &olen));
    assert_memory_equal(o, b, len);
    free(o);
    /* An odd digit count is not hex text of a message. */
    assert_fails(smki_gbcs_decode_input((const uint8_t *)"DF0", 3, &o, &olen), SMKI_E_INPUT, "odd number");
    free(b);
}

/* ---- Signature refusals ----------------------------------------------------------- */
static void test_verify_signature_refuses_absent_and_wrong(void **state)
{
    (void)state;
    EVP_PKEY *sup = load_pub(SUPPLIER_DS_CERT);
    EVP_PKEY *no = load_pub("90b3d51f30020000-ds.pem");
    size_t len;
    uint8_t *b = base_pre(&len);
    uint8_t *c = malloc(len + 1);
    memcpy(c, b, len);
    c[len] = 0x00;
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(c, len + 1, &m));
    assert_int_equal(m.gsa.sig_state, SMKI_GBCS_SIG_ABSENT);
    assert_fails(smki_gbcs_verify_signature(&m, sup), SMKI_E_VERIFY, "carries no signature");
    /* A DF-only unsigned command has nothing to check. */
    smki_gbcs_verify_report rep;
    assert_fails(smki_gbcs_verify_command(&m, keystore_dir(), NULL, AT_2020, &rep), SMKI_E_VERIFY,
                 "neither a signature nor a MAC");
    /* Signed with a 00-terminated pre-command: the 00 is replaced by the signature. */
    smki_key *ds = open_file_key(SUPPLIER_DS_KEY);
    uint8_t *s = NULL;
    size_t slen;
    assert_ok(smki_gbcs_sign(ds, c, len + 1, &s, &slen));
    assert_int_equal(slen, len + 65);
    assert_ok(smki_gbcs_parse(s, slen, &m));
    assert_ok(smki_gbcs_verify_signature(&m, sup));
    assert_fails(smki_gbcs_verify_signature(&m, no), SMKI_E_VERIFY, NULL);
    /* All-zero r and s. */
    memset(s + len + 1, 0, 64);
    assert_ok(smki_gbcs_parse(s, slen, &m));
    assert_fails(smki_gbcs_verify_signature(&m, sup), SMKI_E_VERIFY, NULL);
    free(s);
    smki_key_free(ds);
    EVP_PKEY_free(sup);
    EVP_PKEY_free(no);
    free(c);
    free(b);
}

static void test_verify_command_refuses_expired_signer_and_unknown_parties(void **state)
{
    (void)state;
    char ref[1200];
    snprintf(ref, sizeof ref, ACB_KA, test_shared_path(KEYSTORE));
    smki_key *acb = NULL;
    assert_ok(smki_key_open(ref, NULL, &acb));
    size_t len;
    uint8_t *b = load_rtds(CMD_ECS01A, &len);
    smki_gbcs_msg m;
    smki_gbcs_verify_report rep;
    assert_ok(smki_gbcs_parse(b, len, &m));
    assert_ok(smki_gbcs_verify_command(&m, keystore_dir(), acb, AT_2020, &rep));
    assert_true(rep.signature_checked && rep.mac_checked);
    /* 2030: the supplier's certificate expired in 2025. */
    assert_fails(smki_gbcs_verify_command(&m, keystore_dir(), acb, 1893456000, &rep), SMKI_E_REFUSED,
                 "is not valid at 2030-01-01T00:00:00Z");
    /* A folder without the signer's certificate. */
    const char *tmp = test_tmpdir("gbcs-empty");
    smki_gbcs_certdir *empty = NULL;
    assert_ok(smki_gbcs_certdir_open(tmp, &empty));
    assert_fails(smki_gbcs_verify_command(&m, empty, acb, AT_2020, &rep), SMKI_E_NOTFOUND,
                 "no DS certificate for 90B3D51F30010000");
    smki_gbcs_certdir_free(empty);
    /* The wrong ACB key: the MAC does not verify. */
    smki_key *other = open_file_key("90b3d51f30010000-ka.key");
    assert_fails(smki_gbcs_verify_command(&m, keystore_dir(), other, AT_2020, &rep), SMKI_E_VERIFY,
                 "MAC does not verify");
    smki_key_free(other);
    /* A response is not a command. */
    size_t rlen;
    uint8_t *r = load_rtds(RESP_CS08, &rlen);
    smki_gbcs_msg rm;
    assert_ok(smki_gbcs_parse(r, rlen, &rm));
    assert_fails(smki_gbcs_verify_command(&rm, keystore_dir(), acb, AT_2020, &rep), SMKI_E_REFUSED, "not a command");
    free(r);
    free(b);
    smki_key_free(acb);
}

/* The recipient named in the APDU chooses the KA key: verifying against another
 * device's KA key (a misrouted command) fails. */
static void test_verify_mac_refuses_wrong_recipient_key_and_wrong_mac(void **state)
{
    (void)state;
    char ref[1200];
    snprintf(ref, sizeof ref, ACB_KA, test_shared_path(KEYSTORE));
    smki_key *acb = NULL;
    assert_ok(smki_key_open(ref, NULL, &acb));
    size_t len;
    uint8_t *b = load_rtds(CMD_ECS01A, &len);
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(b, len, &m));
    EVP_PKEY *right = load_pub("00db1234567890a0-ka.pem");
    EVP_PKEY *wrong = load_pub("00db1234567890a1-ka.pem");
    assert_ok(smki_gbcs_verify_mac(&m, acb, right));
    assert_fails(smki_gbcs_verify_mac(&m, acb, wrong), SMKI_E_VERIFY, "MAC does not verify");
    uint8_t mac[12];
    assert_ok(smki_gbcs_compute_mac(&m, acb, right, mac));
    assert_memory_equal(mac, m.mac, 12);
    b[len - 1] ^= 0x01;
    assert_ok(smki_gbcs_parse(b, len, &m));
    assert_fails(smki_gbcs_verify_mac(&m, acb, right), SMKI_E_VERIFY, "MAC does not verify");
    /* No MAC on a DF message. */
    size_t plen;
    uint8_t *p = load_rtds(PRE_ECS01A, &plen);
    assert_ok(smki_gbcs_parse(p, plen, &m));
    assert_fails(smki_gbcs_verify_mac(&m, acb, right), SMKI_E_INPUT, "carries no MAC");
    free(p);
    EVP_PKEY_free(right);
    EVP_PKEY_free(wrong);
    free(b);
    smki_key_free(acb);
}

/* ---- Signing as an organisation --------------------------------------------------- */
static X509 *load_cert(const char *keystore_name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", test_shared_path(KEYSTORE), keystore_name);
    X509 *c = NULL;
    assert_ok(smki_cert_load_file(p, &c));
    return c;
}

static void test_sign_as_refuses_wrong_signer_and_mismatched_correlation(void **state)
{
    (void)state;
    size_t plen;
    uint8_t *pre = load_rtds(PRE_ECS01A, &plen);
    smki_gbcs_msg pm;
    assert_ok(smki_gbcs_parse(pre, plen, &pm));
    smki_key *ds = open_file_key(SUPPLIER_DS_KEY);
    smki_key *nods = open_file_key("90b3d51f30020000-ds.key");
    X509 *cert = load_cert(SUPPLIER_DS_CERT);
    X509 *ka = load_cert("90b3d51f30010000-ka.pem");
    X509 *no = load_cert("90b3d51f30020000-ds.pem");
    X509 *dev = load_cert("00db1234567890a0-ds.pem");
    uint8_t *o = NULL;
    size_t olen;
    smki_gbcs_expect e;
    memset(&e, 0, sizeof e);
    assert_fails(smki_gbcs_sign_as(nods, no, NULL, pre, plen, &o, &olen), SMKI_E_REFUSED,
                 "the certificate is 90B3D51F30020000's, the pre-command's originator is 90B3D51F30010000");
    assert_fails(smki_gbcs_sign_as(ds, ka, NULL, pre, plen, &o, &olen), SMKI_E_REFUSED,
                 "not a digital-signature certificate");
    assert_fails(smki_gbcs_sign_as(ds, dev, NULL, pre, plen, &o, &olen), SMKI_E_REFUSED,
                 "not an organisation certificate");
    assert_fails(smki_gbcs_sign_as(nods, cert, NULL, pre, plen, &o, &olen), SMKI_E_REFUSED,
                 "is not the key of the signing certificate");
    e.has_code = 1;
    e.code = 0x0020;
    assert_fails(smki_gbcs_sign_as(ds, cert, &e, pre, plen, &o, &olen), SMKI_E_REFUSED,
                 "message code: expected 0020, found");
    e.code = pm.gsa.message_code;
    e.has_target = 1;
    e.target = smki_gbcs_eui(SUP);
    assert_fails(smki_gbcs_sign_as(ds, cert, &e, pre, plen, &o, &olen), SMKI_E_REFUSED,
                 "target (recipient): expected 90B3D51F30010000, found 00DB1234567890A0");
    e.target = smki_gbcs_eui(pm.gsa.recipient);
    e.has_counter = 1;
    e.counter_min = pm.gsa.counter + 1;
    e.counter_max = pm.gsa.counter + 10;
    assert_fails(smki_gbcs_sign_as(ds, cert, &e, pre, plen, &o, &olen), SMKI_E_REFUSED, "originator counter: expected");
    assert_null(o);
    e.counter_min = pm.gsa.counter;
    assert_ok(smki_gbcs_sign_as(ds, cert, &e, pre, plen, &o, &olen));
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(o, olen, &m));
    assert_ok(smki_gbcs_verify_signature(&m, X509_get0_pubkey(cert)));
    free(o);
    X509_free(cert);
    X509_free(ka);
    X509_free(no);
    X509_free(dev);
    smki_key_free(ds);
    smki_key_free(nods);
    free(pre);
}

static void test_sign_and_wrap_with_softhsm_token_keys(void **state)
{
    (void)state;
    char hsm[1200];
    snprintf(hsm, sizeof hsm, "%s/hsm", test_tmpdir("gbcs-hsm"));
    assert_ok(smki_softhsm_prepare(hsm));
    int created = 0;
    smki_token_info info;
    assert_ok(smki_token_init(NULL, "gbcs", "87654321", "4321", &created, &info));
    smki_hsm_opts o = {.pin = "4321"};
    char ds_uri[SMKI_KEY_URI_MAX], ka_uri[SMKI_KEY_URI_MAX];
    assert_ok(smki_key_generate(&o, "gbcs", "ds", SMKI_USAGE_DS, ds_uri));
    assert_ok(smki_key_generate(&o, "gbcs", "ka", SMKI_USAGE_KA, ka_uri));
    smki_key *ds = NULL, *ka = NULL;
    assert_ok(smki_key_open(ds_uri, &o, &ds));
    assert_ok(smki_key_open(ka_uri, &o, &ka));
    assert_true(smki_key_is_token(ds));
    size_t plen;
    uint8_t *pre = load_rtds(PRE_ECS01A, &plen);
    uint8_t *s = NULL, *w = NULL;
    size_t slen, wlen;
    assert_ok(smki_gbcs_sign(ds, pre, plen, &s, &slen));
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(s, slen, &m));
    assert_ok(smki_gbcs_verify_signature(&m, smki_key_public(ds)));
    /* Wrap with the token's KA key for a device, verify from the device's side with a file key. */
    smki_key *dev = open_file_key("90b3d51f30010000-ka.key");
    EVP_PKEY *devpub = load_pub("90b3d51f30010000-ka.pem");
    assert_ok(smki_gbcs_wrap(s, slen, ka, devpub, 3, &w, &wlen));
    smki_gbcs_msg wm;
    assert_ok(smki_gbcs_parse(w, wlen, &wm));
    assert_ok(smki_gbcs_verify_mac(&wm, dev, smki_key_public(ka)));
    assert_ok(smki_gbcs_verify_mac(&wm, ka, devpub));
    assert_ok(smki_gbcs_verify_signature(&wm, smki_key_public(ds)));
    free(s);
    free(w);
    free(pre);
    EVP_PKEY_free(devpub);
    smki_key_free(dev);
    smki_key_free(ds);
    smki_key_free(ka);
}

/* ---- Certificates by EUI-64 -------------------------------------------------------- */
static int copy_file(const char *from, const char *to)
{
    uint8_t *d = NULL;
    size_t n;
    GUARD(smki_file_read(from, 1 << 20, &d, &n));
    int rc = smki_file_write_atomic(to, d, n, 0644, 0);
    free(d);
    return rc;
}

static void test_certdir_finds_certificates_by_eui_whatever_their_name(void **state)
{
    (void)state;
    const char *tmp = test_tmpdir("gbcs-certdir");
    char dir[1100], from[1400], to[1400];
    snprintf(dir, sizeof dir, "%s", tmp);
    snprintf(from, sizeof from, "%s/%s", test_shared_path(KEYSTORE), SUPPLIER_DS_CERT);
    snprintf(to, sizeof to, "%s/supplier-signing.pem", dir);
    assert_ok(copy_file(from, to));
    snprintf(from, sizeof from, "%s/%s", test_shared_path(KEYSTORE), SUPPLIER_DS_KEY);
    snprintf(to, sizeof to, "%s/supplier.pem", dir); /* a key, not a certificate: ignored */
    assert_ok(copy_file(from, to));
    smki_gbcs_certdir *d = NULL;
    assert_ok(smki_gbcs_certdir_open(dir, &d));
    assert_int_equal(smki_gbcs_certdir_count(d), 1);
    X509 *c = NULL;
    assert_ok(smki_gbcs_certdir_find(d, SUP, SMKI_USAGE_DS, &c));
    assert_fails(smki_gbcs_certdir_find(d, SUP, SMKI_USAGE_KA, &c), SMKI_E_NOTFOUND, "no KA certificate for 90B3D51F30010000");
    smki_gbcs_certdir_free(d);
    /* Two unnamed DS certificates of one EUI-64: ambiguous; the keystore's name settles it. */
    snprintf(from, sizeof from, "%s/%s", test_shared_path(KEYSTORE), SUPPLIER_DS_CERT);
    snprintf(to, sizeof to, "%s/copy.crt", dir);
    assert_ok(copy_file(from, to));
    assert_ok(smki_gbcs_certdir_open(dir, &d));
    assert_fails(smki_gbcs_certdir_find(d, SUP, SMKI_USAGE_DS, &c), SMKI_E_REFUSED, "ambiguous");
    smki_gbcs_certdir_free(d);
    snprintf(to, sizeof to, "%s/90b3d51f30010000-ds.pem", dir);
    assert_ok(copy_file(from, to));
    assert_ok(smki_gbcs_certdir_open(dir, &d));
    assert_ok(smki_gbcs_certdir_find(d, SUP, SMKI_USAGE_DS, &c));
    smki_gbcs_certdir_free(d);
    assert_fails(smki_gbcs_certdir_open("/nonexistent/gbcs", &d), SMKI_E_NOTFOUND, "/nonexistent/gbcs");
}

static void test_time_parse(void **state)
{
    (void)state;
    time_t t;
    assert_ok(smki_gbcs_time_parse("2020-01-01T00:00:00Z", &t));
    assert_int_equal(t, AT_2020);
    assert_ok(smki_gbcs_time_parse("2020-01-01", &t));
    assert_int_equal(t, AT_2020);
    assert_fails(smki_gbcs_time_parse("2020-01-01T00:00:00", &t), SMKI_E_USAGE, "not a time");
    assert_fails(smki_gbcs_time_parse("2020-13-01", &t), SMKI_E_USAGE, "not a time");
    assert_fails(smki_gbcs_time_parse("yesterday", &t), SMKI_E_USAGE, "not a time");
}

/* ---- Every byte of every command matters ----------------------------------------- */
static void test_flipping_any_byte_of_any_rtds_command_fails_verification(void **state)
{
    (void)state;
    char ref[1200];
    snprintf(ref, sizeof ref, ACB_KA, test_shared_path(KEYSTORE));
    smki_key *acb = NULL;
    assert_ok(smki_key_open(ref, NULL, &acb));
    size_t n;
    rtds_file *f = rtds_list("_COMMAND_GBCS", &n);
    size_t files = 0, flips = 0;
    for (size_t i = 0; i < n; i++) {
        if (strstr(f[i].name, "PRECOMMAND") || strstr(f[i].name, "PCS01_")) continue;
        size_t len;
        uint8_t *b = load_msg(f[i].path, &len);
        smki_gbcs_msg m;
        smki_gbcs_verify_report rep;
        assert_ok(smki_gbcs_parse(b, len, &m));
        assert_ok(smki_gbcs_verify_command(&m, keystore_dir(), acb, AT_2020, &rep));
        files++;
        for (size_t at = 0; at < len; at++) {
            static const uint8_t masks[2] = {0x01, 0xFF};
            for (int k = 0; k < 2; k++) {
                b[at] ^= masks[k];
                int rc = smki_gbcs_parse(b, len, &m);
                if (rc == 0) rc = smki_gbcs_verify_command(&m, keystore_dir(), acb, AT_2020, &rep);
                if (rc == 0) fail_msg("%s: octet %zu ^ %02x still verifies", f[i].name, at, masks[k]);
                b[at] ^= masks[k];
                flips++;
            }
        }
        free(b);
    }
    print_message("%zu commands, %zu single-octet changes, every one refused\n", files, flips);
    assert_int_equal(files, 45);
    free(f);
    smki_key_free(acb);
}

/* ---- Responses and alerts (smki_gbcs_verify_message) ------------------------------ */
typedef struct {
    smki_key *k[3];
    smki_gbcs_ka_key bound[3];
} recipient_keys;

/* The published KA keys of the RTDS recipients: supplier, ACB, network operator. */
static void recipients_open(recipient_keys *r, smki_gbcs_verify_opts *o)
{
    static const char *names[3] = {"90b3d51f30010000", "90b3d51f30000002", "90b3d51f30020000"};
    memset(o, 0, sizeof *o);
    for (int i = 0; i < 3; i++) {
        char ref[1200];
        snprintf(ref, sizeof ref, "file:%s/%s-ka.key", test_shared_path(KEYSTORE), names[i]);
        assert_ok(smki_key_open(ref, NULL, &r->k[i]));
        assert_ok(smki_gbcs_ka_key_bind(keystore_dir(), r->k[i], &r->bound[i]));
        char hex[17];
        smki_hex_encode(r->bound[i].id.b, 8, hex, 0);
        assert_string_equal(hex, names[i]); /* bound by its certificate, not its file name */
    }
    o->recipient_keys = r->bound;
    o->nrecipient_keys = 3;
    o->at = AT_2020;
}

static void recipients_close(recipient_keys *r)
{
    for (int i = 0; i < 3; i++) smki_key_free(r->k[i]);
}

static void test_verify_message_accepts_every_rtds_response_and_alert(void **state)
{
    (void)state;
    recipient_keys rk;
    smki_gbcs_verify_opts o;
    recipients_open(&rk, &o);
    size_t n;
    rtds_file *f = rtds_list(NULL, &n);
    size_t sigs = 0, macs = 0, d2d = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = load_msg(f[i].path, &len);
        smki_gbcs_msg m;
        assert_ok(smki_gbcs_parse(b, len, &m));
        if (m.gsa.cra == SMKI_GBCS_CRA_COMMAND) {
            free(b);
            continue;
        }
        smki_gbcs_check c;
        int rc = smki_gbcs_verify_message(&m, keystore_dir(), &o, &c);
        if (rc < 0) fail_msg("%s: %s: %s", f[i].name, c.reason, smki_error_msg());
        assert_string_equal(c.reason, "");
        assert_int_equal(c.cra, m.gsa.cra);
        sigs += c.signature_checked;
        macs += c.mac_checked;
        d2d += c.device_to_device;
        total++;
        free(b);
    }
    print_message("%zu responses and alerts: %zu signatures, %zu MACs, %zu device-to-device\n", total, sigs, macs, d2d);
    assert_int_equal(total, 61);
    assert_int_equal(sigs, 43);
    assert_int_equal(macs, 17);
    assert_int_equal(d2d, 1); /* PCS01's response, PPMID to meter */
    free(f);
    recipients_close(&rk);
}

static void test_flipping_any_byte_of_any_rtds_response_or_alert_fails_by_name(void **state)
{
    (void)state;
    recipient_keys rk;
    smki_gbcs_verify_opts o;
    recipients_open(&rk, &o);
    size_t n, files = 0, flips = 0;
    rtds_file *f = rtds_list(NULL, &n);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = load_msg(f[i].path, &len);
        smki_gbcs_msg m;
        smki_gbcs_check c;
        assert_ok(smki_gbcs_parse(b, len, &m));
        if (m.gsa.cra == SMKI_GBCS_CRA_COMMAND || smki_gbcs_verify_message(&m, keystore_dir(), &o, &c) < 0 ||
            c.device_to_device) {
            free(b);
            continue;
        }
        files++;
        for (size_t at = 0; at < len; at++) {
            b[at] ^= 0x01;
            int rc = smki_gbcs_parse(b, len, &m);
            if (rc == 0) {
                rc = smki_gbcs_verify_message(&m, keystore_dir(), &o, &c);
                if (rc == 0 && !c.device_to_device)
                    fail_msg("%s: octet %zu ^ 01 still verifies", f[i].name, at);
                if (rc < 0 && !c.reason[0]) fail_msg("%s: octet %zu: refused without a reason", f[i].name, at);
            }
            smki_error_clear();
            b[at] ^= 0x01;
            flips++;
        }
        free(b);
    }
    print_message("%zu responses and alerts, %zu single-octet changes, every one refused\n", files, flips);
    assert_int_equal(files, 60);
    free(f);
    recipients_close(&rk);
}

/* One RTDS message parsed, kept with its bytes. */
typedef struct {
    uint8_t *b;
    size_t len;
    smki_gbcs_msg m;
} held_msg;

static void held_load(const char *dir_and_name, held_msg *h)
{
    char path[1600];
    snprintf(path, sizeof path, "%s/%s", test_shared_path(RTDS), dir_and_name);
    h->b = load_msg(path, &h->len);
    assert_ok(smki_gbcs_parse(h->b, h->len, &h->m));
}

static void test_verify_message_names_each_refusal(void **state)
{
    (void)state;
    recipient_keys rk;
    smki_gbcs_verify_opts o;
    recipients_open(&rk, &o);
    smki_gbcs_check c;
    held_msg maced, sig;
    held_load("3.1_ECS10/ECS10_3.1_SUCCESS_RESPONSE_GBCS.HEX", &maced);
    held_load("7.1_ECS42/ECS42_7.1_SUCCESS_RESPONSE_GBCS.HEX", &sig);

    /* A response signed by another device: a0's signature under a1's title. */
    sig.b[sig.m.gsa.originator - sig.b + 7] ^= 0x01;
    assert_fails(smki_gbcs_verify_message(&sig.m, keystore_dir(), &o, &c), SMKI_E_VERIFY, "00DB1234567890A1");
    assert_string_equal(c.reason, "signature.invalid");
    sig.b[sig.m.gsa.originator - sig.b + 7] ^= 0x01;
    assert_ok(smki_gbcs_verify_message(&sig.m, keystore_dir(), &o, &c));
    /* The signer's certificate out of its validity: device certificates start in 2019 or later. */
    o.at = 86400;
    assert_fails(smki_gbcs_verify_message(&sig.m, keystore_dir(), &o, &c), SMKI_E_REFUSED, "is not valid at");
    assert_string_equal(c.reason, "cert.expired");
    o.at = AT_2020;

    /* The MAC under the wrong recipient's key: only the network operator's key bound,
     * renamed as the supplier's. */
    smki_gbcs_ka_key wrong = rk.bound[2];
    wrong.id = rk.bound[0].id;
    smki_gbcs_verify_opts ow = o;
    ow.recipient_keys = &wrong;
    ow.nrecipient_keys = 1;
    assert_fails(smki_gbcs_verify_message(&maced.m, keystore_dir(), &ow, &c), SMKI_E_VERIFY, "MAC does not verify");
    assert_string_equal(c.reason, "mac.invalid");
    /* No key for the recipient at all. */
    ow.recipient_keys = &rk.bound[2];
    assert_fails(smki_gbcs_verify_message(&maced.m, keystore_dir(), &ow, &c), SMKI_E_NOTFOUND, "--recipient-key");
    assert_string_equal(c.reason, "mac.no-key");
    /* A folder without the device's certificates. */
    smki_gbcs_certdir *empty = NULL;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/csr", test_shared_path("vectors/gbcs"));
    assert_ok(smki_gbcs_certdir_open(dir, &empty));
    assert_fails(smki_gbcs_verify_message(&maced.m, empty, &o, &c), SMKI_E_NOTFOUND, "KA certificate");
    assert_string_equal(c.reason, "cert.not-found");
    assert_fails(smki_gbcs_verify_message(&sig.m, empty, &o, &c), SMKI_E_NOTFOUND, "DS certificate");
    assert_string_equal(c.reason, "cert.not-found");
    smki_gbcs_certdir_free(empty);
    /* A key with no certificate in the folder cannot be bound to a recipient. */
    smki_key *orphan = NULL;
    char ref[1200];
    snprintf(ref, sizeof ref, "file:%s/abababababababab-ka.key", test_shared_path(KEYSTORE));
    assert_ok(smki_key_open(ref, NULL, &orphan));
    smki_gbcs_ka_key b;
    assert_fails(smki_gbcs_ka_key_bind(keystore_dir(), orphan, &b), SMKI_E_NOTFOUND, "KA certificate");
    smki_key_free(orphan);
    /* Neither signature nor MAC: the signed response with its signature replaced by 00. */
    size_t cut = sig.m.gsa.signed_offset + sig.m.gsa.signed_len;
    sig.b[cut] = 0x00;
    smki_gbcs_msg bare;
    assert_ok(smki_gbcs_parse(sig.b, cut + 1, &bare));
    assert_fails(smki_gbcs_verify_message(&bare, keystore_dir(), &o, &c), SMKI_E_VERIFY, "neither a signature nor a MAC");
    assert_string_equal(c.reason, "structure.unprotected");
    free(maced.b);
    free(sig.b);
    recipients_close(&rk);
}

/* ---- Counters a receiver has seen -------------------------------------------------- */
static void test_counters_refuse_replayed_and_reordered_counters_by_name(void **state)
{
    (void)state;
    static const char text[] = "# marks\n"
                               "00db1234567890a0 90b3d51f30010000 2 1007\r\n"
                               "\n"
                               "00db1234567890a0 90b3d51f30010000 3 2000\n";
    smki_gbcs_counters *c = NULL;
    assert_ok(smki_gbcs_counters_parse((const uint8_t *)text, sizeof text - 1, "t", &c));
    assert_int_equal(smki_gbcs_counters_count(c), 2);
    held_msg r1006, r1008, alert;
    held_load("1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_RESPONSE_GBCS.HEX", &r1006);
    held_load("1.1.1_ECS01a/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_RESPONSE_GBCS.HEX", &r1008);
    held_load("NA_FDRA-DLMS/FDRA-DLMS_NA_8F72_ALERT_GBCS.HEX", &alert);
    const char *why = NULL;
    assert_fails(smki_gbcs_counters_check(c, &r1006.m.gsa, &why), SMKI_E_REFUSED, "below the last one seen (1007)");
    assert_string_equal(why, "counter.reordered");
    assert_fails(smki_gbcs_counters_check(c, &alert.m.gsa, &why), SMKI_E_REFUSED, "replays");
    assert_string_equal(why, "counter.replay");
    assert_ok(smki_gbcs_counters_check(c, &r1008.m.gsa, &why));
    assert_string_equal(why, "");
    assert_ok(smki_gbcs_counters_note(c, &r1008.m.gsa));
    assert_fails(smki_gbcs_counters_check(c, &r1008.m.gsa, &why), SMKI_E_REFUSED, "replays");
    /* Another recipient has its own mark. */
    r1006.b[r1006.m.gsa.recipient - r1006.b + 7] ^= 0x01;
    assert_ok(smki_gbcs_counters_check(c, &r1006.m.gsa, &why));
    assert_ok(smki_gbcs_counters_note(c, &r1006.m.gsa));
    assert_int_equal(smki_gbcs_counters_count(c), 3);
    assert_fails(smki_gbcs_counters_save(c), SMKI_E_USAGE, "no file");
    smki_gbcs_counters_free(c);
    free(r1006.b);
    free(r1008.b);
    free(alert.b);
}

static void test_counters_parse_refuses_malformed_lines(void **state)
{
    (void)state;
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"00db1234567890a0 90b3d51f30010000 2\n", "give ORIGINATOR"},
        {"00db1234567890a0 90b3d51f30010000 2 5 6\n", "give ORIGINATOR"},
        {"00db1234567890a 90b3d51f30010000 2 5\n", "originator is not 16 hex"},
        {"00db1234567890a0 90b3d51f3001000g 2 5\n", "recipient is not 16 hex"},
        {"00db1234567890a0 90b3d51f30010000 4 5\n", "CRA flag"},
        {"00db1234567890a0 90b3d51f30010000 0 5\n", "CRA flag"},
        {"00db1234567890a0 90b3d51f30010000 2 18446744073709551616\n", "not a decimal"},
        {"00db1234567890a0 90b3d51f30010000 2 -1\n", "not a decimal"},
        {"00db1234567890a0 90b3d51f30010000 2 5\n00db1234567890a0 90b3d51f30010000 2 6\n", "t:2: the same"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        smki_gbcs_counters *c = NULL;
        assert_fails(smki_gbcs_counters_parse((const uint8_t *)bad[i].text, strlen(bad[i].text), "t", &c),
                     SMKI_E_INPUT, bad[i].needle);
        assert_null(c);
    }
    smki_gbcs_counters *c = NULL;
    static const char max[] = "00db1234567890a0 90b3d51f30010000 1 18446744073709551615";
    assert_ok(smki_gbcs_counters_parse((const uint8_t *)max, sizeof max - 1, "t", &c));
    assert_int_equal(smki_gbcs_counters_count(c), 1);
    smki_gbcs_counters_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_every_rtds_file),
        cmocka_unit_test(test_verify_command_accepts_every_rtds_command_with_published_keys),
        cmocka_unit_test(test_sign_precommand_gives_the_rtds_command_signed_region),
        cmocka_unit_test(test_wrap_reproduces_the_rtds_command_byte_for_byte),
        cmocka_unit_test(test_mac_verifies_from_either_side),
        cmocka_unit_test(test_verify_mac_of_a_response_from_the_recipient_side),
        cmocka_unit_test(test_parse_refuses_wrong_tags_and_field_lengths),
        cmocka_unit_test(test_parse_refuses_a_bad_cra_flag),
        cmocka_unit_test(test_parse_refuses_every_truncation),
        cmocka_unit_test(test_parse_refuses_trailing_bytes),
        cmocka_unit_test(test_parse_long_form_lengths_minimal_only),
        cmocka_unit_test(test_parse_date_time_present_and_absent),
        cmocka_unit_test(test_parse_other_information_forms),
        cmocka_unit_test(test_parse_refuses_bad_general_ciphering),
        cmocka_unit_test(test_parse_block_transfer_header),
        cmocka_unit_test(test_build_round_trips_every_rtds_message),
        cmocka_unit_test(test_decode_input_hex_text_with_whitespace_or_binary),
        cmocka_unit_test(test_verify_signature_refuses_absent_and_wrong),
        cmocka_unit_test(test_verify_command_refuses_expired_signer_and_unknown_parties),
        cmocka_unit_test(test_verify_mac_refuses_wrong_recipient_key_and_wrong_mac),
        cmocka_unit_test(test_sign_as_refuses_wrong_signer_and_mismatched_correlation),
        cmocka_unit_test(test_sign_and_wrap_with_softhsm_token_keys),
        cmocka_unit_test(test_certdir_finds_certificates_by_eui_whatever_their_name),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_flipping_any_byte_of_any_rtds_command_fails_verification),
        cmocka_unit_test(test_verify_message_accepts_every_rtds_response_and_alert),
        cmocka_unit_test(test_flipping_any_byte_of_any_rtds_response_or_alert_fails_by_name),
        cmocka_unit_test(test_verify_message_names_each_refusal),
        cmocka_unit_test(test_counters_refuse_replayed_and_reordered_counters_by_name),
        cmocka_unit_test(test_counters_parse_refuses_malformed_lines),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    smki_gbcs_certdir_free(keystore_dir_take());
    return rc;
}
