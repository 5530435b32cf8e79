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
    smki_put_be64(out + sizeof ANCHOR_LABEL - 1, a->seq);
    memcpy(out + sizeof ANCHOR_LABEL - 1 + 8, a->hash, 32);
    smki_put_be64(out + sizeof ANCHOR_LABEL - 1 + 40, (uint64_t)a->time);
}

/* "smki-audit-head-", the first 16 hex digits of the trail's first entry's hash, then
 * the slot: two ("a", "b"), so that a crash while one is replaced leaves the other; and
 * beside a file: key their lock ("lock"). */
static void anchor_name(const uint8_t first[32], const char *slot, char out[40])
{
    char hx[65];
    smki_hex_encode(first, 32, hx, 0);
    snprintf(out, 40, "smki-audit-head-%.16s-%s", hx, slot);
}

typedef struct {
    smki_ra *ra;
    uint64_t seq;
    uint8_t hash[32], first[32];
} head_read;

static int first_hash(smki_txn *t, smki_ra *ra, uint8_t out[32])
{
    uint8_t key[8];
    smki_put_be64(key, 1);
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
    h->seq = smki_get_be64(v);
    memcpy(h->hash, (const uint8_t *)v + 8, 32);
    return first_hash(t, h->ra, h->first);
}

/* The number a slot's record holds (0: none, or not a whole record), its signature not
 * checked: only to choose which slot a write replaces. */
static int seq_of(const uint8_t *rec, size_t n, void *arg)
{
    uint64_t *seq = arg;
    if (n >= 51 && n <= 50 + SMKI_SIG_MAX && rec[0] == ANCHOR_VERSION && (size_t)rec[49] + 50 == n &&
        smki_get_be64(rec + 1) > *seq)
        *seq = smki_get_be64(rec + 1);
    return 0;
}

/* Beside a file: key a slot is overwritten in place with one sync, so the write goes to
 * the older slot (a missing or torn one first), read from the files: a crash that tears
 * it leaves the newer one whole. Under the slots' lock, which other processes on this
 * home take too (the service and the CLI): without it two could overwrite one slot at
 * once (torn by the other's cut), or one the slot the other just wrote but has not yet
 * synced (a power cut then tears both), and a smaller head could replace a larger. */
static int anchor_in_place(smki_ra *ra, const head_read *h, const uint8_t *rec, size_t len)
{
    char name[40];
    anchor_name(h->first, "lock", name);
    int lock;
    GUARD(smki_key_note_lock(ra->ckpt, name, &lock));
    uint64_t seq[2] = {0, 0};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        anchor_name(h->first, i ? "b" : "a", name);
        rc = smki_key_note_each(ra->ckpt, name, seq_of, &seq[i]);
        if (rc == SMKI_E_NOTFOUND) rc = 0;
    }
    anchor_name(h->first, seq[0] <= seq[1] ? "a" : "b", name);
    if (rc == 0) rc = smki_key_note_overwrite(ra->ckpt, name, rec, len);
    smki_key_note_unlock(lock);
    return rc;
}

static int anchor_now(smki_ra *ra)
{
    head_read h = {ra, 0, {0}, {0}};
    GUARD(smki_store_read(ra->store, head_read_txn, &h));
    /* Another thread's anchor, written while this one waited, may already hold this head. */
    if (!h.seq || h.seq <= ra->anchored) return 0;
    ra_anchor_rec a = {h.seq, {0}, smki_ra_now(ra), 0, {0}};
    memcpy(a.hash, h.hash, 32);
    uint8_t msg[ANCHOR_MSG_LEN], rec[1 + 48 + 1 + SMKI_SIG_MAX];
    anchor_msg(&a, msg);
    size_t sl = SMKI_SIG_MAX;
    int rc = smki_key_sign(ra->ckpt, msg, sizeof msg, SMKI_SIG_DER, rec + 50, &sl);
    if (rc < 0) return smki_error_wrap("signing the audit trail's anchor (entry %llu)", (unsigned long long)h.seq);
    rec[0] = ANCHOR_VERSION;
    memcpy(rec + 1, msg + sizeof ANCHOR_LABEL - 1, 48);
    rec[49] = (uint8_t)sl;
    /* On a token the slot goes by the parity of the head's number (each put makes a new
     * object before it destroys the old). */
    char name[40];
    anchor_name(h.first, h.seq % 2 ? "a" : "b", name);
    rc = smki_key_is_token(ra->ckpt) ? smki_key_note_put(ra->ckpt, name, rec, 50 + sl)
                                     : anchor_in_place(ra, &h, rec, 50 + sl);
    if (rc < 0)
        return smki_error_wrap("the action is recorded in the store and its trail, but the trail's anchor beside the "
                               "checkpoint key was not updated to entry %llu (the next action updates it)",
                               (unsigned long long)h.seq);
    ra->anchored = h.seq;
    return 0;
}

int smki_ra_anchor(smki_ra *ra)
{
    if (!ra->ckpt) return 0; /* no key, no anchor: 'smki audit verify' says how far it reaches */
    pthread_mutex_lock(&ra->anchor_lock);
    int rc = anchor_now(ra);
    pthread_mutex_unlock(&ra->anchor_lock);
    return rc;
}

/* Each record found under a slot's name: decoded, its signature verified; the latest
 * kept. One that does not verify is a finding, whatever else is there. */
typedef struct {
    EVP_PKEY *pub;
    const char *name;
    int found;
    ra_anchor_rec best;
} slot_run;

static int slot_one(const uint8_t *rec, size_t n, void *arg)
{
    slot_run *r = arg;
    ENSURE(n >= 51 && n <= 50 + SMKI_SIG_MAX && rec[0] == ANCHOR_VERSION && rec[49] && (size_t)rec[49] + 50 == n,
           SMKI_E_CORRUPT, "the trail's anchor %s is damaged (%zu octets)", r->name, n);
    ra_anchor_rec a;
    memset(&a, 0, sizeof a);
    a.seq = smki_get_be64(rec + 1);
    memcpy(a.hash, rec + 9, 32);
    a.time = (int64_t)smki_get_be64(rec + 41);
    a.sig_len = rec[49];
    memcpy(a.sig, rec + 50, a.sig_len);
    uint8_t msg[ANCHOR_MSG_LEN];
    anchor_msg(&a, msg);
    int rc = smki_verify(r->pub, msg, sizeof msg, SMKI_SIG_DER, a.sig, a.sig_len);
    if (rc < 0) return smki_error_wrap("the trail's anchor %s is not signed by the checkpoint key: forged", r->name);
    if (!r->found || a.seq > r->best.seq) r->best = a;
    r->found = 1;
    return 0;
}

int smki_ra_anchor_read(smki_ra *ra, const uint8_t first[32], EVP_PKEY *pub, ra_anchor_rec *out)
{
    ENSURE(ra->ckpt, SMKI_E_INTERNAL, "smki_ra_anchor_read: no checkpoint key");
    /* The latest of the two slots (and of what a kill mid-replace left in one). */
    slot_run r = {pub ? pub : smki_key_public(ra->ckpt), NULL, 0, {0}};
    int damaged = 0;
    for (int i = 0; i < 2; i++) {
        char name[40];
        anchor_name(first, i ? "b" : "a", name);
        r.name = name;
        int rc = smki_key_note_each(ra->ckpt, name, slot_one, &r);
        if (rc == SMKI_E_NOTFOUND || rc >= 0) continue;
        /* Beside a file: key a slot is overwritten in place, the older one each time: one
         * that a crash tore is passed over when the other is whole and signed. On a token
         * (a put never tears) and when no slot holds a valid record, it is a finding. */
        if (smki_key_is_token(ra->ckpt) || (rc != SMKI_E_CORRUPT && rc != SMKI_E_VERIFY)) return rc;
        damaged = rc;
        smki_error_clear();
    }
    if (!r.found && damaged) {
        char name[40];
        anchor_name(first, "a", name);
        return SMKI_FAIL(damaged, "the trail's anchor beside the checkpoint key (%s and -b) holds no whole record "
                                  "signed by the checkpoint key: damaged or forged", name);
    }
    if (!r.found) return SMKI_E_NOTFOUND;
    *out = r.best;
    return 0;
}
