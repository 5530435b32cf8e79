/* The counters a receiver has seen, per (originator, recipient, CRA flag): the state a
 * User's system keeps to refuse a replayed or reordered response or alert. A small
 * text file under an exclusive lock; lines sorted on save so the file diffs well. */
#include "gbcs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

typedef struct {
    uint8_t originator[8], recipient[8];
    uint8_t cra;
    uint64_t counter;
} mark;

struct smki_gbcs_counters {
    mark *m;
    size_t n, cap;
    char *path;  /* NULL when parsed from memory */
    int lock_fd; /* -1 when not locked */
};

static int key_cmp(const mark *a, const mark *b)
{
    int r = memcmp(a->originator, b->originator, 8);
    if (!r) r = memcmp(a->recipient, b->recipient, 8);
    if (!r) r = (int)a->cra - (int)b->cra;
    return r;
}

static int by_key(const void *a, const void *b)
{
    return key_cmp(a, b);
}

static mark *find(const smki_gbcs_counters *c, const mark *k)
{
    return c->n ? bsearch(k, c->m, c->n, sizeof *c->m, by_key) : NULL;
}

static void key_of(const smki_gbcs_signing *g, mark *k)
{
    memcpy(k->originator, g->originator, 8);
    memcpy(k->recipient, g->recipient, 8);
    k->cra = g->cra;
    k->counter = g->counter;
}

static smki_gbcs_counters *counters_new(void)
{
    smki_gbcs_counters *c = calloc(1, sizeof *c);
    if (c) c->lock_fd = -1;
    return c;
}

void smki_gbcs_counters_free(smki_gbcs_counters *c)
{
    if (!c) return;
    if (c->lock_fd >= 0) close(c->lock_fd); /* releases the flock */
    free(c->m);
    free(c->path);
    free(c);
}

size_t smki_gbcs_counters_count(const smki_gbcs_counters *c)
{
    return c ? c->n : 0;
}

/* Insert k (not present), keeping the array sorted. */
static int insert(smki_gbcs_counters *c, const mark *k)
{
    ENSURE(c->n < SMKI_GBCS_COUNTERS_MAX, SMKI_E_REFUSED, "counter state holds %u keys already: the limit",
           SMKI_GBCS_COUNTERS_MAX);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        mark *m = realloc(c->m, cap * sizeof *m);
        ENSURE(m, SMKI_E_NOMEM, "out of memory");
        c->m = m;
        c->cap = cap;
    }
    size_t at = c->n;
    while (at > 0 && key_cmp(&c->m[at - 1], k) > 0) at--;
    memmove(&c->m[at + 1], &c->m[at], (c->n - at) * sizeof *c->m);
    c->m[at] = *k;
    c->n++;
    return 0;
}

/* ---- Parsing: ORIGINATOR RECIPIENT CRA COUNTER ------------------------------------------ */
static int field(smki_cursor_t *line, const uint8_t **p, size_t *n)
{
    while (line->left && (*line->p == ' ' || *line->p == '\t')) smki_cur_skip(line, 1);
    size_t k = 0;
    while (k < line->left && line->p[k] != ' ' && line->p[k] != '\t') k++;
    *n = k;
    return smki_cur_take(line, k, p);
}

static int parse_title(const uint8_t *p, size_t n, uint8_t out[8])
{
    size_t len = 0;
    if (n != 16 || smki_hex_decode((const char *)p, n, out, 8, &len) < 0 || len != 8) {
        smki_error_clear();
        return -1;
    }
    return 0;
}

static int parse_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20) return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_line(smki_gbcs_counters *c, smki_cursor_t line, const char *name, size_t lineno)
{
    const uint8_t *f[5];
    size_t n[5];
    for (int i = 0; i < 5; i++) GUARD(field(&line, &f[i], &n[i]));
    if (n[0] == 0 || f[0][0] == '#') return 0; /* blank or comment */
    mark k;
    uint64_t cra = 0;
    ENSURE(n[4] == 0 && n[3] > 0, SMKI_E_INPUT, "%s:%zu: give ORIGINATOR RECIPIENT CRA COUNTER", name, lineno);
    ENSURE(parse_title(f[0], n[0], k.originator) == 0, SMKI_E_INPUT, "%s:%zu: originator is not 16 hex digits", name,
           lineno);
    ENSURE(parse_title(f[1], n[1], k.recipient) == 0, SMKI_E_INPUT, "%s:%zu: recipient is not 16 hex digits", name,
           lineno);
    ENSURE(parse_u64(f[2], n[2], &cra) == 0 && cra >= 1 && cra <= 3, SMKI_E_INPUT, "%s:%zu: CRA flag is not 1, 2 or 3",
           name, lineno);
    k.cra = (uint8_t)cra;
    ENSURE(parse_u64(f[3], n[3], &k.counter) == 0, SMKI_E_INPUT, "%s:%zu: counter is not a decimal number", name,
           lineno);
    ENSURE(!find(c, &k), SMKI_E_INPUT, "%s:%zu: the same originator, recipient and CRA flag twice", name, lineno);
    return insert(c, &k);
}

int smki_gbcs_counters_parse(const uint8_t *data, size_t len, const char *name, smki_gbcs_counters **out)
{
    *out = NULL;
    smki_gbcs_counters *c = counters_new();
    ENSURE(c, SMKI_E_NOMEM, "out of memory");
    smki_cursor_t cur = smki_cursor(data, len);
    size_t lineno = 0;
    int rc = 0;
    while (cur.left) {
        size_t k = 0;
        while (k < cur.left && cur.p[k] != '\n') k++;
        smki_cursor_t line;
        GUARD_GOTO(smki_cur_sub(&cur, k, &line), fail);
        if (cur.left) smki_cur_skip(&cur, 1);
        lineno++;
        if (line.left && line.p[line.left - 1] == '\r') line.left--;
        GUARD_GOTO(parse_line(c, line, name, lineno), fail);
    }
    *out = c;
    return 0;
fail:
    smki_gbcs_counters_free(c);
    return rc;
}

int smki_gbcs_counters_open(const char *path, smki_gbcs_counters **out)
{
    *out = NULL;
    char lock[4096];
    ENSURE((size_t)snprintf(lock, sizeof lock, "%s.lock", path) < sizeof lock, SMKI_E_USAGE, "path too long: %s",
           path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot open the lock %s: %s", lock, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        ENSURE(e != EWOULDBLOCK, SMKI_E_LOCKED, "counter state %s is in use by another process (lock %s)", path, lock);
        return SMKI_FAIL(SMKI_E_IO, "cannot lock %s: %s", lock, strerror(e));
    }
    uint8_t *data = NULL;
    size_t len = 0;
    smki_gbcs_counters *c = NULL;
    int rc = 0;
    if (access(path, F_OK) == 0) {
        GUARD_GOTO(smki_file_read(path, (size_t)SMKI_GBCS_COUNTERS_MAX * 64, &data, &len), fail);
        GUARD_GOTO(smki_gbcs_counters_parse(data, len, path, &c), fail);
    } else {
        c = counters_new();
        ENSURE_GOTO(c, SMKI_E_NOMEM, fail, "out of memory");
    }
    c->path = strdup(path);
    ENSURE_GOTO(c->path, SMKI_E_NOMEM, fail, "out of memory");
    c->lock_fd = fd;
    free(data);
    *out = c;
    return 0;
fail:
    free(data);
    smki_gbcs_counters_free(c);
    close(fd);
    return rc;
}

int smki_gbcs_counters_check(const smki_gbcs_counters *c, const smki_gbcs_signing *g, const char **reason)
{
    *reason = "";
    mark k;
    key_of(g, &k);
    const mark *m = find(c, &k);
    if (!m || g->counter > m->counter) return 0;
    char o[SMKI_EUI64_TEXT_MAX], r[SMKI_EUI64_TEXT_MAX];
    smki_eui64_t e = smki_gbcs_eui(g->originator);
    smki_eui64_format(&e, SMKI_EUI64_PLAIN, o);
    e = smki_gbcs_eui(g->recipient);
    smki_eui64_format(&e, SMKI_EUI64_PLAIN, r);
    *reason = g->counter == m->counter ? "counter.replay" : "counter.reordered";
    return SMKI_FAIL(SMKI_E_REFUSED, "%s counter %llu from %s to %s: %s the last one seen (%llu)",
                     smki_gbcs_cra_name(g->cra), (unsigned long long)g->counter, o, r,
                     g->counter == m->counter ? "replays" : "is below", (unsigned long long)m->counter);
}

int smki_gbcs_counters_note(smki_gbcs_counters *c, const smki_gbcs_signing *g)
{
    mark k;
    key_of(g, &k);
    mark *m = find(c, &k);
    if (!m) return insert(c, &k);
    if (g->counter > m->counter) m->counter = g->counter;
    return 0;
}

int smki_gbcs_counters_save(const smki_gbcs_counters *c)
{
    ENSURE(c->path, SMKI_E_USAGE, "counter state parsed from memory has no file to save to");
    size_t cap = 96 + c->n * 64;
    char *buf = malloc(cap);
    ENSURE(buf, SMKI_E_NOMEM, "out of memory");
    size_t at = (size_t)snprintf(buf, cap, "# smki gbcs verify counters: ORIGINATOR RECIPIENT CRA COUNTER\n");
    for (size_t i = 0; i < c->n; i++) {
        char o[17], r[17];
        smki_hex_encode(c->m[i].originator, 8, o, 0);
        smki_hex_encode(c->m[i].recipient, 8, r, 0);
        at += (size_t)snprintf(buf + at, cap - at, "%s %s %u %llu\n", o, r, c->m[i].cra,
                               (unsigned long long)c->m[i].counter);
    }
    int rc = smki_file_write_atomic(c->path, buf, at, 0600, 0);
    free(buf);
    return rc;
}
