/* ca/batch.c: many device CSRs issued at once, resumably. Worker threads read, parse
 * and sign; one committer takes their results in input order, records new
 * certificates with their "by_csr" entry in group commits, and only then writes the
 * files. The store is the truth: a crash loses no committed certificate, and a re-run
 * finds each CSR's certificate by the hash of the CSR instead of issuing again. */
#define _GNU_SOURCE /* syncfs */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca_private.h"

#define DEFAULT_GROUP 256
#define MAX_THREADS 64
#define HASH_LEN 32
#define CSR_KEY_LEN (SMKI_KEYID_LEN + HASH_LEN)
#define TMP_PREFIX ".smki-batch."
#define TMP_SUFFIX ".tmp"
#define TMP_NAME_MAX 160

/* ---- The input: a folder of CSR files, or one file of them ----------------------------- */

typedef struct {
    char *name; /* for reports */
    char *path; /* a folder's file, read when issued; NULL: a block of the file's bytes */
    size_t at, len;
} input_item;

struct smki_ca_batch_input {
    input_item *items;
    size_t n, cap;
    uint8_t *bytes; /* the file's content (a file input) */
    size_t len;
    int is_dir;
    dev_t dev; /* the folder's, to refuse writing into it */
    ino_t ino;
};

static int add_item(smki_ca_batch_input *in, char *name, char *path, size_t at, size_t len)
{
    if (!name || (in->n == in->cap && in->cap > SIZE_MAX / 2 / sizeof *in->items)) {
        free(name);
        free(path);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory listing the CSRs");
    }
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        input_item *grown = realloc(in->items, cap * sizeof *grown);
        if (!grown) {
            free(name);
            free(path);
            return SMKI_FAIL(SMKI_E_NOMEM, "out of memory listing the CSRs");
        }
        in->items = grown;
        in->cap = cap;
    }
    in->items[in->n++] = (input_item){name, path, at, len};
    return 0;
}

static char *join(const char *a, const char *b, const char *sep)
{
    size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, sep, b);
    return s;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const input_item *)a)->name, ((const input_item *)b)->name);
}

static int open_dir(smki_ca_batch_input *in, const char *path)
{
    DIR *d = opendir(path);
    ENSURE(d, errno == ENOENT ? SMKI_E_NOTFOUND : SMKI_E_IO, "cannot read the folder %s: %s", path, strerror(errno));
    int rc = 0;
    const char *sep = path[0] && path[strlen(path) - 1] == '/' ? "" : "/";
    struct dirent *e;
    while ((errno = 0, e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden files and our own temporaries */
        char *full = join(path, e->d_name, sep);
        struct stat st;
        if (full && (stat(full, &st) != 0 || !S_ISREG(st.st_mode))) {
            free(full);
            continue;
        }
        GUARD_GOTO(add_item(in, full ? strdup(full) : NULL, full, 0, 0), out);
    }
    ENSURE_GOTO(errno == 0, SMKI_E_IO, out, "cannot read the folder %s: %s", path, strerror(errno));
    /* Input order is name order: a re-run meets the CSRs in the same order, so a name
     * clash resolves the same way. */
    if (in->n) qsort(in->items, in->n, sizeof *in->items, by_name);
out:
    closedir(d);
    return rc;
}

/* The offset of needle in [p, p+len), or len if it is not there. */
static size_t find(const uint8_t *p, size_t len, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= len && i <= len - k; i++)
        if (p[i] == (uint8_t)needle[0] && memcmp(p + i, needle, k) == 0) return i;
    return len;
}

/* Split in->bytes (a file's) into items. */
static int split_blocks(smki_ca_batch_input *in, const char *path)
{
    static const char BEGIN[] = "-----BEGIN ", END[] = "-----END ";
    size_t pos = find(in->bytes, in->len, BEGIN);
    if (pos == in->len) return add_item(in, strdup(path), NULL, 0, in->len); /* one CSR, DER (or not a CSR) */
    for (size_t k = 1; pos < in->len; k++) {
        size_t start = pos;
        size_t e = find(in->bytes + start, in->len - start, END);
        size_t end = start + e;
        if (end < in->len) {
            end += sizeof END - 1;
            while (end < in->len && in->bytes[end] != '\n') end++; /* the rest of the END line */
            if (end < in->len) end++;
        }
        char label[32];
        snprintf(label, sizeof label, "#%zu", k);
        GUARD(add_item(in, join(path, label, ""), NULL, start, end - start));
        pos = end + find(in->bytes + end, in->len - end, BEGIN);
    }
    return 0;
}

static int open_file(smki_ca_batch_input *in, const char *path)
{
    GUARD(smki_file_read(path, SMKI_CA_BATCH_FILE_MAX, &in->bytes, &in->len));
    return split_blocks(in, path);
}

int smki_ca_batch_input_from_bytes(const char *name, uint8_t *bytes, size_t len, smki_ca_batch_input **out)
{
    *out = NULL;
    smki_ca_batch_input *in = calloc(1, sizeof *in);
    if (!in) {
        free(bytes);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    in->bytes = bytes;
    in->len = len;
    int rc = split_blocks(in, name);
    if (rc < 0) {
        smki_ca_batch_input_free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void smki_ca_batch_input_item(const smki_ca_batch_input *in, size_t i, const uint8_t **p, size_t *len)
{
    *p = in->bytes + in->items[i].at;
    *len = in->items[i].len;
}

int smki_ca_batch_input_open(const char *path, smki_ca_batch_input **out)
{
    ENSURE(path && out, SMKI_E_USAGE, "smki_ca_batch_input_open: no path");
    *out = NULL;
    struct stat st;
    ENSURE(stat(path, &st) == 0, errno == ENOENT ? SMKI_E_NOTFOUND : SMKI_E_IO, "cannot read %s: %s", path,
           strerror(errno));
    smki_ca_batch_input *in = calloc(1, sizeof *in);
    ENSURE(in, SMKI_E_NOMEM, "out of memory");
    in->is_dir = S_ISDIR(st.st_mode);
    in->dev = st.st_dev;
    in->ino = st.st_ino;
    int rc = in->is_dir ? open_dir(in, path) : open_file(in, path);
    if (rc < 0) {
        smki_ca_batch_input_free(in);
        return rc;
    }
    *out = in;
    return 0;
}

size_t smki_ca_batch_input_count(const smki_ca_batch_input *in)
{
    return in ? in->n : 0;
}

int smki_ca_batch_input_csr(const smki_ca_batch_input *in, size_t i, smki_csr **out)
{
    ENSURE(in && i < in->n && out, SMKI_E_USAGE, "smki_ca_batch_input_csr: no such item");
    *out = NULL;
    const input_item *it = &in->items[i];
    if (!it->path) return smki_csr_parse(in->bytes + it->at, it->len, out);
    uint8_t *owned = NULL;
    size_t len = 0;
    GUARD(smki_file_read(it->path, SMKI_CSR_MAX, &owned, &len));
    int rc = smki_csr_parse(owned, len, out);
    free(owned);
    return rc;
}

const char *smki_ca_batch_input_name(const smki_ca_batch_input *in, size_t i)
{
    return in && i < in->n ? in->items[i].name : "?";
}

void smki_ca_batch_input_free(smki_ca_batch_input *in)
{
    if (!in) return;
    for (size_t i = 0; i < in->n; i++) {
        free(in->items[i].name);
        free(in->items[i].path);
    }
    free(in->items);
    free(in->bytes);
    free(in);
}

const char *smki_batch_outcome_name(smki_batch_outcome o)
{
    switch (o) {
    case SMKI_BATCH_ISSUED: return "issued";
    case SMKI_BATCH_EXISTING: return "already-issued";
    case SMKI_BATCH_DUPLICATE: return "duplicate";
    case SMKI_BATCH_REFUSED: return "refused";
    default: return "not-done";
    }
}

/* ---- The CSR index ---------------------------------------------------------------------- */

static void csr_key(const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t hash[HASH_LEN], uint8_t key[CSR_KEY_LEN])
{
    memcpy(key, issuer_ski, SMKI_KEYID_LEN);
    memcpy(key + SMKI_KEYID_LEN, hash, HASH_LEN);
}

static int sha256(const uint8_t *p, size_t len, uint8_t out[HASH_LEN])
{
    unsigned n = 0;
    ENSURE_SSL(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == HASH_LEN, SMKI_E_CRYPTO,
               "SHA-256 of a CSR");
    return 0;
}

typedef struct {
    const smki_ca_db *db;
    smki_db by_csr;
    const uint8_t *key;
    smki_cert *out;
} lookup_arg;

static int lookup_in(smki_txn *t, void *arg)
{
    lookup_arg *a = arg;
    const void *val, *rec;
    size_t vlen, rlen;
    GUARD(smki_txn_get(t, a->by_csr, a->key, CSR_KEY_LEN, &val, &vlen));
    ENSURE(vlen == CA_CERT_KEY_LEN, SMKI_E_CORRUPT, "a CSR index entry of %zu octets in the store", vlen);
    int rc = smki_txn_get(t, a->db->certs, val, CA_CERT_KEY_LEN, &rec, &rlen);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_CORRUPT, "the CSR index names a certificate the store lacks");
    GUARD(rc);
    return smki_ca_cert_decode(val, rec, rlen, a->out);
}

static int lookup(const smki_ca_db *db, smki_db by_csr, const uint8_t key[CSR_KEY_LEN], smki_cert *out)
{
    lookup_arg a = {db, by_csr, key, out};
    return smki_store_read(db->store, lookup_in, &a);
}

int smki_ca_find_by_csr(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t *csr_der,
                        size_t csr_len, smki_cert *out)
{
    ENSURE(db && issuer_ski && csr_der && out, SMKI_E_USAGE, "smki_ca_find_by_csr: missing argument");
    smki_db by_csr;
    GUARD(smki_store_db(db->store, "by_csr", 0, &by_csr));
    uint8_t hash[HASH_LEN], key[CSR_KEY_LEN];
    GUARD(sha256(csr_der, csr_len, hash));
    csr_key(issuer_ski, hash, key);
    int rc = lookup(db, by_csr, key, out);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_NOTFOUND, "no certificate was batch-issued from this CSR");
    return rc;
}

/* ---- Output files ------------------------------------------------------------------------ */

static int write_all(int fd, const void *p, size_t len, const char *name)
{
    const uint8_t *b = p;
    while (len) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR) continue;
        ENSURE(n > 0, SMKI_E_IO, "cannot write %s: %s", name, strerror(errno));
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 0: no such file; 1: it holds exactly these octets; 2: something else. */
static int file_state(int dirfd, const char *name, const char *text, size_t len, const char *dir)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return 0;
    ENSURE(fd >= 0, SMKI_E_IO, "cannot read %s/%s: %s", dir, name, strerror(errno));
    char buf[4096];
    size_t got = 0;
    int same = 1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return SMKI_FAIL(SMKI_E_IO, "cannot read %s/%s: %s", dir, name, strerror(e));
        }
        if (n == 0) break;
        if (got + (size_t)n > len || memcmp(buf, text + got, (size_t)n) != 0) same = 0;
        got += (size_t)n;
        if (!same) break;
    }
    close(fd);
    return same && got == len ? 1 : 2;
}

/* The first half of an atomic write: a hidden temporary in the output folder, named
 * for this process and the input item, not yet synced. Workers write them as they go
 * (creating files is the costly part, so it runs in parallel); after its group has
 * committed, the group's temporaries are synced at once (syncfs) and renamed to their
 * names: a reader sees a name absent or its whole file, and never a name before its
 * certificate is in the store. */
static int write_temporary(int dirfd, size_t item, const char *text, size_t len, const char *dir,
                           char tmp[TMP_NAME_MAX])
{
    snprintf(tmp, TMP_NAME_MAX, TMP_PREFIX "%ld.%zu" TMP_SUFFIX, (long)getpid(), item);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot create %s/%s: %s", dir, tmp, strerror(errno));
    int rc = write_all(fd, text, len, tmp);
    if (close(fd) != 0 && rc == 0) rc = SMKI_FAIL(SMKI_E_IO, "cannot write %s/%s: %s", dir, tmp, strerror(errno));
    if (rc < 0) unlinkat(dirfd, tmp, 0);
    return rc;
}

/* Temporaries of runs that died (kill -9 before their rename); with own, this run's
 * leftovers too (items written ahead of a run that stopped). */
static int sweep_temporaries(int dirfd, const char *dir, int own)
{
    int fd = dup(dirfd);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot read the folder %s: %s", dir, strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return SMKI_FAIL(SMKI_E_IO, "cannot read the folder %s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    size_t plen = strlen(TMP_PREFIX), slen = strlen(TMP_SUFFIX);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= plen + slen || strncmp(e->d_name, TMP_PREFIX, plen) != 0 ||
            strcmp(e->d_name + n - slen, TMP_SUFFIX) != 0)
            continue;
        long pid = strtol(e->d_name + plen, NULL, 10);
        if (pid == (long)getpid() ? !own : pid > 0 && kill((pid_t)pid, 0) == 0) continue; /* a live run's */
        unlinkat(dirfd, e->d_name, 0);
    }
    closedir(d);
    return 0;
}

/* ---- The run ------------------------------------------------------------------------------- */

typedef enum { R_NEW = 1, R_EXISTING, R_REFUSED, R_FATAL } result_kind;

typedef struct {
    int ready;
    result_kind kind;
    int code;
    char *reason;
    uint8_t hash[HASH_LEN];
    int has_tmp; /* the certificate's PEM waits in this temporary */
    char tmp[TMP_NAME_MAX];
    smki_cert cert;
} slot_t;

typedef struct {
    size_t item;
    int is_new;
    int has_tmp;             /* its temporary is written and waits to be renamed */
    char tmp[TMP_NAME_MAX];
    smki_cert cert;
} pending_t;

typedef struct {
    smki_ca_issuer *is;
    smki_ca_db *db;
    smki_db by_csr;
    uint8_t issuer_ski[SMKI_KEYID_LEN];
    const smki_ca_batch_input *in;
    const smki_ca_batch_opts *o;
    smki_ca_batch_report *rep;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    size_t next, base, window;
    int stop;
    slot_t *slots;
    /* The committer's own. */
    smki_batch *batch;
    pending_t *pending;
    const smki_cert **newc; /* the group's new certificates, for on_group */
    size_t npending, group, pending_new;
    int dirfd;
    const char *out_dir;
    uint8_t *seen; /* open addressing: hash (32) || item index (8); all-zero index 0 = empty */
    size_t seen_cap;
    struct timespec t0;
} run_t;

static int is_fatal(int code)
{
    return code == SMKI_E_HSM || code == SMKI_E_STORE || code == SMKI_E_NOMEM || code == SMKI_E_CRYPTO ||
           code == SMKI_E_LOCKED || code == SMKI_E_CORRUPT;
}

static void set_result(slot_t *s, result_kind kind, int code)
{
    s->kind = kind;
    s->code = code;
    if (kind == R_REFUSED || kind == R_FATAL) {
        const char *m = smki_error_msg();
        s->reason = strdup(m && *m ? m : smki_error_name(code));
    }
}

/* <eui>-<ds|ka>.pem */
static void base_name(const smki_cert *c, char *out, size_t cap)
{
    char eui[17];
    smki_hex_encode(c->eui.b, 8, eui, 0);
    snprintf(out, cap, "%s-%s.pem", eui, c->usage == SMKI_USAGE_DS ? "ds" : "ka");
}

/* On a worker: the certificate's temporary, unless its file is in place already. */
static int prepare_file(run_t *r, size_t i, slot_t *s)
{
    char pem[4096], name[80];
    size_t pem_len;
    GUARD(smki_cert_to_pem(s->cert.der, s->cert.der_len, pem, sizeof pem, &pem_len));
    if (s->kind == R_EXISTING) {
        base_name(&s->cert, name, sizeof name);
        int state = file_state(r->dirfd, name, pem, pem_len, r->out_dir);
        GUARD(state);
        if (state == 1) return 0;
    }
    GUARD(write_temporary(r->dirfd, i, pem, pem_len, r->out_dir, s->tmp));
    s->has_tmp = 1;
    return 0;
}

/* A CSR of a worker's chunk: read, parse, the caller's gate, its hash. The CSR, to be
 * looked up with the chunk's others, or NULL with the slot's result set. */
static smki_csr *intake(run_t *r, size_t i, slot_t *s)
{
    const input_item *it = &r->in->items[i];
    s->kind = 0;
    s->reason = NULL;
    s->has_tmp = 0;
    smki_error_clear();
    uint8_t *owned = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = 0;
    if (it->path) {
        rc = smki_file_read(it->path, SMKI_CSR_MAX, &owned, &len);
        data = owned;
    } else {
        data = r->in->bytes + it->at;
        len = it->len;
    }
    smki_csr *csr = NULL;
    if (rc == 0) rc = smki_csr_parse(data, len, &csr);
    free(owned);
    if (rc < 0) {
        set_result(s, rc == SMKI_E_NOMEM ? R_FATAL : R_REFUSED, rc);
        return NULL;
    }
    /* The caller's gate (the RA's eligibility check): a refusal is this CSR's. */
    if (r->o->check && (rc = r->o->check(csr, r->o->gate_arg)) < 0) {
        set_result(s, is_fatal(rc) ? R_FATAL : R_REFUSED, rc);
        smki_csr_free(csr);
        return NULL;
    }
    if ((rc = sha256(csr->der, csr->der_len, s->hash)) < 0) {
        set_result(s, R_FATAL, rc);
        smki_csr_free(csr);
        return NULL;
    }
    return csr;
}

/* A chunk's CSRs looked up in the store at once: on PostgreSQL two statements for the
 * chunk (their "by_csr" entries, then the certificates those name), not a round trip
 * per CSR. */
typedef struct {
    run_t *r;
    slot_t **slots;
    size_t n;
    uint8_t (*keys)[CSR_KEY_LEN];
    smki_get_rec *entries, *certs;
    size_t *owner; /* certs[j] is the certificate of slots[owner[j]] */
} chunk_lookup;

static void set_fatal(slot_t *s, int code)
{
    smki_error_wrap("looking the CSR up in the store");
    set_result(s, R_FATAL, code);
}

/* Each slot found: R_EXISTING with its certificate, or R_FATAL for an index entry
 * that is damaged; a slot left without a result was not issued before. May run more
 * than once (a read re-run after a lost connection): it starts each slot afresh. */
static int lookup_chunk_in(smki_txn *t, void *arg)
{
    chunk_lookup *c = arg;
    for (size_t k = 0; k < c->n; k++) {
        free(c->slots[k]->reason);
        c->slots[k]->reason = NULL;
        c->slots[k]->kind = 0;
        csr_key(c->r->issuer_ski, c->slots[k]->hash, c->keys[k]);
        c->entries[k] = (smki_get_rec){.key = c->keys[k], .klen = CSR_KEY_LEN};
    }
    GUARD(smki_txn_get_many(t, c->r->by_csr, c->entries, c->n));
    size_t m = 0;
    for (size_t k = 0; k < c->n; k++) {
        const smki_get_rec *e = &c->entries[k];
        if (!e->found) continue;
        if (e->vlen != CA_CERT_KEY_LEN) {
            set_fatal(c->slots[k], SMKI_FAIL(SMKI_E_CORRUPT, "a CSR index entry of %zu octets in the store", e->vlen));
            continue;
        }
        c->certs[m] = (smki_get_rec){.key = e->val, .klen = CA_CERT_KEY_LEN};
        c->owner[m++] = k;
    }
    GUARD(smki_txn_get_many(t, c->r->db->certs, c->certs, m));
    for (size_t j = 0; j < m; j++) {
        slot_t *s = c->slots[c->owner[j]];
        const smki_get_rec *g = &c->certs[j];
        int rc = g->found ? smki_ca_cert_decode(g->key, g->val, g->vlen, &s->cert)
                          : SMKI_FAIL(SMKI_E_CORRUPT, "the CSR index names a certificate the store lacks");
        if (rc < 0) set_fatal(s, rc);
        else set_result(s, R_EXISTING, 0);
    }
    return 0;
}

#define CHUNK 32

static void lookup_chunk(run_t *r, slot_t **slots, size_t n)
{
    uint8_t keys[CHUNK][CSR_KEY_LEN];
    smki_get_rec entries[CHUNK], certs[CHUNK];
    size_t owner[CHUNK];
    chunk_lookup c = {r, slots, n, keys, entries, certs, owner};
    smki_error_clear();
    int rc = smki_store_read(r->db->store, lookup_chunk_in, &c);
    if (rc < 0) { /* the store failed: each CSR of the chunk stops the run */
        smki_error_wrap("looking the CSR up in the store");
        for (size_t k = 0; k < n; k++) {
            free(slots[k]->reason);
            set_result(slots[k], R_FATAL, rc);
        }
    }
}

/* After the chunk's lookup: the certificate of a CSR not issued before (a slot
 * without a result), then the file of a new or existing one. Frees csr. */
static void finish_one(run_t *r, size_t i, slot_t *s, smki_csr *csr)
{
    int rc;
    if (csr && s->kind == 0) {
        smki_error_clear();
        smki_issue_req req = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, r->o->not_before, 0};
        rc = smki_ca_build(r->is, &req, &s->cert);
        if (rc == 0) set_result(s, R_NEW, 0);
        else set_result(s, is_fatal(rc) ? R_FATAL : R_REFUSED, rc);
    }
    smki_csr_free(csr);
    if (r->out_dir && (s->kind == R_NEW || s->kind == R_EXISTING) && (rc = prepare_file(r, i, s)) < 0) {
        smki_error_wrap("writing the certificate's file ahead of its commit");
        set_result(s, R_FATAL, rc);
    }
}

/* A worker's chunk of consecutive items, each slot made ready as it is done. */
static void handle_chunk(run_t *r, size_t first, size_t count)
{
    smki_csr *csrs[CHUNK];
    slot_t *look[CHUNK];
    size_t nlook = 0;
    for (size_t k = 0; k < count; k++) {
        slot_t *s = &r->slots[(first + k) % r->window];
        csrs[k] = intake(r, first + k, s);
        if (csrs[k]) look[nlook++] = s;
    }
    if (nlook) lookup_chunk(r, look, nlook);
    int stop = 0;
    for (size_t k = 0; k < count; k++) {
        if (stop) { /* the run stopped: no one takes the rest */
            smki_csr_free(csrs[k]);
            continue;
        }
        slot_t *s = &r->slots[(first + k) % r->window];
        finish_one(r, first + k, s, csrs[k]);
        pthread_mutex_lock(&r->mu);
        s->ready = 1;
        stop = r->stop;
        pthread_cond_broadcast(&r->cv_done);
        pthread_mutex_unlock(&r->mu);
    }
}

static void *worker(void *arg)
{
    run_t *r = arg;
    size_t n = r->in->n;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (!r->stop && r->next < n && r->next >= r->base + r->window) pthread_cond_wait(&r->cv_work, &r->mu);
        if (r->stop || r->next >= n) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        size_t first = r->next, count = n - first;
        if (count > r->base + r->window - first) count = r->base + r->window - first;
        if (count > CHUNK) count = CHUNK;
        r->next += count;
        pthread_mutex_unlock(&r->mu);
        handle_chunk(r, first, count);
    }
    return NULL;
}

/* The in-run index of CSR hashes: the index of the first item with this hash, or
 * (size_t)-1 after adding item. */
static size_t seen_add(run_t *r, const uint8_t hash[HASH_LEN], size_t item)
{
    size_t mask = r->seen_cap - 1, h = 0;
    memcpy(&h, hash, sizeof h);
    for (size_t k = h & mask;; k = (k + 1) & mask) {
        uint8_t *e = r->seen + k * (HASH_LEN + 8);
        uint64_t stored;
        memcpy(&stored, e + HASH_LEN, 8);
        if (stored == 0) { /* empty: item+1 is stored, so 0 never names an item */
            memcpy(e, hash, HASH_LEN);
            stored = (uint64_t)item + 1;
            memcpy(e + HASH_LEN, &stored, 8);
            return (size_t)-1;
        }
        if (memcmp(e, hash, HASH_LEN) == 0) return (size_t)(stored - 1);
    }
}

/* Choose the certificate's file name (names claimed earlier in this group count as
 * taken) and drop its temporary if the file is there already. */
static int place_file(run_t *r, size_t k)
{
    pending_t *p = &r->pending[k];
    const smki_cert *c = &p->cert;
    smki_ca_batch_item *item = &r->rep->items[p->item];
    char pem[4096], serial[2 * SMKI_SERIAL_LEN + 1];
    size_t pem_len;
    GUARD(smki_cert_to_pem(c->der, c->der_len, pem, sizeof pem, &pem_len));
    base_name(c, item->file, sizeof item->file);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 1) { /* the name holds another certificate: never replace it */
            smki_hex_encode(c->serial, SMKI_SERIAL_LEN, serial, 0);
            snprintf(item->file + strlen(item->file) - 4, sizeof item->file - (strlen(item->file) - 4), "-%s.pem",
                     serial);
            item->name_clash = 1;
            r->rep->name_clashes++;
        }
        int state = 0;
        for (size_t j = 0; j < k && !state; j++)
            if (strcmp(r->rep->items[r->pending[j].item].file, item->file) == 0) state = 2;
        if (!state) GUARD(state = file_state(r->dirfd, item->file, pem, pem_len, r->out_dir));
        if (state == 1) {
            if (p->has_tmp) unlinkat(r->dirfd, p->tmp, 0);
            p->has_tmp = 0;
            return 0;
        }
        if (state == 0 || attempt == 1) break; /* free, or ours by the serial's name */
    }
    if (!p->has_tmp) GUARD(write_temporary(r->dirfd, p->item, pem, pem_len, r->out_dir, p->tmp));
    p->has_tmp = 1;
    return 0;
}

/* Make the group's temporaries durable in one sync, then rename them into place. */
static int place_group(run_t *r)
{
    size_t temps = 0;
    for (size_t k = 0; k < r->npending; k++) temps += r->pending[k].has_tmp;
    if (!temps) return 0;
    ENSURE(syncfs(r->dirfd) == 0, SMKI_E_IO, "cannot sync the file system of %s: %s", r->out_dir, strerror(errno));
    for (size_t k = 0; k < r->npending; k++) {
        pending_t *p = &r->pending[k];
        if (!p->has_tmp) continue;
        const char *name = r->rep->items[p->item].file;
        ENSURE(renameat(r->dirfd, p->tmp, r->dirfd, name) == 0, SMKI_E_IO, "cannot move %s/%s into place: %s",
               r->out_dir, name, strerror(errno));
        p->has_tmp = 0;
        r->rep->files_written++;
    }
    ENSURE(fsync(r->dirfd) == 0, SMKI_E_IO, "cannot sync the folder %s: %s", r->out_dir, strerror(errno));
    return 0;
}

static void drop_temporaries(run_t *r)
{
    for (size_t k = 0; k < r->npending; k++)
        if (r->pending[k].has_tmp) {
            unlinkat(r->dirfd, r->pending[k].tmp, 0);
            r->pending[k].has_tmp = 0;
        }
}

static void report_progress(run_t *r)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    r->rep->seconds = (double)(t.tv_sec - r->t0.tv_sec) + (double)(t.tv_nsec - r->t0.tv_nsec) / 1e9;
    if (r->o->progress) r->o->progress(r->rep, r->o->progress_arg);
}

/* In the group's transaction: the CA's gate (its certificates were queued without it,
 * checked here once per group), then the caller's step with the new certificates. */
static int group_txn(smki_txn *t, void *arg)
{
    run_t *r = arg;
    GUARD(smki_ca_write_allowed(t, r->db, "recording a certificate"));
    if (!r->o->on_group) return 0;
    size_t n = 0;
    for (size_t k = 0; k < r->npending; k++)
        if (r->pending[k].is_new) r->newc[n++] = &r->pending[k].cert;
    return r->o->on_group(t, r->newc, n, r->o->gate_arg);
}

/* Commit the group, then (only then) write its files. */
static int commit_group(run_t *r)
{
    if (r->npending == 0) return 0;
    if (r->pending_new) {
        int rc = smki_batch_flush_with(r->batch, group_txn, r);
        if (rc < 0) {
            r->npending = r->pending_new = 0; /* not recorded: left not done, a re-run issues them */
            return rc;
        }
        r->rep->commits++;
    }
    for (size_t k = 0; k < r->npending; k++) {
        pending_t *p = &r->pending[k];
        smki_ca_batch_item *item = &r->rep->items[p->item];
        item->outcome = p->is_new ? SMKI_BATCH_ISSUED : SMKI_BATCH_EXISTING;
        if (p->is_new) r->rep->issued++;
        else r->rep->existing++;
        r->rep->done++;
        int rc = r->out_dir ? place_file(r, k) : 0;
        if (rc < 0) {
            drop_temporaries(r);
            r->npending = r->pending_new = 0;
            return smki_error_wrap("the certificate of %s is in the store but its file is not written",
                                   r->in->items[p->item].name);
        }
    }
    int rc = r->out_dir ? place_group(r) : 0;
    if (rc < 0) {
        drop_temporaries(r);
        r->npending = r->pending_new = 0;
        return smki_error_wrap("certificates are in the store but not all their files are written");
    }
    r->npending = r->pending_new = 0;
    report_progress(r);
    return 0;
}

/* One result, in input order, on the committing thread. */
static int take_result(run_t *r, size_t i, slot_t *s)
{
    smki_ca_batch_item *item = &r->rep->items[i];
    if (s->kind == R_FATAL) {
        int code = s->code;
        return SMKI_FAIL(code, "%s: %s", r->in->items[i].name, s->reason ? s->reason : smki_error_name(code));
    }
    if (s->kind == R_REFUSED) {
        item->outcome = SMKI_BATCH_REFUSED;
        item->code = s->code;
        item->reason = s->reason;
        s->reason = NULL;
        r->rep->refused++;
        r->rep->done++;
        return 0;
    }
    item->has_cert = 1;
    item->eui = s->cert.eui;
    item->usage = s->cert.usage;
    memcpy(item->serial, s->cert.serial, SMKI_SERIAL_LEN);
    size_t first = seen_add(r, s->hash, i);
    if (first != (size_t)-1) { /* the same CSR again: the first one's certificate, which may be pending */
        if (s->has_tmp) unlinkat(r->dirfd, s->tmp, 0);
        s->has_tmp = 0;
        const smki_ca_batch_item *f = &r->rep->items[first];
        item->outcome = SMKI_BATCH_DUPLICATE;
        item->duplicate_of = first;
        item->eui = f->eui;
        item->usage = f->usage;
        memcpy(item->serial, f->serial, SMKI_SERIAL_LEN);
        r->rep->duplicate++;
        r->rep->done++;
        return 0;
    }
    if (s->kind == R_NEW) {
        uint8_t key[CSR_KEY_LEN], val[CA_CERT_KEY_LEN];
        csr_key(r->issuer_ski, s->hash, key);
        smki_ca_cert_key(&s->cert, val);
        /* One group holds the certificate, its indices and this entry: all or none. */
        GUARD(smki_ca_cert_queue_ungated(r->batch, r->db, &s->cert)); /* gated in group_txn */
        GUARD(smki_batch_put(r->batch, r->by_csr, key, sizeof key, val, sizeof val, SMKI_PUT_NOOVERWRITE));
        r->pending_new++;
    }
    r->pending[r->npending].item = i;
    r->pending[r->npending].is_new = s->kind == R_NEW;
    r->pending[r->npending].has_tmp = s->has_tmp;
    memcpy(r->pending[r->npending].tmp, s->tmp, TMP_NAME_MAX);
    s->has_tmp = 0;
    r->pending[r->npending].cert = s->cert;
    if (++r->npending == r->group) GUARD(commit_group(r));
    return 0;
}

static int committer(run_t *r)
{
    size_t n = r->in->n;
    for (size_t i = 0; i < n; i++) {
        slot_t *s = &r->slots[i % r->window];
        pthread_mutex_lock(&r->mu);
        while (!s->ready) pthread_cond_wait(&r->cv_done, &r->mu);
        pthread_mutex_unlock(&r->mu);
        int rc = take_result(r, i, s);
        free(s->reason);
        s->reason = NULL;
        pthread_mutex_lock(&r->mu);
        s->ready = 0;
        r->base = i + 1;
        pthread_cond_broadcast(&r->cv_work);
        pthread_mutex_unlock(&r->mu);
        if (rc < 0) return rc;
    }
    return commit_group(r);
}

static int issuer_ski_of(const smki_ca_issuer *is, uint8_t ski[SMKI_KEYID_LEN])
{
    size_t len;
    const uint8_t *der = smki_ca_issuer_cert(is, &len);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    ENSURE_SSL(x, SMKI_E_INTERNAL, "the device CA's certificate does not decode");
    const ASN1_OCTET_STRING *id = X509_get0_subject_key_id(x);
    int ok = id && ASN1_STRING_length(id) == SMKI_KEYID_LEN;
    if (ok) memcpy(ski, ASN1_STRING_get0_data(id), SMKI_KEYID_LEN);
    X509_free(x);
    ENSURE(ok, SMKI_E_INTERNAL, "the device CA's certificate has no %d-octet subjectKeyIdentifier", SMKI_KEYID_LEN);
    return 0;
}

static int open_out(run_t *r, const smki_ca_batch_input *in)
{
    GUARD(smki_mkdirs(r->out_dir, 0755));
    r->dirfd = open(r->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ENSURE(r->dirfd >= 0, SMKI_E_IO, "cannot open the output folder %s: %s", r->out_dir, strerror(errno));
    struct stat st;
    ENSURE(fstat(r->dirfd, &st) == 0, SMKI_E_IO, "cannot stat %s: %s", r->out_dir, strerror(errno));
    ENSURE(!(in->is_dir && st.st_dev == in->dev && st.st_ino == in->ino), SMKI_E_USAGE,
           "the output folder %s is the input folder: certificates would be read as CSRs next time", r->out_dir);
    return sweep_temporaries(r->dirfd, r->out_dir, 0);
}

int smki_ca_batch_run(smki_ca_issuer *is, smki_ca_db *db, const smki_ca_batch_input *in,
                      const smki_ca_batch_opts *o, smki_ca_batch_report **out)
{
    ENSURE(is && db && in && o && out, SMKI_E_USAGE, "smki_ca_batch_run: missing argument");
    *out = NULL;
    ENSURE(smki_ca_issuer_profile(is) == SMKI_PROFILE_SMKI_DCA, SMKI_E_USAGE,
           "a batch is issued by a device CA, not by a %s", smki_profile_get(smki_ca_issuer_profile(is))->name);
    run_t *r = calloc(1, sizeof *r);
    ENSURE(r, SMKI_E_NOMEM, "out of memory");
    int rc = 0, locked = 0;
    pthread_t threads[MAX_THREADS];
    size_t started = 0;
    r->is = is;
    r->db = db;
    r->in = in;
    r->o = o;
    r->out_dir = o->out_dir;
    r->dirfd = -1;
    r->group = o->group ? o->group : DEFAULT_GROUP;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv_work, NULL);
    pthread_cond_init(&r->cv_done, NULL);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nthreads = o->threads ? o->threads : (size_t)(cores > 0 ? cores : 1);
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (nthreads > in->n) nthreads = in->n ? in->n : 1;
    r->window = 2 * r->group + 8 * nthreads;

    r->rep = calloc(1, sizeof *r->rep);
    ENSURE_GOTO(r->rep, SMKI_E_NOMEM, out, "out of memory");
    r->rep->total = in->n;
    r->rep->items = calloc(in->n ? in->n : 1, sizeof *r->rep->items);
    ENSURE_GOTO(r->rep->items, SMKI_E_NOMEM, out, "out of memory for a report of %zu CSRs", in->n);
    *out = r->rep;

    GUARD_GOTO(issuer_ski_of(is, r->issuer_ski), out);
    GUARD_GOTO(smki_store_db(db->store, "by_csr", 0, &r->by_csr), out);
    GUARD_GOTO(smki_store_lock_exclusive(db->store), out);
    locked = 1;
    if (r->out_dir) GUARD_GOTO(open_out(r, in), out);
    memcpy(r->rep->issuer_ski, r->issuer_ski, SMKI_KEYID_LEN);

    for (r->seen_cap = 16; r->seen_cap < 2 * in->n; r->seen_cap *= 2) {}
    r->seen = calloc(r->seen_cap, HASH_LEN + 8);
    r->slots = calloc(r->window, sizeof *r->slots);
    r->pending = malloc(r->group * sizeof *r->pending);
    r->newc = malloc(r->group * sizeof *r->newc);
    ENSURE_GOTO(r->seen && r->slots && r->pending && r->newc, SMKI_E_NOMEM, out, "out of memory for a batch of %zu CSRs", in->n);
    /* Groups are committed here, whole certificates at a time, never by the batch
     * itself part-way through one certificate's records. */
    GUARD_GOTO(smki_batch_begin(db->store, SIZE_MAX / 2, NULL, NULL, &r->batch), out);

    report_progress(r);
    for (; started < nthreads && in->n; started++)
        ENSURE_GOTO(pthread_create(&threads[started], NULL, worker, r) == 0, SMKI_E_INTERNAL, stop,
                    "cannot start a worker thread");
    rc = committer(r);
stop:
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    for (size_t k = 0; k < started; k++) pthread_join(threads[k], NULL);
    if (rc < 0) drop_temporaries(r);
    if (rc < 0 && r->dirfd >= 0) sweep_temporaries(r->dirfd, r->out_dir, 1); /* written ahead of the stop */
    if (rc == 0) report_progress(r);
out:
    /* Duplicates name the first one's file, known once it is placed. */
    for (size_t i = 0; r->rep && i < in->n; i++) {
        smki_ca_batch_item *it = &r->rep->items[i];
        if (it->outcome == SMKI_BATCH_DUPLICATE) {
            memcpy(it->file, r->rep->items[it->duplicate_of].file, sizeof it->file);
        }
    }
    for (size_t k = 0; r->slots && k < r->window; k++) free(r->slots[k].reason);
    smki_batch_abort(r->batch); /* everything wanted was flushed; what is left was refused */
    if (r->dirfd >= 0) close(r->dirfd);
    if (locked) smki_store_unlock(db->store);
    free(r->seen);
    free(r->slots);
    free(r->pending);
    free(r->newc);
    pthread_cond_destroy(&r->cv_work);
    pthread_cond_destroy(&r->cv_done);
    pthread_mutex_destroy(&r->mu);
    if (rc < 0 && !*out) smki_ca_batch_report_free(r->rep);
    free(r);
    return rc;
}

void smki_ca_batch_report_free(smki_ca_batch_report *r)
{
    if (!r) return;
    for (size_t i = 0; r->items && i < r->total; i++) free(r->items[i].reason);
    free(r->items);
    free(r);
}
