/* est: the decoders of what an EST client sends (base64 of a PKCS#10, one PEM CSR,
 * concatenated PEM CSRs for a batch, the path label) and the [enrol] section. No
 * sockets: the service end to end is tests/integration/est.sh with curl and openssl. */
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "est/est.h"
#include "helpers.h"

static int b64(const char *text, uint8_t *out, size_t cap, size_t *n)
{
    int rc = smki_est_base64_decode((const uint8_t *)text, strlen(text), out, cap, n);
    if (rc < 0) smki_error_clear();
    return rc;
}

static void test_base64_decodes_padded_unpadded_and_wrapped_text(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t n = 0;
    assert_int_equal(b64("TWFu", out, sizeof out, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "Man", 3);
    assert_int_equal(b64("TWE=", out, sizeof out, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "Ma", 2);
    assert_int_equal(b64("TQ==", out, sizeof out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b64("TQ", out, sizeof out, &n), 0); /* unpadded */
    assert_int_equal(n, 1);
    assert_int_equal(b64(" TW\r\nFu\tTW E=\n", out, sizeof out, &n), 0); /* white space anywhere */
    assert_int_equal(n, 5);
    assert_memory_equal(out, "ManMa", 5);
    /* Every octet value, checked against OpenSSL's encoder. */
    uint8_t all[256], enc[400];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    for (size_t len = 1; len < 40; len++) {
        int el = EVP_EncodeBlock(enc, all + len * 5, (int)len);
        uint8_t dec[64];
        assert_int_equal(smki_est_base64_decode(enc, (size_t)el, dec, sizeof dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, all + len * 5, len);
    }
}

static void test_base64_refuses_bad_characters_padding_and_overflow(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t n = 0;
    const char *bad[] = {"", "  \n", "TWF!", "T===", "TWFu=", "=TWF", "TW=u", "TQ==TWFu", "T", "TWFuT", "TR==", "TWF=",
                         "TWE=A", "TWFuTWFuTWFu"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = smki_est_base64_decode((const uint8_t *)bad[i], strlen(bad[i]), out, sizeof out, &n);
        if (rc != SMKI_E_INPUT) fail_msg("'%s' was not refused as input (%d)", bad[i], rc);
        assert_non_null(strstr(smki_error_msg(), "base64"));
        smki_error_clear();
    }
}

static const char PEM1[] = "-----BEGIN CERTIFICATE REQUEST-----\nTWFu\n-----END CERTIFICATE REQUEST-----\n";
static const char PEM2[] = "-----BEGIN NEW CERTIFICATE REQUEST-----\r\nTWE=\r\n-----END NEW CERTIFICATE REQUEST-----";

static void test_pem_split_finds_each_block_and_refuses_anything_else(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "\n%s\n\n%s\n  ", PEM1, PEM2);
    smki_est_span sp[4];
    size_t n = 0;
    assert_int_equal(smki_est_pem_split((const uint8_t *)text, strlen(text), 4, sp, &n), 0);
    assert_int_equal(n, 2);
    uint8_t out[8];
    size_t len = 0;
    assert_int_equal(smki_est_base64_decode((const uint8_t *)text + sp[0].off, sp[0].len, out, sizeof out, &len), 0);
    assert_memory_equal(out, "Man", 3);
    assert_int_equal(smki_est_base64_decode((const uint8_t *)text + sp[1].off, sp[1].len, out, sizeof out, &len), 0);
    assert_memory_equal(out, "Ma", 2);
    /* More blocks than allowed: refused (the caller answers 413), not input. */
    assert_int_equal(smki_est_pem_split((const uint8_t *)text, strlen(text), 1, sp, &n), SMKI_E_REFUSED);
    smki_error_clear();
    const char *bad[] = {"", "\n\n", "garbage", "-----BEGIN CERTIFICATE REQUEST-----\nTWFu\n",
                         "-----BEGIN CERTIFICATE-----\nTWFu\n-----END CERTIFICATE-----\n",
                         "-----BEGIN CERTIFICATE REQUEST-----\nTWFu\n-----END CERTIFICATE REQUEST-----\nx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(smki_est_pem_split((const uint8_t *)bad[i], strlen(bad[i]), 4, sp, &n), SMKI_E_INPUT);
        smki_error_clear();
    }
}

static void test_csr_body_takes_base64_or_one_pem_block(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t n = 0;
    assert_int_equal(smki_est_csr_body((const uint8_t *)"TWFu\n", 5, out, sizeof out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(smki_est_csr_body((const uint8_t *)PEM1, strlen(PEM1), out, sizeof out, &n), 0);
    assert_memory_equal(out, "Man", 3);
    char two[256];
    snprintf(two, sizeof two, "%s%s", PEM1, PEM1);
    assert_int_equal(smki_est_csr_body((const uint8_t *)two, strlen(two), out, sizeof out, &n), SMKI_E_REFUSED);
    smki_error_clear();
}

static void test_label_names_each_certificate_type_and_refuses_others(void **state)
{
    (void)state;
    smki_est_label lb;
    assert_int_equal(smki_est_label_parse("device", &lb), 0);
    assert_int_equal(lb.type, SMKI_REQ_DEVICE_BATCH);
    assert_int_equal(smki_est_label_parse("dccki-client", &lb), 0);
    assert_int_equal(lb.type, SMKI_REQ_DCCKI_CLIENT);
    assert_int_equal(smki_est_label_parse("dccki-server", &lb), 0);
    assert_int_equal(lb.type, SMKI_REQ_DCCKI_SERVER);
    assert_int_equal(smki_est_label_parse("org-supplier-90B3D51F30010000", &lb), 0);
    assert_int_equal(lb.type, SMKI_REQ_ORGANISATION);
    assert_int_equal(lb.role, 2);
    static const uint8_t EUI[8] = {0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00};
    assert_memory_equal(lb.eui.b, EUI, 8);
    assert_int_equal(smki_est_label_parse("org-02-90-B3-D5-1F-30-01-00-00", &lb), 0);
    assert_int_equal(lb.role, 2);
    assert_memory_equal(lb.eui.b, EUI, 8);
    const char *bad[] = {"", "Device", "org-", "org-supplier", "org-supplier-", "org--90B3D51F30010000",
                         "org-nosuchrole-90B3D51F30010000", "org-supplier-90B3D51F3001", "batch"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (smki_est_label_parse(bad[i], &lb) != SMKI_E_USAGE) fail_msg("label '%s' was not refused", bad[i]);
        smki_error_clear();
    }
}

static void test_enrol_conf_sets_every_option_and_refuses_typos_and_bad_values(void **state)
{
    (void)state;
    smki_est_opts eo = {0};
    smki_repo_server_opts so = {0};
    smki_est_conf_buf buf;
    smki_conf *c = test_conf("[enrol]\nenv = test\nlisten = 127.0.0.1:8444\noperator = est\nthreads = 3\n"
                             "max_conns = 99\nmax_body = 65536\nmax_headers = 4096\ntimeout = 7\ntls_cert = tls/e.pem\n"
                             "tls_key = /abs/e.key\nclient_ca = tls/ca.pem\nclient_certs = required\n"
                             "party_attr = 2.5.4.97\naccess_log = yes\nretry_after = 5\nmax_batch = 500\n");
    assert_int_equal(smki_est_conf_read(c, "/home/x", &eo, &so, &buf), 0);
    assert_string_equal(buf.env, "test");
    assert_string_equal(buf.operator_name, "est");
    assert_string_equal(so.listen, "127.0.0.1:8444");
    assert_int_equal(so.threads, 3);
    assert_int_equal(so.max_conns, 99);
    assert_int_equal(so.max_body, 65536);
    assert_int_equal(so.max_headers, 4096);
    assert_int_equal(so.timeout_s, 7);
    assert_string_equal(so.tls_cert, "/home/x/tls/e.pem");
    assert_string_equal(so.tls_key, "/abs/e.key");
    assert_string_equal(so.client_ca, "/home/x/tls/ca.pem");
    assert_int_equal(so.require_client_cert, 1);
    assert_int_equal(so.access_log, 1);
    assert_int_equal(eo.retry_after, 5);
    assert_int_equal(eo.max_batch, 500);
    smki_conf_free(c);
    const char *bad[] = {"[enrol]\nthread = 2\n", "[enrol]\nthreads = 0\n", "[enrol]\nmax_batch = lots\n",
                         "[enrol]\nclient_certs = required\n", "[enrol]\naccess_log = maybe\n",
                         "[enrol]\nretry_after = 0\n", "[enrol]\nmax_body = 10\n",
                         "[enrol]\nmax_body = 67108865\n" /* over SMKI_REPO_BODY_LIMIT */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = test_conf(bad[i]);
        if (smki_est_conf_read(c, "/home/x", &eo, &so, &buf) != SMKI_E_USAGE) fail_msg("not refused: %s", bad[i]);
        smki_error_clear();
        smki_conf_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_decodes_padded_unpadded_and_wrapped_text),
        cmocka_unit_test(test_base64_refuses_bad_characters_padding_and_overflow),
        cmocka_unit_test(test_pem_split_finds_each_block_and_refuses_anything_else),
        cmocka_unit_test(test_csr_body_takes_base64_or_one_pem_block),
        cmocka_unit_test(test_label_names_each_certificate_type_and_refuses_others),
        cmocka_unit_test(test_enrol_conf_sets_every_option_and_refuses_typos_and_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
