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
#include "device/device.h"
#include "gbcs/device_private.h"
#include "device/state.h"
#include "gbcs/gbcs.h"

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

static void parse_cs02b_body(smki_cursor_t *top, parsed_resp *p);

/* SEQUENCE { NULL, body } (a response) or SEQUENCE { alertCode, executionDateTime, body }
 * (a future-dated execution's alert; *alert and when set). */
static void parse_cs02b_outcome(const uint8_t *content, size_t len, parsed_resp *p, uint64_t *alert, char when[16])
{
    smki_cursor_t c = smki_cursor(content, len), top, x;
    memset(p, 0, sizeof *p);
    assert_ok(smki_gbcs_der_expect(&c, 0x30, "outcome", &top));
    assert_ok(smki_gbcs_der_expect(&top, 0x02, "alertCode", &x));
    assert_ok(smki_gbcs_der_uint(&x, "alertCode", alert));
    assert_ok(smki_gbcs_der_expect(&top, 0x18, "executionDateTime", &x));
    assert_int_equal(x.left, 15);
    memcpy(when, x.p, 15);
    when[15] = '\0';
    parse_cs02b_body(&top, p);
}

static void parse_cs02b_response(const uint8_t *content, size_t len, parsed_resp *p)
{
    smki_cursor_t c = smki_cursor(content, len), top, x;
    uint8_t tag;
    memset(p, 0, sizeof *p);
    assert_ok(smki_gbcs_der_expect(&c, 0x30, "resp", &top));
    assert_ok(smki_gbcs_der_tlv(&top, &tag, &x)); /* 05 00 */
    parse_cs02b_body(&top, p);
}

/* The same sequence number, mode and outcomes, each cell's id, status and fields. */
static void assert_same_cs02b(const parsed_resp *a, const parsed_resp *b)
{
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_memory_equal(&a->oc[i].id, &b->oc[i].id, sizeof a->oc[i].id);
        assert_int_equal(a->oc[i].status, b->oc[i].status);
        assert_memory_equal(a->oc[i].f, b->oc[i].f, sizeof a->oc[i].f);
    }
}

static void parse_cs02b_body(smki_cursor_t *top, parsed_resp *p)
{
    smki_cursor_t body, x, list;
    assert_ok(smki_gbcs_der_expect(top, 0x30, "body", &body));
    assert_ok(smki_gbcs_der_expect(&body, 0x02, "seq", &x));
    assert_ok(smki_gbcs_der_uint(&x, "seq", &p->seq));
    assert_ok(smki_gbcs_der_expect(&body, 0x02, "mode", &x));
    assert_ok(smki_gbcs_der_uint(&x, "mode", &p->mode));
    assert_ok(smki_gbcs_der_expect(&body, 0x30, "floors", &x));
    assert_ok(smki_gbcs_der_expect(&body, 0x30, "outcomes", &list));
    while (list.left) {
        smki_cursor_t e, cid;
        assert_ok(smki_gbcs_der_expect(&list, 0x30, "outcome", &e));
        assert_ok(smki_gbcs_der_expect(&e, 0x30, "cell", &cid));
        assert_ok(smki_gbcs_der_cell_id(&cid, &p->oc[p->n].id));
        assert_ok(smki_gbcs_der_expect(&e, 0x0A, "status", &x));
        assert_ok(smki_gbcs_der_uint(&x, "status", &p->oc[p->n].status));
        for (int k = 0; k < 4; k++) {
            assert_ok(smki_gbcs_der_expect(&e, 0x04, "id", &x));
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
    smki_gbcs_cmd theirs, ours;
    parsed_resp a, b;
    assert_ok(smki_gbcs_cmd_parse(resp, len, &theirs));
    assert_ok(smki_gbcs_cmd_parse(r->out, r->out_len, &ours));
    assert_int_equal(ours.gs.cra, 2);
    assert_int_equal(ours.gs.counter, theirs.gs.counter);
    assert_memory_equal(ours.gs.recipient, theirs.gs.recipient, 8);
    assert_int_equal(ours.gs.message_code, theirs.gs.message_code);
    parse_cs02b_response(theirs.gs.content, theirs.gs.content_len, &a);
    parse_cs02b_response(ours.gs.content, ours.gs.content_len, &b);
    assert_same_cs02b(&a, &b);
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
    smki_gbcs_gs g;
    rtds_open(&f, "rtds-signer");
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(KS "/90b3d51f30020000-ds.key"));
    assert_ok(smki_key_open(ref, NULL, &no));
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(KS "/90b3d51f30010000-ds.key"));
    assert_ok(smki_key_open(ref, NULL, &supplier));
    assert_ok(smki_gbcs_gs_parse(pre, len, &g));
    smki_eui64_t from, to;
    memcpy(from.b, g.originator, 8);
    memcpy(to.b, g.recipient, 8);
    /* Wrong signer. */
    assert_ok(smki_gbcs_gs_build(no, 1, g.counter, g.originator, g.recipient, g.message_code, g.content, g.content_len, &gs,
                           &gs_len));
    assert_ok(smki_gbcs_wrap(gs, gs_len, f.acb_ka, f.d->ka_pub, 0, &cmd, &cmd_len));
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


/* Every RTDS CS02b success command (modes 2, 3, 6, 7), each on a fresh model: every
 * octet changed in turn (the whole message) is refused; a floor at its counter refuses
 * it as a replay while one below lets it through; the same General Signing APDU signed
 * by another published key and MACed again by the ACB is refused (A2). */
static void test_rtds_all_cs02b_commands_refuse_flips_replays_and_wrong_signers(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        uint8_t role;
        const char *wrong_key;
    } cases[] = {
        {SBS "COMMAND_GBCS.HEX", SMKI_ROLE_SUPPLIER, KS "/90b3d51f30020000-ds.key"},
        {NBN "COMMAND_GBCS.HEX", SMKI_ROLE_NETWORK_OPERATOR, KS "/90b3d51f30010000-ds.key"},
        {TBT "COMMAND_GBCS.HEX", SMKI_ROLE_TRANSITIONAL_COS, KS "/90b3d51f30000001-ds.key"},
        {SBT "COMMAND_GBCS.HEX", SMKI_ROLE_TRANSITIONAL_COS, KS "/90b3d51f30010000-ds.key"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        rtds_fx f;
        smki_rx_result r;
        size_t len = 0, flipped_accepted = 0;
        char name[32], ref[1200];
        uint8_t *m = read_hex(cases[k].cmd, &len);
        snprintf(name, sizeof name, "rtds-all-%zu", k);
        rtds_open(&f, name);
        f.o.dry_run = 1;
        for (size_t i = 0; i < len; i++) {
            m[i] ^= 0x01;
            assert_ok(smki_device_verify(f.d, m, len, &f.o, &r));
            flipped_accepted += r.verdict == SMKI_RX_ACCEPTED;
            m[i] ^= 0x01;
        }
        if (flipped_accepted) fail_msg("%s: %zu single-octet changes accepted", cases[k].cmd, flipped_accepted);
        smki_gbcs_cmd c;
        assert_ok(smki_gbcs_cmd_parse(m, len, &c));
        /* Floors. */
        assert_ok(smki_device_set_floor(f.s, &f.eui, cases[k].role, c.gs.counter));
        rtds_reopen(&f);
        assert_ok(smki_device_verify(f.d, m, len, &f.o, &r));
        assert_int_equal(r.verdict, SMKI_RX_REPLAY);
        assert_ok(smki_device_set_floor(f.s, &f.eui, cases[k].role, c.gs.counter - 1));
        rtds_reopen(&f);
        assert_ok(smki_device_verify(f.d, m, len, &f.o, &r));
        assert_int_equal(r.verdict, SMKI_RX_ACCEPTED);
        /* Changed after signing and MACed again by the ACB: the signature refuses it. */
        uint8_t *gsc = malloc(c.gs.apdu_len);
        assert_non_null(gsc);
        for (size_t i = 1; i < c.gs.signed_len + 1; i += 37) {
            uint8_t *w = NULL;
            size_t wl = 0;
            memcpy(gsc, c.gs.apdu, c.gs.apdu_len);
            gsc[i] ^= 0x01;
            if (smki_gbcs_wrap(gsc, c.gs.apdu_len, f.acb_ka, f.d->ka_pub, 0, &w, &wl) < 0) {
                smki_error_clear(); /* the change broke the layout: nothing to send */
                continue;
            }
            assert_ok(smki_device_verify(f.d, w, wl, &f.o, &r));
            if (r.verdict == SMKI_RX_ACCEPTED) fail_msg("%s: octet %zu changed and re-MACed, accepted", cases[k].cmd, i);
            free(w);
        }
        free(gsc);
        /* Wrong signer. */
        smki_key *wrong = NULL;
        uint8_t *gs = NULL, *cmd = NULL;
        size_t gs_len = 0, cmd_len = 0;
        snprintf(ref, sizeof ref, "file:%s", test_shared_path(cases[k].wrong_key));
        assert_ok(smki_key_open(ref, NULL, &wrong));
        assert_ok(smki_gbcs_gs_build(wrong, 1, c.gs.counter, c.gs.originator, c.gs.recipient, c.gs.message_code,
                               c.gs.content, c.gs.content_len, &gs, &gs_len));
        assert_ok(smki_gbcs_wrap(gs, gs_len, f.acb_ka, f.d->ka_pub, 0, &cmd, &cmd_len));
        assert_ok(smki_device_verify(f.d, cmd, cmd_len, &f.o, &r));
        assert_int_equal(r.verdict, SMKI_RX_BAD_SIGNATURE);
        smki_key_free(wrong);
        free(gs);
        free(cmd);
        free(m);
        rtds_close(&f);
    }
}


/* The MAC of a device's response, checked from the ACB side: on the RTDS CS02a response
 * (made by the real device: OtherInfo(device, 02, counter, ACB)), and on our own
 * device's CS02a response to an unsigned CS02a from the ACB. */
static int response_mac_ok(smki_key *acb_ka, EVP_PKEY *device_ka, const uint8_t *m, size_t n)
{
    smki_gbcs_msg msg;
    assert_ok(smki_gbcs_parse(m, n, &msg));
    assert_int_equal(msg.kind, SMKI_GBCS_CIPHERING);
    int rc = smki_gbcs_verify_mac(&msg, acb_ka, device_ka);
    smki_error_clear();
    return rc == 0;
}

static void test_rtds_cs02a_response_mac_layout_verifies_from_the_acb_side(void **state)
{
    (void)state;
    rtds_fx f;
    size_t len = 0;
    uint8_t *m = read_hex(CS02A "RESPONSE_GBCS.HEX", &len);
    rtds_open(&f, "rtds-respmac");
    assert_true(response_mac_ok(f.acb_ka, f.d->ka_pub, m, len));
    m[len - 20] ^= 1;
    assert_false(response_mac_ok(f.acb_ka, f.d->ka_pub, m, len));
    free(m);
    rtds_close(&f);
}


/* The content of an RTDS message file (hex). */
static uint8_t *rtds_content(const char *rel, smki_gbcs_msg *m, size_t *len)
{
    uint8_t *b = read_hex(rel, len);
    assert_ok(smki_gbcs_parse(b, *len, m));
    return b;
}

/* The first occurrence of a 15-octet GeneralizedTime text in b (NULL when absent). */
static uint8_t *find_time(uint8_t *b, size_t n, const char *text)
{
    for (size_t i = 0; i + 15 <= n; i++)
        if (memcmp(b + i, text, 15) == 0) return b + i;
    return NULL;
}

/* An RTDS CS02b command with its executionDateTime replaced (same length), signed again
 * with the supplier's published DS key and MACed with the ACB's KA key for the model. */
static uint8_t *future_command_at(rtds_fx *f, const char *rel, const char *when, size_t *out_len)
{
    size_t len;
    uint8_t *b = read_hex(rel, &len), *pre = NULL, *signed_apdu = NULL, *out = NULL;
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(b, len, &m));
    uint8_t *gt = find_time(b + (m.gsa.content - b), m.gsa.content_len, "20300115000000Z");
    assert_non_null(gt);
    memcpy(gt, when, 15);
    smki_gbcs_fields fl = m.gsa;
    fl.sig_state = SMKI_GBCS_SIG_NONE;
    size_t pl, sl;
    assert_ok(smki_gbcs_build_signing(&fl, &pre, &pl));
    char ref[1200];
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(KS "/90b3d51f30010000-ds.key"));
    smki_key *sup = NULL;
    assert_ok(smki_key_open(ref, NULL, &sup));
    assert_ok(smki_gbcs_sign(sup, pre, pl, &signed_apdu, &sl));
    assert_ok(smki_gbcs_wrap(signed_apdu, sl, f->acb_ka, f->d->ka_pub, 0, &out, out_len));
    smki_key_free(sup);
    free(pre);
    free(signed_apdu);
    free(b);
    return out;
}

#define SBS_DIR RTDS "/6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_"

/* A future-dated CS02b is verified and scheduled on receipt (answered SEQUENCE { NULL } as
 * the RTDS FUTURE_DATED response), nothing applied until its executionDateTime; run then,
 * it is applied and answered by the 8F66 alert whose content is the RTDS alert's byte for
 * byte. The cancellation (executionDateTime 9999-12-31) removes a pending one. */
static void test_rtds_future_dated_cs02b_runs_at_its_time_with_the_rtds_alert(void **state)
{
    (void)state;
    rtds_fx f;
    smki_rx_result r, due[4];
    size_t len = 0, rlen = 0, alen = 0, n = 0;
    smki_gbcs_msg rm, am, om;
    uint8_t *rb = rtds_content(SBS_DIR "FUTURE_DATED_SUCCESS_RESPONSE_GBCS.HEX", &rm, &rlen);
    uint8_t *ab = rtds_content(SBS_DIR "8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX", &am, &alen);
    rtds_open(&f, "rtds-future");
    /* The RTDS command executes on 2030-01-15 and applies time-based checks, while the RTDS
     * certificates expired in 2025: the same command executing on 2020-06-01 instead,
     * signed again with the supplier's published key and MACed with the ACB's. */
    uint8_t *m = future_command_at(&f, SBS_DIR "FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX", "20200601000000Z", &len);
    smki_ta_cell_id sup = {SMKI_ROLE_SUPPLIER, SMKI_KU_DIGITAL_SIGNATURE, 0};
    uint8_t before_ski[8];
    memcpy(before_ski, smki_device_cell(f.d, &sup)->ski, 8);
    assert_int_equal(rx(&f, m, len, &r), SMKI_RX_ACCEPTED);
    assert_string_equal(r.action, "cs02b-scheduled");
    assert_true(r.applied);
    assert_ok(smki_gbcs_parse(r.out, r.out_len, &om));
    assert_int_equal(om.gsa.content_len, rm.gsa.content_len);
    assert_memory_equal(om.gsa.content, rm.gsa.content, rm.gsa.content_len); /* SEQUENCE { NULL } */
    smki_rx_result_clear(&r);
    assert_memory_equal(smki_device_cell(f.d, &sup)->ski, before_ski, 8); /* not applied yet */
    /* Not due in 2020; due in 2030. */
    assert_ok(smki_device_run_due(f.d, f.s, &f.o, due, 4, &n));
    assert_int_equal(n, 0);
    smki_rx_opts later = f.o;
    later.now = 1590969600; /* 2020-06-01T00:00:00Z, the executionDateTime */
    assert_ok(smki_device_run_due(f.d, f.s, &later, due, 4, &n));
    assert_int_equal(n, 1);
    assert_int_equal(due[0].verdict, SMKI_RX_ACCEPTED);
    assert_true(due[0].applied);
    assert_true(due[0].out_is_alert);
    assert_int_equal(due[0].alert_code, SMKI_ALERT_FUTURE_DATED_OK);
    assert_ok(smki_gbcs_parse(due[0].out, due[0].out_len, &om));
    assert_int_equal(om.gsa.cra, SMKI_GBCS_CRA_ALERT);
    assert_int_equal(om.gsa.message_code, am.gsa.message_code);
    assert_memory_equal(om.gsa.recipient, am.gsa.recipient, 8);
    /* The RTDS alert's content field by field: alert code, the execution date-time this
     * command carries, sequence number, mode, and each cell's outcome and identifiers. */
    parsed_resp ours, rtds;
    uint64_t code_ours, code_rtds;
    char when_ours[16], when_rtds[16];
    parse_cs02b_outcome(om.gsa.content, om.gsa.content_len, &ours, &code_ours, when_ours);
    parse_cs02b_outcome(am.gsa.content, am.gsa.content_len, &rtds, &code_rtds, when_rtds);
    assert_int_equal(code_ours, 0x8F66);
    assert_int_equal(code_rtds, 0x8F66);
    assert_string_equal(when_ours, "20200601000000Z");
    assert_string_equal(when_rtds, "20300115000000Z");
    assert_same_cs02b(&ours, &rtds);
    smki_rx_result_clear(&due[0]);
    assert_memory_not_equal(smki_device_cell(f.d, &sup)->ski, before_ski, 8); /* applied */
    assert_ok(smki_device_run_due(f.d, f.s, &later, due, 4, &n));
    assert_int_equal(n, 0); /* once */
    rtds_close(&f);

    /* Scheduled, then cancelled: nothing runs, nothing changes. */
    size_t clen = 0;
    uint8_t *cancel = read_hex(SBS_DIR "CANCELLATION_SUCCESS_COMMAND_GBCS.HEX", &clen);
    rtds_open(&f, "rtds-future-cancel");
    assert_int_equal(rx(&f, m, len, &r), SMKI_RX_ACCEPTED);
    smki_rx_result_clear(&r);
    assert_int_equal(rx(&f, cancel, clen, &r), SMKI_RX_ACCEPTED);
    assert_string_equal(r.action, "cs02b-cancel");
    assert_int_equal(r.cancelled, 1);
    smki_rx_result_clear(&r);
    assert_ok(smki_device_run_due(f.d, f.s, &later, due, 4, &n));
    assert_int_equal(n, 0);
    assert_memory_equal(smki_device_cell(f.d, &sup)->ski, before_ski, 8);
    rtds_close(&f);
    free(cancel);
    free(m);
    free(rb);
    free(ab);
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
    smki_gbcs_cmd ours;
    assert_ok(smki_gbcs_cmd_parse(r.out, r.out_len, &ours));
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
    smki_gbcs_cmd a;
    assert_ok(smki_gbcs_cmd_parse(r.out, r.out_len, &a));
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


/* ==== A device with its own keys in the token, under a test PKI made here =============== */

#define PIN "dev-user-1234"

typedef struct {
    char key_ref[1200];   /* file: private key */
    smki_cert cert;
    smki_eui64_t eui;
} party;

enum { P_SUPA, P_SUPB, P_NO, P_NO2, P_ACB_DS, P_ACB_KA, P_ACB2, P_WAN, P_WAN2, P_COS, P_COS2, P_REC, P_ALIEN, P_COUNT };

typedef struct {
    char dir[1024];
    smki_store *s;
    smki_ca_db db;
    smki_conf *conf;
    smki_hsm_opts hsm;
    smki_key *pin_module;
    party p[P_COUNT];
    smki_ca_record root, oca;
    smki_device *d;
    smki_eui64_t eui;
    smki_rx_opts o;
    unsigned next_device;
} own_fx;

static void write_key(const char *path, EVP_PKEY *pk)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static smki_conf *software_conf(const char *dir, const char *tag)
{
    static const char *const KINDS[] = {"smki_root", "smki_oca", "smki_dca", "dccki_root", "dccki_ica"};
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "[ca.test]\n");
    for (size_t i = 0; i < 5; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s-%s.pem", dir, tag, KINDS[i]);
        EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        write_key(path, pk);
        EVP_PKEY_free(pk);
        n += (size_t)snprintf(text + n, sizeof text - n, "%s_key = file:%s\n", KINDS[i], path);
    }
    smki_conf *c = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)text, n, "test.conf", &c));
    return c;
}

/* An organisation certificate of role/usage for eui, issued by the OCA of db. */
static void make_party(const char *dir, smki_ca_db *db, const char *name, uint8_t role, const char *eui, unsigned ku,
                       party *out)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(pk);
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    write_key(path, pk);
    snprintf(out->key_ref, sizeof out->key_ref, "file:%s", path);
    smki_csr *csr = test_ku_csr(X509_REQ_new(), pk,
                                ku == SMKI_KU_DIGITAL_SIGNATURE ? "critical,digitalSignature" : "critical,keyAgreement");
    assert_ok(smki_eui64_parse(eui, &out->eui));
    smki_ca_issuer *oca = NULL;
    assert_ok(smki_ca_issuer_open(db, "test", SMKI_PROFILE_ORGANISATION, NULL, &oca));
    smki_issue_req r = {csr, SMKI_PROFILE_ORGANISATION, role, &out->eui, NULL, 0, 0};
    assert_ok(smki_ca_build(oca, &r, &out->cert));
    smki_ca_issuer_free(oca);
    smki_csr_free(csr);
    EVP_PKEY_free(pk);
}

static void load_cell_of(own_fx *f, const smki_eui64_t *eui, const party *p)
{
    smki_ta_cell *cell = calloc(1, sizeof *cell);
    assert_ok(smki_cell_from_cert(p->cert.der, p->cert.der_len, 0, cell));
    assert_ok(smki_device_load_cell(f->s, eui, cell));
    free(cell);
}

/* A fresh device with its keys in the token and the fixture's cells loaded. */
static void new_device(own_fx *f)
{
    char t[17];
    smki_device_free(f->d);
    f->d = NULL;
    snprintf(t, sizeof t, "00DB1234567800%02X", f->next_device++);
    assert_ok(smki_eui64_parse(t, &f->eui));
    smki_device_keys_opts ko = {"smki-dev", &f->hsm, NULL, NULL, NULL, NULL};
    assert_ok(smki_device_create(f->s, &f->eui, &ko));
    smki_ta_cell *cell = calloc(1, sizeof *cell);
    assert_ok(smki_cell_from_cert(f->root.cert.der, f->root.cert.der_len, 0, cell));
    assert_int_equal(cell->id.role, SMKI_ROLE_ROOT);
    assert_ok(smki_device_load_cell(f->s, &f->eui, cell));
    free(cell);
    static const int cells[] = {P_SUPA, P_NO, P_ACB_DS, P_ACB_KA, P_WAN, P_COS, P_REC};
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) load_cell_of(f, &f->eui, &f->p[cells[i]]);
    assert_ok(smki_device_open(f->s, &f->eui, &f->hsm, &f->d));
}

static int own_setup(void **state)
{
    own_fx *f = calloc(1, sizeof *f);
    char path[2600], alien_dir[1200];
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("own"));
    snprintf(path, sizeof path, "%s/hsm", f->dir);
    assert_ok(smki_softhsm_prepare(path));
    f->hsm.pin = PIN;
    int created;
    smki_token_info info;
    assert_ok(smki_token_init(NULL, "smki-dev", "dev-so-12345678", PIN, &created, &info));
    char uri[SMKI_KEY_URI_MAX];
    /* Held open to the end (see test_ca: libp11 finalises with the last key). */
    assert_ok(smki_key_generate(&f->hsm, "smki-dev", "pin-module", SMKI_USAGE_DS, uri));
    assert_ok(smki_key_open(uri, &f->hsm, &f->pin_module));
    snprintf(path, sizeof path, "%s/store", f->dir);
    assert_ok(smki_store_open(path, NULL, &f->s));
    assert_ok(smki_ca_db_open(f->s, &f->db));
    f->conf = software_conf(f->dir, "main");
    smki_ca_init_opts io = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    assert_ok(smki_ca_init(&f->db, "test", f->conf, &io, &rep));
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_ROOT, &f->root));
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_OCA, &f->oca));
    const unsigned DS = SMKI_KU_DIGITAL_SIGNATURE, KA = SMKI_KU_KEY_AGREEMENT;
    make_party(f->dir, &f->db, "supA", SMKI_ROLE_SUPPLIER, "90B3D51F30010000", DS, &f->p[P_SUPA]);
    make_party(f->dir, &f->db, "supB", SMKI_ROLE_SUPPLIER, "90B3D51F30030000", DS, &f->p[P_SUPB]);
    make_party(f->dir, &f->db, "no", SMKI_ROLE_NETWORK_OPERATOR, "90B3D51F30020000", DS, &f->p[P_NO]);
    make_party(f->dir, &f->db, "no2", SMKI_ROLE_NETWORK_OPERATOR, "90B3D51F30020001", DS, &f->p[P_NO2]);
    make_party(f->dir, &f->db, "acbds", SMKI_ROLE_ACB, "90B3D51F30000002", DS, &f->p[P_ACB_DS]);
    make_party(f->dir, &f->db, "acbka", SMKI_ROLE_ACB, "90B3D51F30000002", KA, &f->p[P_ACB_KA]);
    make_party(f->dir, &f->db, "acb2", SMKI_ROLE_ACB, "90B3D51F30000002", DS, &f->p[P_ACB2]);
    make_party(f->dir, &f->db, "wan", SMKI_ROLE_WAN_PROVIDER, "90B3D51F30000007", DS, &f->p[P_WAN]);
    make_party(f->dir, &f->db, "wan2", SMKI_ROLE_WAN_PROVIDER, "90B3D51F30000008", DS, &f->p[P_WAN2]);
    make_party(f->dir, &f->db, "cos", SMKI_ROLE_TRANSITIONAL_COS, "90B3D51F30000004", DS, &f->p[P_COS]);
    make_party(f->dir, &f->db, "cos2", SMKI_ROLE_TRANSITIONAL_COS, "90B3D51F30000005", DS, &f->p[P_COS2]);
    make_party(f->dir, &f->db, "rec", SMKI_ROLE_RECOVERY, "90B3D51F30000001", DS, &f->p[P_REC]);
    /* Another hierarchy (same profiles, other keys): its certificates do not reach our root. */
    snprintf(alien_dir, sizeof alien_dir, "%s", test_tmpdir("own-alien"));
    {
        smki_store *as = NULL;
        smki_ca_db adb;
        snprintf(path, sizeof path, "%s/store", alien_dir);
        assert_ok(smki_store_open(path, NULL, &as));
        assert_ok(smki_ca_db_open(as, &adb));
        smki_conf *ac = software_conf(alien_dir, "alien");
        smki_ca_init_opts aio = {NULL, alien_dir, 0, NULL, NULL};
        assert_ok(smki_ca_init(&adb, "test", ac, &aio, &rep));
        make_party(alien_dir, &adb, "alien", SMKI_ROLE_SUPPLIER, "90B3D51F30030000", DS, &f->p[P_ALIEN]);
        smki_conf_free(ac);
        smki_store_close(as);
    }
    smki_rx_opts_default(&f->o);
    new_device(f);
    *state = f;
    return 0;
}

static int own_teardown(void **state)
{
    own_fx *f = *state;
    smki_device_free(f->d);
    smki_key_free(f->pin_module);
    smki_conf_free(f->conf);
    smki_store_close(f->s);
    free(f);
    return 0;
}

/* A command from party `from` (signed with its key; NULL: unsigned), MACed as the ACB. */
static void command(own_fx *f, int from, uint64_t counter, uint16_t mc, const uint8_t *content, size_t len,
                    uint8_t **out, size_t *out_len)
{
    smki_key *ds = NULL, *acb = NULL;
    if (from >= 0) assert_ok(smki_key_open(f->p[from].key_ref, NULL, &ds));
    assert_ok(smki_key_open(f->p[P_ACB_KA].key_ref, NULL, &acb));
    assert_ok(smki_gbcs_command_build(ds, acb, f->d->ka_pub, from >= 0 ? &f->p[from].eui : &f->p[P_ACB_KA].eui,
                                      &f->eui, counter, mc, content, len, out, out_len));
    smki_key_free(ds);
    smki_key_free(acb);
}

static smki_rx_verdict own_rx(own_fx *f, const uint8_t *m, size_t n, smki_rx_result *r)
{
    assert_ok(smki_device_receive(f->d, f->s, m, n, &f->o, r));
    return r->verdict;
}

static const uint8_t ECS01A_BODY[2] = {0x01, 0x02};

static void test_own_device_accepts_and_signs_its_response_mac_checked_with_token_key(void **state)
{
    own_fx *f = *state;
    new_device(f);
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    command(f, P_SUPA, 1, SMKI_MC_ECS01A, ECS01A_BODY, sizeof ECS01A_BODY, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_ACCEPTED);
    assert_string_equal(r.mac_check, "device-ka");
    assert_int_equal(r.role, SMKI_ROLE_SUPPLIER);
    assert_true(r.out_signed);
    /* The response verifies with the device's DS public key. */
    smki_gbcs_cmd resp;
    assert_ok(smki_gbcs_cmd_parse(r.out, r.out_len, &resp));
    assert_int_equal(resp.gs.cra, 2);
    assert_int_equal(resp.gs.counter, 1);
    assert_memory_equal(resp.gs.recipient, f->p[P_SUPA].eui.b, 8);
    EVP_PKEY *dpub = NULL;
    assert_ok(smki_key_public_load(f->d->rec.ds_ref, &f->hsm, &dpub));
    assert_ok(smki_verify(dpub, resp.gs.signed_part, resp.gs.signed_len, SMKI_SIG_RAW, resp.gs.signature, 64));
    EVP_PKEY_free(dpub);
    smki_rx_result_clear(&r);
    /* Replayed: refused. */
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_REPLAY);
    assert_true(r.out_is_alert);
    smki_rx_result_clear(&r);
    free(m);
}

static void test_own_device_refuses_bad_mac_unwrapped_and_foreign_mac(void **state)
{
    own_fx *f = *state;
    new_device(f);
    uint8_t *m = NULL, *gs = NULL, *wrapped = NULL;
    size_t n = 0, gs_len = 0, wl = 0;
    smki_rx_result r;
    command(f, P_SUPA, 5, SMKI_MC_ECS01A, ECS01A_BODY, sizeof ECS01A_BODY, &m, &n);
    m[n - 1] ^= 0x80; /* the MAC */
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_BAD_MAC);
    assert_int_equal(r.alert_code, f->o.alert_a2);
    smki_rx_result_clear(&r);
    /* Signed but not through the ACB. */
    smki_key *ds = NULL, *other = NULL;
    assert_ok(smki_key_open(f->p[P_SUPA].key_ref, NULL, &ds));
    assert_ok(smki_gbcs_command_build(ds, NULL, NULL, &f->p[P_SUPA].eui, &f->eui, 6, SMKI_MC_ECS01A, ECS01A_BODY,
                                      sizeof ECS01A_BODY, &gs, &gs_len));
    assert_int_equal(own_rx(f, gs, gs_len, &r), SMKI_RX_BAD_MAC);
    smki_rx_result_clear(&r);
    /* MACed by a key-agreement key that is not the ACB cell's. */
    assert_ok(smki_key_open(f->p[P_SUPA].key_ref, NULL, &other));
    assert_ok(smki_gbcs_wrap(gs, gs_len, other, f->d->ka_pub, 0, &wrapped, &wl));
    assert_int_equal(own_rx(f, wrapped, wl, &r), SMKI_RX_BAD_MAC);
    smki_rx_result_clear(&r);
    /* Nothing was spent: the same counter, properly MACed, is accepted. */
    free(m);
    command(f, P_SUPA, 5, SMKI_MC_ECS01A, ECS01A_BODY, sizeof ECS01A_BODY, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_ACCEPTED);
    smki_rx_result_clear(&r);
    smki_key_free(ds);
    smki_key_free(other);
    free(gs);
    free(wrapped);
    free(m);
}

static void test_own_device_refuses_rtds_replay_mode(void **state)
{
    own_fx *f = *state;
    new_device(f);
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    smki_key *acb = NULL;
    command(f, P_SUPA, 1, SMKI_MC_ECS01A, ECS01A_BODY, sizeof ECS01A_BODY, &m, &n);
    assert_ok(smki_key_open(f->p[P_ACB_KA].key_ref, NULL, &acb));
    smki_rx_opts o = f->o;
    o.mac_mode = SMKI_MAC_RTDS_REPLAY;
    o.rtds_acb_ka = acb;
    assert_fails(smki_device_receive(f->d, f->s, m, n, &o, &r), SMKI_E_REFUSED, "own keys");
    smki_rx_result_clear(&r);
    smki_key_free(acb);
    free(m);
}

static void test_own_device_refuses_other_recipient_with_a3(void **state)
{
    own_fx *f = *state;
    new_device(f);
    uint8_t *gs = NULL;
    size_t gs_len = 0;
    smki_rx_result r;
    smki_key *ds = NULL;
    smki_eui64_t other;
    assert_ok(smki_eui64_parse("00DB123456789999", &other));
    assert_ok(smki_key_open(f->p[P_SUPA].key_ref, NULL, &ds));
    assert_ok(smki_gbcs_command_build(ds, NULL, NULL, &f->p[P_SUPA].eui, &other, 1, SMKI_MC_ECS01A, ECS01A_BODY,
                                      sizeof ECS01A_BODY, &gs, &gs_len));
    assert_int_equal(own_rx(f, gs, gs_len, &r), SMKI_RX_NOT_RECIPIENT);
    assert_int_equal(r.alert_code, f->o.alert_a3);
    smki_rx_result_clear(&r);
    smki_key_free(ds);
    free(gs);
}

static void test_own_device_refuses_signature_by_another_key_of_the_role(void **state)
{
    own_fx *f = *state;
    new_device(f);
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    /* Supplier B signs, claiming to be supplier A: A's cell does not verify it. */
    party fake = f->p[P_SUPB];
    fake.eui = f->p[P_SUPA].eui;
    party keep = f->p[P_SUPA];
    f->p[P_SUPA] = fake;
    command(f, P_SUPA, 1, SMKI_MC_ECS01A, ECS01A_BODY, sizeof ECS01A_BODY, &m, &n);
    f->p[P_SUPA] = keep;
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_BAD_SIGNATURE);
    assert_int_equal(r.alert_code, f->o.alert_a2);
    smki_rx_result_clear(&r);
    free(m);
    /* An unsigned critical command. */
    command(f, -1, 1, SMKI_MC_ECS01A, ECS01A_BODY, sizeof ECS01A_BODY, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_BAD_SIGNATURE);
    smki_rx_result_clear(&r);
    free(m);
}

static void test_own_device_refuses_command_the_role_may_not_send_with_a4(void **state)
{
    own_fx *f = *state;
    new_device(f);
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    command(f, P_NO, 1, SMKI_MC_ECS01A, ECS01A_BODY, sizeof ECS01A_BODY, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_NO_PERMISSION);
    assert_int_equal(r.alert_code, f->o.alert_a4);
    assert_true(r.out_is_alert);
    smki_rx_result_clear(&r);
    free(m);
}

/* A CS02b of one mode, signed by signer, replacing cells with these certificates. */
static smki_rx_verdict cs02b(own_fx *f, int signer, uint8_t mode, uint64_t counter, const int *certs,
                             const smki_ta_cell_id *targets, size_t n, smki_rx_result *r)
{
    smki_cs02b_request q;
    memset(&q, 0, sizeof q);
    q.mode = mode;
    q.auth_seq = counter;
    q.apply_time_checks = 1;
    static const uint8_t sym[16] = {1, 2, 3};
    if (mode == 9) {
        q.symmetric_key = sym;
        q.symmetric_len = sizeof sym;
    }
    for (size_t i = 0; i < n; i++) {
        q.repl[i].cert = f->p[certs[i]].cert.der;
        q.repl[i].len = f->p[certs[i]].cert.der_len;
        q.repl[i].target = targets[i];
    }
    q.nrepl = n;
    q.path[0].cert = f->oca.cert.der;
    q.path[0].len = f->oca.cert.der_len;
    q.npath = 1;
    uint8_t *content = NULL, *m = NULL;
    size_t clen = 0, mlen = 0;
    assert_ok(smki_cs02b_build(&q, &content, &clen));
    command(f, signer, counter, SMKI_MC_CS02B(mode), content, clen, &m, &mlen);
    smki_rx_verdict v = own_rx(f, m, mlen, r);
    free(content);
    free(m);
    return v;
}

static const smki_ta_cell_id SUP_DS = {SMKI_ROLE_SUPPLIER, SMKI_KU_DIGITAL_SIGNATURE, 0};
static const smki_ta_cell_id NO_DS = {SMKI_ROLE_NETWORK_OPERATOR, SMKI_KU_DIGITAL_SIGNATURE, 0};
static const smki_ta_cell_id ACB_DS = {SMKI_ROLE_ACB, SMKI_KU_DIGITAL_SIGNATURE, 0};
static const smki_ta_cell_id WAN_DS = {SMKI_ROLE_WAN_PROVIDER, SMKI_KU_DIGITAL_SIGNATURE, 0};
static const smki_ta_cell_id COS_DS = {SMKI_ROLE_TRANSITIONAL_COS, SMKI_KU_DIGITAL_SIGNATURE, 0};
static const smki_ta_cell_id ROOT_CELL = {SMKI_ROLE_ROOT, SMKI_KU_KEY_CERT_SIGN, 0};

static void assert_cell_holds(own_fx *f, const smki_ta_cell_id *id, const party *p)
{
    smki_device_free(f->d);
    assert_ok(smki_device_open(f->s, &f->eui, &f->hsm, &f->d));
    const smki_ta_cell *c = smki_device_cell(f->d, id);
    assert_non_null(c);
    const ASN1_OCTET_STRING *ski = NULL;
    const unsigned char *pp = p->cert.der;
    X509 *x = d2i_X509(NULL, &pp, (long)p->cert.der_len);
    ski = X509_get0_subject_key_id(x);
    assert_memory_equal(c->ski, ASN1_STRING_get0_data(ski), 8);
    X509_free(x);
}


/* GBCS: the answer to a non-critical (unsigned) command is MACed for its recipient and
 * not signed; the answer to a critical (signed) command and every alert are signed and
 * not wrapped. As every RTDS response and alert is. */
static void test_own_device_cs02a_from_acb_answered_maced_not_signed(void **state)
{
    own_fx *f = *state;
    new_device(f);
    static const uint8_t body[] = {0x30, 0x11, 0x30, 0x07, 0x02, 0x01, 0x04, 0x03, 0x02, 0x03, 0x08,
                                   0x30, 0x06, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03};
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    command(f, -1, 7, SMKI_MC_CS02A, body, sizeof body, &m, &n); /* unsigned, from the ACB */
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_ACCEPTED);
    assert_int_equal(r.role, SMKI_ROLE_ACB);
    assert_false(r.out_signed);
    assert_true(r.out_maced);
    smki_gbcs_msg out;
    assert_ok(smki_gbcs_parse(r.out, r.out_len, &out));
    assert_int_equal(out.gsa.sig_state, SMKI_GBCS_SIG_ABSENT);
    assert_int_equal(out.gsa.cra, SMKI_GBCS_CRA_RESPONSE);
    assert_int_equal(out.gsa.counter, 7);
    assert_memory_equal(out.gsa.recipient, f->p[P_ACB_KA].eui.b, 8);
    smki_key *acb = NULL;
    assert_ok(smki_key_open(f->p[P_ACB_KA].key_ref, NULL, &acb));
    assert_true(response_mac_ok(acb, f->d->ka_pub, r.out, r.out_len));
    smki_key_free(acb);
    smki_rx_result_clear(&r);
    free(m);
}

static void test_own_device_answers_signed_command_and_alerts_signed_not_maced(void **state)
{
    own_fx *f = *state;
    new_device(f);
    static const uint8_t body[] = {0x01, 0x02};
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    smki_key *ds = NULL;
    assert_ok(smki_dev_own_key(f->d, 0, &ds));
    command(f, P_SUPA, 30, SMKI_MC_ECS01A, body, sizeof body, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_ACCEPTED);
    assert_true(r.out_signed);
    assert_false(r.out_maced);
    smki_gbcs_msg out;
    assert_ok(smki_gbcs_parse(r.out, r.out_len, &out));
    assert_int_equal(out.kind, SMKI_GBCS_SIGNING);
    assert_int_equal(out.gsa.cra, SMKI_GBCS_CRA_RESPONSE);
    assert_int_equal(out.gsa.counter, 30);
    assert_memory_equal(out.gsa.recipient, f->p[P_SUPA].eui.b, 8);
    assert_ok(smki_gbcs_verify_signature(&out, smki_key_public(ds)));
    smki_rx_result_clear(&r);
    /* The same command again: refused, and the alert is signed, not wrapped. */
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_REPLAY);
    assert_true(r.out_is_alert);
    assert_true(r.out_signed);
    assert_false(r.out_maced);
    assert_ok(smki_gbcs_parse(r.out, r.out_len, &out));
    assert_int_equal(out.kind, SMKI_GBCS_SIGNING);
    assert_int_equal(out.gsa.cra, SMKI_GBCS_CRA_ALERT);
    assert_ok(smki_gbcs_verify_signature(&out, smki_key_public(ds)));
    smki_rx_result_clear(&r);
    free(m);
}


/* The KA key of CS02c signs its own CSR at birth (the PKCS#10 proof of possession) and
 * is refused every signature after; the CA issues the CSR as a device KA certificate. */
static void test_own_device_cs02c_for_ka_returns_csr_the_ca_issues(void **state)
{
    own_fx *f = *state;
    new_device(f);
    static const uint8_t body[] = {0x30, 0x04, 0x03, 0x02, 0x03, 0x08};
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    command(f, P_SUPA, 21, SMKI_MC_CS02C, body, sizeof body, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_ACCEPTED);
    assert_string_equal(r.action, "cs02c-csr");
    smki_gbcs_cmd resp;
    assert_ok(smki_gbcs_cmd_parse(r.out, r.out_len, &resp));
    smki_csr *csr = NULL;
    assert_ok(smki_csr_parse(resp.gs.content, resp.gs.content_len, &csr)); /* PoP verified */
    assert_int_equal(csr->usage, SMKI_USAGE_KA);
    assert_true(csr->is_subject_empty);
    assert_true(csr->has_hw_module_name);
    assert_memory_equal(csr->hw_serial.b, f->eui.b, 8);
    assert_ok(smki_csr_check_request(csr, 1, &f->eui, SMKI_USAGE_KA));
    assert_fails(smki_csr_check_request(csr, 1, &f->eui, SMKI_USAGE_DS), SMKI_E_REFUSED, "");
    /* The proof of possession is real: one changed signature octet is refused. */
    uint8_t *bad = malloc(resp.gs.content_len);
    memcpy(bad, resp.gs.content, resp.gs.content_len);
    bad[resp.gs.content_len - 3] ^= 0x01;
    smki_csr *never = NULL;
    int rc = smki_csr_parse(bad, resp.gs.content_len, &never);
    assert_true(rc == SMKI_E_VERIFY || rc == SMKI_E_INPUT);
    assert_null(never);
    free(bad);
    /* The new (pending) key is the CSR's, derives, and may not sign any more. */
    smki_device *d = NULL;
    assert_ok(smki_device_open(f->s, &f->eui, &f->hsm, &d));
    assert_non_null(strstr(d->rec.pending_ref, "-ka-21"));
    smki_key *k = NULL;
    assert_ok(smki_key_open(d->rec.pending_ref, &f->hsm, &k));
    assert_int_equal(EVP_PKEY_eq(smki_key_public(k), csr->key), 1);
    uint8_t sig[SMKI_SIG_MAX], z[32];
    size_t sl = sizeof sig;
    assert_fails(smki_key_sign(k, resp.gs.content, resp.gs.content_len, SMKI_SIG_DER, sig, &sl), SMKI_E_REFUSED,
                 "may not sign");
    assert_ok(smki_key_ecdh(k, f->d->ka_pub, z));
    smki_key_free(k);
    smki_device_free(d);
    smki_ca_issuer *dca = NULL;
    smki_cert cert;
    assert_ok(smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DEVICE, NULL, &dca));
    smki_issue_req q = {csr, SMKI_PROFILE_DEVICE, -1, &f->eui, NULL, 0, 0};
    assert_ok(smki_ca_build(dca, &q, &cert));
    assert_int_equal(cert.usage, SMKI_USAGE_KA);
    assert_true(cert.has_eui);
    assert_memory_equal(cert.eui.b, f->eui.b, 8);
    smki_ca_issuer_free(dca);
    smki_csr_free(csr);
    smki_rx_result_clear(&r);
    free(m);
}

/* A keyUsage that is neither DS nor KA gets the RTDS error response INTEGER 3. */
static void test_own_device_cs02c_for_other_key_usage_answers_error_3_as_rtds(void **state)
{
    own_fx *f = *state;
    new_device(f);
    static const uint8_t body[] = {0x30, 0x04, 0x03, 0x02, 0x02, 0x04};
    static const uint8_t err3[] = {0x02, 0x01, 0x03};
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    command(f, P_SUPA, 21, SMKI_MC_CS02C, body, sizeof body, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_COMMAND_FAILED);
    smki_gbcs_cmd resp;
    assert_ok(smki_gbcs_cmd_parse(r.out, r.out_len, &resp));
    assert_int_equal(resp.gs.content_len, sizeof err3);
    assert_memory_equal(resp.gs.content, err3, sizeof err3);
    size_t rl = 0;
    uint8_t *rtds = read_hex(RTDS "/6.17_CS02c/CS02c_6.17_ERROR_RESPONSE_GBCS.HEX", &rl);
    smki_gbcs_cmd theirs;
    assert_ok(smki_gbcs_cmd_parse(rtds, rl, &theirs));
    assert_int_equal(theirs.gs.content_len, sizeof err3);
    assert_memory_equal(theirs.gs.content, err3, sizeof err3);
    free(rtds);
    smki_rx_result_clear(&r);
    free(m);
}

/* device create hands out the KA key's CSR (its only signature) and the DS key's; the KA key then only derives. */
static void test_own_device_create_hands_out_the_ka_and_ds_csrs_and_the_ka_key_cannot_sign(void **state)
{
    own_fx *f = *state;
    smki_eui64_t eui;
    assert_ok(smki_eui64_parse("00-DB-12-34-56-78-7F-01", &eui));
    uint8_t *der = NULL, *ds_der = NULL;
    size_t len = 0, ds_len = 0;
    smki_device_keys_opts ko = {"smki-dev", &f->hsm, &der, &len, &ds_der, &ds_len};
    assert_ok(smki_device_create(f->s, &eui, &ko));
    assert_non_null(der);
    smki_csr *csr = NULL, *ds_csr = NULL;
    assert_ok(smki_csr_parse(der, len, &csr));
    assert_ok(smki_csr_check_request(csr, 1, &eui, SMKI_USAGE_KA));
    /* The DS key's CSR comes with it, for the same device, signed by its DS key. */
    assert_non_null(ds_der);
    assert_ok(smki_csr_parse(ds_der, ds_len, &ds_csr));
    assert_ok(smki_csr_check_request(ds_csr, 1, &eui, SMKI_USAGE_DS));
    assert_int_equal(EVP_PKEY_eq(ds_csr->key, csr->key), 0);
    smki_csr_free(ds_csr);
    free(ds_der);
    smki_device *d = NULL;
    assert_ok(smki_device_open(f->s, &eui, &f->hsm, &d));
    smki_key *ka = NULL;
    assert_ok(smki_dev_own_key(d, 1, &ka));
    assert_int_equal(EVP_PKEY_eq(smki_key_public(ka), csr->key), 1);
    uint8_t sig[SMKI_SIG_MAX];
    size_t sl = sizeof sig;
    assert_fails(smki_key_sign(ka, der, len, SMKI_SIG_DER, sig, &sl), SMKI_E_REFUSED, "may not sign");
    smki_device_free(d);
    smki_csr_free(csr);
    free(der);
}

/* The ACB side with the codec (smki_gbcs_sign, smki_gbcs_wrap): the device accepts what
 * the codec wraps for its KA key, and the codec verifies the MAC of the device's
 * response (smki_gbcs_verify_mac with the ACB's KA key and the device's KA key). */
static void test_own_device_interoperates_with_the_codec_both_ways(void **state)
{
    own_fx *f = *state;
    new_device(f);
    smki_key *sup = NULL, *acb = NULL;
    uint8_t *pre = NULL, *signed_gs = NULL, *cmd = NULL;
    size_t pre_len = 0, signed_len = 0, cmd_len = 0;
    smki_rx_result r;
    assert_ok(smki_key_open(f->p[P_SUPA].key_ref, NULL, &sup));
    assert_ok(smki_key_open(f->p[P_ACB_KA].key_ref, NULL, &acb));
    /* The DCC's pre-command (unsigned 00), signed by the supplier with the codec. */
    assert_ok(smki_gbcs_command_build(NULL, NULL, NULL, &f->p[P_SUPA].eui, &f->eui, 3, SMKI_MC_ECS01A, ECS01A_BODY,
                                      sizeof ECS01A_BODY, &pre, &pre_len));
    assert_ok(smki_gbcs_sign(sup, pre, pre_len, &signed_gs, &signed_len));
    assert_ok(smki_gbcs_wrap(signed_gs, signed_len, acb, f->d->ka_pub, 0, &cmd, &cmd_len));
    assert_int_equal(own_rx(f, cmd, cmd_len, &r), SMKI_RX_ACCEPTED);
    assert_string_equal(r.mac_check, "device-ka");
    /* The device's response (the supplier has no KA cell here): signed, not wrapped; the
     * codec checks its signature with the device's DS key. */
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(r.out, r.out_len, &m));
    EVP_PKEY *dpub = NULL;
    assert_ok(smki_key_public_load(f->d->rec.ds_ref, &f->hsm, &dpub));
    assert_ok(smki_gbcs_verify_signature(&m, dpub));
    EVP_PKEY_free(dpub);
    smki_rx_result_clear(&r);
    /* A response to the ACB (CS02a) is MACed: the codec verifies that MAC. */
    static const uint8_t body[] = {0x30, 0x11, 0x30, 0x07, 0x02, 0x01, 0x04, 0x03, 0x02, 0x03, 0x08,
                                   0x30, 0x06, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03};
    uint8_t *m2 = NULL;
    size_t n2 = 0;
    command(f, -1, 9, SMKI_MC_CS02A, body, sizeof body, &m2, &n2);
    assert_int_equal(own_rx(f, m2, n2, &r), SMKI_RX_ACCEPTED);
    assert_ok(smki_gbcs_parse(r.out, r.out_len, &m));
    assert_int_equal(m.kind, SMKI_GBCS_CIPHERING);
    assert_ok(smki_gbcs_verify_mac(&m, acb, f->d->ka_pub));
    smki_rx_result_clear(&r);
    free(m2);
    free(pre);
    free(signed_gs);
    free(cmd);
    smki_key_free(sup);
    smki_key_free(acb);
}

static void test_own_device_every_replacement_mode(void **state)
{
    own_fx *f = *state;
    new_device(f);
    static const struct {
        uint8_t mode;
        int signer, cert;
        const smki_ta_cell_id *target;
    } cases[] = {
        {2, P_SUPA, P_SUPB, &SUP_DS},  {3, P_NO, P_NO2, &NO_DS},     {4, P_ACB_DS, P_ACB2, &ACB_DS},
        {5, P_WAN, P_WAN2, &WAN_DS},   {6, P_COS, P_COS2, &COS_DS},  {7, P_COS, P_SUPB, &SUP_DS},
        {8, P_REC, P_NO2, &NO_DS},     {9, P_REC, P_SUPB, &SUP_DS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smki_rx_result r;
        new_device(f);
        int cert = cases[i].cert;
        if (cs02b(f, cases[i].signer, cases[i].mode, 100, &cert, cases[i].target, 1, &r) != SMKI_RX_ACCEPTED)
            fail_msg("mode %u: %s %s", cases[i].mode, smki_rx_verdict_name(r.verdict), r.reason);
        assert_int_equal(r.applied, 1);
        assert_int_equal(r.outcomes[0].status, SMKI_CS02B_SUCCESS);
        smki_rx_result_clear(&r);
        assert_cell_holds(f, cases[i].target, &f->p[cases[i].cert]);
        /* The authoriser's floor is the command's counter: the same counter again is a replay. */
        assert_int_equal(f->d->floors[f->p[cases[i].signer].cert.role], 100);
    }
}

static void test_own_device_cs02b_refusals_apply_nothing(void **state)
{
    own_fx *f = *state;
    new_device(f);
    smki_rx_result r;
    int certs[2];
    smki_ta_cell_id targets[2];
    /* A certificate of another hierarchy: noTrustAnchor, nothing applied. */
    certs[0] = P_ALIEN;
    targets[0] = SUP_DS;
    assert_int_equal(cs02b(f, P_SUPA, 2, 10, certs, targets, 1, &r), SMKI_RX_COMMAND_FAILED);
    assert_int_equal(r.outcomes[0].status, SMKI_CS02B_NO_TRUST_ANCHOR);
    smki_rx_result_clear(&r);
    assert_cell_holds(f, &SUP_DS, &f->p[P_SUPA]);
    /* Partial failure: a good replacement and one whose certificate's role does not fit
     * its target cell (badCertificate): neither applied. */
    certs[0] = P_SUPB;
    targets[0] = SUP_DS;
    certs[1] = P_NO2;
    targets[1] = (smki_ta_cell_id){SMKI_ROLE_SUPPLIER, SMKI_KU_KEY_AGREEMENT, 0};
    /* The supplier KA cell must exist for the role check to be what fails. */
    party ka;
    make_party(f->dir, &f->db, "supka", SMKI_ROLE_SUPPLIER, "90B3D51F30010000", SMKI_KU_KEY_AGREEMENT, &ka);
    load_cell_of(f, &f->eui, &ka);
    smki_device_free(f->d);
    assert_ok(smki_device_open(f->s, &f->eui, &f->hsm, &f->d));
    assert_int_equal(cs02b(f, P_SUPA, 2, 11, certs, targets, 2, &r), SMKI_RX_COMMAND_FAILED);
    assert_int_equal(r.outcomes[0].status, SMKI_CS02B_SUCCESS);
    assert_int_equal(r.outcomes[1].status, SMKI_CS02B_BAD_CERTIFICATE);
    assert_int_equal(r.applied, 0);
    smki_rx_result_clear(&r);
    assert_cell_holds(f, &SUP_DS, &f->p[P_SUPA]);
    /* A cell the device does not have: trustAnchorNotFound. */
    certs[0] = P_SUPB;
    targets[0] = (smki_ta_cell_id){SMKI_ROLE_SUPPLIER, SMKI_KU_KEY_AGREEMENT, SMKI_CELL_PREPAYMENT};
    assert_int_equal(cs02b(f, P_SUPA, 2, 12, certs, targets, 1, &r), SMKI_RX_COMMAND_FAILED);
    assert_int_equal(r.outcomes[0].status, SMKI_CS02B_TRUST_ANCHOR_NOT_FOUND);
    smki_rx_result_clear(&r);
    /* Target cell of a role the mode may not replace: refused whole (A4). */
    certs[0] = P_COS2;
    targets[0] = COS_DS;
    assert_int_equal(cs02b(f, P_SUPA, 2, 13, certs, targets, 1, &r), SMKI_RX_NO_PERMISSION);
    assert_int_equal(r.alert_code, f->o.alert_a4);
    smki_rx_result_clear(&r);
    /* Recovery may not replace the root (anyExceptAbnormalRootByRecovery). */
    certs[0] = P_SUPB;
    targets[0] = ROOT_CELL;
    assert_int_equal(cs02b(f, P_REC, 8, 14, certs, targets, 1, &r), SMKI_RX_NO_PERMISSION);
    smki_rx_result_clear(&r);
    /* The wrong role signs: a supplier cannot authorise mode 7 (the CoS party's). */
    certs[0] = P_SUPB;
    targets[0] = SUP_DS;
    assert_int_equal(cs02b(f, P_SUPA, 7, 15, certs, targets, 1, &r), SMKI_RX_NO_CELL);
    smki_rx_result_clear(&r);
    assert_cell_holds(f, &SUP_DS, &f->p[P_SUPA]);
}

static void test_own_device_cs02c_makes_token_key_and_csr_the_ca_accepts(void **state)
{
    own_fx *f = *state;
    new_device(f);
    static const uint8_t body[] = {0x30, 0x04, 0x03, 0x02, 0x07, 0x80};
    uint8_t *m = NULL;
    size_t n = 0;
    smki_rx_result r;
    command(f, P_SUPA, 20, SMKI_MC_CS02C, body, sizeof body, &m, &n);
    assert_int_equal(own_rx(f, m, n, &r), SMKI_RX_ACCEPTED);
    smki_gbcs_cmd resp;
    assert_ok(smki_gbcs_cmd_parse(r.out, r.out_len, &resp));
    smki_csr *csr = NULL;
    assert_ok(smki_csr_parse(resp.gs.content, resp.gs.content_len, &csr));
    assert_ok(smki_csr_check_request(csr, 1, &f->eui, SMKI_USAGE_DS));
    /* Shaped like the real device CSR: the same CertificationRequestInfo octet for octet
     * but for the key (SPKI) and the Device ID (the last 8 octets). */
    size_t rl = 0;
    uint8_t *real = test_read_shared("vectors/gbcs/csr/00db1234567890a0-ds.csr.der", &rl);
    smki_cursor_t a = smki_cursor(resp.gs.content, resp.gs.content_len), b = smki_cursor(real, rl), av, bv;
    const uint8_t *at = NULL, *bt = NULL;
    size_t an = 0, bn = 0;
    assert_ok(smki_gbcs_der_expect(&a, 0x30, "ours", &av));
    assert_ok(smki_gbcs_der_expect(&b, 0x30, "real", &bv));
    assert_ok(smki_gbcs_der_take_tlv(&av, &at, &an));
    assert_ok(smki_gbcs_der_take_tlv(&bv, &bt, &bn));
    assert_int_equal(an, bn);
    enum { SPKI_AT = 3 + 3 + 2, SPKI_LEN = 91 };
    assert_memory_equal(at, bt, SPKI_AT);
    assert_memory_equal(at + SPKI_AT + SPKI_LEN, bt + SPKI_AT + SPKI_LEN, an - SPKI_AT - SPKI_LEN - 8);
    assert_memory_equal(at + an - 8, f->eui.b, 8);
    free(real);
    smki_ca_issuer *dca = NULL;
    smki_cert cert;
    assert_ok(smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DEVICE, NULL, &dca));
    smki_issue_req q = {csr, SMKI_PROFILE_DEVICE, -1, &f->eui, NULL, 0, 0};
    assert_ok(smki_ca_build(dca, &q, &cert));
    assert_true(cert.has_eui);
    assert_memory_equal(cert.eui.b, f->eui.b, 8);
    smki_ca_issuer_free(dca);
    smki_csr_free(csr);
    smki_rx_result_clear(&r);
    free(m);
}

/* [device] alert codes come from smki.conf; unset keys keep the defaults, and a malformed
 * code is refused by name instead of silently becoming the default. */
static void test_rx_opts_conf_reads_alert_codes_and_refuses_malformed_ones(void **state)
{
    (void)state;
    static const char good[] = "[device]\nalert_a2 = 8f01\nalert_replay = 1\n";
    smki_conf *conf = NULL;
    smki_rx_opts o;
    smki_rx_opts_default(&o);
    uint16_t a3 = o.alert_a3, a4 = o.alert_a4;
    assert_int_equal(smki_conf_parse((const uint8_t *)good, sizeof good - 1, "good.conf", &conf), 0);
    assert_int_equal(smki_rx_opts_conf(&o, conf), 0);
    assert_int_equal(o.alert_a2, 0x8F01);
    assert_int_equal(o.alert_replay, 0x0001);
    assert_int_equal(o.alert_a3, a3);
    assert_int_equal(o.alert_a4, a4);
    smki_conf_free(conf);
    static const char *const bad[] = {"[device]\nalert_a3 = 0\n", "[device]\nalert_a3 = 12345\n",
                                      "[device]\nalert_a3 = 8G1C\n", "[device]\nalert_a3 = -1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        conf = NULL;
        smki_rx_opts_default(&o);
        assert_int_equal(smki_conf_parse((const uint8_t *)bad[i], strlen(bad[i]), "bad.conf", &conf), 0);
        assert_int_equal(smki_rx_opts_conf(&o, conf), SMKI_E_USAGE);
        assert_non_null(strstr(smki_error_msg(), "[device] alert_a3"));
        assert_int_equal(o.alert_a3, a3);
        smki_conf_free(conf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rx_opts_conf_reads_alert_codes_and_refuses_malformed_ones),
        cmocka_unit_test(test_rtds_supplier_by_supplier_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_no_by_no_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_transcos_by_transcos_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_supplier_by_transcos_accepted_with_rtds_outcomes),
        cmocka_unit_test(test_rtds_change_of_supplier_refuses_old_supplier),
        cmocka_unit_test(test_rtds_error_command_reports_no_trust_anchor_and_applies_nothing),
        cmocka_unit_test(test_rtds_every_single_octet_change_is_refused),
        cmocka_unit_test(test_rtds_counter_at_or_below_floor_is_refused_as_replay),
        cmocka_unit_test(test_rtds_wrong_signer_is_refused),
        cmocka_unit_test(test_rtds_all_cs02b_commands_refuse_flips_replays_and_wrong_signers),
        cmocka_unit_test(test_rtds_cs02a_lists_cells),
        cmocka_unit_test(test_rtds_future_dated_cs02b_runs_at_its_time_with_the_rtds_alert),
        cmocka_unit_test(test_rtds_cs02a_response_mac_layout_verifies_from_the_acb_side),
        cmocka_unit_test(test_rtds_not_recipient_gives_a3),
        cmocka_unit_test(test_rtds_model_refuses_default_mac_mode),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_own_device_accepts_and_signs_its_response_mac_checked_with_token_key),
        cmocka_unit_test(test_own_device_refuses_bad_mac_unwrapped_and_foreign_mac),
        cmocka_unit_test(test_own_device_refuses_rtds_replay_mode),
        cmocka_unit_test(test_own_device_refuses_other_recipient_with_a3),
        cmocka_unit_test(test_own_device_refuses_signature_by_another_key_of_the_role),
        cmocka_unit_test(test_own_device_refuses_command_the_role_may_not_send_with_a4),
        cmocka_unit_test(test_own_device_cs02a_from_acb_answered_maced_not_signed),
        cmocka_unit_test(test_own_device_answers_signed_command_and_alerts_signed_not_maced),
        cmocka_unit_test(test_own_device_cs02c_for_ka_returns_csr_the_ca_issues),
        cmocka_unit_test(test_own_device_cs02c_for_other_key_usage_answers_error_3_as_rtds),
        cmocka_unit_test(test_own_device_create_hands_out_the_ka_and_ds_csrs_and_the_ka_key_cannot_sign),
        cmocka_unit_test(test_own_device_interoperates_with_the_codec_both_ways),
        cmocka_unit_test(test_own_device_every_replacement_mode),
        cmocka_unit_test(test_own_device_cs02b_refusals_apply_nothing),
        cmocka_unit_test(test_own_device_cs02c_makes_token_key_and_csr_the_ca_accepts),
    };
    int failed = cmocka_run_group_tests_name("rtds", tests, NULL, NULL);
    return failed + cmocka_run_group_tests_name("own-keys", own, own_setup, own_teardown);
}
