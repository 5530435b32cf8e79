/* The device model's bytes: base's DER reader and writer as the device uses them, the
 * General Signing / General Ciphering layout of reference §5, and the CS02b command
 * content of reference §6. */
#include <stdlib.h>
#include <string.h>

#include "device_private.h"

/* ---- DER reader: base's, with BER's long length forms ------------------------------------
 * The device model reads lengths as smki_cur_ber_len does: a long form where the short
 * one fits (81 05, 82 00 CA) is taken, an indefinite one or more than four length octets
 * refused. The real RTDS responses in ../shared/vectors/gbcs carry such lengths (their
 * outer SEQUENCE is 82 00 CA for 202 octets): with DER's rule, test_device's RTDS
 * cases fail. It models what a device accepts; what smki writes is DER (base's writer). */
#define DR_LENGTHS SMKI_DER_BER_LENGTHS

/* Peek the next tag (0 at the end). */
static uint8_t dr_peek(const smki_cursor_t *c)
{
    int t = smki_der_peek(c);
    return t < 0 ? 0 : (uint8_t)t;
}

int smki_gbcs_der_tlv(smki_cursor_t *c, uint8_t *tag, smki_cursor_t *val)
{
    smki_der_tlv t;
    GUARD(smki_der_read(c, NULL, DR_LENGTHS, &t));
    *tag = t.tag;
    *val = t.body;
    return 0;
}

int smki_gbcs_der_expect(smki_cursor_t *c, uint8_t tag, const char *what, smki_cursor_t *val)
{
    smki_der_tlv t;
    GUARD(smki_der_expect(c, NULL, DR_LENGTHS, tag, what, &t));
    *val = t.body;
    return 0;
}

int smki_gbcs_der_uint(smki_cursor_t *val, const char *what, uint64_t *out)
{
    GUARD(smki_der_u64(val, what, out));
    smki_cur_skip(val, val->left);
    return 0;
}

int smki_gbcs_der_take_tlv(smki_cursor_t *c, const uint8_t **p, size_t *n)
{
    smki_der_tlv t;
    GUARD(smki_der_read(c, NULL, DR_LENGTHS, &t));
    *p = t.start;
    *n = t.total;
    return 0;
}

/* KeyUsage BIT STRING: unused-bits octet then the first octet (all GBCS cells need). */
static int dr_key_usage(smki_cursor_t *val, uint8_t *ku)
{
    uint8_t unused, first;
    ENSURE(val->left == 2, SMKI_E_INPUT, "cell keyUsage: BIT STRING of %zu octet(s), expected 2", val->left);
    GUARD(smki_cur_u8(val, &unused));
    GUARD(smki_cur_u8(val, &first));
    ENSURE(unused <= 7, SMKI_E_INPUT, "cell keyUsage: %u unused bits", unused);
    *ku = first;
    return 0;
}

int smki_gbcs_der_cell_id(smki_cursor_t *val, smki_ta_cell_id *out)
{
    smki_cursor_t v;
    uint64_t x;
    GUARD(smki_gbcs_der_expect(val, 0x02, "cell remotePartyRole", &v));
    GUARD(smki_gbcs_der_uint(&v, "cell remotePartyRole", &x));
    ENSURE(x <= 255, SMKI_E_INPUT, "cell remotePartyRole %llu", (unsigned long long)x);
    out->role = (uint8_t)x;
    GUARD(smki_gbcs_der_expect(val, 0x03, "cell keyUsage", &v));
    GUARD(dr_key_usage(&v, &out->key_usage));
    out->cell_usage = SMKI_CELL_MANAGEMENT;
    if (val->left) {
        GUARD(smki_gbcs_der_expect(val, 0x02, "cell cellUsage", &v));
        GUARD(smki_gbcs_der_uint(&v, "cell cellUsage", &x));
        ENSURE(x <= 1, SMKI_E_INPUT, "cell cellUsage %llu (management 0, prePaymentTopUp 1)", (unsigned long long)x);
        out->cell_usage = (uint8_t)x;
    }
    ENSURE(val->left == 0, SMKI_E_INPUT, "TrustAnchorCellIdentifier: %zu octet(s) left over", val->left);
    return 0;
}

/* ---- DER writer: base's, with a stack of open TLVs so that smki_gbcs_derw_end needs no mark -------- */

void smki_gbcs_derw_init(smki_gbcs_derw *w)
{
    memset(w, 0, sizeof *w);
    smki_writer_grow(&w->w);
}

void smki_gbcs_derw_free(smki_gbcs_derw *w)
{
    smki_wr_free(&w->w);
    memset(w, 0, sizeof *w);
}

void smki_gbcs_derw_raw(smki_gbcs_derw *w, const void *p, size_t n)
{
    smki_wr_raw(&w->w, p, n);
}

void smki_gbcs_derw_begin(smki_gbcs_derw *w, uint8_t tag)
{
    if (w->depth >= (int)(sizeof w->open / sizeof w->open[0])) {
        smki_wr_invalid(&w->w);
        return;
    }
    w->open[w->depth++] = smki_wr_der_begin(&w->w, tag);
}

void smki_gbcs_derw_end(smki_gbcs_derw *w)
{
    if (w->depth == 0) {
        smki_wr_invalid(&w->w);
        return;
    }
    smki_wr_der_end(&w->w, w->open[--w->depth]);
}

void smki_gbcs_derw_tlv(smki_gbcs_derw *w, uint8_t tag, const void *p, size_t n)
{
    smki_wr_der(&w->w, tag, p, n);
}

void smki_gbcs_derw_uint(smki_gbcs_derw *w, uint8_t tag, uint64_t v)
{
    smki_wr_der_u64(&w->w, tag, v);
}

void smki_gbcs_derw_key_usage(smki_gbcs_derw *w, uint8_t ku)
{
    uint8_t unused = 0;
    if (ku)
        while (!(ku & (1u << unused))) unused++;
    uint8_t b[2] = {unused, ku};
    smki_gbcs_derw_tlv(w, 0x03, b, 2);
}

void smki_gbcs_derw_cell_id(smki_gbcs_derw *w, const smki_ta_cell_id *id)
{
    smki_gbcs_derw_begin(w, 0x30);
    smki_gbcs_derw_uint(w, 0x02, id->role);
    smki_gbcs_derw_key_usage(w, id->key_usage);
    if (id->cell_usage != SMKI_CELL_MANAGEMENT) smki_gbcs_derw_uint(w, 0x02, id->cell_usage);
    smki_gbcs_derw_end(w);
}

int smki_gbcs_derw_finish(smki_gbcs_derw *w, uint8_t **out, size_t *len)
{
    int rc = smki_wr_finish(&w->w, "a device message", out, len);
    memset(w, 0, sizeof *w);
    return rc;
}

/* ---- General Signing and General Ciphering (reference §5) -------------------------------- */

/* The codec (smki_gbcs_parse) reads the bytes; this keeps the fields the device uses. */
static int fill_gs(const smki_gbcs_msg *m, smki_gbcs_gs *g)
{
    const smki_gbcs_signing *s = &m->gsa;
    memset(g, 0, sizeof *g);
    g->cra = s->cra;
    g->counter = s->counter;
    memcpy(g->originator, s->originator, 8);
    memcpy(g->recipient, s->recipient, 8);
    g->has_date = s->date_time != NULL;
    g->message_code = s->message_code;
    g->other_info = s->other_info;
    g->other_len = s->other_info_len;
    g->content = s->content;
    g->content_len = s->content_len;
    g->signed_part = m->data + s->signed_offset;
    g->signed_len = s->signed_len;
    g->has_signature = s->sig_state == SMKI_GBCS_SIG_PRESENT;
    g->sig_none = s->sig_state == SMKI_GBCS_SIG_NONE;
    g->signature = s->signature;
    g->apdu = m->data + s->offset;
    g->apdu_len = s->len;
    return 0;
}

int smki_gbcs_gs_parse(const uint8_t *data, size_t len, smki_gbcs_gs *g)
{
    smki_gbcs_msg m;
    GUARD(smki_gbcs_parse(data, len, &m));
    ENSURE(m.kind == SMKI_GBCS_SIGNING, SMKI_E_INPUT, "expected a General Signing APDU (DF), found %s",
           smki_gbcs_kind_name(m.kind));
    return fill_gs(&m, g);
}

int smki_gbcs_cmd_parse(const uint8_t *msg, size_t len, smki_gbcs_cmd *out)
{
    smki_gbcs_msg m;
    memset(out, 0, sizeof *out);
    GUARD(smki_gbcs_parse(msg, len, &m));
    ENSURE(m.kind != SMKI_GBCS_BLOCK, SMKI_E_INPUT, "General Block Transfer (DD 09) is not modelled by the device");
    GUARD(fill_gs(&m, &out->gs));
    if (m.kind == SMKI_GBCS_CIPHERING) {
        out->wrapped = 1;
        out->invocation = m.invocation_counter;
        out->mac = m.mac;
    }
    return 0;
}

int smki_gbcs_gs_build(smki_key *ds, uint8_t cra, uint64_t counter, const uint8_t originator[8], const uint8_t recipient[8],
                 uint16_t message_code, const uint8_t *content, size_t content_len, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    smki_gbcs_fields f;
    memset(&f, 0, sizeof f);
    f.cra = cra;
    f.counter = counter;
    f.originator = originator;
    f.recipient = recipient;
    f.message_code = message_code;
    f.content = content;
    f.content_len = content_len;
    f.sig_state = ds ? SMKI_GBCS_SIG_NONE : SMKI_GBCS_SIG_ABSENT; /* signed below, or 00 */
    uint8_t *pre = NULL;
    size_t pre_len = 0;
    GUARD(smki_gbcs_build_signing(&f, &pre, &pre_len));
    if (!ds) {
        *out = pre;
        *len = pre_len;
        return 0;
    }
    int rc = smki_gbcs_sign(ds, pre, pre_len, out, len);
    free(pre);
    return rc;
}

int smki_gbcs_command_build(smki_key *ds, smki_key *acb_ka, EVP_PKEY *device_ka, const smki_eui64_t *originator,
                            const smki_eui64_t *recipient, uint64_t counter, uint16_t message_code,
                            const uint8_t *content, size_t content_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    uint8_t *gs = NULL;
    size_t gs_len = 0;
    GUARD(smki_gbcs_gs_build(ds, 0x01, counter, originator->b, recipient->b, message_code, content, content_len, &gs,
                       &gs_len));
    if (!acb_ka) {
        *out = gs;
        *out_len = gs_len;
        return 0;
    }
    int rc = smki_gbcs_wrap(gs, gs_len, acb_ka, device_ka, 0, out, out_len);
    free(gs);
    return rc;
}

/* ---- CS02b (reference §6) ---------------------------------------------------------------- */

static int parse_control(smki_cursor_t *v, smki_gbcs_cs02b *q)
{
    smki_cursor_t x;
    uint64_t n;
    int has_seq = 0;
    q->time_checks = 1;
    GUARD(smki_gbcs_der_expect(v, 0x02, "credentialsReplacementMode", &x));
    GUARD(smki_gbcs_der_uint(&x, "credentialsReplacementMode", &n));
    ENSURE(n >= 2 && n <= 9, SMKI_E_INPUT, "credentialsReplacementMode %llu (2..9)", (unsigned long long)n);
    q->mode = (uint8_t)n;
    while (v->left) {
        uint8_t tag;
        GUARD(smki_gbcs_der_tlv(v, &tag, &x));
        switch (tag) {
        case 0x80: q->has_symmetric_key = 1; break;
        case 0x81:
            GUARD(smki_gbcs_der_uint(&x, "applyTimeBasedCPVChecks", &n));
            ENSURE(n <= 1, SMKI_E_INPUT, "applyTimeBasedCPVChecks %llu", (unsigned long long)n);
            q->time_checks = n == 0;
            break;
        case 0xA2:
            GUARD(smki_gbcs_der_cell_id(&x, &q->auth_cell));
            q->has_auth_cell = 1;
            break;
        case 0x83:
            GUARD(smki_gbcs_der_uint(&x, "authorisingRemotePartySeqNumber", &q->auth_seq));
            has_seq = 1;
            break;
        case 0x84:
            GUARD(smki_gbcs_der_uint(&x, "newRemotePartyFloorSeqNumber", &q->new_floor));
            q->has_new_floor = 1;
            break;
        case 0xA5: break; /* specialist floors: no specialist counters in this model */
        case 0xA6:
            while (x.left) {
                smki_cursor_t e, f;
                uint64_t role;
                ENSURE(q->nother < sizeof q->other / sizeof q->other[0], SMKI_E_INPUT,
                       "otherRemotePartySeqNumberChanges: more than %zu", sizeof q->other / sizeof q->other[0]);
                GUARD(smki_gbcs_der_expect(&x, 0x30, "otherRemotePartySeqNumberChange", &e));
                GUARD(smki_gbcs_der_expect(&e, 0x02, "remotePartyRole", &f));
                GUARD(smki_gbcs_der_uint(&f, "remotePartyRole", &role));
                ENSURE(role <= 255, SMKI_E_INPUT, "remotePartyRole %llu", (unsigned long long)role);
                GUARD(smki_gbcs_der_expect(&e, 0x02, "floorSeqNumber", &f));
                GUARD(smki_gbcs_der_uint(&f, "floorSeqNumber", &q->other[q->nother].floor));
                q->other[q->nother++].role = (uint8_t)role;
            }
            break;
        default: return SMKI_FAIL(SMKI_E_INPUT, "authorisingRemotePartyControl: unknown field tag 0x%02x", tag);
        }
    }
    ENSURE(has_seq, SMKI_E_INPUT, "authorisingRemotePartySeqNumber [3] is missing");
    return 0;
}

/* GeneralizedTime as DER has it for these fields: exactly YYYYMMDDHHMMSSZ (RFC 5280
 * 4.1.2.5.2), every digit checked, the date a real one. */
static int dr_generalized_time(const smki_cursor_t *t, time_t *out)
{
    ENSURE(t->left == 15 && t->p[14] == 'Z', SMKI_E_INPUT, "executionDateTime: not YYYYMMDDHHMMSSZ (%zu octets)",
           t->left);
    int v[6], widths[6] = {4, 2, 2, 2, 2, 2};
    size_t at = 0;
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < widths[i]; k++, at++) {
            ENSURE(t->p[at] >= '0' && t->p[at] <= '9', SMKI_E_INPUT, "executionDateTime: a non-digit at %zu", at);
            v[i] = v[i] * 10 + (t->p[at] - '0');
        }
    }
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    ENSURE(v[0] >= 1970 && v[1] >= 1 && v[1] <= 12 && v[2] >= 1 && v[2] <= mdays[v[1] - 1] && v[3] <= 23 &&
               v[4] <= 59 && v[5] <= 59 &&
               !(v[1] == 2 && v[2] == 29 && !(v[0] % 4 == 0 && (v[0] % 100 != 0 || v[0] % 400 == 0))),
           SMKI_E_INPUT, "executionDateTime: %04d-%02d-%02d %02d:%02d:%02d is not a date and time", v[0], v[1], v[2],
           v[3], v[4], v[5]);
    struct tm tm = {.tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2], .tm_hour = v[3], .tm_min = v[4],
                    .tm_sec = v[5]};
    *out = timegm(&tm);
    return 0;
}

int smki_gbcs_cs02b_parse(const uint8_t *content, size_t len, smki_gbcs_cs02b *q)
{
    smki_cursor_t c = smki_cursor(content, len), top, v, list;
    memset(q, 0, sizeof *q);
    GUARD(smki_gbcs_der_expect(&c, 0x30, "CS02b content", &top));
    ENSURE(c.left == 0, SMKI_E_INPUT, "CS02b: %zu octet(s) after the content", c.left);
    GUARD(smki_gbcs_der_expect(&top, 0x30, "authorisingRemotePartyControl", &v));
    GUARD(parse_control(&v, q));
    GUARD(smki_gbcs_der_expect(&top, 0x30, "replacements", &list));
    while (list.left) {
        smki_cursor_t e, cid;
        ENSURE(q->nrepl < SMKI_CS02B_MAX_REPLACEMENTS, SMKI_E_INPUT, "CS02b: more than %d replacements",
               SMKI_CS02B_MAX_REPLACEMENTS);
        GUARD(smki_gbcs_der_expect(&list, 0x30, "replacement", &e));
        ENSURE(dr_peek(&e) == 0x30, SMKI_E_INPUT, "replacementCertificate: not a SEQUENCE");
        GUARD(smki_gbcs_der_take_tlv(&e, &q->repl[q->nrepl].cert, &q->repl[q->nrepl].len));
        GUARD(smki_gbcs_der_expect(&e, 0x30, "targetTrustAnchorCell", &cid));
        GUARD(smki_gbcs_der_cell_id(&cid, &q->repl[q->nrepl].target));
        ENSURE(e.left == 0, SMKI_E_INPUT, "replacement: %zu octet(s) left over", e.left);
        q->nrepl++;
    }
    ENSURE(q->nrepl > 0, SMKI_E_INPUT, "CS02b: no replacements");
    GUARD(smki_gbcs_der_expect(&top, 0x30, "certificationPathCertificates", &list));
    while (list.left) {
        ENSURE(q->npath < sizeof q->path / sizeof q->path[0], SMKI_E_INPUT, "CS02b: certification path too long");
        ENSURE(dr_peek(&list) == 0x30, SMKI_E_INPUT, "certificationPathCertificates: not a certificate");
        GUARD(smki_gbcs_der_take_tlv(&list, &q->path[q->npath].cert, &q->path[q->npath].len));
        q->npath++;
    }
    if (top.left) {
        smki_cursor_t t;
        GUARD(smki_gbcs_der_expect(&top, 0x18, "executionDateTime", &t));
        GUARD(dr_generalized_time(&t, &q->execution_time));
        q->has_execution_time = 1;
    }
    ENSURE(top.left == 0, SMKI_E_INPUT, "CS02b: %zu octet(s) left over", top.left);
    return 0;
}

int smki_cs02b_build(const smki_cs02b_request *q, uint8_t **der, size_t *len)
{
    *der = NULL;
    *len = 0;
    smki_gbcs_derw w;
    smki_gbcs_derw_init(&w);
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_uint(&w, 0x02, q->mode);
    if (q->symmetric_key) smki_gbcs_derw_tlv(&w, 0x80, q->symmetric_key, q->symmetric_len);
    smki_gbcs_derw_uint(&w, 0x81, q->apply_time_checks ? 0 : 1);
    if (q->has_auth_cell) {
        smki_gbcs_derw_begin(&w, 0xA2);
        smki_gbcs_derw_uint(&w, 0x02, q->auth_cell.role);
        smki_gbcs_derw_key_usage(&w, q->auth_cell.key_usage);
        if (q->auth_cell.cell_usage) smki_gbcs_derw_uint(&w, 0x02, q->auth_cell.cell_usage);
        smki_gbcs_derw_end(&w);
    }
    smki_gbcs_derw_uint(&w, 0x83, q->auth_seq);
    if (q->has_new_floor) smki_gbcs_derw_uint(&w, 0x84, q->new_floor);
    if (q->nother) {
        smki_gbcs_derw_begin(&w, 0xA6);
        for (size_t i = 0; i < q->nother; i++) {
            smki_gbcs_derw_begin(&w, 0x30);
            smki_gbcs_derw_uint(&w, 0x02, q->other[i].role);
            smki_gbcs_derw_uint(&w, 0x02, q->other[i].floor);
            smki_gbcs_derw_end(&w);
        }
        smki_gbcs_derw_end(&w);
    }
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_begin(&w, 0x30);
    for (size_t i = 0; i < q->nrepl; i++) {
        smki_gbcs_derw_begin(&w, 0x30);
        smki_gbcs_derw_raw(&w, q->repl[i].cert, q->repl[i].len);
        smki_gbcs_derw_cell_id(&w, &q->repl[i].target);
        smki_gbcs_derw_end(&w);
    }
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_begin(&w, 0x30);
    for (size_t i = 0; i < q->npath; i++) smki_gbcs_derw_raw(&w, q->path[i].cert, q->path[i].len);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    return smki_gbcs_derw_finish(&w, der, len);
}
