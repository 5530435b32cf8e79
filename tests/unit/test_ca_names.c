/* ca: a certificate's serial and usage as text, read as smki prints them
 * (smki_serial_parse, smki_cert_usage_name/_parse), the one reader every caller uses
 * ('smki ca show SERIAL', 'smki ca revoke SERIAL', 'smki ca list --usage'). */
#include <string.h>

#include "helpers.h"

static const uint8_t WANT[SMKI_SERIAL_LEN] = {0x4a, 0x1f, 0x00, 0xc3, 0x12, 0x34, 0x56, 0x78,
                                              0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67};

static void test_serial_as_printed(void **state)
{
    (void)state;
    uint8_t s[SMKI_SERIAL_LEN];
    assert_ok(smki_serial_parse("4a1f00c3123456789abcdef001234567", s));
    assert_memory_equal(s, WANT, SMKI_SERIAL_LEN);
    assert_ok(smki_serial_parse("4A1F00C3123456789ABCDEF001234567", s));
    assert_memory_equal(s, WANT, SMKI_SERIAL_LEN);
    /* openssl's form: colons between octets */
    assert_ok(smki_serial_parse("4a:1f:00:c3:12:34:56:78:9a:bc:de:f0:01:23:45:67", s));
    assert_memory_equal(s, WANT, SMKI_SERIAL_LEN);
}

static void test_serial_refusals_name_the_text(void **state)
{
    (void)state;
    uint8_t s[SMKI_SERIAL_LEN];
    const char *bad[] = {
        "",                                   /* empty */
        "12zz",                               /* not hex, short */
        "4a1f00c3123456789abcdef00123456",    /* 31 digits */
        "4a1f00c3123456789abcdef0012345678",  /* 33 digits */
        "4a1f00c3123456789abcdef00123456g",   /* 32, one not hex */
        "4a1f00c3 123456789abcdef001234567",  /* a space */
        "0x4a1f00c3123456789abcdef0012345",   /* a prefix */
        "4a1f00c3123456789abcdef0012345674a1f00c3123456789abcdef001234567", /* 64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_fails(smki_serial_parse(bad[i], s), SMKI_E_USAGE, "is not a serial: 32 hex digits");
        assert_non_null(strstr(smki_error_msg(), bad[i]));
    }
    assert_fails(smki_serial_parse(NULL, s), SMKI_E_USAGE, "no serial");
    /* a long text is named, cut short, without overrunning */
    char longtext[600];
    memset(longtext, 'a', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    assert_fails(smki_serial_parse(longtext, s), SMKI_E_USAGE, "is not a serial");
}

static void test_usage_names_and_back(void **state)
{
    (void)state;
    assert_string_equal(smki_cert_usage_name(SMKI_USAGE_DS), "DS");
    assert_string_equal(smki_cert_usage_name(SMKI_USAGE_KA), "KA");
    assert_string_equal(smki_cert_usage_name(0), "CA");
    int u = 99;
    assert_ok(smki_cert_usage_parse("ds", &u));
    assert_int_equal(u, SMKI_USAGE_DS);
    assert_ok(smki_cert_usage_parse("KA", &u));
    assert_int_equal(u, SMKI_USAGE_KA);
    assert_ok(smki_cert_usage_parse("ca", &u));
    assert_int_equal(u, 0);
    const char *bad[] = {"", "d", "dsa", "both", "keyAgreement", "0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_fails(smki_cert_usage_parse(bad[i], &u), SMKI_E_USAGE, "is ds, ka or ca");
        assert_int_equal(u, -1);
    }
    assert_fails(smki_cert_usage_parse(NULL, &u), SMKI_E_USAGE, "not ''");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_as_printed),
        cmocka_unit_test(test_serial_refusals_name_the_text),
        cmocka_unit_test(test_usage_names_and_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
