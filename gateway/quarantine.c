/* Quarantine: messages that reached an anomaly threshold are held in the store, not
 * dropped (reference §7), until an operator releases them (a command MACed and emitted,
 * counter recorded; a response or alert forwarded as received) or rejects them with a
 * reason.
 * gw.quar: id(8) -> ver(1) state(1) at(8) counter(8) code(2) originator(8) target(8)
 *                   reason(1+n) detail(2+n) note(2+n) msg(4+n) */
#include <stdlib.h>
#include <string.h>

#include "gateway_private.h"

#define QREC_V1 1
#define QMSG_MAX (1u << 20)

void smki_gwq_clear(smki_gwq_record *r)
{
    if (!r) return;
    free(r->msg);
    r->msg = NULL;
    r->msg_len = 0;
}

int smki_gw_quarantine_put(smki_txn *t, const gw_dbs *d, const smki_gwq_record *q)
{
    size_t rl = strlen(q->reason), dl = strlen(q->detail), nl = strlen(q->note);
    size_t len = 2 + 8 + 8 + 2 + 8 + 8 + 1 + rl + 2 + dl + 2 + nl + 4 + q->msg_len;
    uint8_t *b = malloc(len);
    ENSURE(b, SMKI_E_NOMEM, "quarantine record");
    size_t o = 0;
    b[o++] = QREC_V1;
    b[o++] = (uint8_t)q->state;
    smki_put_be64(b + o, (uint64_t)q->at), o += 8;
    smki_put_be64(b + o, q->counter), o += 8;
    smki_put_be16(b + o, q->code);
    o += 2;
    memcpy(b + o, q->originator.b, 8), o += 8;
    memcpy(b + o, q->target.b, 8), o += 8;
    b[o++] = (uint8_t)rl;
    memcpy(b + o, q->reason, rl), o += rl;
    smki_put_be16(b + o, (uint16_t)dl), o += 2;
    memcpy(b + o, q->detail, dl), o += dl;
    smki_put_be16(b + o, (uint16_t)nl), o += 2;
    memcpy(b + o, q->note, nl), o += nl;
    smki_put_be32(b + o, (uint32_t)q->msg_len), o += 4;
    memcpy(b + o, q->msg, q->msg_len), o += q->msg_len;
    uint8_t k[8];
    smki_put_be64(k, q->id);
    int rc = smki_txn_put(t, d->quar, k, 8, b, o, 0);
    free(b);
    return rc;
}

static int take_str(smki_cursor_t *c, size_t lenlen, char *out, size_t cap)
{
    size_t n;
    if (lenlen == 1) {
        uint8_t v;
        GUARD(smki_cur_u8(c, &v));
        n = v;
    } else {
        uint16_t v;
        GUARD(smki_cur_u16be(c, &v));
        n = v;
    }
    ENSURE(n < cap, SMKI_E_CORRUPT, "quarantine record: string of %zu octets", n);
    GUARD(smki_cur_copy(c, out, n));
    out[n] = '\0';
    return 0;
}

static int decode(const void *key, const void *val, size_t vlen, smki_gwq_record *q)
{
    memset(q, 0, sizeof *q);
    q->id = smki_get_be64(key);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t ver, st;
    uint64_t at;
    uint32_t ml;
    int rc = 0;
    if (smki_cur_u8(&c, &ver) < 0 || ver != QREC_V1 || smki_cur_u8(&c, &st) < 0 || smki_cur_u64be(&c, &at) < 0 ||
        smki_cur_u64be(&c, &q->counter) < 0 || smki_cur_u16be(&c, &q->code) < 0 ||
        smki_cur_copy(&c, q->originator.b, 8) < 0 || smki_cur_copy(&c, q->target.b, 8) < 0 ||
        take_str(&c, 1, q->reason, sizeof q->reason) < 0 || take_str(&c, 2, q->detail, sizeof q->detail) < 0 ||
        take_str(&c, 2, q->note, sizeof q->note) < 0 || smki_cur_u32be(&c, &ml) < 0 || ml != c.left ||
        ml > QMSG_MAX)
        return SMKI_FAIL(SMKI_E_CORRUPT, "quarantine record %llu is damaged", (unsigned long long)q->id);
    q->state = st;
    q->at = (int64_t)at;
    q->msg = malloc(ml ? ml : 1);
    ENSURE(q->msg, SMKI_E_NOMEM, "quarantined message");
    memcpy(q->msg, c.p, ml);
    q->msg_len = ml;
    return rc;
}

typedef struct {
    gw_dbs d;
    smki_txn *t; /* list: the transaction the scan runs in */
    smki_gwq_fn fn;
    void *arg;
    uint64_t id;
    smki_gwq_record q;
    const char *note;
    /* release */
    const uint8_t *z;
    uint8_t *command;
    size_t command_len;
} q_op;

static int q_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    q_op *op = arg;
    ENSURE(klen == 8, SMKI_E_CORRUPT, "quarantine key of %zu octets", klen);
    smki_gwq_record q;
    GUARD(decode(key, val, vlen, &q));
    int rc = smki_gw_notify_state_txn(op->t, &op->d, q.id, &q.notify_state, &q.notify_attempts);
    if (rc == 0) rc = op->fn(&q, op->arg);
    smki_gwq_clear(&q);
    return rc;
}

static int q_list_txn(smki_txn *t, void *arg)
{
    q_op *op = arg;
    op->t = t;
    return smki_txn_scan(t, op->d.quar, NULL, 0, q_scan, op);
}

int smki_gwq_list(smki_store *s, smki_gwq_fn fn, void *arg)
{
    q_op op;
    memset(&op, 0, sizeof op);
    op.fn = fn;
    op.arg = arg;
    GUARD(smki_gw_dbs_get(s, &op.d));
    return smki_store_read(s, q_list_txn, &op);
}

static int q_get_txn(smki_txn *t, void *arg)
{
    q_op *op = arg;
    smki_gwq_clear(&op->q);
    uint8_t k[8];
    smki_put_be64(k, op->id);
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, op->d.quar, k, 8, &v, &vl);
    if (rc == SMKI_E_NOTFOUND)
        return SMKI_FAIL(SMKI_E_NOTFOUND, "no quarantined message %llu", (unsigned long long)op->id);
    GUARD(rc);
    GUARD(decode(k, v, vl, &op->q));
    return smki_gw_notify_state_txn(t, &op->d, op->id, &op->q.notify_state, &op->q.notify_attempts);
}

int smki_gwq_get(smki_store *s, uint64_t id, smki_gwq_record *out)
{
    q_op op;
    memset(&op, 0, sizeof op);
    op.id = id;
    GUARD(smki_gw_dbs_get(s, &op.d));
    int rc = smki_store_read(s, q_get_txn, &op);
    if (rc < 0) {
        smki_gwq_clear(&op.q);
        return rc;
    }
    *out = op.q;
    return 0;
}

static int q_held(const smki_gwq_record *q)
{
    static const char *const st[] = {"held", "released", "rejected"};
    ENSURE(q->state == SMKI_GWQ_HELD, SMKI_E_REFUSED, "quarantined message %llu was already %s",
           (unsigned long long)q->id, q->state >= 0 && q->state <= 2 ? st[q->state] : "closed");
    return 0;
}

static int q_reject_txn(smki_txn *t, void *arg)
{
    q_op *op = arg;
    GUARD(q_get_txn(t, op));
    GUARD(q_held(&op->q));
    op->q.state = SMKI_GWQ_REJECTED;
    snprintf(op->q.note, sizeof op->q.note, "%s", op->note);
    return smki_gw_quarantine_put(t, &op->d, &op->q);
}

/* The audit entry's object: "quarantine N (originator -> target, code C, counter K)". */
static void q_object(const smki_gwq_record *q, uint64_t id, char *out, size_t cap)
{
    char oe[SMKI_EUI64_TEXT_MAX], te[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&q->originator, SMKI_EUI64_HYPHEN, oe);
    smki_eui64_format(&q->target, SMKI_EUI64_HYPHEN, te);
    snprintf(out, cap, "quarantine %llu (%s -> %s, code %04X, counter %llu)", (unsigned long long)id, oe, te,
             q->code, (unsigned long long)q->counter);
}

int smki_gwq_reject(const smki_gw_admin *adm, uint64_t id, const char *note)
{
    ENSURE(note && *note, SMKI_E_USAGE, "a rejection needs a reason");
    ENSURE(strlen(note) < 200, SMKI_E_USAGE, "the rejection reason is over 199 characters");
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(adm, &s));
    smki_gwq_record q;
    GUARD(smki_gwq_get(s, id, &q));
    char obj[160], det[220];
    q_object(&q, id, obj, sizeof obj);
    smki_gwq_clear(&q);
    snprintf(det, sizeof det, "reason: %s", note);
    q_op op;
    memset(&op, 0, sizeof op);
    op.id = id;
    op.note = note;
    GUARD(smki_gw_dbs_get(s, &op.d));
    int rc = smki_gw_admin_write(adm, "quarantine-reject", obj, det, q_reject_txn, &op);
    smki_gwq_clear(&op.q);
    return rc;
}

static int q_release_txn(smki_txn *t, void *arg)
{
    q_op *op = arg;
    free(op->command);
    op->command = NULL;
    GUARD(q_get_txn(t, op));
    GUARD(q_held(&op->q));
    gw_apdu a;
    GUARD(smki_gw_apdu_parse(op->q.msg, op->q.msg_len, &a));
    if (a.cra != SMKI_GBCS_CRA_COMMAND) {
        /* A response or alert goes on to its User as it came from the device. */
        op->command = malloc(op->q.msg_len);
        ENSURE(op->command, SMKI_E_NOMEM, "released message");
        memcpy(op->command, op->q.msg, op->q.msg_len);
        op->command_len = op->q.msg_len;
        op->q.state = SMKI_GWQ_RELEASED;
        return smki_gw_quarantine_put(t, &op->d, &op->q);
    }
    uint64_t last;
    int seen;
    GUARD(smki_gw_counter_get_txn(t, &op->d, &a.originator, &last, &seen));
    ENSURE(!seen || a.counter > last, SMKI_E_REFUSED,
           "counter.replay: quarantined message %llu has counter %llu, not above the last that passed (%llu)",
           (unsigned long long)op->id, (unsigned long long)a.counter, (unsigned long long)last);
    GUARD(smki_gw_counter_put_txn(t, &op->d, &a.originator, a.counter));
    uint32_t ic;
    GUARD(smki_gw_next_invocation_txn(t, &op->d, &a.target, &ic));
    GUARD(smki_gbcs_wrap_z(a.apdu, a.apdu_len, op->z, ic, &op->command, &op->command_len));
    op->q.state = SMKI_GWQ_RELEASED;
    return smki_gw_quarantine_put(t, &op->d, &op->q);
}

/* The shared secret with the command's target device: the ACB's KA key and the device's
 * KA key from the inventory (outside the write transaction). */
static int q_device_z(smki_store *s, const smki_eui64_t *target, smki_key *acb_ka, uint8_t z[32])
{
    ENSURE(acb_ka, SMKI_E_USAGE, "releasing a command needs the ACB's KA key (--acb-key)");
    smki_gw_device dev;
    GUARD(smki_gw_device_get(s, target, &dev));
    char te[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&dev.id, SMKI_EUI64_HYPHEN, te);
    ENSURE(dev.ka_len > 0, SMKI_E_NOTFOUND, "device %s has no KA key in the inventory: cannot MAC the command", te);
    EVP_PKEY *peer = NULL;
    GUARD(smki_pub_load(dev.ka_spki, dev.ka_len, &peer));
    int rc = smki_key_ecdh(acb_ka, peer, z);
    EVP_PKEY_free(peer);
    return rc;
}

int smki_gwq_release(const smki_gw_admin *adm, uint64_t id, smki_key *acb_ka, uint8_t **command, size_t *command_len)
{
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(adm, &s));
    q_op op;
    memset(&op, 0, sizeof op);
    op.id = id;
    GUARD(smki_gw_dbs_get(s, &op.d));
    smki_gwq_record q;
    GUARD(smki_gwq_get(s, id, &q));
    char obj[160];
    q_object(&q, id, obj, sizeof obj);
    gw_apdu a;
    uint8_t z[32];
    int rc = q_held(&q);
    if (rc == 0) rc = smki_gw_apdu_parse(q.msg, q.msg_len, &a);
    int is_command = rc == 0 && a.cra == SMKI_GBCS_CRA_COMMAND;
    if (is_command) rc = q_device_z(s, &q.target, acb_ka, z);
    smki_gwq_clear(&q);
    GUARD(rc);
    op.z = is_command ? z : NULL;
    rc = smki_gw_admin_write(adm, "quarantine-release", obj,
                        is_command ? "MACed into a command with the ACB's KA key" : "delivered as the device sent it",
                        q_release_txn, &op);
    smki_wipe(z, sizeof z);
    smki_gwq_clear(&op.q);
    if (rc < 0) {
        free(op.command);
        return rc;
    }
    *command = op.command;
    *command_len = op.command_len;
    return 0;
}
