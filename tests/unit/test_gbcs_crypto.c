/* The GBCS primitives (reference §5) proved on the DCC's own data: every General
 * Ciphering command in the RTDS vectors has its 12-octet MAC recomputed from the ACB
 * key-agreement key and the device's key-agreement certificate, through the smki key
 * API as callers use it. Plus the KDF and OtherInfo layout, known GCM answers, and
 * the refusals. */
#include "helpers.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsm/hsm.h"

#define RTDS_DIR "vectors/gbcs/rtds"
#define KEYSTORE_DIR "vectors/gbcs/keystore"
#define ACB_KA_KEY KEYSTORE_DIR "/90b3d51f30000002-ka.key"
/* 60 85 74 06 08 03 00 (7) || originator (8) || 09 || CRA || counter (8) || recipient (8) */
#define OTHER_INFO_OCTETS 33
#define COMMAND_SUFFIX "_COMMAND_GBCS.HEX"
/* A small wrapped command used by the tamper tests (CS08: 53-octet General Signing). */
#define TAMPER_COMMAND RTDS_DIR "/11.2_CS08/CS08_11.2_SUCCESS_COMMAND_GBCS.HEX"

/* ---- Reading a General Ciphering command (reference §5) ------------------------ */

typedef struct {
    uint32_t invocation;      /* security header invocation counter */
    const uint8_t *signing;   /* the General Signing APDU, DF .. signature */
    size_t signing_len;
    uint8_t cra;              /* transaction-id: CRA flag */
    uint64_t counter;         /* transaction-id: originator counter */
    uint8_t originator[8];
    uint8_t recipient[8];
    const uint8_t *mac;       /* the last 12 octets */
} wrapped_command;

/* The General Signing APDU, field by field, so that its end is found by the format
 * and not by subtracting 12 from the message length. */
static int parse_general_signing(smki_cursor_t *c, wrapped_command *w)
{
    size_t len;
    uint8_t date_tag, sig_tag;
    GUARD(smki_cur_expect(c, 0xDF, "general-signing tag"));
    GUARD(smki_cur_expect(c, 0x09, "transaction-id length"));
    GUARD(smki_cur_u8(c, &w->cra));
    GUARD(smki_cur_u64be(c, &w->counter));
    GUARD(smki_cur_expect(c, 0x08, "originator system title length"));
    GUARD(smki_cur_copy(c, w->originator, 8));
    GUARD(smki_cur_expect(c, 0x08, "recipient system title length"));
    GUARD(smki_cur_copy(c, w->recipient, 8));
    GUARD(smki_cur_u8(c, &date_tag));
    if (date_tag == 0x0C)
        GUARD(smki_cur_skip(c, 12));
    else
        ENSURE(date_tag == 0x00, SMKI_E_INPUT, "date-time: expected 00 or 0C, found 0x%02x", date_tag);
    GUARD(smki_cur_ber_len(c, &len)); /* other-info */
    GUARD(smki_cur_skip(c, len));
    GUARD(smki_cur_ber_len(c, &len)); /* content */
    GUARD(smki_cur_skip(c, len));
    GUARD(smki_cur_u8(c, &sig_tag));
    if (sig_tag == 0x40)
        GUARD(smki_cur_skip(c, SMKI_SIG_RAW_LEN));
    else
        ENSURE(sig_tag == 0x00, SMKI_E_INPUT, "signature: expected 40 or 00, found 0x%02x", sig_tag);
    return 0;
}

static int parse_general_ciphering(const uint8_t *msg, size_t len, wrapped_command *w)
{
    smki_cursor_t c = smki_cursor(msg, len), body, signing;
    size_t body_len;
    GUARD(smki_cur_expect(&c, 0xDD, "general-ciphering tag"));
    /* Empty transaction-id, titles, date-time, other-info and key-info. */
    for (int i = 0; i < 6; i++) GUARD(smki_cur_expect(&c, 0x00, "empty general-ciphering field"));
    GUARD(smki_cur_ber_len(&c, &body_len));
    ENSURE(body_len == c.left, SMKI_E_INPUT, "general-ciphering length %zu, but %zu octet(s) follow", body_len, c.left);
    GUARD(smki_cur_sub(&c, body_len, &body));
    GUARD(smki_cur_expect(&body, 0x11, "security control (authenticated only)"));
    GUARD(smki_cur_u32be(&body, &w->invocation));
    signing = body;
    GUARD(parse_general_signing(&signing, w));
    ENSURE(signing.left == SMKI_GBCS_MAC_LEN, SMKI_E_INPUT,
           "after the general-signing APDU %zu octet(s) remain, expected the %d-octet MAC", signing.left,
           SMKI_GBCS_MAC_LEN);
    w->signing_len = body.left - signing.left;
    GUARD(smki_cur_take(&body, w->signing_len, &w->signing));
    GUARD(smki_cur_take(&body, SMKI_GBCS_MAC_LEN, &w->mac));
    return 0;
}

/* IV = originator title || invocation counter; AAD = 11 00 00 00 00 00 || General
 * Signing APDU (reference §5). Caller frees *aad. */
static void mac_inputs(const wrapped_command *w, uint8_t iv[12], uint8_t **aad, size_t *aad_len)
{
    static const uint8_t aad_head[6] = {0x11, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy(iv, w->originator, 8);
    for (int i = 0; i < 4; i++) iv[8 + i] = (uint8_t)(w->invocation >> (24 - 8 * i));
    *aad_len = sizeof aad_head + w->signing_len;
    *aad = malloc(*aad_len);
    assert_non_null(*aad);
    memcpy(*aad, aad_head, sizeof aad_head);
    memcpy(*aad + sizeof aad_head, w->signing, w->signing_len);
}

/* ---- Vectors ------------------------------------------------------------------ */

static uint8_t *read_hex_file(const char *path, size_t *len)
{
    uint8_t *text = NULL, *bytes;
    size_t text_len = 0;
    if (smki_file_read(path, 1u << 20, &text, &text_len) != 0) fail_msg("cannot read %s: %s", path, smki_error_msg());
    bytes = malloc(text_len / 2 + 1);
    assert_non_null(bytes);
    if (smki_hex_decode((const char *)text, text_len, bytes, text_len / 2 + 1, len) != 0)
        fail_msg("%s is not hex: %s", path, smki_error_msg());
    free(text);
    return bytes;
}

static void eui_hex(const uint8_t eui[8], char out[17])
{
    smki_hex_encode(eui, 8, out, 0);
}

static int keystore_ka_path(const uint8_t eui[8], char *path, size_t cap)
{
    char hex[17];
    eui_hex(eui, hex);
    int n = snprintf(path, cap, "%s/%s-ka.pem", test_shared_path(KEYSTORE_DIR), hex);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* A Device Certificate has an empty subject (GBCS 12, reference §4); a remote
 * party's has OU and x500UniqueIdentifier. When the originator is a device, the
 * command is HAN-local and MACed under device-to-device KA keys (reference §5),
 * which the ACB does not hold. Unknown originators count as remote parties, so
 * that they are checked, not skipped. */
static int originator_is_device(const uint8_t originator[8])
{
    char path[1024];
    X509 *cert = NULL;
    if (keystore_ka_path(originator, path, sizeof path) != 0 || access(path, R_OK) != 0) return 0;
    assert_ok(smki_cert_load_file(path, &cert));
    int is_device = X509_NAME_entry_count(X509_get_subject_name(cert)) == 0;
    X509_free(cert);
    return is_device;
}

static EVP_PKEY *load_device_ka(const uint8_t recipient[8], X509 **cert)
{
    char path[1024];
    assert_int_equal(keystore_ka_path(recipient, path, sizeof path), 0);
    assert_ok(smki_cert_load_file(path, cert));
    EVP_PKEY *pub = X509_get0_pubkey(*cert);
    assert_non_null(pub);
    return pub;
}

static smki_key *open_acb_ka(void)
{
    char ref[1100];
    smki_key *key = NULL;
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(ACB_KA_KEY));
    assert_ok(smki_key_open(ref, NULL, &key));
    return key;
}

/* The MAC key of a wrapped command as the ACB derives it: its KA key against the
 * recipient device's KA certificate; the OtherInfo names the business originator. */
static void command_mac_key(smki_key *acb, const wrapped_command *w, uint8_t key[16])
{
    X509 *cert = NULL;
    EVP_PKEY *peer = load_device_ka(w->recipient, &cert);
    assert_ok(smki_gbcs_mac_key(acb, peer, w->originator, w->cra, w->counter, w->recipient, key));
    X509_free(cert);
}

static int has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

static int is_command_file(const struct dirent *e)
{
    return e->d_name[0] != '.' && has_suffix(e->d_name, COMMAND_SUFFIX);
}

static int is_visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

typedef struct {
    int verified;         /* wrapped, MAC recomputed and equal */
    int signed_only;      /* begin with DF: signed, not wrapped */
    int device_originated;/* wrapped under device-to-device KA keys */
    int block_transfer;   /* DD 09: General Block Transfer, not a General Ciphering APDU */
    int mismatched;       /* wrapped, MAC recomputed and different */
} rtds_counts;

static void check_one_command(smki_key *acb, const char *path, const char *name, rtds_counts *counts)
{
    size_t len = 0;
    uint8_t *msg = read_hex_file(path, &len);
    wrapped_command w;
    uint8_t key[16], iv[12], mac[SMKI_GBCS_MAC_LEN], *aad = NULL;
    size_t aad_len = 0;

    if (len > 0 && msg[0] == 0xDF) {
        counts->signed_only++;
        goto done;
    }
    if (len > 1 && msg[0] == 0xDD && msg[1] == 0x09) {
        counts->block_transfer++;
        goto done;
    }
    if (len == 0 || msg[0] != 0xDD) fail_msg("%s: neither DD nor DF (first octet 0x%02x)", name, len ? msg[0] : 0);
    if (parse_general_ciphering(msg, len, &w) != 0) fail_msg("%s: %s", name, smki_error_msg());

    mac_inputs(&w, iv, &aad, &aad_len);
    command_mac_key(acb, &w, key);
    assert_ok(smki_gcm_mac12(key, iv, aad, aad_len, mac));
    if (originator_is_device(w.originator)) {
        /* The ACB's key cannot be the one; if it were, our reading of §5 is wrong. */
        if (memcmp(mac, w.mac, sizeof mac) == 0) fail_msg("%s: device-originated, yet the ACB key gives its MAC", name);
        counts->device_originated++;
        print_message("skipped (device-originated, device-to-device KA): %s\n", name);
        goto done;
    }
    if (memcmp(mac, w.mac, sizeof mac) != 0) {
        char want[2 * SMKI_GBCS_MAC_LEN + 1], got[2 * SMKI_GBCS_MAC_LEN + 1], o[17], r[17];
        smki_hex_encode(w.mac, sizeof mac, want, 0);
        smki_hex_encode(mac, sizeof mac, got, 0);
        eui_hex(w.originator, o);
        eui_hex(w.recipient, r);
        print_error("%s: MAC %s in the file, %s recomputed (originator %s, recipient %s, CRA %u, counter %llu)\n",
                    name, want, got, o, r, w.cra, (unsigned long long)w.counter);
        counts->mismatched++;
        goto done;
    }
    assert_ok(smki_gcm_mac12_verify(key, iv, aad, aad_len, w.mac));
    counts->verified++;
done:
    smki_wipe(key, sizeof key);
    free(aad);
    free(msg);
}

/* Walk every rtds/<folder>/<name>_COMMAND_GBCS.HEX at run time: the set is whatever the
 * vectors hold, not a list written here. */
static void check_all_commands(smki_key *acb, rtds_counts *counts)
{
    char root[1024], folder[1400], path[1800];
    struct dirent **folders = NULL;
    snprintf(root, sizeof root, "%s", test_shared_path(RTDS_DIR));
    int nf = scandir(root, &folders, is_visible, alphasort);
    if (nf < 0) fail_msg("cannot list %s", root);
    for (int i = 0; i < nf; i++) {
        struct dirent **files = NULL;
        snprintf(folder, sizeof folder, "%s/%s", root, folders[i]->d_name);
        int n = scandir(folder, &files, is_command_file, alphasort);
        for (int j = 0; j < n; j++) {
            snprintf(path, sizeof path, "%s/%s", folder, files[j]->d_name);
            check_one_command(acb, path, files[j]->d_name, counts);
            free(files[j]);
        }
        free(files);
        free(folders[i]);
    }
    free(folders);
}

static void test_mac_of_every_wrapped_rtds_command_recomputes_from_acb_and_device_ka(void **state)
{
    (void)state;
    rtds_counts counts = {0};
    smki_key *acb = open_acb_ka();
    check_all_commands(acb, &counts);
    smki_key_free(acb);
    print_message("RTDS commands: %d MAC verified, %d mismatched, %d signed-only (DF) skipped, "
                  "%d device-originated skipped, %d block transfer skipped\n",
                  counts.verified, counts.mismatched, counts.signed_only, counts.device_originated,
                  counts.block_transfer);
    assert_int_equal(counts.mismatched, 0);
    assert_true(counts.verified >= 10);
}

/* ---- Tampering ------------------------------------------------------------------ */

typedef struct {
    uint8_t *msg;
    wrapped_command w;
    uint8_t key[16];
    uint8_t iv[12];
    uint8_t *aad;
    size_t aad_len;
} tamper_fixture;

static int tamper_setup(void **state)
{
    tamper_fixture *f = calloc(1, sizeof *f);
    size_t len = 0;
    assert_non_null(f);
    f->msg = read_hex_file(test_shared_path(TAMPER_COMMAND), &len);
    assert_ok(parse_general_ciphering(f->msg, len, &f->w));
    mac_inputs(&f->w, f->iv, &f->aad, &f->aad_len);
    smki_key *acb = open_acb_ka();
    command_mac_key(acb, &f->w, f->key);
    smki_key_free(acb);
    assert_ok(smki_gcm_mac12_verify(f->key, f->iv, f->aad, f->aad_len, f->w.mac));
    *state = f;
    return 0;
}

static int tamper_teardown(void **state)
{
    tamper_fixture *f = *state;
    smki_wipe(f->key, sizeof f->key);
    free(f->aad);
    free(f->msg);
    free(f);
    return 0;
}

static void test_mac_verify_refuses_any_single_flipped_aad_byte(void **state)
{
    tamper_fixture *f = *state;
    for (size_t i = 0; i < f->aad_len; i++) {
        f->aad[i] ^= 0x01;
        assert_fails(smki_gcm_mac12_verify(f->key, f->iv, f->aad, f->aad_len, f->w.mac), SMKI_E_VERIFY, "MAC");
        f->aad[i] ^= 0x01;
    }
    assert_ok(smki_gcm_mac12_verify(f->key, f->iv, f->aad, f->aad_len, f->w.mac));
}

static void test_mac_verify_refuses_any_single_flipped_mac_byte(void **state)
{
    tamper_fixture *f = *state;
    uint8_t mac[SMKI_GBCS_MAC_LEN];
    memcpy(mac, f->w.mac, sizeof mac);
    for (size_t i = 0; i < sizeof mac; i++) {
        mac[i] ^= 0x80;
        assert_fails(smki_gcm_mac12_verify(f->key, f->iv, f->aad, f->aad_len, mac), SMKI_E_VERIFY, "MAC");
        mac[i] ^= 0x80;
    }
}

static void test_mac_verify_refuses_wrong_iv_or_key(void **state)
{
    tamper_fixture *f = *state;
    for (size_t i = 0; i < sizeof f->iv; i++) {
        f->iv[i] ^= 0x01;
        assert_fails(smki_gcm_mac12_verify(f->key, f->iv, f->aad, f->aad_len, f->w.mac), SMKI_E_VERIFY, NULL);
        f->iv[i] ^= 0x01;
    }
    for (size_t i = 0; i < sizeof f->key; i++) {
        f->key[i] ^= 0x01;
        assert_fails(smki_gcm_mac12_verify(f->key, f->iv, f->aad, f->aad_len, f->w.mac), SMKI_E_VERIFY, NULL);
        f->key[i] ^= 0x01;
    }
}

/* The counter is part of OtherInfo: the same pair of keys under another counter
 * gives another MAC key, so a replayed MAC cannot be moved to a new counter. */
static void test_mac_key_changes_with_counter_cra_and_titles(void **state)
{
    tamper_fixture *f = *state;
    X509 *cert = NULL;
    EVP_PKEY *peer = load_device_ka(f->w.recipient, &cert);
    smki_key *acb = open_acb_ka();
    uint8_t other[16], originator[8];
    memcpy(originator, f->w.originator, 8);

    assert_ok(smki_gbcs_mac_key(acb, peer, f->w.originator, f->w.cra, f->w.counter + 1, f->w.recipient, other));
    assert_memory_not_equal(other, f->key, 16);
    assert_ok(smki_gbcs_mac_key(acb, peer, f->w.originator, 0x02, f->w.counter, f->w.recipient, other));
    assert_memory_not_equal(other, f->key, 16);
    originator[7] ^= 0x01;
    assert_ok(smki_gbcs_mac_key(acb, peer, originator, f->w.cra, f->w.counter, f->w.recipient, other));
    assert_memory_not_equal(other, f->key, 16);
    assert_ok(smki_gbcs_mac_key(acb, peer, f->w.originator, f->w.cra, f->w.counter, f->w.recipient, other));
    assert_memory_equal(other, f->key, 16);

    smki_key_free(acb);
    X509_free(cert);
}

/* ---- KDF and OtherInfo ------------------------------------------------------------ */

static void test_other_info_is_algorithm_id_originator_transaction_id_recipient(void **state)
{
    (void)state;
    static const uint8_t originator[8] = {0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00};
    static const uint8_t recipient[8] = {0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0};
    static const uint8_t want[OTHER_INFO_OCTETS] = {
        0x60, 0x85, 0x74, 0x06, 0x08, 0x03, 0x00,       /* AlgorithmID */
        0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00, /* originator */
        0x09,                                           /* transaction-id length */
        0x01,                                           /* CRA: command */
        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, /* counter, big-endian */
        0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0, /* recipient */
    };
    uint8_t out[SMKI_GBCS_OTHERINFO_LEN + 1];
    memset(out, 0xA5, sizeof out);
    smki_gbcs_other_info(originator, 0x01, 0x0123456789ABCDEFull, recipient, out);
    for (size_t i = 0; i < OTHER_INFO_OCTETS; i++)
        if (out[i] != want[i]) fail_msg("OtherInfo octet %zu: 0x%02x, want 0x%02x", i, out[i], want[i]);
    assert_int_equal(out[OTHER_INFO_OCTETS], 0xA5); /* nothing written past the layout */
}

/* Callers size and hash OtherInfo with the header's constant; the layout is 33
 * octets, and a 34th octet in the hash would give keys no device agrees with. */
static void test_other_info_length_constant_is_the_33_octet_layout(void **state)
{
    (void)state;
    assert_int_equal(SMKI_GBCS_OTHERINFO_LEN, OTHER_INFO_OCTETS);
}

/* Independent of the KDF's code path: one EVP_Digest over the concatenation. */
static void expected_kdf(const uint8_t z[32], const uint8_t *oi, size_t oi_len, uint8_t key[16])
{
    uint8_t buf[4 + 32 + 64], md[32];
    unsigned int md_len = 0;
    assert_true(oi_len <= 64);
    buf[0] = 0, buf[1] = 0, buf[2] = 0, buf[3] = 1;
    memcpy(buf + 4, z, 32);
    if (oi_len) memcpy(buf + 36, oi, oi_len);
    assert_int_equal(EVP_Digest(buf, 36 + oi_len, md, &md_len, EVP_sha256(), NULL), 1);
    assert_int_equal(md_len, 32);
    memcpy(key, md, 16);
}

static void test_kdf_is_first_16_octets_of_sha256_counter_z_other_info(void **state)
{
    (void)state;
    static const uint8_t originator[8] = {0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x00, 0x00, 0x02};
    static const uint8_t recipient[8] = {0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA4};
    uint8_t z[32], oi[SMKI_GBCS_OTHERINFO_LEN], got[16], want[16];
    const size_t oi_len = OTHER_INFO_OCTETS;
    for (int i = 0; i < 32; i++) z[i] = (uint8_t)(0x11 * i + 3);
    smki_gbcs_other_info(originator, 0x01, 0x514, recipient, oi);

    assert_ok(smki_kdf_sp800_56a(z, oi, oi_len, got));
    expected_kdf(z, oi, oi_len, want);
    assert_memory_equal(got, want, 16);

    /* An empty OtherInfo is legal for the KDF itself. */
    assert_ok(smki_kdf_sp800_56a(z, NULL, 0, got));
    expected_kdf(z, NULL, 0, want);
    assert_memory_equal(got, want, 16);

    /* Every octet of Z matters. */
    z[31] ^= 0x01;
    assert_ok(smki_kdf_sp800_56a(z, oi, oi_len, got));
    expected_kdf(z, oi, oi_len, want);
    assert_memory_equal(got, want, 16);
    z[31] ^= 0x01;
    expected_kdf(z, oi, oi_len, want);
    assert_memory_not_equal(got, want, 16);
}

/* ---- GCM known answers --------------------------------------------------------------- */

static void hex_to(const char *hex, uint8_t *out, size_t want_len)
{
    size_t n = 0;
    assert_ok(smki_hex_decode(hex, strlen(hex), out, want_len, &n));
    assert_int_equal(n, want_len);
}

static void test_gcm_mac12_is_truncated_gcm_tag_of_known_answers(void **state)
{
    (void)state;
    uint8_t key[16], iv[12], aad[16], want[16], tag[SMKI_GBCS_MAC_LEN];
    /* McGrew & Viega, GCM test case 1: zero key and IV, no AAD, no plaintext. */
    memset(key, 0, sizeof key);
    memset(iv, 0, sizeof iv);
    hex_to("58e2fccefa7e3061367f1d57a4e7455a", want, 16);
    assert_ok(smki_gcm_mac12(key, iv, NULL, 0, tag));
    assert_memory_equal(tag, want, SMKI_GBCS_MAC_LEN);
    /* NIST CAVS gcmEncryptExtIV128, PTlen 0, AADlen 128, count 0. */
    hex_to("77be63708971c4e240d1cb79e8d77feb", key, 16);
    hex_to("e0e00f19fed7ba0136a797f3", iv, 12);
    hex_to("7a43ec1d9c0a5a78a0b16533a6213cab", aad, 16);
    hex_to("209fcc8d3675ed938e9c7166709dd946", want, 16);
    assert_ok(smki_gcm_mac12(key, iv, aad, sizeof aad, tag));
    assert_memory_equal(tag, want, SMKI_GBCS_MAC_LEN);
    assert_ok(smki_gcm_mac12_verify(key, iv, aad, sizeof aad, want));
}

/* ---- Refusals ------------------------------------------------------------------------ */

static void test_primitives_refuse_missing_buffers(void **state)
{
    (void)state;
    uint8_t key[16] = {0}, iv[12] = {0}, tag[SMKI_GBCS_MAC_LEN] = {0}, z[32] = {0};
    assert_fails(smki_gcm_mac12(key, iv, NULL, 5, tag), SMKI_E_USAGE, "AAD");
    assert_fails(smki_gcm_mac12(NULL, iv, NULL, 0, tag), SMKI_E_USAGE, NULL);
    assert_fails(smki_gcm_mac12_verify(key, iv, NULL, 0, NULL), SMKI_E_USAGE, NULL);
    assert_fails(smki_kdf_sp800_56a(z, NULL, 3, key), SMKI_E_USAGE, "OtherInfo");
    assert_fails(smki_kdf_sp800_56a(NULL, NULL, 0, key), SMKI_E_USAGE, NULL);
}

static void test_mac_key_refuses_missing_peer(void **state)
{
    (void)state;
    static const uint8_t title[8] = {0};
    uint8_t key[16];
    smki_key *acb = open_acb_ka();
    assert_fails(smki_gbcs_mac_key(acb, NULL, title, 1, 1, title, key), SMKI_E_USAGE, NULL);
    smki_key_free(acb);
}

/* A peer key on another curve cannot agree with a P-256 key: the derivation fails,
 * says it was deriving a GBCS MAC key, and leaves no partial key behind. */
static void test_mac_key_fails_cleanly_on_peer_of_another_curve(void **state)
{
    (void)state;
    static const uint8_t title[8] = {0};
    uint8_t key[16];
    memset(key, 0xA5, sizeof key);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(p384);
    smki_key *acb = open_acb_ka();
    int rc = smki_gbcs_mac_key(acb, p384, title, 1, 1, title, key);
    assert_true(rc < 0);
    assert_non_null(strstr(smki_error_msg(), "GBCS MAC key"));
    for (size_t i = 0; i < sizeof key; i++) assert_int_equal(key[i], 0);
    smki_key_free(acb);
    EVP_PKEY_free(p384);
}

/* The wrapper reading in this file refuses what does not follow §5, so that a
 * "verified" count cannot come from misparsed data. */
static void test_command_reader_refuses_truncated_and_overlong_wrappers(void **state)
{
    (void)state;
    size_t len = 0;
    wrapped_command w;
    uint8_t *msg = read_hex_file(test_shared_path(TAMPER_COMMAND), &len);
    assert_fails(parse_general_ciphering(msg, len - 1, &w), SMKI_E_INPUT, NULL);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, msg, len);
    longer[len] = 0x00;
    assert_fails(parse_general_ciphering(longer, len + 1, &w), SMKI_E_INPUT, "general-ciphering length");
    msg[7] = 0x00; /* DD, six empty fields, then the length octet */
    assert_fails(parse_general_ciphering(msg, len, &w), SMKI_E_INPUT, NULL);
    free(longer);
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_info_is_algorithm_id_originator_transaction_id_recipient),
        cmocka_unit_test(test_other_info_length_constant_is_the_33_octet_layout),
        cmocka_unit_test(test_kdf_is_first_16_octets_of_sha256_counter_z_other_info),
        cmocka_unit_test(test_gcm_mac12_is_truncated_gcm_tag_of_known_answers),
        cmocka_unit_test(test_primitives_refuse_missing_buffers),
        cmocka_unit_test(test_mac_of_every_wrapped_rtds_command_recomputes_from_acb_and_device_ka),
        cmocka_unit_test_setup_teardown(test_mac_verify_refuses_any_single_flipped_aad_byte, tamper_setup,
                                        tamper_teardown),
        cmocka_unit_test_setup_teardown(test_mac_verify_refuses_any_single_flipped_mac_byte, tamper_setup,
                                        tamper_teardown),
        cmocka_unit_test_setup_teardown(test_mac_verify_refuses_wrong_iv_or_key, tamper_setup, tamper_teardown),
        cmocka_unit_test_setup_teardown(test_mac_key_changes_with_counter_cra_and_titles, tamper_setup,
                                        tamper_teardown),
        cmocka_unit_test(test_mac_key_refuses_missing_peer),
        cmocka_unit_test(test_mac_key_fails_cleanly_on_peer_of_another_curve),
        cmocka_unit_test(test_command_reader_refuses_truncated_and_overlong_wrappers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
