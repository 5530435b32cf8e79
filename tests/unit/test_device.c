/* The GBCS device model (gbcs/device*.c). Proved on the DCC's own data: an RTDS replay
 * model of device 00-DB-12-34-56-78-90-A0 accepts the RTDS CS02b commands (supplier by
 * supplier, network operator by network operator, transitional CoS by transitional CoS,
 * supplier by transitional CoS) and the CS02a, with the per-cell outcomes the RTDS
 * responses report, and refuses each with one octet changed, a counter at or below its
 * floor, or the wrong signer. Then a device with its own keys in the token, under a
 * test PKI made here: its own MAC check end to end, every refusal and every mode. */
#include "helpers.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "gbcs/device_private.h"
#include "gbcs/device_state.h"
#include "gbcs/gbcs_device.h"

#define KS "vectors/gbcs/keystore"
#define RTDS "vectors/gbcs/rtds"
#define SBS RTDS "/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_"
#define SBS_ERR RTDS "/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_ERROR_"
#define NBN RTDS "/6.15.1_CS02bNOByNO/CS02bNOByNO_6.15.1_SUCCESS_"
#define TBT RTDS "/NA_CS02bTransCoSByTransCoS/CS02bTransCoSByTransCoS_NA_SUCCESS_"
#define SBT RTDS "/6.23_CS02bSupplierByTransCoS/CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_"
#define CS02A RTDS "/6.24.1_CS02aMAC/CS02aMAC_6.24.1_SUCCESS_"

static const char *DEVICE = "00DB1234567890A0";

static int contains(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn)
{
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, n, nn) == 0) return 1;
    return 0;
}

static uint8_t *read_hex(const char *rel, size_t *len)
{
    size_t tl = 0;
    uint8_t *text = test_read_shared(rel, &tl);
    uint8_t *b = malloc(tl / 2 + 1);
    assert_non_null(b);
    assert_ok(smki_hex_decode((const char *)text, tl, b, tl / 2 + 1, len));
    free(text);
    return b;
}

/* ---- RTDS fixture ------------------------------------------------------------------------- */

typedef struct {
    smki_store *s;
    smki_device *d;
    smki_key *acb_ka;
    smki_eui64_t eui;
    smki_rx_opts o;
} rtds_fx;

static void rtds_open(rtds_fx *f, const char *name)
{
    char path[1200];
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, "%s/store", test_tmpdir(name));
    assert_ok(smki_store_open(path, NULL, &f->s));
    assert_ok(smki_eui64_parse(DEVICE, &f->eui));
    assert_ok(smki_device_create_rtds(f->s, &f->eui, test_shared_path(KS)));
    assert_ok(smki_device_open(f->s, &f->eui, NULL, &f->d));
    snprintf(path, sizeof path, "file:%s", test_shared_path(KS "/90b3d51f30000002-ka.key"));
    assert_ok(smki_key_open(path, NULL, &f->acb_ka));
    smki_rx_opts_default(&f->o);
    f->o.mac_mode = SMKI_MAC_RTDS_REPLAY;
    f->o.rtds_acb_ka = f->acb_ka;
    /* The RTDS certificates expired in 2025 and 2026: judge them at a time inside their
     * validity (vectors README), never by switching the time checks off. */
    f->o.now = 1577836800; /* 2020-01-01 */
}

static void rtds_reopen(rtds_fx *f)
{
    smki_device_free(f->d);
    assert_ok(smki_device_open(f->s, &f->eui, NULL, &f->d));
}

static void rtds_close(rtds_fx *f)
{
    smki_device_free(f->d);
    smki_key_free(f->acb_ka);
    smki_store_close(f->s);
}

static smki_rx_verdict rx(rtds_fx *f, const uint8_t *m, size_t n, smki_rx_result *r)
{
    assert_ok(smki_device_receive(f->d, f->s, m, n, &f->o, r));
    return r->verdict;
}

/* The outcomes of our response equal those of the RTDS response: parse both. */
typedef struct {
    uint64_t seq, mode;
    size_t n;
    struct { smki_ta_cell_id id; uint64_t status; uint8_t f[4][8]; } oc[8];
} parsed_resp;

static void parse_cs02b_response(const uint8_t *content, size_t len, parsed_resp *p)
{
    smki_cursor_t c = smki_cursor(content, len), top, body, x, list;
    uint8_t tag;
    memset(p, 0, sizeof *p);
    assert_ok(dr_expect(&c, 0x30, "resp", &top));
    assert_ok(dr_tlv(&top, &tag, &x)); /* 05 00 */
    assert_ok(dr_expect(&top, 0x30, "body", &body));
    assert_ok(dr_expect(&body, 0x02, "seq", &x));
    assert_ok(dr_uint(&x, "seq", &p->seq));
    assert_ok(dr_expect(&body, 0x02, "mode", &x));
    assert_ok(dr_uint(&x, "mode", &p->mode));
    assert_ok(dr_expect(&body, 0x30, "floors", &x));
    assert_ok(dr_expect(&body, 0x30, "outcomes", &list));
    while (list.left) {
        smki_cursor_t e, cid;
        assert_ok(dr_expect(&list, 0x30, "outcome", &e));
        assert_ok(dr_expect(&e, 0x30, "cell", &cid));
        assert_ok(dr_cell_id(&cid, &p->oc[p->n].id));
        assert_ok(dr_expect(&e, 0x0A, "status", &x));
        assert_ok(dr_uint(&x, "status", &p->oc[p->n].status));
        for (int k = 0; k < 4; k++) {
            assert_ok(dr_expect(&e, 0x04, "id", &x));
            assert_int_equal(x.left, 8);
            memcpy(p->oc[p->n].f[k], x.p, 8);
        }
        p->n++;
    }
}

static void assert_same_outcomes(const smki_rx_result *r, const char *rtds_response)
{
    size_t len = 0;
    uint8_t *resp = read_hex(rtds_response, &len);
    dev_cmd theirs, ours;
    parsed_resp a, b;
    assert_ok(dev_parse_command(resp, len, &theirs));
    assert_ok(dev_parse_command(r->out, r->out_len, &ours));
    assert_int_equal(ours.gs.cra, 2);
    assert_int_equal(ours.gs.counter, theirs.gs.counter);
    assert_memory_equal(ours.gs.recipient, theirs.gs.recipient, 8);
    assert_int_equal(ours.gs.message_code, theirs.gs.message_code);
    parse_cs02b_response(theirs.gs.content, theirs.gs.content_len, &a);
    parse_cs02b_response(ours.gs.content, ours.gs.content_len, &b);
    assert_int_equal(a.seq, b.seq);
    assert_int_equal(a.mode, b.mode);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_memory_equal(&a.oc[i].id, &b.oc[i].id, sizeof a.oc[i].id);
        assert_int_equal(a.oc[i].status, b.oc[i].status);
        assert_memory_equal(a.oc[i].f, b.oc[i].f, sizeof a.oc[i].f);
    }
    free(resp);
}

/* Each RTDS CS02b command: accepted, applied, its outcomes those of the RTDS response;
 * the same command again is refused (replay, or the replaced signer's cell). */
static void accept_rtds(const char *prefix, const char *name, uint8_t mode)
{
    rtds_fx f;
    smki_rx_result r;
    char cmd[512], resp[512];
    size_t len = 0;
    snprintf(cmd, sizeof cmd, "%sCOMMAND_GBCS.HEX", prefix);
    snprintf(resp, sizeof resp, "%sRESPONSE_GBCS.HEX", prefix);
    rtds_open(&f, name);
    uint8_t *m = read_hex(cmd, &len);
    if (rx(&f, m, len, &r) != SMKI_RX_ACCEPTED) {
        for (size_t i = 0; i < r.noutcomes; i++) print_error("outcome %zu: %u %s\n", i, r.outcomes[i].status, r.outcomes[i].why);
        fail_msg("%s: %s (%s)", cmd, r.reason, smki_rx_verdict_name(r.verdict));
    }
    assert_int_equal(r.mode, mode);
    assert_int_equal(r.applied, 1);
    assert_string_equal(r.mac_check, "rtds-replay-acb-ka");
    assert_same_outcomes(&r, resp);
    smki_rx_result_clear(&r);
    /* The state changed in the store: a fresh handle sees the new cells. */
    rtds_reopen(&f);
    assert_int_not_equal(rx(&f, m, len, &r), SMKI_RX_ACCEPTED);
    assert_true(r.out_is_alert);
    smki_rx_result_clear(&r);
    free(m);
    rtds_close(&f);
}

static void test_rtds_supplier_by_supplier_accepted_with_rtds_outcomes(void **state)
{
    (void)state;
    accept_rtds(SBS, "rtds-sbs", 2);
}

static void test_rtds_no_by_no_accepted_with_rtds_outcomes(void **state)
{
    (void)state;
    accept_rtds(NBN, "rtds-nbn", 3);
}

static void test_rtds_transcos_by_transcos_accepted_with_rtds_outcomes(void **state)
{
    (void)state;
    accept_rtds(TBT, "rtds-tbt", 6);
}

static void test_rtds_supplier_by_transcos_accepted_with_rtds_outcomes(void **state)
{
    (void)state;
    accept_rtds(SBT, "rtds-sbt", 7);
}

/* Change of Supplier on RTDS data: after 6.23 the first supplier's next command (its
 * own CS02b, still validly signed by its published key) is refused. */
static void test_rtds_change_of_supplier_refuses_old_supplier(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    size_t l1 = 0, l2 = 0;
    uint8_t *cos = read_hex(SBT "COMMAND_GBCS.HEX", &l1);
    uint8_t *old = read_hex(SBS "COMMAND_GBCS.HEX", &l2);
    rtds_open(&f, "rtds-cos");
    assert_int_equal(rx(&f, cos, l1, &r), SMKI_RX_ACCEPTED);
    smki_rx_result_clear(&r);
    rtds_reopen(&f);
    assert_int_equal(rx(&f, old, l2, &r), SMKI_RX_NO_CELL);
    assert_int_equal(r.alert_code, f.o.alert_a2);
    assert_true(r.out_is_alert);
    smki_rx_result_clear(&r);
    free(cos);
    free(old);
    rtds_close(&f);
}

/* The RTDS error case: the KA management replacement does not chain (status 10,
 * noTrustAnchor), as the RTDS response says; here nothing is applied. */
static void test_rtds_error_command_reports_no_trust_anchor_and_applies_nothing(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    size_t len = 0;
    uint8_t *m = read_hex(SBS_ERR "COMMAND_GBCS.HEX", &len);
    rtds_open(&f, "rtds-err");
    assert_int_equal(rx(&f, m, len, &r), SMKI_RX_COMMAND_FAILED);
    for (size_t i = 0; i < r.noutcomes; i++) print_message("outcome %zu: %u %s\n", i, r.outcomes[i].status, r.outcomes[i].why);
    assert_int_equal(r.applied, 0);
    assert_same_outcomes(&r, SBS_ERR "RESPONSE_GBCS.HEX");
    int tens = 0;
    for (size_t i = 0; i < r.noutcomes; i++) tens += r.outcomes[i].status == SMKI_CS02B_NO_TRUST_ANCHOR;
    assert_int_equal(tens, 1);
    smki_rx_result_clear(&r);
    rtds_reopen(&f);
    smki_ta_cell_id ds = {SMKI_ROLE_SUPPLIER, SMKI_KU_DIGITAL_SIGNATURE, 0};
    static const uint8_t old_ski[8] = {0x44, 0x89, 0x97, 0x92, 0xD1, 0x96, 0xF4, 0xB8};
    assert_memory_equal(smki_device_cell(f.d, &ds)->ski, old_ski, 8);
    free(m);
    rtds_close(&f);
}

/* One octet changed anywhere in the signed part or MAC: refused (MAC, then signature). */
static void test_rtds_every_single_octet_change_is_refused(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    size_t len = 0;
    uint8_t *m = read_hex(SBS "COMMAND_GBCS.HEX", &len);
    rtds_open(&f, "rtds-flip");
    f.o.dry_run = 1;
    size_t accepted = 0, step = 7;
    for (size_t i = 0; i < len; i += (i < 64 || i > len - 80) ? 1 : step) {
        m[i] ^= 0x01;
        assert_ok(smki_device_verify(f.d, m, len, &f.o, &r));
        if (r.verdict == SMKI_RX_ACCEPTED) {
            print_error("octet %zu changed, still accepted\n", i);
            accepted++;
        }
        m[i] ^= 0x01;
    }
    assert_int_equal(accepted, 0);
    assert_ok(smki_device_verify(f.d, m, len, &f.o, &r));
    assert_int_equal(r.verdict, SMKI_RX_ACCEPTED);
    free(m);
    rtds_close(&f);
}

static void test_rtds_counter_at_or_below_floor_is_refused_as_replay(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    size_t len = 0;
    uint8_t *m = read_hex(SBS "COMMAND_GBCS.HEX", &len); /* counter 1000 */
    rtds_open(&f, "rtds-replay");
    assert_ok(smki_device_set_floor(f.s, &f.eui, SMKI_ROLE_SUPPLIER, 1000));
    rtds_reopen(&f);
    assert_int_equal(rx(&f, m, len, &r), SMKI_RX_REPLAY);
    assert_int_equal(r.alert_code, f.o.alert_replay);
    assert_int_equal(r.applied, 0);
    smki_rx_result_clear(&r);
    assert_ok(smki_device_set_floor(f.s, &f.eui, SMKI_ROLE_SUPPLIER, 999));
    rtds_reopen(&f);
    assert_int_equal(rx(&f, m, len, &r), SMKI_RX_ACCEPTED);
    smki_rx_result_clear(&r);
    free(m);
    rtds_close(&f);
}

/* The precommand re-signed by another published key (the network operator's) and
 * re-MACed as the ACB: the supplier cell refuses it (A2). */
static void test_rtds_wrong_signer_is_refused(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    size_t len = 0;
    char ref[1200];
    uint8_t *pre0 = read_hex(SBS "PRECOMMAND_GBCS.HEX", &len), *gs = NULL, *cmd = NULL;
    /* A precommand ends with its content; give it the "unsigned" octet to parse it. */
    uint8_t *pre = malloc(len + 1);
    assert_non_null(pre);
    memcpy(pre, pre0, len);
    pre[len++] = 0x00;
    free(pre0);
    size_t gs_len = 0, cmd_len = 0;
    smki_key *no = NULL, *supplier = NULL;
    dev_gs g;
    rtds_open(&f, "rtds-signer");
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(KS "/90b3d51f30020000-ds.key"));
    assert_ok(smki_key_open(ref, NULL, &no));
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(KS "/90b3d51f30010000-ds.key"));
    assert_ok(smki_key_open(ref, NULL, &supplier));
    smki_cursor_t c = smki_cursor(pre, len);
    assert_ok(dev_parse_gs(&c, &g));
    smki_eui64_t from, to;
    memcpy(from.b, g.originator, 8);
    memcpy(to.b, g.recipient, 8);
    /* Wrong signer. */
    assert_ok(dev_build_gs(no, 1, g.counter, g.originator, g.recipient, g.message_code, g.content, g.content_len, &gs,
                           &gs_len));
    assert_ok(smki_gbcs_command_wrap(f.acb_ka, f.d->ka_pub, gs, gs_len, &cmd, &cmd_len));
    assert_int_equal(rx(&f, cmd, cmd_len, &r), SMKI_RX_BAD_SIGNATURE);
    assert_int_equal(r.alert_code, f.o.alert_a2);
    smki_rx_result_clear(&r);
    free(gs);
    free(cmd);
    /* The right signer through the same path: accepted (the builder is not the cause). */
    assert_ok(smki_gbcs_command_build(supplier, f.acb_ka, f.d->ka_pub, &from, &to, g.counter, g.message_code, g.content,
                                      g.content_len, &cmd, &cmd_len));
    assert_int_equal(rx(&f, cmd, cmd_len, &r), SMKI_RX_ACCEPTED);
    smki_rx_result_clear(&r);
    free(cmd);
    smki_key_free(no);
    smki_key_free(supplier);
    free(pre);
    rtds_close(&f);
}

static void test_rtds_cs02a_lists_cells(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    size_t len = 0;
    uint8_t *m = read_hex(CS02A "COMMAND_GBCS.HEX", &len);
    rtds_open(&f, "rtds-cs02a");
    assert_int_equal(rx(&f, m, len, &r), SMKI_RX_ACCEPTED);
    assert_string_equal(r.action, "cs02a-details");
    dev_cmd ours;
    assert_ok(dev_parse_command(r.out, r.out_len, &ours));
    /* The supplier's three cells with the SKIs of the RTDS response. */
    static const uint8_t ska[8] = {0x40, 0x5B, 0x8C, 0x62, 0x68, 0x7D, 0x8F, 0x70};
    static const uint8_t pp[8] = {0x41, 0xFB, 0x49, 0x22, 0x15, 0x88, 0xC5, 0x70};
    assert_true(contains(ours.gs.content, ours.gs.content_len, ska, 8));
    assert_true(contains(ours.gs.content, ours.gs.content_len, pp, 8));
    smki_rx_result_clear(&r);
    free(m);
    rtds_close(&f);
}

static void test_rtds_not_recipient_gives_a3(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    smki_eui64_t other;
    char path[1200];
    rtds_open(&f, "rtds-a3");
    /* The same commands presented to another RTDS device. */
    snprintf(path, sizeof path, "%s/store2", test_tmpdir("rtds-a3b"));
    smki_store *s2 = NULL;
    smki_device *d2 = NULL;
    assert_ok(smki_store_open(path, NULL, &s2));
    assert_ok(smki_eui64_parse("00DB1234567890A1", &other));
    assert_ok(smki_device_create_rtds(s2, &other, test_shared_path(KS)));
    assert_ok(smki_device_open(s2, &other, NULL, &d2));
    size_t len = 0;
    uint8_t *m = read_hex(SBS "COMMAND_GBCS.HEX", &len);
    assert_ok(smki_device_receive(d2, s2, m, len, &f.o, &r));
    assert_int_equal(r.verdict, SMKI_RX_NOT_RECIPIENT);
    assert_int_equal(r.alert_code, f.o.alert_a3);
    assert_true(r.out_is_alert);
    dev_cmd a;
    assert_ok(dev_parse_command(r.out, r.out_len, &a));
    assert_int_equal(a.gs.cra, 3);
    assert_int_equal(a.gs.message_code, SMKI_MC_ASN1_ALERT);
    smki_rx_result_clear(&r);
    free(m);
    smki_device_free(d2);
    smki_store_close(s2);
    rtds_close(&f);
}

/* The RTDS replay mode is named and never silent: a plain receive on an RTDS model is
 * refused, as is the replay mode on a device with its own keys (below). */
static void test_rtds_model_refuses_default_mac_mode(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r;
    size_t len = 0;
    uint8_t *m = read_hex(SBS "COMMAND_GBCS.HEX", &len);
    rtds_open(&f, "rtds-mode");
    smki_rx_opts o;
    smki_rx_opts_default(&o);
    assert_fails(smki_device_receive(f.d, f.s, m, len, &o, &r), SMKI_E_REFUSED, "RTDS replay");
    smki_rx_result_clear(&r);
    free(m);
    rtds_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtds_supplier_by_supplier_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_no_by_no_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_transcos_by_transcos_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_supplier_by_transcos_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_change_of_supplier_refuses_old_supplier),
        cmocka_unit_test(test_rtds_error_command_reports_no_trust_anchor_and_applies_nothing),
        cmocka_unit_test(test_rtds_every_single_octet_change_is_refused),
        cmocka_unit_test(test_rtds_counter_at_or_below_floor_is_refused_as_replay),
        cmocka_unit_test(test_rtds_wrong_signer_is_refused),
        cmocka_unit_test(test_rtds_cs02a_lists_cells),
        cmocka_unit_test(test_rtds_not_recipient_gives_a3),
        cmocka_unit_test(test_rtds_model_refuses_default_mac_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
