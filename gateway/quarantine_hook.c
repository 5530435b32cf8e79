/* The quarantine notification hook: an operator's command run once for each message the
 * gateway quarantines (anomalous Service Requests are notified within 30 minutes), with
 * the quarantine record as JSON on its standard input. The record is committed before
 * the hook runs, so a hook that fails, hangs or is missing loses nothing: its outcome is
 * kept per record and counted, and `smki_gwq_notify_pending` retries the failed ones.
 * gw.meta: "qn" id(8) -> state(1) attempts(4); "qn.ok", "qn.failed", "quar.count" -> u64. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gateway_private.h"

extern char **environ;

#define DEFAULT_HOOK_TIMEOUT 30u

static const char KEY_OK[] = "qn.ok", KEY_FAILED[] = "qn.failed", KEY_QUARANTINED[] = "quar.count";

/* ---- Counters and per-record state in gw.meta ------------------------------------------------- */
static int meta_u64(smki_txn *t, const gw_dbs *d, const char *key, uint64_t *v)
{
    const void *p;
    size_t n;
    *v = 0;
    int rc = smki_txn_get(t, d->meta, key, strlen(key), &p, &n);
    if (rc == SMKI_E_NOTFOUND) return 0;
    GUARD(rc);
    ENSURE(n == 8, SMKI_E_CORRUPT, "gateway counter %s of %zu octets", key, n);
    *v = smki_get_be64(p);
    return 0;
}

static int gw_meta_add(smki_txn *t, const gw_dbs *d, const char *key, uint64_t delta)
{
    uint64_t v;
    GUARD(meta_u64(t, d, key, &v));
    uint8_t b[8];
    smki_put_be64(b, v + delta);
    return smki_txn_put(t, d->meta, key, strlen(key), b, 8, 0);
}

int smki_gw_quarantine_counted(smki_txn *t, const gw_dbs *d)
{
    return gw_meta_add(t, d, KEY_QUARANTINED, 1);
}

static void state_key(uint8_t k[10], uint64_t id)
{
    k[0] = 'q';
    k[1] = 'n';
    smki_put_be64(k + 2, id);
}

int smki_gw_notify_state_txn(smki_txn *t, const gw_dbs *d, uint64_t id, int *state, uint32_t *attempts)
{
    uint8_t k[10];
    state_key(k, id);
    const void *v;
    size_t n;
    *state = SMKI_GWQ_NOTIFY_NONE;
    *attempts = 0;
    int rc = smki_txn_get(t, d->meta, k, sizeof k, &v, &n);
    if (rc == SMKI_E_NOTFOUND) return 0;
    GUARD(rc);
    ENSURE(n == 5, SMKI_E_CORRUPT, "notification state of quarantine record %llu", (unsigned long long)id);
    *state = ((const uint8_t *)v)[0];
    *attempts = smki_get_be32((const uint8_t *)v + 1);
    return 0;
}

typedef struct {
    gw_dbs d;
    uint64_t id;
    int ok;
    smki_gwq_stats stats;
} note_op;

static int note_txn(smki_txn *t, void *arg)
{
    note_op *op = arg;
    int state;
    uint32_t attempts;
    GUARD(smki_gw_notify_state_txn(t, &op->d, op->id, &state, &attempts));
    uint8_t k[10], v[5];
    state_key(k, op->id);
    v[0] = (uint8_t)(op->ok ? SMKI_GWQ_NOTIFY_OK : SMKI_GWQ_NOTIFY_FAILED);
    smki_put_be32(v + 1, attempts + 1);
    GUARD(smki_txn_put(t, op->d.meta, k, sizeof k, v, sizeof v, 0));
    return gw_meta_add(t, &op->d, op->ok ? KEY_OK : KEY_FAILED, 1);
}

static int stats_txn(smki_txn *t, void *arg)
{
    note_op *op = arg;
    GUARD(meta_u64(t, &op->d, KEY_QUARANTINED, &op->stats.quarantined));
    GUARD(meta_u64(t, &op->d, KEY_OK, &op->stats.notified));
    return meta_u64(t, &op->d, KEY_FAILED, &op->stats.notify_failed);
}

int smki_gwq_stats_get(smki_store *s, smki_gwq_stats *out)
{
    note_op op;
    memset(&op, 0, sizeof op);
    GUARD(smki_gw_dbs_get(s, &op.d));
    GUARD(smki_store_read(s, stats_txn, &op));
    *out = op.stats;
    return 0;
}

/* ---- The record as JSON ---------------------------------------------------------------------- */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_str(sbuf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

int smki_gwq_record_json(const smki_gwq_record *q, char **out)
{
    *out = NULL;
    sbuf b = {0};
    char num[64], oe[SMKI_EUI64_TEXT_MAX], te[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&q->originator, SMKI_EUI64_HYPHEN, oe);
    smki_eui64_format(&q->target, SMKI_EUI64_HYPHEN, te);
    gw_apdu a;
    const char *kind = smki_gw_apdu_parse(q->msg, q->msg_len, &a) == 0 ? smki_gbcs_cra_name(a.cra) : "unknown";
    smki_error_clear();
    snprintf(num, sizeof num, "{\"id\":%llu,\"at\":%lld,", (unsigned long long)q->id, (long long)q->at);
    puts_(&b, num);
    puts_(&b, "\"kind\":");
    put_str(&b, kind);
    puts_(&b, ",\"reason\":");
    put_str(&b, q->reason);
    puts_(&b, ",\"detail\":");
    put_str(&b, q->detail);
    puts_(&b, ",\"originator\":");
    put_str(&b, oe);
    puts_(&b, ",\"target\":");
    put_str(&b, te);
    snprintf(num, sizeof num, ",\"message_code\":\"%04X\",\"counter\":%llu,\"message\":\"", q->code,
             (unsigned long long)q->counter);
    puts_(&b, num);
    char *hex = malloc(2 * q->msg_len + 1);
    if (!hex) b.failed = 1;
    if (hex) {
        smki_hex_encode(q->msg, q->msg_len, hex, 1);
        put(&b, hex, 2 * q->msg_len);
        free(hex);
    }
    puts_(&b, "\"}\n");
    if (b.failed) {
        free(b.p);
        return SMKI_FAIL(SMKI_E_NOMEM, "quarantine record %llu as JSON", (unsigned long long)q->id);
    }
    *out = b.p;
    return 0;
}

/* ---- Running the hook --------------------------------------------------------------------------- */
/* /bin/sh -c COMMAND, stdin the JSON (a temporary file, already unlinked: a hook that
 * does not read it cannot block us), SMKI_QUARANTINE_ID in its environment; killed after
 * the timeout. 0 when it exited 0; SMKI_E_REFUSED naming how it ended otherwise. */
static int run_hook(const smki_gwq_hook *h, uint64_t id, const char *json)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int pl = snprintf(path, sizeof path, "%s/smki-quarantine-XXXXXX", dir && *dir ? dir : "/tmp");
    if (pl < 0 || (size_t)pl >= sizeof path) snprintf(path, sizeof path, "/tmp/smki-quarantine-XXXXXX");
    int fd = mkstemp(path);
    ENSURE(fd >= 0, SMKI_E_IO, "quarantine hook: cannot make a temporary file: %s", strerror(errno));
    unlink(path);
    size_t n = strlen(json), off = 0;
    while (off < n) {
        ssize_t w = write(fd, json + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            return SMKI_FAIL(SMKI_E_IO, "quarantine hook: writing its input: %s", strerror(errno));
        }
        off += (size_t)w;
    }
    lseek(fd, 0, SEEK_SET);

    /* Environment: ours plus SMKI_QUARANTINE_ID. */
    size_t nenv = 0;
    while (environ && environ[nenv]) nenv++;
    char **env = calloc(nenv + 2, sizeof *env);
    char idvar[48];
    snprintf(idvar, sizeof idvar, "SMKI_QUARANTINE_ID=%llu", (unsigned long long)id);
    if (!env) {
        close(fd);
        return SMKI_FAIL(SMKI_E_NOMEM, "quarantine hook environment");
    }
    size_t e = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "SMKI_QUARANTINE_ID=", 19) != 0 && strncmp(environ[i], "SMKI_PIN=", 9) != 0 &&
            strncmp(environ[i], "SMKI_SO_PIN=", 12) != 0)
            env[e++] = environ[i]; /* never the token's PINs */
    env[e++] = idvar;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 0);
    posix_spawn_file_actions_addclose(&fa, fd);
    char *argv[] = {"/bin/sh", "-c", (char *)h->command, NULL};
    pid_t pid;
    int src = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fd);
    ENSURE(src == 0, SMKI_E_IO, "quarantine hook: cannot start /bin/sh: %s", strerror(src));

    unsigned timeout = h->timeout_seconds ? h->timeout_seconds : DEFAULT_HOOK_TIMEOUT;
    struct timespec step = {0, 10 * 1000 * 1000};
    int status = 0;
    for (unsigned long waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return SMKI_FAIL(SMKI_E_IO, "quarantine hook: waitpid: %s", strerror(errno));
        if (waited >= 1000ul * timeout) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return SMKI_FAIL(SMKI_E_REFUSED, "quarantine hook did not finish within %u s: killed", timeout);
        }
        nanosleep(&step, NULL);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status))
        return SMKI_FAIL(SMKI_E_REFUSED, "quarantine hook exited %d", WEXITSTATUS(status));
    return SMKI_FAIL(SMKI_E_REFUSED, "quarantine hook ended by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

int smki_gwq_notify(smki_store *s, const smki_gwq_hook *h, uint64_t id, int *ok)
{
    *ok = 0;
    ENSURE(h && h->command && *h->command, SMKI_E_USAGE, "no quarantine hook is configured");
    smki_gwq_record q;
    GUARD(smki_gwq_get(s, id, &q));
    char *json = NULL;
    int rc = smki_gwq_record_json(&q, &json);
    smki_gwq_clear(&q);
    GUARD(rc);
    rc = run_hook(h, id, json);
    free(json);
    if (rc < 0 && rc != SMKI_E_REFUSED && rc != SMKI_E_IO) return rc;
    char why[SMKI_ERR_MSG_MAX] = "";
    if (rc < 0) snprintf(why, sizeof why, "%s", smki_error_msg());
    note_op op;
    memset(&op, 0, sizeof op);
    op.id = id;
    op.ok = rc == 0;
    GUARD(smki_gw_dbs_get(s, &op.d));
    GUARD(smki_store_write(s, note_txn, &op));
    *ok = op.ok;
    if (!op.ok) return SMKI_FAIL(SMKI_E_REFUSED, "quarantine record %llu: %s", (unsigned long long)id, why);
    return 0;
}

/* ---- Retrying the ones not notified -------------------------------------------------------------- */
typedef struct {
    gw_dbs d;
    uint64_t *ids;
    size_t n, cap;
    int failed;
} pending_op;

static int pending_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    pending_op *op = arg;
    ENSURE(klen == 8, SMKI_E_CORRUPT, "quarantine key of %zu octets", klen);
    if (op->n == op->cap) {
        size_t cap = op->cap ? 2 * op->cap : 16;
        uint64_t *ids = realloc(op->ids, cap * sizeof *ids);
        ENSURE(ids, SMKI_E_NOMEM, "pending notifications");
        op->ids = ids;
        op->cap = cap;
    }
    op->ids[op->n++] = smki_get_be64(key);
    return 0;
}

static int pending_txn(smki_txn *t, void *arg)
{
    pending_op *op = arg;
    op->n = 0;
    GUARD(smki_txn_scan(t, op->d.quar, NULL, 0, pending_scan, op));
    /* Keep those held and not notified yet. */
    size_t k = 0;
    for (size_t i = 0; i < op->n; i++) {
        int state;
        uint32_t attempts;
        GUARD(smki_gw_notify_state_txn(t, &op->d, op->ids[i], &state, &attempts));
        if (state != SMKI_GWQ_NOTIFY_OK) op->ids[k++] = op->ids[i];
    }
    op->n = k;
    return 0;
}

int smki_gwq_notify_pending(smki_store *s, const smki_gwq_hook *h, size_t *fired, size_t *failed)
{
    *fired = *failed = 0;
    ENSURE(h && h->command && *h->command, SMKI_E_USAGE, "no quarantine hook is configured");
    pending_op op;
    memset(&op, 0, sizeof op);
    GUARD(smki_gw_dbs_get(s, &op.d));
    int rc = smki_store_read(s, pending_txn, &op);
    for (size_t i = 0; rc == 0 && i < op.n; i++) {
        smki_gwq_record q;
        rc = smki_gwq_get(s, op.ids[i], &q);
        if (rc < 0) break;
        int held = q.state == SMKI_GWQ_HELD;
        smki_gwq_clear(&q);
        if (!held) continue; /* released or rejected meanwhile: nothing to raise */
        int ok;
        rc = smki_gwq_notify(s, h, op.ids[i], &ok);
        if (rc == SMKI_E_REFUSED) {
            smki_error_clear();
            rc = 0;
        }
        if (rc == 0) ok ? (*fired)++ : (*failed)++;
    }
    free(op.ids);
    return rc;
}

/* ---- The JSON log of quarantines --------------------------------------------------------------- */
int smki_gw_log_quarantined(smki_store *s, FILE *log, const smki_gw_result *res, size_t n)
{
    size_t held = 0;
    for (size_t i = 0; i < n; i++) held += res[i].verdict == SMKI_GW_QUARANTINE;
    if (!held) return 0;
    smki_gwq_stats st;
    GUARD(smki_gwq_stats_get(s, &st));
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    for (size_t i = 0; i < n; i++) {
        const smki_gw_result *r = &res[i];
        if (r->verdict != SMKI_GW_QUARANTINE) continue;
        char oe[SMKI_EUI64_TEXT_MAX], te[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
        smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
        /* reason is one of the static reason codes: no escaping needed */
        fprintf(log,
                "{\"ts\":\"%s.%03ldZ\",\"level\":\"warn\",\"event\":\"gateway_quarantine\",\"id\":%llu,\"reason\":\"%s\","
                "\"originator\":\"%s\",\"target\":\"%s\",\"message_code\":\"%04X\",\"notified\":%s,"
                "\"quarantined_total\":%llu,\"notified_total\":%llu,\"notify_failed_total\":%llu}\n",
                ts, now.tv_nsec / 1000000, (unsigned long long)r->quarantine_id, r->reason, oe, te, r->code,
                r->notified > 0 ? "true" : r->notified < 0 ? "false" : "null", (unsigned long long)st.quarantined,
                (unsigned long long)st.notified, (unsigned long long)st.notify_failed);
    }
    ENSURE(fflush(log) == 0, SMKI_E_IO, "writing the gateway's JSON log");
    return 0;
}
