/* ra_tamper: edits the audit trail's LMDB records directly, as someone with write
 * access to the store (and no operator's or checkpoint key) could, for tests/integration/
 * ra.sh to check that 'smki audit verify' names each kind of tampering.
 *
 * usage: ra_tamper STORE_DIR flip SEQ          a bit of entry SEQ's detail text
 *        ra_tamper STORE_DIR delete SEQ        entry SEQ removed
 *        ra_tamper STORE_DIR swap SEQ1 SEQ2    two entries exchanged
 *        ra_tamper STORE_DIR copy SEQ1 SEQ2    entry SEQ1 written over entry SEQ2 (an insertion)
 *        ra_tamper STORE_DIR truncate SEQ      entries from SEQ on removed, the head rewritten to match
 *        ra_tamper STORE_DIR drop-checkpoint SEQ
 *        ra_tamper STORE_DIR force-approve ID    request ID's record set to "approved" (no approval signed)
 *        ra_tamper STORE_DIR replace-csr ID IDX FILE
 *                                              CSR IDX (from 0) of request ID and the SHA-256 on record beside
 *                                              it replaced by FILE's octets (DER): another key's CSR */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ra.h"
#include "ra/ra_test.h"

typedef struct {
    const smki_ra_dbs *db;
    const char *op;
    uint64_t a, b;
    uint8_t last_hash[32];
    uint64_t last_seq;
    uint8_t *file;
    size_t file_len;
} job;

static int request_edit(smki_txn *t, job *j)
{
    uint8_t key[13], val[4096];
    smki_put_be64(key, j->a);
    const void *v;
    size_t n;
    if (strcmp(j->op, "force-approve") == 0) {
        GUARD(smki_txn_get(t, j->db->requests, key, 8, &v, &n));
        if (n > sizeof val || n < 3) return SMKI_FAIL(SMKI_E_INTERNAL, "request record of %zu octets", n);
        memcpy(val, v, n);
        val[2] = 3; /* version, type, state: SMKI_REQ_APPROVED */
        return smki_txn_put(t, j->db->requests, key, 8, val, n, 0);
    }
    uint32_t idx = (uint32_t)j->b;
    key[8] = (uint8_t)(idx >> 24), key[9] = (uint8_t)(idx >> 16), key[10] = (uint8_t)(idx >> 8), key[11] = (uint8_t)idx;
    key[12] = 'v';
    uint8_t h[32];
    unsigned hl = 32;
    if (EVP_Digest(j->file, j->file_len, h, &hl, EVP_sha256(), NULL) != 1)
        return SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256");
    GUARD(smki_txn_get(t, j->db->csrs, key, 12, &v, &n)); /* it must be there */
    GUARD(smki_txn_put(t, j->db->csrs, key, 12, j->file, j->file_len, 0));
    return smki_txn_put(t, j->db->csrs, key, 13, h, 32, 0);
}

static int run(smki_txn *t, void *arg)
{
    job *j = arg;
    uint8_t ka[8], kb[8];
    smki_put_be64(ka, j->a);
    smki_put_be64(kb, j->b);
    const void *v;
    size_t n;
    static uint8_t va[4096], vb[4096];
    if (strcmp(j->op, "force-approve") == 0 || strcmp(j->op, "replace-csr") == 0) return request_edit(t, j);
    if (strcmp(j->op, "delete") == 0) return smki_txn_del(t, j->db->audit, ka, 8);
    if (strcmp(j->op, "drop-checkpoint") == 0) return smki_txn_del(t, j->db->checkpoints, ka, 8);
    if (strcmp(j->op, "truncate") == 0) {
        for (uint64_t s = j->a; s < j->a + 100000; s++) {
            uint8_t k[8];
            smki_put_be64(k, s);
            int rc = smki_txn_del(t, j->db->audit, k, 8);
            if (rc == SMKI_E_NOTFOUND) break;
            GUARD(rc);
        }
        uint8_t head[40];
        smki_put_be64(head, j->last_seq);
        memcpy(head + 8, j->last_hash, 32);
        return smki_txn_put(t, j->db->meta, "head", 4, head, sizeof head, 0);
    }
    GUARD(smki_txn_get(t, j->db->audit, ka, 8, &v, &n));
    if (n > sizeof va) return SMKI_FAIL(SMKI_E_INTERNAL, "entry too large");
    size_t na = n;
    memcpy(va, v, n);
    if (strcmp(j->op, "flip") == 0) {
        va[n - 80] ^= 0x01; /* inside the detail text, before the signature */
        return smki_txn_put(t, j->db->audit, ka, 8, va, na, 0);
    }
    GUARD(smki_txn_get(t, j->db->audit, kb, 8, &v, &n));
    if (n > sizeof vb) return SMKI_FAIL(SMKI_E_INTERNAL, "entry too large");
    memcpy(vb, v, n);
    if (strcmp(j->op, "copy") == 0) return smki_txn_put(t, j->db->audit, kb, 8, va, na, 0);
    if (strcmp(j->op, "swap") == 0) {
        GUARD(smki_txn_put(t, j->db->audit, ka, 8, vb, n, 0));
        return smki_txn_put(t, j->db->audit, kb, 8, va, na, 0);
    }
    return SMKI_FAIL(SMKI_E_USAGE, "unknown operation %s", j->op);
}

static int before(const smki_audit_entry *e, void *arg)
{
    job *j = arg;
    if (e->seq >= j->a) return 1;
    j->last_seq = e->seq;
    memcpy(j->last_hash, e->hash, 32);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: ra_tamper STORE_DIR flip|delete|swap|copy|truncate|drop-checkpoint|force-approve|replace-csr SEQ [SEQ2] [FILE]\n");
        return 1;
    }
    smki_store *s = NULL;
    smki_ra *ra = NULL;
    job j = {NULL, argv[2], strtoull(argv[3], NULL, 10), argc > 4 ? strtoull(argv[4], NULL, 10) : 0, {0}, 0, NULL, 0};
    int rc = 0;
    if (strcmp(j.op, "replace-csr") == 0)
        rc = argc > 5 ? smki_file_read(argv[5], 1 << 20, &j.file, &j.file_len)
                      : SMKI_FAIL(SMKI_E_USAGE, "replace-csr ID IDX FILE");
    if (rc == 0) rc = smki_store_open(argv[1], NULL, &s);
    if (rc == 0) rc = smki_ra_open(s, NULL, &ra);
    if (rc == 0) j.db = smki_ra_databases(ra);
    if (rc == 0 && strcmp(j.op, "truncate") == 0) rc = smki_audit_each(ra, 1, before, &j);
    if (rc == 0) rc = smki_store_write(s, run, &j);
    if (rc < 0) fprintf(stderr, "ra_tamper: %s\n", smki_error_msg());
    smki_ra_close(ra);
    smki_store_close(s);
    free(j.file);
    return rc < 0 ? 1 : 0;
}
