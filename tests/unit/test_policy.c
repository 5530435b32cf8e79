/* Unit tests for policy: EUI-64 text forms, ordering, and IEEE block arithmetic,
 * using the supplier User ID and device ID from the shared test data. */
#include "helpers.h"

#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

/* A supplier User ID, allocated from the MA-S block 90B3D51F3/36 (reference §2). */
#define USER_ID_HYPHEN "90-B3-D5-1F-30-01-00-00"
#define USER_ID_PLAIN "90B3D51F30010000"
#define USER_ID_COLON "90:B3:D5:1F:30:01:00:00"
#define USER_ID_U64 UINT64_C(0x90B3D51F30010000)
/* A device ID: the manufacturer's range, outside that block. */
#define DEVICE_ID_PLAIN "00DB1234567890A0"

static smki_eui64_t id_of(uint64_t v)
{
    return smki_eui64_from_u64(v);
}

static smki_eui64_range_t range_of(const char *text)
{
    smki_eui64_range_t r;
    assert_ok(smki_eui64_range_parse(text, &r));
    return r;
}

static uint64_t u64_of(const smki_eui64_t *id)
{
    return smki_eui64_to_u64(id);
}

/* The parse is refused as usage, and the message quotes the input. */
static void assert_parse_refused(const char *text)
{
    smki_eui64_t id;
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", text);
    assert_fails(smki_eui64_parse(text, &id), SMKI_E_USAGE, quoted);
    assert_non_null(strstr(smki_error_msg(), "not an EUI-64"));
}

static void assert_range_parse_refused(const char *text, const char *needle)
{
    smki_eui64_range_t r;
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", text);
    assert_fails(smki_eui64_range_parse(text, &r), SMKI_E_USAGE, quoted);
    if (needle) assert_non_null(strstr(smki_error_msg(), needle));
}

/* ---- parse: accepted forms --------------------------------------------------- */
static void test_eui64_parse_accepts_plain_uppercase(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_ok(smki_eui64_parse(USER_ID_PLAIN, &id));
    assert_int_equal(u64_of(&id), USER_ID_U64);
}

static void test_eui64_parse_accepts_plain_lowercase(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_ok(smki_eui64_parse("00db1234567890a0", &id));
    assert_int_equal(u64_of(&id), UINT64_C(0x00DB1234567890A0));
}

static void test_eui64_parse_accepts_hyphen_groups(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_ok(smki_eui64_parse(USER_ID_HYPHEN, &id));
    assert_int_equal(u64_of(&id), USER_ID_U64);
}

static void test_eui64_parse_accepts_colon_groups(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_ok(smki_eui64_parse(USER_ID_COLON, &id));
    assert_int_equal(u64_of(&id), USER_ID_U64);
}

static void test_eui64_parse_accepts_mixed_case_in_every_form(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_ok(smki_eui64_parse("90b3D51f30010000", &id));
    assert_int_equal(u64_of(&id), USER_ID_U64);
    assert_ok(smki_eui64_parse("90-b3-D5-1f-30-01-00-00", &id));
    assert_int_equal(u64_of(&id), USER_ID_U64);
    assert_ok(smki_eui64_parse("aB:cD:eF:Ab:Cd:Ef:01:23", &id));
    assert_int_equal(u64_of(&id), UINT64_C(0xABCDEFABCDEF0123));
}

static void test_eui64_parse_accepts_all_zeros_and_all_ones(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_ok(smki_eui64_parse("0000000000000000", &id));
    assert_int_equal(u64_of(&id), 0);
    assert_ok(smki_eui64_parse("FF-FF-FF-FF-FF-FF-FF-FF", &id));
    assert_int_equal(u64_of(&id), UINT64_MAX);
}

/* ---- parse: refusals ---------------------------------------------------------- */
static void test_eui64_parse_refuses_mixed_separators(void **state)
{
    (void)state;
    assert_parse_refused("90-B3:D5-1F-30-01-00-00");
    assert_non_null(strstr(smki_error_msg(), "mixes"));
    assert_parse_refused("90:B3:D5:1F:30:01:00-00");
}

static void test_eui64_parse_refuses_too_few_groups(void **state)
{
    (void)state;
    assert_parse_refused("90-B3-D5");
    assert_non_null(strstr(smki_error_msg(), "need 16 hex digits, or 8 groups of 2 joined by '-' or ':'"));
    assert_parse_refused("90-B3-D5-1F-30-01-00");
    assert_parse_refused("90:B3:D5:1F:30:01:00");
}

static void test_eui64_parse_refuses_too_many_groups(void **state)
{
    (void)state;
    assert_parse_refused("90-B3-D5-1F-30-01-00-00-00");
    assert_parse_refused("90:B3:D5:1F:30:01:00:00:00");
}

static void test_eui64_parse_refuses_single_digit_groups(void **state)
{
    (void)state;
    assert_parse_refused("9-B3-D5-1F-30-01-00-00");
    assert_parse_refused("0-1-2-3-4-5-6-7");
    /* 23 characters, but one group short and one long. */
    assert_parse_refused("90-B3-D5-1F-30-1-00-000");
    assert_parse_refused("90:B3:D5:1F:30:01:0:000");
}

static void test_eui64_parse_refuses_three_digit_groups(void **state)
{
    (void)state;
    assert_parse_refused("090-B3-D5-1F-30-01-00-0");
}

static void test_eui64_parse_refuses_wrong_digit_counts(void **state)
{
    (void)state;
    assert_parse_refused("90B3D51F3001000");
    assert_parse_refused("90B3D51F300100000");
    assert_parse_refused("9");
    assert_parse_refused("90B3D51F3001000000000000000000000");
}

static void test_eui64_parse_refuses_whitespace(void **state)
{
    (void)state;
    assert_parse_refused(" 90B3D51F30010000");
    assert_parse_refused("90B3D51F30010000 ");
    assert_parse_refused("90 B3 D5 1F 30 01 00 00");
    assert_parse_refused("90B3D51F 30010000");
    smki_eui64_t id;
    assert_fails(smki_eui64_parse("90B3D51F30010000\n", &id), SMKI_E_USAGE, "\"90B3D51F30010000\\x0A\"");
    assert_fails(smki_eui64_parse("\t90B3D51F30010000", &id), SMKI_E_USAGE, "\"\\x0990B3D51F30010000\"");
}

static void test_eui64_parse_refuses_0x_prefix(void **state)
{
    (void)state;
    assert_parse_refused("0x90B3D51F30010000");
    assert_parse_refused("0x90B3D51F300100");
    assert_parse_refused("0X90B3D51F300100");
}

static void test_eui64_parse_refuses_non_hex_digits(void **state)
{
    (void)state;
    assert_parse_refused("90B3D51F3001000G");
    assert_parse_refused("G0B3D51F30010000");
    assert_parse_refused("90-B3-D5-1F-30-01-00-0g");
    assert_parse_refused("+0B3D51F30010000");
}

static void test_eui64_parse_refuses_other_separators(void **state)
{
    (void)state;
    assert_parse_refused("90.B3.D5.1F.30.01.00.00");
    assert_parse_refused("90_B3_D5_1F_30_01_00_00");
    assert_parse_refused("90/B3/D5/1F/30/01/00/00");
}

static void test_eui64_parse_refuses_stray_separators(void **state)
{
    (void)state;
    assert_parse_refused("-90-B3-D5-1F-30-01-00-00");
    assert_parse_refused("90-B3-D5-1F-30-01-00-00-");
    assert_parse_refused("90--B3-D5-1F-30-01-00-0");
    /* The right length and separators, in the wrong places. */
    assert_parse_refused("90B-3D-51-F3-00-10-00-0");
    assert_parse_refused("90B3D51F30010000-------");
}

static void test_eui64_parse_refuses_empty(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_fails(smki_eui64_parse("", &id), SMKI_E_USAGE, "\"\"");
    assert_non_null(strstr(smki_error_msg(), "empty"));
}

static void test_eui64_parse_refuses_null(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_fails(smki_eui64_parse(NULL, &id), SMKI_E_USAGE, "not an EUI-64: (null)");
}

static void test_eui64_parse_leaves_output_untouched_on_refusal(void **state)
{
    (void)state;
    smki_eui64_t id = id_of(UINT64_C(0x1122334455667788));
    assert_fails(smki_eui64_parse("90-B3-D5-1F-30-01-00-0G", &id), SMKI_E_USAGE, NULL);
    assert_int_equal(u64_of(&id), UINT64_C(0x1122334455667788));
    assert_fails(smki_eui64_parse("90-B3:D5-1F-30-01-00-00", &id), SMKI_E_USAGE, NULL);
    assert_int_equal(u64_of(&id), UINT64_C(0x1122334455667788));
}

static void test_eui64_parse_refusal_truncates_long_input(void **state)
{
    (void)state;
    char text[4096];
    memset(text, 'A', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    smki_eui64_t id;
    assert_fails(smki_eui64_parse(text, &id), SMKI_E_USAGE, "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"...");
    assert_true(strlen(smki_error_msg()) < 200);
}

static void test_eui64_parse_refusal_escapes_non_printables(void **state)
{
    (void)state;
    smki_eui64_t id;
    assert_fails(smki_eui64_parse("90\x01" "B3\x1b[2J\xff", &id), SMKI_E_USAGE, "\"90\\x01B3\\x1B[2J\\xFF\"");
    assert_fails(smki_eui64_parse("say \"hi\" \\o/", &id), SMKI_E_USAGE, "\"say \\\"hi\\\" \\\\o/\"");
    for (const char *m = smki_error_msg(); *m; m++) assert_true(*m >= 0x20 && *m < 0x7f);
}

/* ---- format ---------------------------------------------------------------------- */
static void test_eui64_format_writes_uppercase_in_each_style(void **state)
{
    (void)state;
    smki_eui64_t id;
    char text[SMKI_EUI64_TEXT_MAX];
    assert_ok(smki_eui64_parse("90b3d51f30010000", &id));
    smki_eui64_format(&id, SMKI_EUI64_PLAIN, text);
    assert_string_equal(text, USER_ID_PLAIN);
    smki_eui64_format(&id, SMKI_EUI64_HYPHEN, text);
    assert_string_equal(text, USER_ID_HYPHEN);
    smki_eui64_format(&id, SMKI_EUI64_COLON, text);
    assert_string_equal(text, USER_ID_COLON);
}

static void test_eui64_format_hyphen_form_fills_text_max(void **state)
{
    (void)state;
    smki_eui64_t id = id_of(UINT64_MAX);
    char text[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&id, SMKI_EUI64_HYPHEN, text);
    assert_int_equal(strlen(text), SMKI_EUI64_TEXT_MAX - 1);
    assert_string_equal(text, "FF-FF-FF-FF-FF-FF-FF-FF");
}

static void test_eui64_format_round_trips_in_every_style(void **state)
{
    (void)state;
    static const uint64_t values[] = {0, 1, UINT64_MAX, USER_ID_U64, UINT64_C(0x00DB1234567890A0),
                                      UINT64_C(0x0123456789ABCDEF), UINT64_C(0x8000000000000000)};
    static const smki_eui64_style styles[] = {SMKI_EUI64_PLAIN, SMKI_EUI64_HYPHEN, SMKI_EUI64_COLON};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        for (size_t s = 0; s < 3; s++) {
            smki_eui64_t id = id_of(values[i]), back;
            char text[SMKI_EUI64_TEXT_MAX];
            smki_eui64_format(&id, styles[s], text);
            assert_ok(smki_eui64_parse(text, &back));
            assert_int_equal(smki_eui64_cmp(&id, &back), 0);
        }
    }
}

static void test_eui64_parse_then_format_gives_canonical_text(void **state)
{
    (void)state;
    smki_eui64_t id;
    char text[SMKI_EUI64_TEXT_MAX];
    assert_ok(smki_eui64_parse("00:db:12:34:56:78:90:a0", &id));
    smki_eui64_format(&id, SMKI_EUI64_PLAIN, text);
    assert_string_equal(text, DEVICE_ID_PLAIN);
}

/* ---- compare and u64 ------------------------------------------------------------ */
static void test_eui64_cmp_orders_as_big_endian_numbers(void **state)
{
    (void)state;
    smki_eui64_t user, device, low = id_of(0x00000000000000FF), high = id_of(UINT64_C(0x0100000000000000));
    assert_ok(smki_eui64_parse(USER_ID_HYPHEN, &user));
    assert_ok(smki_eui64_parse(DEVICE_ID_PLAIN, &device));
    assert_int_equal(smki_eui64_cmp(&device, &user), -1);
    assert_int_equal(smki_eui64_cmp(&user, &device), 1);
    /* The first octet outweighs all the others. */
    assert_int_equal(smki_eui64_cmp(&low, &high), -1);
    assert_int_equal(smki_eui64_cmp(&high, &low), 1);
}

static void test_eui64_cmp_of_equal_ids_is_zero(void **state)
{
    (void)state;
    smki_eui64_t a, b;
    assert_ok(smki_eui64_parse(USER_ID_HYPHEN, &a));
    assert_ok(smki_eui64_parse(USER_ID_PLAIN, &b));
    assert_int_equal(smki_eui64_cmp(&a, &b), 0);
    assert_int_equal(smki_eui64_cmp(&a, &a), 0);
}

static void test_eui64_to_u64_reads_octets_big_endian(void **state)
{
    (void)state;
    smki_eui64_t id = {{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00}};
    assert_int_equal(smki_eui64_to_u64(&id), USER_ID_U64);
}

static void test_eui64_from_u64_writes_octets_big_endian(void **state)
{
    (void)state;
    smki_eui64_t id = smki_eui64_from_u64(UINT64_C(0x00DB1234567890A0));
    static const uint8_t want[8] = {0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0};
    assert_memory_equal(id.b, want, 8);
}

static void test_eui64_u64_round_trips_at_the_extremes(void **state)
{
    (void)state;
    static const uint64_t values[] = {0, 1, UINT64_MAX, UINT64_MAX - 1, UINT64_C(0x8000000000000000), USER_ID_U64};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        smki_eui64_t id = smki_eui64_from_u64(values[i]);
        assert_int_equal(smki_eui64_to_u64(&id), values[i]);
    }
}

static void test_eui64_u64_order_matches_cmp(void **state)
{
    (void)state;
    static const uint64_t values[] = {0, 0xFF, UINT64_C(0x0100000000000000), USER_ID_U64, UINT64_MAX};
    for (size_t i = 0; i < 5; i++) {
        for (size_t j = 0; j < 5; j++) {
            smki_eui64_t a = id_of(values[i]), b = id_of(values[j]);
            int want = values[i] < values[j] ? -1 : values[i] > values[j];
            assert_int_equal(smki_eui64_cmp(&a, &b), want);
        }
    }
}

/* ---- range_from_prefix ------------------------------------------------------------ */
static void test_range_from_prefix_makes_the_mas_block_of_the_user_id(void **state)
{
    (void)state;
    smki_eui64_t base = id_of(UINT64_C(0x90B3D51F30000000));
    smki_eui64_range_t r;
    assert_ok(smki_eui64_range_from_prefix(&base, 36, &r));
    assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D51F30000000));
    assert_int_equal(u64_of(&r.last), UINT64_C(0x90B3D51F3FFFFFFF));
    assert_int_equal(r.prefix_bits, 36);
    assert_int_equal(smki_eui64_range_size(&r), UINT64_C(1) << 28);
}

static void test_range_from_prefix_makes_a_mam_block(void **state)
{
    (void)state;
    smki_eui64_t base = id_of(UINT64_C(0x90B3D51000000000));
    smki_eui64_range_t r;
    assert_ok(smki_eui64_range_from_prefix(&base, 28, &r));
    assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D51000000000));
    assert_int_equal(u64_of(&r.last), UINT64_C(0x90B3D51FFFFFFFFF));
    assert_int_equal(smki_eui64_range_size(&r), UINT64_C(1) << 36);
}

static void test_range_from_prefix_makes_a_mal_block(void **state)
{
    (void)state;
    smki_eui64_t base = id_of(UINT64_C(0x90B3D50000000000));
    smki_eui64_range_t r;
    assert_ok(smki_eui64_range_from_prefix(&base, 24, &r));
    assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D50000000000));
    assert_int_equal(u64_of(&r.last), UINT64_C(0x90B3D5FFFFFFFFFF));
    assert_int_equal(smki_eui64_range_size(&r), UINT64_C(1) << 40);
}

static void test_range_from_prefix_makes_blocks_at_both_ends_of_the_id_space(void **state)
{
    (void)state;
    smki_eui64_t zero = id_of(0), top = id_of(UINT64_C(0xFFFFFF0000000000));
    smki_eui64_range_t r;
    assert_ok(smki_eui64_range_from_prefix(&zero, 24, &r));
    assert_int_equal(u64_of(&r.last), UINT64_C(0x000000FFFFFFFFFF));
    assert_ok(smki_eui64_range_from_prefix(&top, 24, &r));
    assert_int_equal(u64_of(&r.last), UINT64_MAX);
}

static void test_range_from_prefix_refuses_other_prefix_lengths(void **state)
{
    (void)state;
    static const unsigned bad[] = {0, 8, 12, 16, 20, 23, 25, 32, 40, 48, 64, 65, 1000};
    smki_eui64_t base = id_of(0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        smki_eui64_range_t r;
        char needle[48];
        snprintf(needle, sizeof needle, "prefix length %u ", bad[i]);
        assert_fails(smki_eui64_range_from_prefix(&base, bad[i], &r), SMKI_E_USAGE, needle);
    }
}

static void test_range_from_prefix_refuses_dirty_low_bits(void **state)
{
    (void)state;
    smki_eui64_range_t r;
    smki_eui64_t user = id_of(USER_ID_U64);
    assert_fails(smki_eui64_range_from_prefix(&user, 36, &r), SMKI_E_USAGE, USER_ID_PLAIN);
    assert_non_null(strstr(smki_error_msg(), "90B3D51F30000000/36"));
    smki_eui64_t lowest = id_of(UINT64_C(0x90B3D51F30000001));
    assert_fails(smki_eui64_range_from_prefix(&lowest, 36, &r), SMKI_E_USAGE, "90B3D51F30000001");
    /* The bit just below each prefix. */
    smki_eui64_t below36 = id_of(UINT64_C(0x90B3D51F38000000));
    assert_fails(smki_eui64_range_from_prefix(&below36, 36, &r), SMKI_E_USAGE, NULL);
    smki_eui64_t below28 = id_of(UINT64_C(0x90B3D51800000000));
    assert_fails(smki_eui64_range_from_prefix(&below28, 28, &r), SMKI_E_USAGE, NULL);
    smki_eui64_t below24 = id_of(UINT64_C(0x90B3D58000000000));
    assert_fails(smki_eui64_range_from_prefix(&below24, 24, &r), SMKI_E_USAGE, NULL);
    /* Clean for /36 is dirty for /28 and /24. */
    smki_eui64_t mas = id_of(UINT64_C(0x90B3D51F30000000));
    assert_fails(smki_eui64_range_from_prefix(&mas, 28, &r), SMKI_E_USAGE, NULL);
    assert_fails(smki_eui64_range_from_prefix(&mas, 24, &r), SMKI_E_USAGE, NULL);
}

/* ---- range_parse --------------------------------------------------------------------- */
static void test_range_parse_accepts_prefix_digits_for_each_length(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D5/24");
    assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D50000000000));
    assert_int_equal(r.prefix_bits, 24);
    r = range_of("90B3D51/28");
    assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D51000000000));
    assert_int_equal(r.prefix_bits, 28);
    r = range_of("90B3D51F3/36");
    assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D51F30000000));
    assert_int_equal(u64_of(&r.last), UINT64_C(0x90B3D51F3FFFFFFF));
    assert_int_equal(r.prefix_bits, 36);
}

static void test_range_parse_puts_the_odd_digit_in_the_top_nibble(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("00000000F/36");
    static const uint8_t want36[8] = {0, 0, 0, 0, 0xF0, 0, 0, 0};
    assert_memory_equal(r.first.b, want36, 8);
    r = range_of("000000A/28");
    static const uint8_t want28[8] = {0, 0, 0, 0xA0, 0, 0, 0, 0};
    assert_memory_equal(r.first.b, want28, 8);
}

static void test_range_parse_accepts_lowercase_prefix_digits(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90b3d51f3/36");
    assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D51F30000000));
}

static void test_range_parse_accepts_an_eui64_in_each_form(void **state)
{
    (void)state;
    static const char *forms[] = {"90B3D51F30000000/36", "90-B3-D5-1F-30-00-00-00/36", "90:b3:d5:1f:30:00:00:00/36"};
    for (size_t i = 0; i < 3; i++) {
        smki_eui64_range_t r = range_of(forms[i]);
        assert_int_equal(u64_of(&r.first), UINT64_C(0x90B3D51F30000000));
        assert_int_equal(u64_of(&r.last), UINT64_C(0x90B3D51F3FFFFFFF));
        assert_int_equal(r.prefix_bits, 36);
    }
    smki_eui64_range_t r = range_of("90-B3-D5-00-00-00-00-00/24");
    assert_int_equal(u64_of(&r.last), UINT64_C(0x90B3D5FFFFFFFFFF));
    r = range_of("90B3D51000000000/28");
    assert_int_equal(u64_of(&r.last), UINT64_C(0x90B3D51FFFFFFFFF));
}

static void test_range_parse_refuses_wrong_prefix_digit_count(void **state)
{
    (void)state;
    assert_range_parse_refused("90B3D5/36", "9 hex digits, not 6");
    assert_range_parse_refused("90B3D51F3/24", "6 hex digits, not 9");
    assert_range_parse_refused("90B3D51/36", "9 hex digits, not 7");
    assert_range_parse_refused("90B3D5/28", "7 hex digits, not 6");
    assert_range_parse_refused("90B3D51F/36", NULL);
    assert_range_parse_refused("90B3D51F30/36", NULL);
    assert_range_parse_refused("90B3D/24", NULL);
    assert_range_parse_refused("90B3D51F30000000000/36", NULL);
}

static void test_range_parse_refuses_bad_bit_counts(void **state)
{
    (void)state;
    static const char *bits[] = {"0", "8", "32", "64", "65", "25", "100"};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        char text[64], needle[48];
        snprintf(needle, sizeof needle, "prefix length %s ", bits[i]);
        snprintf(text, sizeof text, "90B3D51F30000000/%s", bits[i]);
        assert_range_parse_refused(text, needle);
        snprintf(text, sizeof text, "90B3D51F3/%s", bits[i]);
        assert_range_parse_refused(text, needle);
        snprintf(text, sizeof text, "00-00-00-00-00-00-00-00/%s", bits[i]);
        assert_range_parse_refused(text, needle);
    }
}

static void test_range_parse_refuses_malformed_bits(void **state)
{
    (void)state;
    static const char *bad[] = {"90B3D51F3",      "90B3D51F3/",      "90B3D51F3/ 36", "90B3D51F3/36 ",
                                "90B3D51F3/+36",  "90B3D51F3/-36",   "90B3D51F3/036", "90B3D51F3/36/36",
                                "90B3D51F3/0x24", "90B3D51F3/99999", "90B3D51F3/3 6", "90B3D51F3/36\n",
                                "90B3D51F3//36",  "90B3D51F3/3a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        smki_eui64_range_t r;
        assert_fails(smki_eui64_range_parse(bad[i], &r), SMKI_E_USAGE, "not an EUI-64 range: \"90B3D51F3");
    }
}

static void test_range_parse_refuses_dirty_low_bits(void **state)
{
    (void)state;
    assert_range_parse_refused(USER_ID_HYPHEN "/36", "did you mean 90B3D51F30000000/36");
    assert_range_parse_refused("90B3D51F30000000/28", "did you mean 90B3D51000000000/28");
    assert_range_parse_refused("90B3D51F30000000/24", "did you mean 90B3D50000000000/24");
    assert_range_parse_refused("90B3D51F3FFFFFFF/36", NULL);
}

static void test_range_parse_refuses_malformed_heads(void **state)
{
    (void)state;
    assert_range_parse_refused("/36", NULL);
    assert_range_parse_refused("90B3D51G3/36", NULL);
    assert_range_parse_refused(" 90B3D51F3/36", NULL);
    assert_range_parse_refused("0x90B3D5/24", NULL);
    assert_range_parse_refused("90-B3:D5-1F-30-00-00-00/36", NULL);
    assert_range_parse_refused("90-B3-D5-1F-30-00-00/36", NULL);
    assert_range_parse_refused("90-B3-D5/24", NULL);
}

static void test_range_parse_refuses_null_and_empty(void **state)
{
    (void)state;
    smki_eui64_range_t r;
    assert_fails(smki_eui64_range_parse(NULL, &r), SMKI_E_USAGE, "(null)");
    assert_fails(smki_eui64_range_parse("", &r), SMKI_E_USAGE, "\"\"");
}

static void test_range_parse_refusal_quotes_long_input_safely(void **state)
{
    (void)state;
    char text[300];
    memset(text, '9', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    text[10] = '\x7f';
    text[200] = '/';
    smki_eui64_range_t r;
    assert_fails(smki_eui64_range_parse(text, &r), SMKI_E_USAGE, "\"9999999999\\x7F99999");
    assert_non_null(strstr(smki_error_msg(), "\"..."));
    for (const char *m = smki_error_msg(); *m; m++) assert_true(*m >= 0x20 && *m < 0x7f);
}

/* ---- range_format ---------------------------------------------------------------- */
static void test_range_format_writes_first_id_and_bits(void **state)
{
    (void)state;
    char text[48];
    smki_eui64_range_t r = range_of("90b3d51f3/36");
    smki_eui64_range_format(&r, text);
    assert_string_equal(text, "90B3D51F30000000/36");
    r = range_of("90B3D5/24");
    smki_eui64_range_format(&r, text);
    assert_string_equal(text, "90B3D50000000000/24");
}

static void test_range_format_round_trips_through_parse(void **state)
{
    (void)state;
    static const char *texts[] = {"90B3D5/24", "90B3D51/28", "90B3D51F3/36", "FFFFFFFFF/36", "000000/24"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        smki_eui64_range_t r = range_of(texts[i]);
        char text[48];
        smki_eui64_range_format(&r, text);
        smki_eui64_range_t back = range_of(text);
        assert_memory_equal(&back.first, &r.first, 8);
        assert_memory_equal(&back.last, &r.last, 8);
        assert_int_equal(back.prefix_bits, r.prefix_bits);
    }
}

/* ---- size, contains, within, overlaps ----------------------------------------------- */
static void test_range_size_is_two_to_the_extension_bits(void **state)
{
    (void)state;
    smki_eui64_range_t mal = range_of("90B3D5/24"), mam = range_of("90B3D51/28"), mas = range_of("90B3D51F3/36");
    assert_int_equal(smki_eui64_range_size(&mal), UINT64_C(1) << 40);
    assert_int_equal(smki_eui64_range_size(&mam), UINT64_C(1) << 36);
    assert_int_equal(smki_eui64_range_size(&mas), UINT64_C(1) << 28);
}

static void test_range_size_of_a_non_ieee_prefix_is_zero(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D5/24");
    r.prefix_bits = 0;
    assert_int_equal(smki_eui64_range_size(&r), 0);
    r.prefix_bits = 65;
    assert_int_equal(smki_eui64_range_size(&r), 0);
}

static void test_range_contains_first_and_last_but_not_beyond(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t first = id_of(UINT64_C(0x90B3D51F30000000)), last = id_of(UINT64_C(0x90B3D51F3FFFFFFF));
    smki_eui64_t before = id_of(UINT64_C(0x90B3D51F2FFFFFFF)), past = id_of(UINT64_C(0x90B3D51F40000000));
    assert_true(smki_eui64_range_contains(&r, &first));
    assert_true(smki_eui64_range_contains(&r, &last));
    assert_false(smki_eui64_range_contains(&r, &before));
    assert_false(smki_eui64_range_contains(&r, &past));
}

static void test_range_contains_the_user_id_but_not_the_device_id(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t user, device;
    assert_ok(smki_eui64_parse(USER_ID_HYPHEN, &user));
    assert_ok(smki_eui64_parse(DEVICE_ID_PLAIN, &device));
    assert_true(smki_eui64_range_contains(&r, &user));
    assert_false(smki_eui64_range_contains(&r, &device));
}

static void test_range_contains_at_the_top_of_the_id_space(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("FFFFFF/24");
    smki_eui64_t max = id_of(UINT64_MAX), below = id_of(UINT64_C(0xFFFFFEFFFFFFFFFF));
    assert_true(smki_eui64_range_contains(&r, &max));
    assert_false(smki_eui64_range_contains(&r, &below));
}

static void test_range_within_nests_mas_in_mam_in_mal(void **state)
{
    (void)state;
    smki_eui64_range_t mal = range_of("90B3D5/24"), mam = range_of("90B3D51/28"), mas = range_of("90B3D51F3/36");
    assert_true(smki_eui64_range_within(&mas, &mam));
    assert_true(smki_eui64_range_within(&mam, &mal));
    assert_true(smki_eui64_range_within(&mas, &mal));
    assert_false(smki_eui64_range_within(&mal, &mam));
    assert_false(smki_eui64_range_within(&mam, &mas));
    assert_true(smki_eui64_range_within(&mas, &mas));
}

static void test_range_within_holds_at_the_first_and_last_sub_block(void **state)
{
    (void)state;
    smki_eui64_range_t mal = range_of("90B3D5/24");
    smki_eui64_range_t first = range_of("90B3D5000/36"), last = range_of("90B3D5FFF/36");
    smki_eui64_range_t before = range_of("90B3D4FFF/36"), past = range_of("90B3D6000/36");
    assert_true(smki_eui64_range_within(&first, &mal));
    assert_true(smki_eui64_range_within(&last, &mal));
    assert_false(smki_eui64_range_within(&before, &mal));
    assert_false(smki_eui64_range_within(&past, &mal));
}

static void test_range_overlaps_nested_and_identical_blocks(void **state)
{
    (void)state;
    smki_eui64_range_t mal = range_of("90B3D5/24"), mas = range_of("90B3D51F3/36");
    assert_true(smki_eui64_range_overlaps(&mal, &mas));
    assert_true(smki_eui64_range_overlaps(&mas, &mal));
    assert_true(smki_eui64_range_overlaps(&mas, &mas));
}

static void test_range_overlaps_not_adjacent_blocks(void **state)
{
    (void)state;
    smki_eui64_range_t mas = range_of("90B3D51F3/36");
    smki_eui64_range_t before = range_of("90B3D51F2/36"), past = range_of("90B3D51F4/36");
    smki_eui64_range_t far = range_of("00DB12/24");
    assert_false(smki_eui64_range_overlaps(&mas, &before));
    assert_false(smki_eui64_range_overlaps(&before, &mas));
    assert_false(smki_eui64_range_overlaps(&mas, &past));
    assert_false(smki_eui64_range_overlaps(&past, &mas));
    assert_false(smki_eui64_range_overlaps(&mas, &far));
    /* The MA-M block ending at 90B3D51FFFFFFFFF touches neither neighbour's MA-S. */
    smki_eui64_range_t mam = range_of("90B3D51/28"), next = range_of("90B3D5200/36");
    assert_false(smki_eui64_range_overlaps(&mam, &next));
    assert_true(smki_eui64_range_overlaps(&mam, &mas));
}

/* ---- nth and add ------------------------------------------------------------------- */
static void test_range_nth_gives_first_and_last(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t id;
    assert_ok(smki_eui64_range_nth(&r, 0, &id));
    assert_int_equal(u64_of(&id), UINT64_C(0x90B3D51F30000000));
    assert_ok(smki_eui64_range_nth(&r, 0x10000, &id));
    assert_int_equal(u64_of(&id), USER_ID_U64);
    assert_ok(smki_eui64_range_nth(&r, smki_eui64_range_size(&r) - 1, &id));
    assert_int_equal(u64_of(&id), UINT64_C(0x90B3D51F3FFFFFFF));
}

static void test_range_nth_refuses_beyond_the_block(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t id = id_of(42);
    uint64_t size = smki_eui64_range_size(&r);
    assert_fails(smki_eui64_range_nth(&r, size, &id), SMKI_E_REFUSED, "ID number 268435456 is beyond");
    assert_non_null(strstr(smki_error_msg(), "90B3D51F30000000/36"));
    assert_fails(smki_eui64_range_nth(&r, size + 1, &id), SMKI_E_REFUSED, NULL);
    assert_fails(smki_eui64_range_nth(&r, UINT64_MAX, &id), SMKI_E_REFUSED, NULL);
    assert_int_equal(u64_of(&id), 42);
}

static void test_range_nth_does_not_wrap_at_the_top_of_the_id_space(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("FFFFFF/24");
    smki_eui64_t id;
    uint64_t size = smki_eui64_range_size(&r);
    assert_int_equal(size, UINT64_C(1) << 40);
    assert_ok(smki_eui64_range_nth(&r, size - 1, &id));
    assert_int_equal(u64_of(&id), UINT64_MAX);
    assert_fails(smki_eui64_range_nth(&r, size, &id), SMKI_E_REFUSED, NULL);
    assert_fails(smki_eui64_range_nth(&r, UINT64_MAX, &id), SMKI_E_REFUSED, NULL);
}

static void test_range_add_zero_gives_the_same_id(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t user = id_of(USER_ID_U64), id;
    assert_ok(smki_eui64_range_add(&r, &user, 0, &id));
    assert_int_equal(smki_eui64_cmp(&id, &user), 0);
}

static void test_range_add_reaches_the_last_id_exactly(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t id;
    assert_ok(smki_eui64_range_add(&r, &r.first, smki_eui64_range_size(&r) - 1, &id));
    assert_int_equal(smki_eui64_cmp(&id, &r.last), 0);
    smki_eui64_t user = id_of(USER_ID_U64);
    assert_ok(smki_eui64_range_add(&r, &user, UINT64_C(0x90B3D51F3FFFFFFF) - USER_ID_U64, &id));
    assert_int_equal(smki_eui64_cmp(&id, &r.last), 0);
    assert_ok(smki_eui64_range_add(&r, &user, 1, &id));
    assert_int_equal(u64_of(&id), USER_ID_U64 + 1);
}

static void test_range_add_refuses_one_past_the_last_id(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t id = id_of(42);
    assert_fails(smki_eui64_range_add(&r, &r.last, 1, &id), SMKI_E_REFUSED, "90B3D51F3FFFFFFF + 1 leaves the block");
    assert_fails(smki_eui64_range_add(&r, &r.first, smki_eui64_range_size(&r), &id), SMKI_E_REFUSED, NULL);
    assert_int_equal(u64_of(&id), 42);
}

static void test_range_add_refuses_deltas_that_would_wrap(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t user = id_of(USER_ID_U64), id;
    /* id + 2^64 - 1 wraps to id - 1, which is inside the block. */
    assert_fails(smki_eui64_range_add(&r, &user, UINT64_MAX, &id), SMKI_E_REFUSED, NULL);
    assert_fails(smki_eui64_range_add(&r, &user, UINT64_C(0) - USER_ID_U64, &id), SMKI_E_REFUSED, NULL);
}

static void test_range_add_does_not_wrap_at_the_top_of_the_id_space(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("FFFFFF/24");
    smki_eui64_t id;
    assert_ok(smki_eui64_range_add(&r, &r.first, (UINT64_C(1) << 40) - 1, &id));
    assert_int_equal(u64_of(&id), UINT64_MAX);
    smki_eui64_t max = id_of(UINT64_MAX);
    assert_fails(smki_eui64_range_add(&r, &max, 1, &id), SMKI_E_REFUSED, NULL);
    assert_fails(smki_eui64_range_add(&r, &r.first, UINT64_C(1) << 40, &id), SMKI_E_REFUSED, NULL);
    assert_fails(smki_eui64_range_add(&r, &r.first, UINT64_MAX, &id), SMKI_E_REFUSED, NULL);
}

static void test_range_add_refuses_a_start_outside_the_block(void **state)
{
    (void)state;
    smki_eui64_range_t r = range_of("90B3D51F3/36");
    smki_eui64_t device, past = id_of(UINT64_C(0x90B3D51F40000000)), id;
    assert_ok(smki_eui64_parse(DEVICE_ID_PLAIN, &device));
    assert_fails(smki_eui64_range_add(&r, &device, 0, &id), SMKI_E_REFUSED, "00DB1234567890A0 is not in the block");
    assert_fails(smki_eui64_range_add(&r, &past, 0, &id), SMKI_E_REFUSED, NULL);
}

static void test_range_nth_and_add_refuse_a_malformed_range(void **state)
{
    (void)state;
    smki_eui64_t id;
    smki_eui64_range_t bad_bits = range_of("90B3D51F3/36");
    bad_bits.prefix_bits = 32;
    assert_fails(smki_eui64_range_nth(&bad_bits, 0, &id), SMKI_E_USAGE, "prefix length 32");
    assert_fails(smki_eui64_range_add(&bad_bits, &bad_bits.first, 0, &id), SMKI_E_USAGE, "prefix length 32");
    smki_eui64_range_t dirty = range_of("90B3D51F3/36");
    dirty.first = id_of(USER_ID_U64);
    assert_fails(smki_eui64_range_nth(&dirty, 0, &id), SMKI_E_USAGE, "not an IEEE block");
    smki_eui64_range_t short_last = range_of("90B3D51F3/36");
    short_last.last = id_of(UINT64_C(0x90B3D51F3FFFFFFE));
    assert_fails(smki_eui64_range_add(&short_last, &short_last.first, 0, &id), SMKI_E_USAGE, "not an IEEE block");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eui64_parse_accepts_plain_uppercase),
        cmocka_unit_test(test_eui64_parse_accepts_plain_lowercase),
        cmocka_unit_test(test_eui64_parse_accepts_hyphen_groups),
        cmocka_unit_test(test_eui64_parse_accepts_colon_groups),
        cmocka_unit_test(test_eui64_parse_accepts_mixed_case_in_every_form),
        cmocka_unit_test(test_eui64_parse_accepts_all_zeros_and_all_ones),
        cmocka_unit_test(test_eui64_parse_refuses_mixed_separators),
        cmocka_unit_test(test_eui64_parse_refuses_too_few_groups),
        cmocka_unit_test(test_eui64_parse_refuses_too_many_groups),
        cmocka_unit_test(test_eui64_parse_refuses_single_digit_groups),
        cmocka_unit_test(test_eui64_parse_refuses_three_digit_groups),
        cmocka_unit_test(test_eui64_parse_refuses_wrong_digit_counts),
        cmocka_unit_test(test_eui64_parse_refuses_whitespace),
        cmocka_unit_test(test_eui64_parse_refuses_0x_prefix),
        cmocka_unit_test(test_eui64_parse_refuses_non_hex_digits),
        cmocka_unit_test(test_eui64_parse_refuses_other_separators),
        cmocka_unit_test(test_eui64_parse_refuses_stray_separators),
        cmocka_unit_test(test_eui64_parse_refuses_empty),
        cmocka_unit_test(test_eui64_parse_refuses_null),
        cmocka_unit_test(test_eui64_parse_leaves_output_untouched_on_refusal),
        cmocka_unit_test(test_eui64_parse_refusal_truncates_long_input),
        cmocka_unit_test(test_eui64_parse_refusal_escapes_non_printables),
        cmocka_unit_test(test_eui64_format_writes_uppercase_in_each_style),
        cmocka_unit_test(test_eui64_format_hyphen_form_fills_text_max),
        cmocka_unit_test(test_eui64_format_round_trips_in_every_style),
        cmocka_unit_test(test_eui64_parse_then_format_gives_canonical_text),
        cmocka_unit_test(test_eui64_cmp_orders_as_big_endian_numbers),
        cmocka_unit_test(test_eui64_cmp_of_equal_ids_is_zero),
        cmocka_unit_test(test_eui64_to_u64_reads_octets_big_endian),
        cmocka_unit_test(test_eui64_from_u64_writes_octets_big_endian),
        cmocka_unit_test(test_eui64_u64_round_trips_at_the_extremes),
        cmocka_unit_test(test_eui64_u64_order_matches_cmp),
        cmocka_unit_test(test_range_from_prefix_makes_the_mas_block_of_the_user_id),
        cmocka_unit_test(test_range_from_prefix_makes_a_mam_block),
        cmocka_unit_test(test_range_from_prefix_makes_a_mal_block),
        cmocka_unit_test(test_range_from_prefix_makes_blocks_at_both_ends_of_the_id_space),
        cmocka_unit_test(test_range_from_prefix_refuses_other_prefix_lengths),
        cmocka_unit_test(test_range_from_prefix_refuses_dirty_low_bits),
        cmocka_unit_test(test_range_parse_accepts_prefix_digits_for_each_length),
        cmocka_unit_test(test_range_parse_puts_the_odd_digit_in_the_top_nibble),
        cmocka_unit_test(test_range_parse_accepts_lowercase_prefix_digits),
        cmocka_unit_test(test_range_parse_accepts_an_eui64_in_each_form),
        cmocka_unit_test(test_range_parse_refuses_wrong_prefix_digit_count),
        cmocka_unit_test(test_range_parse_refuses_bad_bit_counts),
        cmocka_unit_test(test_range_parse_refuses_malformed_bits),
        cmocka_unit_test(test_range_parse_refuses_dirty_low_bits),
        cmocka_unit_test(test_range_parse_refuses_malformed_heads),
        cmocka_unit_test(test_range_parse_refuses_null_and_empty),
        cmocka_unit_test(test_range_parse_refusal_quotes_long_input_safely),
        cmocka_unit_test(test_range_format_writes_first_id_and_bits),
        cmocka_unit_test(test_range_format_round_trips_through_parse),
        cmocka_unit_test(test_range_size_is_two_to_the_extension_bits),
        cmocka_unit_test(test_range_size_of_a_non_ieee_prefix_is_zero),
        cmocka_unit_test(test_range_contains_first_and_last_but_not_beyond),
        cmocka_unit_test(test_range_contains_the_user_id_but_not_the_device_id),
        cmocka_unit_test(test_range_contains_at_the_top_of_the_id_space),
        cmocka_unit_test(test_range_within_nests_mas_in_mam_in_mal),
        cmocka_unit_test(test_range_within_holds_at_the_first_and_last_sub_block),
        cmocka_unit_test(test_range_overlaps_nested_and_identical_blocks),
        cmocka_unit_test(test_range_overlaps_not_adjacent_blocks),
        cmocka_unit_test(test_range_nth_gives_first_and_last),
        cmocka_unit_test(test_range_nth_refuses_beyond_the_block),
        cmocka_unit_test(test_range_nth_does_not_wrap_at_the_top_of_the_id_space),
        cmocka_unit_test(test_range_add_zero_gives_the_same_id),
        cmocka_unit_test(test_range_add_reaches_the_last_id_exactly),
        cmocka_unit_test(test_range_add_refuses_one_past_the_last_id),
        cmocka_unit_test(test_range_add_refuses_deltas_that_would_wrap),
        cmocka_unit_test(test_range_add_does_not_wrap_at_the_top_of_the_id_space),
        cmocka_unit_test(test_range_add_refuses_a_start_outside_the_block),
        cmocka_unit_test(test_range_nth_and_add_refuse_a_malformed_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
