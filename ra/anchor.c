/* The trail's head anchored outside the store: after every RA action (and every CA
 * action with an entry) commits, the head (last entry's number and hash) is signed with
 * the checkpoint key and kept beside that key: a private data object on its token,
 * written and read only after login with the PIN (a file beside a file: key in a lab).
 * Its name carries the trail's identity (its first entry's hash), so one token can
 * anchor several homes. A trail cut back, or rewritten, behind the anchor no longer
 * matches it: 'smki audit verify' names it. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "ra_private.h"

#define ANCHOR_VERSION 1
#define ANCHOR_MSG_LEN (sizeof ANCHOR_LABEL - 1 + 8 + 32 + 8)
static const char ANCHOR_LABEL[] = "smki-audit-anchor-v1";

static void anchor_msg(const ra_anchor_rec *a, uint8_t out[ANCHOR_MSG_LEN])
{
    memcpy(out, ANCHOR_LABEL, sizeof ANCHOR_LABEL - 1);
    put_be64(out + sizeof ANCHOR_LABEL - 1, a->seq);
    memcpy(out + sizeof ANCHOR_LABEL - 1 + 8, a->hash, 32);
    put_be64(out + sizeof ANCHOR_LABEL - 1 + 40, (uint64_t)a->time);
}

/* "smki-audit-head-", the first 16 hex digits of the trail's first entry's hash, then
 * the slot: two, written in turn (by the parity of the head's number), so that a crash
 * while one is replaced leaves the other. */
static void anchor_name(const uint8_t first[32], char slot, char out[40])
{
    char hx[65];
    smki_hex_encode(first, 32, hx, 0);
    snprintf(out, 40, "smki-audit-head-%.16s-%c", hx, slot);
}

typedef struct {
    smki_ra *ra;
    uint64_t seq;
    uint8_t hash[32], first[32];
} head_read;

static int first_hash(smki_txn *t, smki_ra *ra, uint8_t out[32])
{
    uint8_t key[8];
    put_be64(key, 1);
    const void *v;
    size_t n;
    GUARD(smki_txn_get(t, ra->db.audit, key, 8, &v, &n));
    smki_audit_entry e;
    GUARD(smki_audit_entry_decode(v, n, &e));
    memcpy(out, e.hash, 32);
    return 0;
}

static int head_read_txn(smki_txn *t, void *arg)
{
    head_read *h = arg;
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, h->ra->db.meta, "head", 4, &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        h->seq = 0;
        return 0;
    }
    GUARD(rc);
    ENSURE(n == 40, SMKI_E_CORRUPT, "the audit head record is damaged (%zu octets)", n);
    h->seq = get_be64(v);
    memcpy(h->hash, (const uint8_t *)v + 8, 32);
    return first_hash(t, h->ra, h->first);
}

int ra_anchor(smki_ra *ra)
{
    if (!ra->ckpt) return 0; /* no key, no anchor: 'smki audit verify' says how far it reaches */
    head_read h = {ra, 0, {0}, {0}};
    GUARD(smki_store_read(ra->store, head_read_txn, &h));
    if (!h.seq) return 0;
    ra_anchor_rec a = {h.seq, {0}, ra_now(ra), 0, {0}};
    memcpy(a.hash, h.hash, 32);
    uint8_t msg[ANCHOR_MSG_LEN], rec[1 + 48 + 1 + SMKI_SIG_MAX];
    anchor_msg(&a, msg);
    size_t sl = SMKI_SIG_MAX;
    int rc = smki_key_sign(ra->ckpt, msg, sizeof msg, SMKI_SIG_DER, rec + 50, &sl);
    if (rc < 0) return smki_error_wrap("signing the audit trail's anchor (entry %llu)", (unsigned long long)h.seq);
    rec[0] = ANCHOR_VERSION;
    memcpy(rec + 1, msg + sizeof ANCHOR_LABEL - 1, 48);
    rec[49] = (uint8_t)sl;
    char name[40];
    anchor_name(h.first, h.seq % 2 ? 'a' : 'b', name);
    rc = smki_key_note_put(ra->ckpt, name, rec, 50 + sl);
    if (rc < 0)
        return smki_error_wrap("the action is recorded in the store and its trail, but the trail's anchor beside the "
                               "checkpoint key was not updated to entry %llu (the next action updates it)",
                               (unsigned long long)h.seq);
    return 0;
}

/* One slot: SMKI_E_NOTFOUND (without noise) when empty. */
static int slot_read(smki_ra *ra, const char *name, EVP_PKEY *pub, ra_anchor_rec *out)
{
    uint8_t rec[1 + 48 + 1 + SMKI_SIG_MAX + 16];
    size_t n = 0;
    int rc = smki_key_note_get(ra->ckpt, name, rec, sizeof rec, &n);
    if (rc == SMKI_E_NOTFOUND) return rc;
    GUARD(rc);
    ENSURE(n >= 51 && rec[0] == ANCHOR_VERSION && rec[49] && (size_t)rec[49] + 50 == n, SMKI_E_CORRUPT,
           "the trail's anchor %s is damaged (%zu octets)", name, n);
    memset(out, 0, sizeof *out);
    out->seq = get_be64(rec + 1);
    memcpy(out->hash, rec + 9, 32);
    out->time = (int64_t)get_be64(rec + 41);
    out->sig_len = rec[49];
    memcpy(out->sig, rec + 50, out->sig_len);
    uint8_t msg[ANCHOR_MSG_LEN];
    anchor_msg(out, msg);
    EVP_PKEY *key = pub ? pub : smki_key_public(ra->ckpt);
    rc = smki_verify(key, msg, sizeof msg, SMKI_SIG_DER, out->sig, out->sig_len);
    if (rc < 0) return smki_error_wrap("the trail's anchor %s is not signed by the checkpoint key: forged", name);
    return 0;
}

int ra_anchor_read(smki_ra *ra, const uint8_t first[32], EVP_PKEY *pub, ra_anchor_rec *out)
{
    ENSURE(ra->ckpt, SMKI_E_INTERNAL, "ra_anchor_read: no checkpoint key");
    /* The later of the two slots; a damaged or forged one is reported. */
    ra_anchor_rec a, b;
    char na[40], nb[40];
    anchor_name(first, 'a', na);
    anchor_name(first, 'b', nb);
    int ra_ = slot_read(ra, na, pub, &a);
    if (ra_ < 0 && ra_ != SMKI_E_NOTFOUND) return ra_;
    int rb = slot_read(ra, nb, pub, &b);
    if (rb < 0 && rb != SMKI_E_NOTFOUND) return rb;
    if (ra_ == SMKI_E_NOTFOUND && rb == SMKI_E_NOTFOUND) return SMKI_E_NOTFOUND;
    *out = ra_ == SMKI_E_NOTFOUND || (rb == 0 && b.seq > a.seq) ? b : a;
    return 0;
}
