/* pg: the store on PostgreSQL, for a CA whose records a standby and read replicas
 * share. Each named database is a table (k bytea, v bytea) in the connection's
 * schema, ordered as LMDB orders keys (bytea compares as memcmp, then length);
 * writes run under one transaction-scoped advisory lock, so one writer at a time
 * as under LMDB, and reads see one snapshot (REPEATABLE READ). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store_private.h"

#define CATALOG "smki_dbs"
/* The advisory locks' first key ("smki"); the second is the schema's hash, so stores
 * in different schemas of one database do not wait for each other. */
#define LOCK_WRITE "1936419689"
#define LOCK_MAINT "1936419690"
#define SCAN_PAGE 128
#define MAX_NAME 48
/* Re-runs of a write whose connection was lost, or that met a serialization failure,
 * before anything of it was committed. */
#define MAX_RETRIES 3

/* A scan's pages end below this key: above any key a store holds (LMDB's are at most
 * 511 octets, and remember() refuses longer), so one statement serves a prefix and none. */
#define ABOVE_ALL_LEN 600
/* An index scan's target is named by a bit per database of a 64-bit word. */
#define MAX_JOIN_TARGETS 64
#define BEGIN_READ "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" /* outside smki_pg_store_run */

/* The scans' three pages (first, after a key, after a key and value) are consecutive,
 * plain and joined alike. */
enum { OP_GET, OP_PUT, OP_PUT_NEW, OP_DEL, OP_DEL_DUP, OP_COUNT, OP_CLEAR, OP_SEEK, OP_GET_MANY, OP_PUT_ROWS,
       OP_PUT_NEW_ROWS, OP_SCAN_FROM, OP_SCAN_AFTER_KEY, OP_SCAN_AFTER_PAIR, OP_JOIN_FROM, OP_JOIN_AFTER_KEY,
       OP_JOIN_AFTER_PAIR };
/* Per database, a word of target bits per join statement: the three pages, and the
 * first pages of many scans at once (JOIN_AHEAD). */
#define JOIN_OPS 4
#define JOIN_AHEAD 3

typedef struct pg_conn {
    PGconn *conn;
    int is_standby;
    uint32_t *prepared; /* per database: a bit per OP_ whose statement this session has */
    uint64_t *joined;   /* per database and OP_JOIN_*: a bit per target database */
    /* Reads run in libpq's pipeline mode as the protocol's implicit transaction: no
     * BEGIN, each statement sent with a flush request (its answer comes without
     * ending the transaction), and a sync to end it, sent without waiting for the
     * answer, which the session's next exchange reads (pending: syncs not yet read). */
    int pipelined;
    unsigned pending;
    struct pg_conn *next;
} pg_conn;

typedef struct {
    unsigned flags;
    char table[2 * MAX_NAME + 8]; /* quoted identifier */
} pg_db;

struct pg_store {
    char *conninfo;
    char *label; /* the store's location for messages */
    int read_only;
    pid_t pid;
    pthread_mutex_t mu; /* guards idle */
    pg_conn *idle;
    pg_db *dbs; /* max_dbs entries, filled in order; ndbs published after the entry */
    _Atomic size_t ndbs;
    size_t max_dbs;
    PGconn *maint; /* holds the session advisory lock of smki_store_lock_exclusive */
};

/* A get's answer, kept until the transaction ends (its value was handed out), and
 * the key it answers, for the same get again: the transaction's own writes to the
 * database make it stale; no one else's can reach it (a read's one snapshot; a
 * write's lock, under which no other smki writes). */
#define KEPT_KEY_MAX 64
#define KEPT_SEARCH 16
typedef struct {
    PGresult *r;
    smki_db db;
    int is_current;
    size_t klen;
    uint8_t key[KEPT_KEY_MAX];
} kept_get;

/* A join scan's first page fetched ahead (smki_txn_scan_join_ahead): rows [from, to)
 * of r, whose first column is the scan's place among those fetched together. Kept
 * until the scan of that prefix takes it (taken); r is cleared with the transaction
 * (by the page that owns it). */
typedef struct {
    PGresult *r;
    int from, to, owns, taken;
    smki_db db, target;
    size_t plen;
    uint8_t prefix[KEPT_KEY_MAX];
} ahead_page;

struct pg_txn {
    pg_store *p;
    pg_conn *c;
    int is_write;
    int lost;   /* the connection failed: nothing of this transaction was committed */
    int retry;  /* a serialization failure or deadlock: the server rolled it back */
    int failed; /* a statement failed: the transaction cannot commit */
    int lazy;   /* a read in pipeline mode: one implicit transaction up to its sync */
    int begun;  /* (lazy) a statement was sent: txn_finish sends the sync */
    kept_get *kept; /* results whose values smki_txn_get handed out */
    size_t nkept, kept_cap;
    ahead_page *ahead; /* pages fetched ahead, not yet taken */
    size_t nahead, ahead_cap;
};

/* ---- Messages ------------------------------------------------------------------- */

/* libpq's message on one line, in buf. */
static const char *one_line(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg ? msg : "");
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ') buf[--n] = '\0';
    return buf;
}

/* Where the server is, for messages: "socket directory /x port 5432" or "host h port p". */
static const char *server_words(PGconn *c, char *buf, size_t cap)
{
    const char *host = c ? PQhost(c) : NULL, *port = c ? PQport(c) : NULL;
    if (!host || !*host) host = "/var/run/postgresql";
    snprintf(buf, cap, "%s %s port %s", host[0] == '/' ? "socket directory" : "host", host,
             port && *port ? port : "5432");
    return buf;
}

/* A write sent to a server that takes none. is_standby: the server said it is in
 * recovery when the session began; otherwise the session itself is read-only
 * (default_transaction_read_only), as a standby's are. */
static int standby_refusal(pg_store *p, PGconn *c, int is_standby)
{
    char where[300];
    server_words(c, where, sizeof where);
    if (!is_standby)
        return SMKI_FAIL(SMKI_E_REFUSED,
                         "store %s: the PostgreSQL server at %s refused a write, its session being read-only "
                         "(default_transaction_read_only, or the server went into recovery): this is a standby; "
                         "writes go to the primary. Point [store] conninfo at the primary (target_session_attrs="
                         "read-write), or check the role's and database's default_transaction_read_only",
                         p->label, where);
    return SMKI_FAIL(SMKI_E_REFUSED,
                     "store %s: the PostgreSQL server at %s is a standby (in recovery, read-only): this is a standby; "
                     "writes go to the primary. Point [store] conninfo at the primary, or list both hosts with "
                     "target_session_attrs=read-write",
                     p->label, where);
}

static int fail_connect(pg_store *p, PGconn *c)
{
    char msg[512], where[300];
    one_line(PQerrorMessage(c), msg, sizeof msg);
    server_words(c, where, sizeof where);
    if (PQconnectionNeedsPassword(c) || strstr(msg, "authentication failed") || strstr(msg, "no pg_hba.conf entry") ||
        strstr(msg, "password"))
        return SMKI_FAIL(SMKI_E_REFUSED,
                         "store %s: the PostgreSQL server at %s refused the login (%s); check the user in [store] "
                         "conninfo, the server's pg_hba.conf, and the password file (passfile= or PGPASSFILE)",
                         p->label, where, msg);
    if (strstr(msg, "does not exist"))
        return SMKI_FAIL(SMKI_E_NOTFOUND,
                         "store %s: the PostgreSQL server at %s has no such database or role (%s); create it "
                         "(createdb, createuser) or correct [store] conninfo",
                         p->label, where, msg);
    return SMKI_FAIL(SMKI_E_STORE,
                     "store %s: cannot reach the PostgreSQL server at %s (%s); check that it runs (pg_isready), that "
                     "it listens there (listen_addresses, unix_socket_directories, port) and [store] conninfo",
                     p->label, where, msg);
}

static int is_lost_state(const char *state)
{
    return state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
                     strcmp(state, "57P03") == 0);
}

/* A statement's failure (r may be NULL); clears r. */
static int fail_result(pg_txn *t, PGresult *r, const char *doing)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char msg[512], where[300];
    one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(t->c->conn), msg, sizeof msg);
    if (!*msg) one_line(PQerrorMessage(t->c->conn), msg, sizeof msg);
    server_words(t->c->conn, where, sizeof where);
    int rc;
    t->failed = 1;
    if (PQstatus(t->c->conn) == CONNECTION_BAD || is_lost_state(state)) {
        t->lost = 1;
        rc = SMKI_FAIL(SMKI_E_STORE,
                       "store %s: the connection to the PostgreSQL server at %s was lost while trying to %s (%s); "
                       "nothing of this transaction was committed",
                       t->p->label, where, doing, msg);
    } else if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
        t->retry = 1;
        rc = SMKI_FAIL(SMKI_E_STORE, "store %s: PostgreSQL rolled back a transaction trying to %s (%s)", t->p->label,
                       doing, msg);
    } else if (state && strcmp(state, "25006") == 0) {
        rc = standby_refusal(t->p, t->c->conn, t->c->is_standby);
    } else {
        rc = SMKI_FAIL(SMKI_E_STORE, "store %s: PostgreSQL at %s failed to %s (%s)", t->p->label, where, doing, msg);
    }
    PQclear(r);
    return rc;
}

static int result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* ---- Connections ------------------------------------------------------------------- */

/* ---- Pipeline mode (reads) ------------------------------------------------------------ */

/* One query's result in pipeline mode and the NULL that ends it; NULL when the
 * connection gave none (it failed). */
static PGresult *pipe_result(PGconn *c)
{
    PGresult *r = PQgetResult(c);
    if (r && PQresultStatus(r) != PGRES_PIPELINE_SYNC) PQclear(PQgetResult(c));
    return r;
}

/* The sync that ends an exchange: 0 reached, -1 not (the connection failed). */
static int pipe_sync(PGconn *c)
{
    PGresult *r = PQgetResult(c);
    int ok = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    return ok ? 0 : -1;
}

/* The answers to earlier reads' syncs. -1 when the connection failed. */
static int drain_pending(pg_conn *c)
{
    for (; c->pending; c->pending--)
        if (pipe_sync(c->conn) < 0) return -1;
    return 0;
}

/* Back to one statement at a time (PQexec), for writes and the catalog. */
static int conn_settle(pg_conn *c)
{
    if (drain_pending(c) < 0) return -1;
    if (c->pipelined && !PQexitPipelineMode(c->conn)) return -1;
    c->pipelined = 0;
    return 0;
}

static void conn_free(pg_conn *c)
{
    if (!c) return;
    /* A read's COMMIT answered but unread would leave the server a closed socket to
     * write to ("connection to client lost" in its log). */
    if (c->conn && c->pending && PQstatus(c->conn) == CONNECTION_OK) (void)drain_pending(c);
    if (c->conn) PQfinish(c->conn);
    free(c->prepared);
    free(c->joined);
    free(c);
}

/* The server's notices ("relation ... already exists, skipping") are not for the user. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int conn_open(pg_store *p, pg_conn **out)
{
    char app[64];
    snprintf(app, sizeof app, "smki pid %ld", (long)getpid());
    /* Later entries win, so the configuration's own settings override these. */
    const char *const keys[] = {"fallback_application_name", "connect_timeout", "dbname", NULL};
    const char *const vals[] = {app, "10", p->conninfo, NULL};
    pg_conn *c = calloc(1, sizeof *c);
    ENSURE(c, SMKI_E_NOMEM, "out of memory connecting store %s", p->label);
    c->prepared = calloc(p->max_dbs, sizeof *c->prepared);
    c->joined = calloc((size_t)p->max_dbs * JOIN_OPS, sizeof *c->joined);
    c->conn = PQconnectdbParams(keys, vals, 1);
    int rc = 0;
    ENSURE_GOTO(c->prepared && c->joined && c->conn, SMKI_E_NOMEM, fail, "out of memory connecting store %s", p->label);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        rc = fail_connect(p, c->conn);
        goto fail;
    }
    /* A read's implicit transaction (pipe_exec) sees one snapshot: repeatable read. A
     * write and an explicit read name their level in their BEGIN. Every statement is
     * prepared once and its one generic plan kept: an index scan whatever the key
     * (planning each call anew, PostgreSQL's choice for these, was half the server's
     * time per lookup). */
    PGresult *r = PQexec(c->conn, "SET default_transaction_isolation TO 'repeatable read'; "
                                  "SET plan_cache_mode TO force_generic_plan; "
                                  "SELECT pg_is_in_recovery()::int, (current_schema() IS NOT NULL)::int");
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        pg_txn t = {.p = p, .c = c};
        rc = fail_result(&t, r, "read the server's state");
        goto fail;
    }
    PQsetNoticeProcessor(c->conn, ignore_notice, NULL);
    c->is_standby = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    int has_schema = strcmp(PQgetvalue(r, 0, 1), "1") == 0;
    PQclear(r);
    ENSURE_GOTO(has_schema || !c->is_standby, SMKI_E_NOTFOUND, fail,
                "store %s: the standby has no schema to read (search_path names none that exists): create it on the "
                "primary (CREATE SCHEMA, then smki's first write there), whence it replicates; or correct options= in "
                "[store] conninfo",
                p->label);
    ENSURE_GOTO(has_schema, SMKI_E_NOTFOUND, fail,
                "store %s: the connection has no schema to keep its tables in (search_path names none that exists); "
                "create the schema (CREATE SCHEMA) or correct options= in [store] conninfo",
                p->label);
    *out = c;
    return 0;
fail:
    conn_free(c);
    return rc;
}

/* Every idle connection: after one was found dead, the others (to the same server)
 * likely are too. */
static void drop_idle(pg_store *p)
{
    pthread_mutex_lock(&p->mu);
    pg_conn *c = p->idle;
    p->idle = NULL;
    pthread_mutex_unlock(&p->mu);
    while (c) {
        pg_conn *next = c->next;
        conn_free(c);
        c = next;
    }
}

/* An idle session of the pool, or a new one. lazy: for a read in pipeline mode;
 * otherwise the session is settled first (a dead idle one is replaced, as nothing
 * has run on it yet). */
static int conn_acquire(pg_store *p, int lazy, pg_conn **out)
{
    pthread_mutex_lock(&p->mu);
    pg_conn *c = p->idle;
    if (c) p->idle = c->next;
    pthread_mutex_unlock(&p->mu);
    if (c && !lazy && conn_settle(c) < 0) {
        conn_free(c);
        drop_idle(p);
        c = NULL;
    }
    if (c) {
        c->next = NULL;
        *out = c;
        return 0;
    }
    return conn_open(p, out);
}

static void conn_release(pg_store *p, pg_conn *c)
{
    /* In pipeline mode libpq calls the session busy; a read's end left it idle. */
    if (PQstatus(c->conn) != CONNECTION_OK || (!c->pipelined && PQtransactionStatus(c->conn) != PQTRANS_IDLE)) {
        conn_free(c);
        return;
    }
    pthread_mutex_lock(&p->mu);
    c->next = p->idle;
    p->idle = c;
    pthread_mutex_unlock(&p->mu);
}

/* ---- Opening ------------------------------------------------------------------------- */

/* A password belongs in a password file, never in the configuration, where it would
 * reach command lines, logs and messages that name the store. */
static int refuse_password(const char *conninfo, const char *label)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        char msg[300];
        one_line(err ? err : "out of memory", msg, sizeof msg);
        PQfreemem(err);
        return SMKI_FAIL(SMKI_E_USAGE, "store %s: [store] conninfo is not a libpq connection string (%s)", label, msg);
    }
    int has_password = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) has_password = 1;
    PQconninfoFree(opts);
    ENSURE(!has_password, SMKI_E_USAGE,
           "store %s: [store] conninfo holds a password; put it in a password file (passfile=PATH in conninfo, or "
           "PGPASSFILE) instead",
           "postgresql:(conninfo not shown)");
    return 0;
}

int smki_pg_store_open(const char *conninfo, const char *label, int read_only, unsigned max_dbs, pg_store **out)
{
    *out = NULL;
    GUARD(refuse_password(conninfo, label));
    pg_store *p = calloc(1, sizeof *p);
    ENSURE(p, SMKI_E_NOMEM, "out of memory opening store %s", label);
    pthread_mutex_init(&p->mu, NULL);
    p->read_only = read_only;
    p->pid = getpid();
    p->max_dbs = max_dbs;
    p->conninfo = strdup(conninfo);
    p->label = strdup(label);
    p->dbs = calloc(max_dbs, sizeof *p->dbs);
    int rc = 0;
    ENSURE_GOTO(p->conninfo && p->label && p->dbs, SMKI_E_NOMEM, fail, "out of memory opening store %s", label);
    /* Connect now, so that an unreachable server or a refused login is the open's error. */
    pg_conn *c = NULL;
    GUARD_GOTO(conn_open(p, &c), fail);
    conn_release(p, c);
    *out = p;
    return 0;
fail:
    smki_pg_store_close(p);
    return rc;
}

void smki_pg_store_close(pg_store *p)
{
    if (!p) return;
    /* A forked child must leave its parent's sessions alone: PQfinish would end them. */
    if (p->pid == getpid()) {
        smki_pg_store_unlock(p);
        drop_idle(p);
    }
    pthread_mutex_destroy(&p->mu);
    free(p->dbs);
    free(p->conninfo);
    free(p->label);
    free(p);
}

int smki_pg_store_exists(const char *conninfo, const char *label)
{
    GUARD(refuse_password(conninfo, label));
    pg_store tmp = {.conninfo = (char *)conninfo, .label = (char *)label, .max_dbs = 1};
    pg_conn *c = NULL;
    GUARD(conn_open(&tmp, &c));
    PGresult *r = PQexec(c->conn, "SELECT (to_regclass('" CATALOG "') IS NOT NULL)::int");
    int rc;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        rc = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
        PQclear(r);
    } else {
        pg_txn t = {.p = &tmp, .c = c};
        rc = fail_result(&t, r, "look for the store's catalog");
    }
    conn_free(c);
    return rc;
}

/* ---- Transactions ------------------------------------------------------------------- */

static int txn_exec(pg_txn *t, const char *sql, const char *doing)
{
    PGresult *r = PQexec(t->c->conn, sql);
    if (!r || !result_ok(r)) return fail_result(t, r, doing);
    PQclear(r);
    return 0;
}

static int txn_begin(pg_txn *t)
{
    if (t->is_write)
        /* READ COMMITTED: each statement after the lock sees every commit before it,
         * as LMDB's writer sees the last commit. */
        return txn_exec(t,
                        "BEGIN ISOLATION LEVEL READ COMMITTED; "
                        "SELECT pg_advisory_xact_lock(" LOCK_WRITE ", hashtext(current_schema()))",
                        "begin a write");
    return txn_exec(t, BEGIN_READ, "begin a read");
}

static void txn_finish(pg_txn *t)
{
    for (size_t i = 0; i < t->nkept; i++) PQclear(t->kept[i].r);
    free(t->kept);
    t->kept = NULL;
    t->nkept = t->kept_cap = 0;
    for (size_t i = 0; i < t->nahead; i++)
        if (t->ahead[i].owns) PQclear(t->ahead[i].r);
    free(t->ahead);
    t->ahead = NULL;
    t->nahead = t->ahead_cap = 0;
    if (t->lazy) {
        /* The sync ends the read's implicit transaction (and its snapshot); sent, not
         * waited for: the session's next exchange reads the answer. */
        if (t->begun && !t->lost) {
            if (PQpipelineSync(t->c->conn))
                t->c->pending++;
            else
                t->lost = 1;
        }
    } else if (PQstatus(t->c->conn) == CONNECTION_OK && PQtransactionStatus(t->c->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(t->c->conn, "ROLLBACK");
        PQclear(r);
    }
    if (t->lost) {
        conn_free(t->c);
        drop_idle(t->p);
    } else {
        conn_release(t->p, t->c);
    }
    t->c = NULL;
}

/* 0 committed; negative not committed (t->retry: may be re-run) or outcome unknown. */
static int txn_commit(pg_txn *t)
{
    PGresult *r = PQexec(t->c->conn, "COMMIT");
    if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
        /* COMMIT of a transaction a statement spoilt answers ROLLBACK, not an error. */
        int committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
        PQclear(r);
        ENSURE(committed, SMKI_E_STORE, "store %s: PostgreSQL rolled the transaction back instead of committing it",
               t->p->label);
        return 0;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(t->c->conn) == CONNECTION_BAD || is_lost_state(state)) {
        char where[300], msg[512];
        one_line(PQerrorMessage(t->c->conn), msg, sizeof msg);
        PQclear(r);
        t->lost = 1;
        t->failed = 1;
        return SMKI_FAIL(SMKI_E_STORE,
                         "store %s: the connection to the PostgreSQL server at %s was lost while committing (%s); "
                         "whether this write was committed is unknown, so it was not re-run: check the store (smki "
                         "audit verify, or look the record up) before repeating it",
                         t->p->label, server_words(t->c->conn, where, sizeof where), msg);
    }
    int rc = fail_result(t, r, "commit");
    t->lost = 0; /* only a loss during the commit itself leaves the outcome unknown */
    return rc;
}

int smki_pg_store_run(smki_store *s, pg_store *p, int is_write, smki_txn_fn fn, void *arg, uint32_t *new_schema)
{
    *new_schema = 0;
    for (int attempt = 0;; attempt++) {
        pg_txn pt = {.p = p, .is_write = is_write, .lazy = !is_write};
        int arc = conn_acquire(p, pt.lazy, &pt.c);
        if (arc < 0 && attempt > 0)
            return smki_error_wrap("the connection to the PostgreSQL server was lost mid-transaction (nothing of it "
                                   "was committed) and connecting again failed");
        GUARD(arc);
        if (is_write && pt.c->is_standby) {
            int rc = standby_refusal(p, pt.c->conn, 1);
            conn_release(p, pt.c);
            return rc;
        }
        int rc = pt.lazy ? 0 : txn_begin(&pt);
        smki_txn t = {.s = s, .pg = &pt, .is_write = is_write};
        if (rc == 0) {
            smki_store_txn_enter(&t);
            rc = fn(&t, arg);
            smki_store_txn_leave(&t);
        }
        if ((pt.lost || pt.retry) && attempt < MAX_RETRIES) { /* nothing was committed: run it again */
            txn_finish(&pt);
            usleep(20000u << attempt);
            continue;
        }
        if (rc >= 0 && pt.failed)
            rc = SMKI_FAIL(SMKI_E_STORE, "store %s: a statement of this transaction failed; nothing was written",
                           p->label);
        if (rc < 0) {
            txn_finish(&pt);
            return rc;
        }
        /* A read's COMMIT goes out at txn_finish, unanswered (it ends a snapshot). */
        int crc = pt.lazy ? 0 : txn_commit(&pt);
        int lost_in_commit = pt.lost;
        if (crc < 0 && pt.retry && !lost_in_commit && attempt < MAX_RETRIES) {
            txn_finish(&pt);
            usleep(20000u << attempt);
            continue;
        }
        txn_finish(&pt);
        if (crc < 0) return crc;
        *new_schema = t.new_schema;
        return rc;
    }
}

/* ---- Named databases ------------------------------------------------------------------ */

static int check_name(pg_store *p, const char *name)
{
    size_t n = strlen(name);
    ENSURE(n <= MAX_NAME, SMKI_E_USAGE, "store %s: database name %.64s is longer than %d characters", p->label, name,
           MAX_NAME);
    for (size_t i = 0; i < n; i++)
        ENSURE(name[i] > ' ' && name[i] < 0x7f && name[i] != '"', SMKI_E_USAGE,
               "store %s: database name %.64s has a character PostgreSQL names cannot hold here", p->label, name);
    return 0;
}

/* The catalog's flags for name: 1 found (into *flags), 0 absent, negative on error. */
static int catalog_lookup(pg_txn *t, const char *name, unsigned *flags)
{
    PGresult *r = PQexec(t->c->conn, "SELECT (to_regclass('" CATALOG "') IS NOT NULL)::int");
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) return fail_result(t, r, "look for the catalog");
    int has_catalog = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    if (!has_catalog) return 0;
    const char *params[1] = {name};
    r = PQexecParams(t->c->conn, "SELECT dupsort::int FROM " CATALOG " WHERE name = $1", 1, NULL, params, NULL,
                     NULL, 0);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) return fail_result(t, r, "read the catalog");
    int found = PQntuples(r) == 1;
    if (found) *flags = strcmp(PQgetvalue(r, 0, 0), "1") == 0 ? SMKI_DB_DUPSORT : 0;
    PQclear(r);
    return found;
}

static int create_db(pg_txn *t, const char *name, const char *table, unsigned flags)
{
    GUARD(txn_exec(t, "CREATE TABLE IF NOT EXISTS " CATALOG " (name text PRIMARY KEY, dupsort boolean NOT NULL)",
                   "create the catalog"));
    char sql[400];
    snprintf(sql, sizeof sql, "CREATE TABLE %s (k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (k%s))", table,
             (flags & SMKI_DB_DUPSORT) ? ", v" : "");
    GUARD(txn_exec(t, sql, "create a database"));
    const char *params[2] = {name, (flags & SMKI_DB_DUPSORT) ? "true" : "false"};
    PGresult *r = PQexecParams(t->c->conn, "INSERT INTO " CATALOG " (name, dupsort) VALUES ($1, $2)", 2, NULL, params,
                               NULL, NULL, 0);
    if (!r || !result_ok(r)) return fail_result(t, r, "record a database in the catalog");
    PQclear(r);
    return 0;
}

static const char *dup_words(unsigned flags)
{
    return (flags & SMKI_DB_DUPSORT) ? "with sorted duplicates" : "without duplicates";
}

/* Find (or, in a write, create) the database; 1 found or made, 0 absent. */
static int find_or_create(pg_txn *t, const char *name, const char *table, unsigned flags)
{
    unsigned have = 0;
    int found = catalog_lookup(t, name, &have);
    GUARD(found);
    if (found && have != flags)
        return SMKI_FAIL(SMKI_E_USAGE, "database %s of store %s is %s; asked for one %s", name, t->p->label,
                         dup_words(have), dup_words(flags));
    if (found || !t->is_write) return found;
    GUARD(create_db(t, name, table, flags));
    return 1;
}

int smki_pg_store_db(pg_store *p, const char *name, unsigned flags, smki_db *out)
{
    GUARD(check_name(p, name));
    size_t n = atomic_load(&p->ndbs);
    ENSURE(n < p->max_dbs, SMKI_E_STORE, "store %s cannot open database %s: all %zu database slots are in use",
           p->label, name, p->max_dbs);
    char kv[MAX_NAME + 8];
    snprintf(kv, sizeof kv, "kv_%s", name);
    pg_db d = {.flags = flags};
    snprintf(d.table, sizeof d.table, "\"%s\"", kv); /* check_name kept quotes out */
    /* Look first in a read, so that opening what exists works on a standby. */
    for (int is_write = 0; is_write < 2; is_write++) {
        pg_txn t = {.p = p, .is_write = is_write};
        GUARD(conn_acquire(p, 0, &t.c));
        if (is_write && t.c->is_standby) {
            int rc = standby_refusal(p, t.c->conn, 1);
            conn_release(p, t.c);
            return rc;
        }
        int rc = txn_begin(&t);
        if (rc == 0) rc = find_or_create(&t, name, d.table, flags);
        if (rc == 1 && is_write) {
            int crc = txn_commit(&t);
            if (crc < 0) rc = crc;
        }
        txn_finish(&t);
        if (rc < 0) return rc;
        if (rc == 1) break;
        if (p->read_only)
            return SMKI_FAIL(SMKI_E_NOTFOUND, "store %s has no database %s (and is open read-only)", p->label, name);
    }
    p->dbs[n] = d;
    atomic_store(&p->ndbs, n + 1);
    *out = (smki_db)n;
    return 0;
}

int smki_pg_store_count_dbs(pg_store *p, size_t *out)
{
    pg_txn t = {.p = p};
    GUARD(conn_acquire(p, 0, &t.c));
    int rc = txn_begin(&t);
    PGresult *r = NULL;
    if (rc == 0) {
        r = PQexec(t.c->conn, "SELECT count(*) FROM " CATALOG);
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            *out = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
            PQclear(r);
        } else {
            rc = fail_result(&t, r, "read the catalog");
        }
    }
    txn_finish(&t);
    return rc;
}

/* ---- Records ---------------------------------------------------------------------------- */

static const pg_db *db_at(pg_txn *t, smki_db db)
{
    return db < atomic_load(&t->p->ndbs) ? &t->p->dbs[db] : NULL;
}

/* A scan's page (0 from $1, 1 after the key $1, 2 after the pair $1, $2; DUPSORT
 * only), bounded above by the last parameter, of d or, with target, of d joined with
 * the records its values name. */
static void scan_sql(int page, const pg_db *d, const pg_db *target, char *sql, size_t cap)
{
    int dup = (d->flags & SMKI_DB_DUPSORT) != 0;
    const char *k = target ? "i.k" : "k", *v = target ? "i.v" : "v";
    char from[300];
    if (target)
        snprintf(from, sizeof from, "SELECT i.k, i.v, t.v FROM %s i LEFT JOIN %s t ON t.k = i.v", d->table,
                 target->table);
    else
        snprintf(from, sizeof from, "SELECT k, v FROM %s", d->table);
    char order[16];
    snprintf(order, sizeof order, dup ? "%s, %s" : "%s", k, v);
    if (page == 0)
        snprintf(sql, cap, "%s WHERE %s >= $1 AND %s < $2 ORDER BY %s LIMIT %d", from, k, k, order, SCAN_PAGE);
    else if (page == 1)
        snprintf(sql, cap, "%s WHERE %s > $1 AND %s < $2 ORDER BY %s LIMIT %d", from, k, k, order, SCAN_PAGE);
    else
        snprintf(sql, cap, "%s WHERE (%s, %s) > ($1, $2) AND %s < $3 ORDER BY %s LIMIT %d", from, k, v, k, order,
                 SCAN_PAGE);
}

static void op_sql(int op, const pg_db *d, char *sql, size_t cap)
{
    const char *T = d->table;
    int dup = (d->flags & SMKI_DB_DUPSORT) != 0;
    const char *order = dup ? "k, v" : "k";
    switch (op) {
    case OP_GET: snprintf(sql, cap, "SELECT v FROM %s WHERE k = $1 ORDER BY %s LIMIT 1", T, order); break;
    case OP_PUT:
        if (dup)
            snprintf(sql, cap, "INSERT INTO %s (k, v) VALUES ($1, $2) ON CONFLICT DO NOTHING", T);
        else
            snprintf(sql, cap, "INSERT INTO %s (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", T);
        break;
    case OP_PUT_NEW:
        /* LMDB's MDB_NOOVERWRITE refuses a key that has any value, in a DUPSORT database too. */
        if (dup)
            snprintf(sql, cap,
                     "INSERT INTO %s (k, v) SELECT $1::bytea, $2::bytea WHERE NOT EXISTS (SELECT 1 FROM %s WHERE k = "
                     "$1) ON CONFLICT DO NOTHING",
                     T, T);
        else
            snprintf(sql, cap, "INSERT INTO %s (k, v) VALUES ($1, $2) ON CONFLICT DO NOTHING", T);
        break;
    case OP_DEL: snprintf(sql, cap, "DELETE FROM %s WHERE k = $1", T); break;
    case OP_DEL_DUP: snprintf(sql, cap, "DELETE FROM %s WHERE k = $1 AND v = $2", T); break;
    case OP_COUNT: snprintf(sql, cap, "SELECT count(*) FROM %s", T); break;
    case OP_CLEAR: snprintf(sql, cap, "DELETE FROM %s", T); break;
    case OP_SEEK: snprintf(sql, cap, "SELECT k FROM %s WHERE k >= $1 ORDER BY k LIMIT 1", T); break;
    case OP_PUT_ROWS: /* OP_PUT of many records: keys $1, values $2 (no key twice, but in a DUPSORT database) */
        snprintf(sql, cap, "INSERT INTO %s (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) %s", T,
                 dup ? "ON CONFLICT DO NOTHING" : "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v");
        break;
    case OP_PUT_NEW_ROWS: /* OP_PUT_NEW of many (no key twice): the keys written come back */
        if (dup)
            snprintf(sql, cap,
                     "INSERT INTO %s (k, v) SELECT u.k, u.v FROM unnest($1::bytea[], $2::bytea[]) AS u(k, v) WHERE "
                     "NOT EXISTS (SELECT 1 FROM %s WHERE k = u.k) ON CONFLICT DO NOTHING RETURNING k",
                     T, T);
        else
            snprintf(sql, cap,
                     "INSERT INTO %s (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO NOTHING "
                     "RETURNING k",
                     T);
        break;
    case OP_GET_MANY:
        /* Each key of the array with its place in it (from 1) and its first value, as
         * OP_GET finds it: an index lookup per key, the absent ones left out. */
        snprintf(sql, cap,
                 "SELECT q.i, t.v FROM unnest($1::bytea[]) WITH ORDINALITY AS q(k, i) CROSS JOIN LATERAL (SELECT v "
                 "FROM %s WHERE k = q.k ORDER BY %s LIMIT 1) t",
                 T, order);
        break;
    default: scan_sql(op - OP_SCAN_FROM, d, NULL, sql, cap); break;
    }
}

typedef struct {
    const char *name;
    const char *sql; /* to prepare first; NULL when the session has it */
    int n;
    const char *pv[3];
    int pl[3];
    int fmt;
} stmt;

/* One statement at a time: prepare if needed, then run. *prepared set once the
 * session has the statement. */
static PGresult *plain_exec(pg_txn *t, const stmt *st, int *prepared, const char *doing)
{
    static const int pf[3] = {1, 1, 1};
    if (st->sql) {
        PGresult *r = PQprepare(t->c->conn, st->name, st->sql, st->n, NULL);
        if (!r || !result_ok(r)) {
            fail_result(t, r, doing);
            return NULL;
        }
        PQclear(r);
        *prepared = 1;
    }
    PGresult *r = PQexecPrepared(t->c->conn, st->name, st->n, st->pv, st->pl, pf, st->fmt);
    if (!r || !result_ok(r)) {
        fail_result(t, r, doing);
        return NULL;
    }
    return r;
}

/* In pipeline mode, in one round trip: the answers to earlier reads' syncs, then
 * (if needed) the statement's PREPARE, and the statement, in the read's implicit
 * transaction (no sync: a flush request brings the answer). */
static PGresult *pipe_exec(pg_txn *t, const stmt *st, int *prepared, const char *doing)
{
    static const int pf[3] = {1, 1, 1};
    pg_conn *c = t->c;
    int sent = c->pipelined || PQenterPipelineMode(c->conn);
    if (sent) c->pipelined = 1;
    if (sent && st->sql) sent = PQsendPrepare(c->conn, st->name, st->sql, st->n, NULL);
    if (sent) sent = PQsendQueryPrepared(c->conn, st->name, st->n, st->pv, st->pl, pf, st->fmt);
    if (sent) t->begun = 1; /* txn_finish's sync ends the transaction */
    if (sent) sent = PQsendFlushRequest(c->conn) && PQflush(c->conn) == 0;
    if (!sent || drain_pending(c) < 0) {
        fail_result(t, NULL, doing);
        t->lost = 1; /* the session's place in the exchange is unknown: not reused */
        return NULL;
    }
    PGresult *prep = st->sql ? pipe_result(c->conn) : NULL;
    if (st->sql && !(prep && result_ok(prep))) {
        /* the statement after it is answered "aborted"; the error is the PREPARE's */
        PQclear(pipe_result(c->conn));
        fail_result(t, prep, "prepare a statement");
        return NULL;
    }
    PQclear(prep);
    if (st->sql) *prepared = 1;
    PGresult *r = pipe_result(c->conn);
    if (!r || !result_ok(r)) {
        fail_result(t, r, doing);
        return NULL;
    }
    return r;
}

/* Runs a statement of db (prepared once per session; of db joined with target for
 * OP_JOIN_*). Values are bytea, binary; the result is binary except for counts.
 * NULL with the error recorded on failure. */
static PGresult *run_stmt(pg_txn *t, smki_db db, int op, smki_db target, int n, const void *const *vals,
                          const size_t *lens, const char *doing)
{
    const pg_db *d = db_at(t, db);
    int is_join = op >= OP_JOIN_FROM;
    const pg_db *td = is_join ? db_at(t, target) : NULL;
    if (!d || (is_join && (!td || target >= MAX_JOIN_TARGETS))) {
        SMKI_FAIL(SMKI_E_USAGE, "store %s: database handle %u is not open in this store (smki_store_db)", t->p->label,
                  d ? target : db);
        return NULL;
    }
    char name[48], sql[900];
    stmt st = {.name = name, .n = n, .fmt = op == OP_COUNT ? 0 : 1};
    uint64_t *jbits = is_join ? &t->c->joined[(size_t)db * JOIN_OPS + (size_t)(op - OP_JOIN_FROM)] : NULL;
    int have;
    if (is_join) {
        snprintf(name, sizeof name, "smki_%u_%d_%u", db, op, target);
        have = (int)((*jbits >> target) & 1u);
        if (!have) scan_sql(op - OP_JOIN_FROM, d, td, sql, sizeof sql);
    } else {
        snprintf(name, sizeof name, "smki_%u_%d", db, op);
        have = (int)((t->c->prepared[db] >> op) & 1u);
        if (!have) op_sql(op, d, sql, sizeof sql);
    }
    if (!have) st.sql = sql;
    for (int i = 0; i < n; i++) {
        st.pv[i] = lens[i] ? vals[i] : ""; /* NULL would be SQL NULL, not an empty value */
        st.pl[i] = (int)lens[i];
    }
    int prepared = 0;
    PGresult *r = t->lazy ? pipe_exec(t, &st, &prepared, doing) : plain_exec(t, &st, &prepared, doing);
    if (prepared && is_join) *jbits |= (uint64_t)1 << target;
    else if (prepared) t->c->prepared[db] |= 1u << op;
    return r;
}

static PGresult *run_op(pg_txn *t, smki_db db, int op, int n, const void *const *vals, const size_t *lens,
                        const char *doing)
{
    return run_stmt(t, db, op, 0, n, vals, lens, doing);
}

static int fail_op(void) { return smki_error_code() ? smki_error_code() : SMKI_E_STORE; }

/* The transaction wrote to db: what it read there before may be stale. */
static void forget_gets(pg_txn *t, smki_db db)
{
    for (size_t i = 0; i < t->nkept; i++)
        if (t->kept[i].db == db) t->kept[i].is_current = 0;
}

#define BYTEA_OID 17

/* n octet strings as one bytea[] parameter in PostgreSQL's binary array format
 * (array_send): one dimension of n from 1, no nulls, bytea elements, each its length
 * and octets. */
static int bytea_array(const pg_txn *t, const void *const *p, const size_t *len, size_t n, uint8_t **out,
                       size_t *out_len)
{
    size_t total = 20;
    for (size_t i = 0; i < n; i++) total += 4 + len[i];
    ENSURE(total <= INT32_MAX, SMKI_E_USAGE, "store %s: %zu values of %zu octets in all: too many for one statement",
           t->p->label, n, total);
    uint8_t *a = malloc(total);
    ENSURE(a, SMKI_E_NOMEM, "out of memory sending %zu values to store %s", n, t->p->label);
    smki_put_be32(a, 1);     /* dimensions */
    smki_put_be32(a + 4, 0); /* no nulls */
    smki_put_be32(a + 8, BYTEA_OID);
    smki_put_be32(a + 12, (uint32_t)n);
    smki_put_be32(a + 16, 1); /* lower bound */
    uint8_t *w = a + 20;
    for (size_t i = 0; i < n; i++) {
        smki_put_be32(w, (uint32_t)len[i]);
        if (len[i]) memcpy(w + 4, p[i], len[i]);
        w += 4 + len[i];
    }
    *out = a;
    *out_len = total;
    return 0;
}

int smki_pg_txn_put(pg_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen, unsigned flags)
{
    forget_gets(t, db);
    const void *v[2] = {key, val};
    size_t l[2] = {klen, vlen};
    PGresult *r = run_op(t, db, (flags & SMKI_PUT_NOOVERWRITE) ? OP_PUT_NEW : OP_PUT, 2, v, l, "write");
    if (!r) return fail_op();
    int wrote = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return (flags & SMKI_PUT_NOOVERWRITE) && !wrote ? SMKI_E_EXISTS : 0;
}

#define PUT_PIPE_MAX 256

/* What an answer in the pipeline will be: a PREPARE, one record's put (rec), or a
 * rows statement for the records order[rec .. rec + rows) of the chunk. */
typedef struct {
    int is_prepare;
    smki_db db;
    int op;
    size_t rec, rows;
} put_sent;

typedef struct {
    put_sent sent[2 * PUT_PIPE_MAX];
    size_t nsent;
    size_t order[PUT_PIPE_MAX]; /* rows statements: the chunk's records by statement */
} put_pipe;

/* Queues the PREPARE of op on db unless the session has it; 0, or 1 when libpq could
 * not send. */
static int send_prepare(pg_txn *t, const pg_db *d, smki_db db, int op, const char *name, put_pipe *pp, size_t rec)
{
    if ((t->c->prepared[db] >> op) & 1u) return 0;
    char sql[900];
    op_sql(op, d, sql, sizeof sql);
    if (!PQsendPrepare(t->c->conn, name, sql, 2, NULL)) return 1;
    t->c->prepared[db] |= 1u << op; /* taken back if its answer is a failure */
    pp->sent[pp->nsent++] = (put_sent){1, db, op, rec, 0};
    return 0;
}

/* Sends the puts one statement each (and any statement the session lacks) without
 * waiting; pp says what each answer will be. 0 when all went out, 1 when libpq could
 * not send, negative for a refused handle. */
static int send_puts(pg_txn *t, const store_put_rec *recs, size_t n, put_pipe *pp)
{
    static const int pf[2] = {1, 1};
    PGconn *c = t->c->conn;
    for (size_t i = 0; i < n; i++) {
        const store_put_rec *r = &recs[i];
        const pg_db *d = db_at(t, r->db);
        ENSURE(d, SMKI_E_USAGE, "store %s: database handle %u is not open in this store (smki_store_db)",
               t->p->label, r->db);
        int op = (r->flags & SMKI_PUT_NOOVERWRITE) ? OP_PUT_NEW : OP_PUT;
        char name[32];
        snprintf(name, sizeof name, "smki_%u_%d", r->db, op);
        if (send_prepare(t, d, r->db, op, name, pp, i)) return 1;
        const char *pv[2] = {r->klen ? r->key : "", r->vlen ? r->val : ""};
        int pl[2] = {(int)r->klen, (int)r->vlen};
        if (!PQsendQueryPrepared(c, name, 2, pv, pl, pf, 1)) return 1;
        pp->sent[pp->nsent++] = (put_sent){0, r->db, op, i, 0};
    }
    return PQpipelineSync(c) ? 0 : 1;
}

static int same_key(const store_put_rec *a, const store_put_rec *b)
{
    return a->db == b->db && a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
}

/* Whether the chunk's puts may go as one statement per database and kind of put, in
 * any order: no key of a database is put twice, but for values added to a key of a
 * DUPSORT database (those commute). Otherwise the order matters and each goes alone.
 * Every handle must be open (send_puts names one that is not). */
static int puts_commute(pg_txn *t, const store_put_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pg_db *d = db_at(t, recs[i].db);
        if (!d) return 0;
        int adds_i = (d->flags & SMKI_DB_DUPSORT) && !(recs[i].flags & SMKI_PUT_NOOVERWRITE);
        for (size_t j = 0; j < i; j++)
            if (same_key(&recs[i], &recs[j]) && !(adds_i && !(recs[j].flags & SMKI_PUT_NOOVERWRITE))) return 0;
    }
    return 1;
}

/* One rows statement: the records order[from .. from + rows), all of db and op. */
static int send_rows(pg_txn *t, const store_put_rec *recs, put_pipe *pp, size_t from, size_t rows)
{
    static const int pf[2] = {1, 1};
    const store_put_rec *first = &recs[pp->order[from]];
    int op = (first->flags & SMKI_PUT_NOOVERWRITE) ? OP_PUT_NEW_ROWS : OP_PUT_ROWS;
    char name[32];
    snprintf(name, sizeof name, "smki_%u_%d", first->db, op);
    if (send_prepare(t, db_at(t, first->db), first->db, op, name, pp, from)) return 1;
    const void *k[PUT_PIPE_MAX], *v[PUT_PIPE_MAX];
    size_t kl[PUT_PIPE_MAX], vl[PUT_PIPE_MAX];
    for (size_t i = 0; i < rows; i++) {
        const store_put_rec *r = &recs[pp->order[from + i]];
        k[i] = r->key;
        kl[i] = r->klen;
        v[i] = r->val;
        vl[i] = r->vlen;
    }
    uint8_t *ka = NULL, *va = NULL;
    size_t kalen = 0, valen = 0;
    int rc = bytea_array(t, k, kl, rows, &ka, &kalen);
    if (rc == 0) rc = bytea_array(t, v, vl, rows, &va, &valen);
    if (rc == 0) {
        const char *pv[2] = {(const char *)ka, (const char *)va};
        int pl[2] = {(int)kalen, (int)valen};
        rc = PQsendQueryPrepared(t->c->conn, name, 2, pv, pl, pf, 1) ? 0 : 1; /* libpq has copied them */
        if (rc == 0) pp->sent[pp->nsent++] = (put_sent){0, first->db, op, from, rows};
    }
    free(ka);
    free(va);
    return rc;
}

/* The chunk's puts as one statement per database and kind of put (puts_commute). */
static int send_puts_as_rows(pg_txn *t, const store_put_rec *recs, size_t n, put_pipe *pp)
{
    uint8_t placed[PUT_PIPE_MAX] = {0};
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (placed[i]) continue;
        size_t from = at;
        for (size_t j = i; j < n; j++)
            if (!placed[j] && recs[j].db == recs[i].db &&
                (recs[j].flags & SMKI_PUT_NOOVERWRITE) == (recs[i].flags & SMKI_PUT_NOOVERWRITE)) {
                placed[j] = 1;
                pp->order[at++] = j;
            }
        int rc = send_rows(t, recs, pp, from, at - from);
        if (rc) return rc;
    }
    return PQpipelineSync(t->c->conn) ? 0 : 1;
}

/* A rows statement of OP_PUT_NEW_ROWS: the first of its records (in the chunk's order)
 * whose key is not among those written, or SIZE_MAX when all were. */
static size_t first_refused(const PGresult *r, const store_put_rec *recs, const put_pipe *pp, const put_sent *st)
{
    if ((size_t)PQntuples(r) == st->rows) return SIZE_MAX;
    for (size_t i = 0; i < st->rows; i++) { /* order[] holds each statement's records in ascending order */
        const store_put_rec *rec = &recs[pp->order[st->rec + i]];
        int written = 0;
        for (int row = 0; row < PQntuples(r) && !written; row++)
            written = (size_t)PQgetlength(r, row, 0) == rec->klen &&
                      memcmp(PQgetvalue(r, row, 0), rec->key, rec->klen) == 0;
        if (!written) return pp->order[st->rec + i];
    }
    return SIZE_MAX;
}

/* Reads every answer in order up to the sync. The outcome is the first failure; a
 * refused key is the first refused in the chunk's order. */
static int read_puts(pg_txn *t, const store_put_rec *recs, const put_pipe *pp, size_t *refused)
{
    PGconn *c = t->c->conn;
    int rc = 0;
    size_t first = SIZE_MAX;
    for (size_t k = 0; k < pp->nsent; k++) {
        const put_sent *st = &pp->sent[k];
        PGresult *r = pipe_result(c);
        int ok = r && result_ok(r);
        if (!ok && st->is_prepare) t->c->prepared[st->db] &= ~(1u << st->op);
        if (!ok) {
            if (rc == 0) rc = fail_result(t, r, st->is_prepare ? "prepare a statement" : "write");
            else PQclear(r);
            if (!r) return rc; /* the connection failed: nothing more will come */
            continue;
        }
        size_t no = SIZE_MAX;
        if (!st->is_prepare && st->op == OP_PUT_NEW && strcmp(PQcmdTuples(r), "0") == 0) no = st->rec;
        if (!st->is_prepare && st->op == OP_PUT_NEW_ROWS) no = first_refused(r, recs, pp, st);
        if ((rc == 0 || rc == SMKI_E_EXISTS) && no < first) {
            first = no;
            rc = SMKI_E_EXISTS;
        }
        PQclear(r);
    }
    if (pipe_sync(c) < 0 && rc == 0) {
        rc = fail_result(t, NULL, "write");
        t->lost = 1;
    }
    if (rc == SMKI_E_EXISTS) *refused = first;
    return rc;
}

int smki_pg_txn_put_many(pg_txn *t, const store_put_rec *recs, size_t n, size_t *refused)
{
    for (size_t i = 0; i < n; i++) forget_gets(t, recs[i].db);
    put_pipe *pp = malloc(sizeof *pp);
    ENSURE(pp, SMKI_E_NOMEM, "out of memory writing to store %s", t->p->label);
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += PUT_PIPE_MAX) {
        size_t m = n - at < PUT_PIPE_MAX ? n - at : PUT_PIPE_MAX;
        pp->nsent = 0;
        if (!PQenterPipelineMode(t->c->conn)) {
            rc = fail_result(t, NULL, "write");
            break;
        }
        t->c->pipelined = 1;
        /* Many records: a statement per database and kind of put, when their order
         * cannot matter (a group's certificates and indices), not one per record. */
        int src = m > 1 && puts_commute(t, recs + at, m) ? send_puts_as_rows(t, recs + at, m, pp)
                                                          : send_puts(t, recs + at, m, pp);
        if (src == 1) {
            rc = fail_result(t, NULL, "write");
            t->lost = 1; /* the session's place in the exchange is unknown: not reused */
            break;
        }
        /* A refused handle after some were sent: the sync still ends what went out. */
        if (src < 0 && !PQpipelineSync(t->c->conn)) t->lost = 1;
        int rrc = t->lost ? 0 : read_puts(t, recs + at, pp, refused);
        if (rrc == SMKI_E_EXISTS) *refused += at;
        if (!t->lost && PQexitPipelineMode(t->c->conn)) t->c->pipelined = 0;
        else t->lost = 1;
        rc = src < 0 ? src : rrc;
    }
    free(pp);
    return rc;
}

/* A get of the same key this transaction made recently (the gate's checks ask for
 * one Party's records once per certificate of a group). */
static const kept_get *kept_answer(const pg_txn *t, smki_db db, const void *key, size_t klen)
{
    for (size_t i = t->nkept, seen = 0; i-- > 0 && seen < KEPT_SEARCH; seen++) {
        const kept_get *k = &t->kept[i];
        if (k->is_current && k->db == db && k->klen == klen && memcmp(k->key, key, klen) == 0) return k;
    }
    return NULL;
}

/* Room for one more kept answer. */
static int kept_room(pg_txn *t)
{
    if (t->nkept == t->kept_cap) {
        size_t cap = t->kept_cap ? t->kept_cap * 2 : 8;
        kept_get *grown = realloc(t->kept, cap * sizeof *grown);
        ENSURE(grown, SMKI_E_NOMEM, "out of memory reading store %s", t->p->label);
        t->kept = grown;
        t->kept_cap = cap;
    }
    return 0;
}

int smki_pg_txn_get(pg_txn *t, smki_db db, const void *key, size_t klen, const void **val, size_t *vlen)
{
    const kept_get *hit = kept_answer(t, db, key, klen);
    if (hit) {
        *val = PQgetvalue(hit->r, 0, 0);
        *vlen = (size_t)PQgetlength(hit->r, 0, 0);
        return 0;
    }
    GUARD(kept_room(t));
    const void *v[1] = {key};
    size_t l[1] = {klen};
    PGresult *r = run_op(t, db, OP_GET, 1, v, l, "read");
    if (!r) return fail_op();
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SMKI_FAIL(SMKI_E_NOTFOUND, "no such record");
    }
    kept_get *k = &t->kept[t->nkept++]; /* *val stays valid until the transaction ends, as under LMDB */
    *k = (kept_get){.r = r, .db = db, .is_current = klen <= KEPT_KEY_MAX, .klen = klen};
    if (k->is_current) memcpy(k->key, key, klen);
    *val = PQgetvalue(r, 0, 0);
    *vlen = (size_t)PQgetlength(r, 0, 0);
    return 0;
}

/* Up to SMKI_GET_MANY_STMT keys in one statement; the answer is kept until the
 * transaction ends, as the values it hands out point into it. */
static int get_chunk(pg_txn *t, smki_db db, smki_get_rec *recs, size_t n)
{
    GUARD(kept_room(t));
    const void *keys[SMKI_GET_MANY_STMT];
    size_t klens[SMKI_GET_MANY_STMT];
    for (size_t i = 0; i < n; i++) {
        keys[i] = recs[i].key;
        klens[i] = recs[i].klen;
    }
    uint8_t *arr = NULL;
    size_t alen = 0;
    GUARD(bytea_array(t, keys, klens, n, &arr, &alen));
    const void *v[1] = {arr};
    size_t l[1] = {alen};
    PGresult *r = run_op(t, db, OP_GET_MANY, 1, v, l, "read");
    free(arr);
    if (!r) return fail_op();
    t->kept[t->nkept++] = (kept_get){.r = r, .db = db}; /* never current: no key to match */
    for (int row = 0; row < PQntuples(r); row++) {
        uint64_t i = PQgetlength(r, row, 0) == 8 ? smki_get_be64((const uint8_t *)PQgetvalue(r, row, 0)) : 0;
        ENSURE(i >= 1 && i <= n && !recs[i - 1].found, SMKI_E_STORE,
               "store %s: PostgreSQL answered a lookup of %zu keys with a row for key %llu", t->p->label, n,
               (unsigned long long)i);
        recs[i - 1].found = 1;
        recs[i - 1].val = PQgetvalue(r, row, 1);
        recs[i - 1].vlen = (size_t)PQgetlength(r, row, 1);
    }
    return 0;
}

int smki_pg_txn_get_many(pg_txn *t, smki_db db, smki_get_rec *recs, size_t n)
{
    for (size_t at = 0; at < n; at += SMKI_GET_MANY_STMT)
        GUARD(get_chunk(t, db, recs + at, n - at < SMKI_GET_MANY_STMT ? n - at : SMKI_GET_MANY_STMT));
    return 0;
}

static int run_delete(pg_txn *t, smki_db db, int op, int n, const void *const *v, const size_t *l)
{
    forget_gets(t, db);
    PGresult *r = run_op(t, db, op, n, v, l, "delete");
    if (!r) return fail_op();
    int deleted = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return deleted ? 0 : SMKI_FAIL(SMKI_E_NOTFOUND, op == OP_DEL ? "no such record" : "no such value under that key");
}

int smki_pg_txn_del(pg_txn *t, smki_db db, const void *key, size_t klen)
{
    const void *v[1] = {key};
    size_t l[1] = {klen};
    return run_delete(t, db, OP_DEL, 1, v, l);
}

int smki_pg_txn_del_dup(pg_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen)
{
    const pg_db *d = db_at(t, db);
    ENSURE(d, SMKI_E_USAGE, "store %s: database handle %u is not open in this store (smki_store_db)", t->p->label, db);
    ENSURE(d->flags & SMKI_DB_DUPSORT, SMKI_E_USAGE, "store %s: removing one value needs a DUPSORT database",
           t->p->label);
    const void *v[2] = {key, val};
    size_t l[2] = {klen, vlen};
    return run_delete(t, db, OP_DEL_DUP, 2, v, l);
}

typedef struct {
    uint8_t key[512];
    size_t klen;
    uint8_t *val;
    size_t vlen, vcap;
} scan_pos;

static int remember(scan_pos *at, const char *k, size_t kl, const char *v, size_t vl)
{
    ENSURE(kl <= sizeof at->key, SMKI_E_CORRUPT, "a stored key of %zu octets, longer than any smki writes", kl);
    memcpy(at->key, k, kl);
    at->klen = kl;
    if (vl > at->vcap) {
        uint8_t *grown = realloc(at->val, vl);
        ENSURE(grown, SMKI_E_NOMEM, "out of memory scanning a store");
        at->val = grown;
        at->vcap = vl;
    }
    if (vl) memcpy(at->val, v, vl);
    at->vlen = vl;
    return 0;
}

/* The first key above every key that starts with prefix (into end, ABOVE_ALL_LEN
 * octets): the prefix with its trailing ff octets dropped and its last octet
 * incremented; above all keys for an empty or all-ff prefix. Returns its length. */
static size_t prefix_end(const uint8_t *prefix, size_t plen, uint8_t *end)
{
    size_t n = plen;
    while (n && prefix[n - 1] == 0xff) n--;
    if (n == 0 || n > ABOVE_ALL_LEN) {
        memset(end, 0xff, ABOVE_ALL_LEN);
        return ABOVE_ALL_LEN;
    }
    memcpy(end, prefix, n);
    end[n - 1]++;
    return n;
}

typedef struct {
    smki_scan_fn fn;
    smki_join_fn jfn; /* instead, for an index scan */
    void *arg;
} scan_visit;

static int visit_row(const PGresult *r, int i, int col, const scan_visit *vis)
{
    const char *k = PQgetvalue(r, i, col), *val = PQgetvalue(r, i, col + 1);
    size_t kl = (size_t)PQgetlength(r, i, col), vl = (size_t)PQgetlength(r, i, col + 1);
    if (!vis->jfn) return vis->fn(k, kl, val, vl, vis->arg);
    int has_rec = !PQgetisnull(r, i, col + 2);
    return vis->jfn(k, kl, val, vl, has_rec ? PQgetvalue(r, i, col + 2) : NULL,
                    has_rec ? (size_t)PQgetlength(r, i, col + 2) : 0, vis->arg);
}

/* index and target can be joined: both open, the target without duplicates. */
static int join_target_check(pg_txn *t, smki_db index, smki_db target)
{
    const pg_db *d = db_at(t, index), *td = db_at(t, target);
    ENSURE(d && td, SMKI_E_USAGE, "store %s: database handle %u is not open in this store (smki_store_db)",
           t->p->label, d ? target : index);
    ENSURE(!(td->flags & SMKI_DB_DUPSORT), SMKI_E_USAGE,
           "store %s: an index scan's target must be a database without duplicates", t->p->label);
    ENSURE(target < MAX_JOIN_TARGETS, SMKI_E_USAGE,
           "store %s: an index scan's target must be one of the first %d databases opened", t->p->label,
           MAX_JOIN_TARGETS);
    return 0;
}

/* Rows [from, to) of r, whose columns start at col: a scan's page. */
typedef struct {
    PGresult *r;
    int from, to, col, owned;
} page_rows;

/* The first page of the join scan (db, target, prefix) if it was fetched ahead: 1 and
 * *out; 0 when it must be read. */
static int take_ahead(pg_txn *t, smki_db db, smki_db target, const void *prefix, size_t plen, page_rows *out)
{
    for (size_t i = 0; i < t->nahead; i++) {
        ahead_page *a = &t->ahead[i];
        if (!a->taken && a->db == db && a->target == target && a->plen == plen &&
            (!plen || memcmp(a->prefix, prefix, plen) == 0)) {
            a->taken = 1;
            *out = (page_rows){a->r, a->from, a->to, 1, 0};
            return 1;
        }
    }
    return 0;
}

/* Pages of SCAN_PAGE records in key order, each bounded by the prefix's end, so a
 * lookup's page holds only its own records. first_op: OP_SCAN_FROM or OP_JOIN_FROM. */
/* Where a scan is: its last entry (for the next page), and whether it skips the rest
 * of that key's values. */
typedef struct {
    scan_pos at;
    int skipping, done;
} scan_state;

/* Visits one page's rows. Returns fn's failure; st->done once the scan is over (its
 * prefix passed, or fn stopped it). */
static int visit_page(const page_rows *pg, const void *prefix, size_t plen, scan_state *st, const scan_visit *vis)
{
    for (int i = pg->from; i < pg->to; i++) {
        const char *k = PQgetvalue(pg->r, i, pg->col);
        size_t kl = (size_t)PQgetlength(pg->r, i, pg->col);
        if (plen && (kl < plen || memcmp(k, prefix, plen) != 0)) {
            st->done = 1;
            return 0;
        }
        if (st->skipping && kl == st->at.klen && memcmp(k, st->at.key, kl) == 0) continue;
        st->skipping = 0;
        GUARD(remember(&st->at, k, kl, PQgetvalue(pg->r, i, pg->col + 1), (size_t)PQgetlength(pg->r, i, pg->col + 1)));
        int rc = visit_row(pg->r, i, pg->col, vis);
        if (rc == SMKI_SCAN_NEXT_KEY) {
            st->skipping = 1;
        } else if (rc != 0) {
            st->done = 1;
            return rc < 0 ? rc : 0;
        }
    }
    return 0;
}

/* Pages of SCAN_PAGE records in key order, each bounded by the prefix's end, so a
 * lookup's page holds only its own records. first_op: OP_SCAN_FROM or OP_JOIN_FROM. A
 * join's first page may have been fetched ahead. */
static int scan_pages(pg_txn *t, smki_db db, int first_op, smki_db target, const void *prefix, size_t plen,
                      const scan_visit *vis)
{
    const pg_db *d = db_at(t, db);
    ENSURE(d, SMKI_E_USAGE, "store %s: database handle %u is not open in this store (smki_store_db)", t->p->label, db);
    int dup = (d->flags & SMKI_DB_DUPSORT) != 0;
    uint8_t end[ABOVE_ALL_LEN];
    size_t elen = prefix_end(prefix, plen, end);
    scan_state st = {.at = {.klen = 0}};
    int rc = 0, page = 0;
    while (!st.done && rc == 0) {
        const void *v[3] = {page > 0 ? st.at.key : prefix, NULL, NULL};
        size_t l[3] = {page > 0 ? st.at.klen : plen, 0, 0};
        int n = 1;
        if (page == 2) v[n] = st.at.val, l[n++] = st.at.vlen;
        v[n] = end, l[n++] = elen;
        page_rows pg;
        if (!(page == 0 && first_op == OP_JOIN_FROM && take_ahead(t, db, target, prefix, plen, &pg))) {
            PGresult *r = run_stmt(t, db, first_op + page, target, n, v, l, "read");
            if (!r) {
                rc = fail_op();
                break;
            }
            pg = (page_rows){r, 0, PQntuples(r), 0, 1};
        }
        rc = visit_page(&pg, prefix, plen, &st, vis);
        if (pg.owned) PQclear(pg.r);
        if (pg.to - pg.from < SCAN_PAGE) st.done = 1;
        page = dup && !st.skipping ? 2 : 1;
    }
    free(st.at.val);
    return rc < 0 ? rc : 0;
}

int smki_pg_txn_scan(pg_txn *t, smki_db db, const void *prefix, size_t plen, smki_scan_fn fn, void *arg)
{
    scan_visit vis = {fn, NULL, arg};
    return scan_pages(t, db, OP_SCAN_FROM, 0, prefix, plen, &vis);
}

int smki_pg_txn_scan_join(pg_txn *t, smki_db index, const void *prefix, size_t plen, smki_db target, smki_join_fn fn,
                     void *arg)
{
    GUARD(join_target_check(t, index, target));
    scan_visit vis = {NULL, fn, arg};
    return scan_pages(t, index, OP_JOIN_FROM, target, prefix, plen, &vis);
}

/* ---- Scans fetched ahead ---------------------------------------------------------------- */

/* Scans fetched ahead in one statement at most (a repository's loop asks for up to 64). */
#define AHEAD_CHUNK 256

static int ahead_room(pg_txn *t, size_t n)
{
    if (t->nahead + n <= t->ahead_cap) return 0;
    size_t cap = t->ahead_cap ? t->ahead_cap : 16;
    while (cap < t->nahead + n) cap *= 2;
    ahead_page *grown = realloc(t->ahead, cap * sizeof *grown);
    ENSURE(grown, SMKI_E_NOMEM, "out of memory reading store %s", t->p->label);
    t->ahead = grown;
    t->ahead_cap = cap;
    return 0;
}

/* The first pages of n join scans of index with target: each prefix's entries from
 * the prefix to its end, as the scan's first page (OP_JOIN_FROM), with the prefix's
 * place (from 1) first; one index scan per prefix, in order of place. */
static void ahead_sql(const pg_db *d, const pg_db *td, char *sql, size_t cap)
{
    const char *order = d->flags & SMKI_DB_DUPSORT ? "x.k, x.v" : "x.k";
    snprintf(sql, cap,
             "SELECT q.n, x.k, x.v, x.tv FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS q(lo, hi, n) "
             "CROSS JOIN LATERAL (SELECT i.k, i.v, t.v AS tv FROM %s i LEFT JOIN %s t ON t.k = i.v WHERE i.k >= q.lo "
             "AND i.k < q.hi ORDER BY i.k%s LIMIT %d) x ORDER BY q.n, %s",
             d->table, td->table, d->flags & SMKI_DB_DUPSORT ? ", i.v" : "", SCAN_PAGE, order);
}

/* The statement's answer split into each prefix's page (rows in order of place). */
static int keep_pages(pg_txn *t, PGresult *r, smki_db index, smki_db target, const void *const *prefixes,
                      const size_t *plens, size_t n)
{
    int rows = PQntuples(r), row = 0;
    for (size_t i = 0; i < n; i++) {
        int from = row;
        while (row < rows && PQgetlength(r, row, 0) == 8 &&
               smki_get_be64((const uint8_t *)PQgetvalue(r, row, 0)) == (uint64_t)i + 1)
            row++;
        ahead_page *a = &t->ahead[t->nahead++];
        *a = (ahead_page){.r = r, .from = from, .to = row, .owns = i == 0, .db = index, .target = target,
                          .plen = plens[i]};
        if (plens[i]) memcpy(a->prefix, prefixes[i], plens[i]);
    }
    ENSURE(row == rows, SMKI_E_STORE, "store %s: PostgreSQL answered %zu scans with rows out of order (row %d of %d)",
           t->p->label, n, row, rows);
    return 0;
}

/* The scans' bounds as the statement's two parameters: the prefixes (lo) and the key
 * above each prefix's keys (hi), each a bytea[]. */
static int ahead_bounds(const pg_txn *t, const void *const *prefixes, const size_t *plens, size_t n, uint8_t **lo,
                        size_t *lol, uint8_t **hi, size_t *hil)
{
    const void *ends[AHEAD_CHUNK];
    size_t elens[AHEAD_CHUNK];
    uint8_t(*end)[ABOVE_ALL_LEN] = malloc(n * sizeof *end);
    ENSURE(end, SMKI_E_NOMEM, "out of memory reading store %s", t->p->label);
    for (size_t i = 0; i < n; i++) ends[i] = end[i], elens[i] = prefix_end(prefixes[i], plens[i], end[i]);
    int rc = bytea_array(t, prefixes, plens, n, lo, lol);
    if (rc == 0) rc = bytea_array(t, ends, elens, n, hi, hil);
    free(end);
    return rc;
}

static int fetch_ahead(pg_txn *t, smki_db index, smki_db target, const void *const *prefixes, const size_t *plens,
                       size_t n)
{
    GUARD(join_target_check(t, index, target));
    const pg_db *d = db_at(t, index), *td = db_at(t, target);
    GUARD(ahead_room(t, n));
    uint8_t *lo = NULL, *hi = NULL;
    size_t lol = 0, hil = 0;
    int rc = ahead_bounds(t, prefixes, plens, n, &lo, &lol, &hi, &hil);
    char name[48], sql[1200];
    snprintf(name, sizeof name, "smki_%u_ahead_%u", index, target);
    uint64_t *jbits = &t->c->joined[(size_t)index * JOIN_OPS + JOIN_AHEAD];
    int have = (int)((*jbits >> target) & 1u), prepared = 0;
    if (!have) ahead_sql(d, td, sql, sizeof sql);
    stmt st = {.name = name, .sql = have ? NULL : sql, .n = 2, .pv = {(const char *)lo, (const char *)hi},
               .pl = {(int)lol, (int)hil}, .fmt = 1};
    PGresult *r = rc == 0 ? pipe_exec(t, &st, &prepared, "read") : NULL;
    free(lo);
    free(hi);
    if (prepared) *jbits |= (uint64_t)1 << target;
    if (rc < 0) return rc;
    if (!r) return fail_op();
    size_t kept = t->nahead;
    rc = keep_pages(t, r, index, target, prefixes, plens, n);
    if (rc < 0) { /* none of its pages is taken */
        t->nahead = kept;
        PQclear(r);
    }
    return rc;
}

int smki_pg_txn_scan_join_ahead(pg_txn *t, smki_db index, smki_db target, const void *const *prefixes,
                                const size_t *plens, size_t n)
{
    GUARD(join_target_check(t, index, target));
    if (!t->lazy) return 0; /* a write's statements go one at a time (PQexec) */
    const void *p[AHEAD_CHUNK];
    size_t l[AHEAD_CHUNK], k = 0;
    for (size_t i = 0; i < n; i++) {
        if (plens[i] > KEPT_KEY_MAX) continue; /* left to its scan */
        p[k] = prefixes[i];
        l[k++] = plens[i];
        if (k == AHEAD_CHUNK) {
            GUARD(fetch_ahead(t, index, target, p, l, k));
            k = 0;
        }
    }
    if (k) GUARD(fetch_ahead(t, index, target, p, l, k));
    return 0;
}

int smki_pg_txn_seek(pg_txn *t, smki_db db, const void *from, size_t flen, void *key, size_t cap, size_t *klen)
{
    const void *v[1] = {from};
    size_t l[1] = {flen};
    PGresult *r = run_op(t, db, OP_SEEK, 1, v, l, "read");
    if (!r) return fail_op();
    int rc = 0;
    if (PQntuples(r) == 0) {
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no such record");
    } else if ((size_t)PQgetlength(r, 0, 0) > cap) {
        rc = SMKI_FAIL(SMKI_E_CORRUPT, "store %s: a key of %d octets where at most %zu were expected", t->p->label,
                       PQgetlength(r, 0, 0), cap);
    } else {
        *klen = (size_t)PQgetlength(r, 0, 0);
        memcpy(key, PQgetvalue(r, 0, 0), *klen);
    }
    PQclear(r);
    return rc;
}

int smki_pg_txn_count(pg_txn *t, smki_db db, size_t *count)
{
    PGresult *r = run_op(t, db, OP_COUNT, 0, NULL, NULL, "count");
    if (!r) return fail_op();
    *count = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int smki_pg_txn_clear(pg_txn *t, smki_db db)
{
    forget_gets(t, db);
    /* DELETE, not TRUNCATE: TRUNCATE would lock readers out until the commit. */
    PGresult *r = run_op(t, db, OP_CLEAR, 0, NULL, NULL, "clear");
    if (!r) return fail_op();
    PQclear(r);
    return 0;
}

/* ---- The maintenance lock ---------------------------------------------------------------- */

/* 1 taken, 0 held by another session, negative on error. */
static int try_maint_lock(pg_store *p, pg_conn *c)
{
    PGresult *r = PQexec(c->conn, "SELECT pg_try_advisory_lock(" LOCK_MAINT ", hashtext(current_schema()))::int");
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_txn t = {.p = p, .c = c};
        return fail_result(&t, r, "take the maintenance lock");
    }
    int got = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    return got;
}

/* Who holds the maintenance lock, into who; 0 if nobody does (any more). */
static int maint_holder(pg_conn *c, char *who, size_t cap)
{
    /* The session's application_name says "smki pid N". */
    PGresult *r = PQexec(c->conn, "SELECT coalesce(a.application_name, ''), l.pid FROM pg_locks l "
                                  "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND "
                                  "l.granted AND l.classid = " LOCK_MAINT "::oid AND l.objid = "
                                  "(hashtext(current_schema())::bigint & 4294967295)::oid AND l.objsubid = 2 LIMIT 1");
    int found = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (found) {
        char app[200];
        long pid = 0;
        one_line(PQgetvalue(r, 0, 0), app, sizeof app);
        if (sscanf(app, "smki pid %ld", &pid) == 1)
            snprintf(who, cap, "process %ld (its PostgreSQL session, server pid %s)", pid, PQgetvalue(r, 0, 1));
        else
            snprintf(who, cap, "the session '%s' (server pid %s, pg_locks)", app, PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return found;
}

int smki_pg_store_lock_exclusive(pg_store *p)
{
    if (p->maint) return 0;
    pg_conn *c = NULL;
    GUARD(conn_open(p, &c));
    /* The holder may let go between the try and the question who it is. */
    for (int attempt = 0; attempt < 8; attempt++) {
        int got = try_maint_lock(p, c);
        if (got < 0) {
            conn_free(c);
            return got;
        }
        if (got) {
            p->maint = c->conn; /* the session holds the lock; closing it lets go */
            c->conn = NULL;
            conn_free(c);
            return 0;
        }
        char who[300];
        if (maint_holder(c, who, sizeof who)) {
            conn_free(c);
            return SMKI_FAIL(SMKI_E_LOCKED, "store %s is locked by %s", p->label, who);
        }
        usleep(10000);
    }
    conn_free(c);
    return SMKI_FAIL(SMKI_E_LOCKED, "store %s is locked by sessions that keep taking and releasing it (pg_locks)",
                     p->label);
}

void smki_pg_store_unlock(pg_store *p)
{
    if (!p->maint) return;
    /* Let go before closing: the session's end reaches the server a moment later, and
     * the next taker must not find the lock still held. */
    PQclear(PQexec(p->maint, "SELECT pg_advisory_unlock(" LOCK_MAINT ", hashtext(current_schema()))"));
    PQfinish(p->maint);
    p->maint = NULL;
}

/* ---- Listing ------------------------------------------------------------------------------ */

int smki_pg_store_each_db(pg_store *p, smki_store_db_fn fn, void *arg)
{
    pg_txn t = {.p = p};
    GUARD(conn_acquire(p, 0, &t.c));
    int rc = txn_begin(&t);
    PGresult *r = NULL;
    if (rc == 0) {
        r = PQexec(t.c->conn, "SELECT name, dupsort::int FROM " CATALOG " ORDER BY name COLLATE \"C\"");
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = fail_result(&t, r, "read the catalog");
            r = NULL;
        }
    }
    txn_finish(&t);
    for (int i = 0; r && rc == 0 && i < PQntuples(r); i++)
        rc = fn(PQgetvalue(r, i, 0), strcmp(PQgetvalue(r, i, 1), "1") == 0 ? SMKI_DB_DUPSORT : 0, arg);
    PQclear(r);
    return rc;
}
