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

static smki_gbcs_certdir *keystore_dir(void)
{
    static smki_gbcs_certdir *d;
    if (!d) assert_ok(smki_gbcs_certdir_open(test_shared_path(KEYSTORE), &d));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_every_rtds_file),
        cmocka_unit_test(test_verify_command_accepts_every_rtds_command_with_published_keys),
        cmocka_unit_test(test_sign_precommand_gives_the_rtds_command_signed_region),
        cmocka_unit_test(test_wrap_reproduces_the_rtds_command_byte_for_byte),
        cmocka_unit_test(test_mac_verifies_from_either_side),
        cmocka_unit_test(test_verify_mac_of_a_response_from_the_recipient_side),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc;
}
