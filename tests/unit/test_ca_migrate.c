/* The CA's store layout across schemas: a store written in schema 1 (records without
 * seq, role/usage/environment/status in four indices of their own) is migrated on
 * open in one write, after which every query finds what it found before, and the
 * facet index answers every subset of role, usage, environment and status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/ca_private.h"
#include "helpers.h"

#define N_CERTS 60

static const char *const ENVS[] = {"test", "prod", "t2"};
static const int STATUSES[] = {SMKI_STATUS_IN_USE, SMKI_STATUS_PENDING, SMKI_STATUS_REVOKED, SMKI_STATUS_NOT_IN_USE,
                               SMKI_STATUS_EXPIRED};

/* Records of each kind the CA writes: devices (no role, an EUI shared by several,
 * DS or KA), organisations (a role, an EUI), CAs (no usage, no EUI), over three
 * environments, two issuers and every status. The DER is opaque to the store. */
static void make_cert(unsigned i, smki_cert *c)
{
    memset(c, 0, sizeof *c);
    memset(c->issuer_ski, i % 2 ? 0xa1 : 0xb2, SMKI_KEYID_LEN);
    for (int k = 0; k < SMKI_SERIAL_LEN; k++) c->serial[k] = (uint8_t)(i * 37 + k * 11 + 0x40);
    for (int k = 0; k < SMKI_KEYID_LEN; k++) c->ski[k] = (uint8_t)(i * 13 + k);
    unsigned kind = i % 3;
    c->profile = kind == 0 ? SMKI_PROFILE_DEVICE : kind == 1 ? SMKI_PROFILE_ORGANISATION : SMKI_PROFILE_SMKI_DCA;
    c->usage = kind == 2 ? 0 : (i / 3) % 2 ? SMKI_USAGE_KA : SMKI_USAGE_DS;
    c->role = kind == 1 ? (int)(1 + i % 4) : -1;
    c->has_eui = kind != 2;
    for (int k = 0; c->has_eui && k < 8; k++) c->eui.b[k] = (uint8_t)(kind == 0 ? i % 7 : 0x90 + i);
    c->status = (smki_cert_status)STATUSES[(i / 2) % 5];
    snprintf(c->env, sizeof c->env, "%s", ENVS[(i / 4) % 3]);
    c->not_before = 1700000000 + i;
    c->not_after = 253402300799;
    c->der_len = 20 + i;
    for (size_t k = 0; k < c->der_len; k++) c->der[k] = (uint8_t)(i + k);
}

static smki_cert *all_certs(void)
{
    smki_cert *c = malloc(N_CERTS * sizeof *c);
    assert_non_null(c);
    for (unsigned i = 0; i < N_CERTS; i++) make_cert(i, &c[i]);
    return c;
}

/* ---- A schema-1 store, as schema 1's smki wrote it ---------------------------------- */

typedef struct {
    smki_db meta, certs, idx[7];
    const smki_cert *all;
} old_store;

static const char *const OLD_NAMES[7] = {"by_serial", "by_eui", "by_ski", "by_role", "by_usage", "by_env", "by_status"};

static int write_old(smki_txn *t, void *arg)
{
    old_store *o = arg;
    static const uint8_t one[4] = {0, 0, 0, 1};
    GUARD(smki_txn_put(t, o->meta, "schema", 6, one, sizeof one, 0));
    static uint8_t v2[CA_CERT_RECORD_MAX], v1[CA_CERT_RECORD_MAX];
    for (unsigned i = 0; i < N_CERTS; i++) {
        const smki_cert *c = &o->all[i];
        size_t len = 0;
        GUARD(smki_ca_cert_encode(c, v2, sizeof v2, &len));
        /* version 1: the same fields without the 8 octets of seq after not_after */
        memcpy(v1, v2, 38);
        v1[0] = 1;
        memcpy(v1 + 38, v2 + 46, len - 46);
        uint8_t key[CA_CERT_KEY_LEN];
        smki_ca_cert_key(c, key);
        GUARD(smki_txn_put(t, o->certs, key, sizeof key, v1, len - 8, SMKI_PUT_NOOVERWRITE));
        uint8_t role = (uint8_t)c->role, usage = (uint8_t)c->usage, status = (uint8_t)c->status;
        GUARD(smki_txn_put(t, o->idx[0], c->serial, SMKI_SERIAL_LEN, key, sizeof key, 0));
        if (c->has_eui) GUARD(smki_txn_put(t, o->idx[1], c->eui.b, 8, key, sizeof key, 0));
        GUARD(smki_txn_put(t, o->idx[2], c->ski, SMKI_KEYID_LEN, key, sizeof key, 0));
        if (c->role >= 0) GUARD(smki_txn_put(t, o->idx[3], &role, 1, key, sizeof key, 0));
        GUARD(smki_txn_put(t, o->idx[4], &usage, 1, key, sizeof key, 0));
        GUARD(smki_txn_put(t, o->idx[5], c->env, strlen(c->env), key, sizeof key, 0));
        GUARD(smki_txn_put(t, o->idx[6], &status, 1, key, sizeof key, 0));
    }
    return 0;
}

static void write_schema_1_store(const char *dir, const smki_cert *all)
{
    smki_store *s = NULL;
    assert_ok(smki_store_open(dir, NULL, &s));
    old_store o = {.all = all};
    assert_ok(smki_store_db(s, "meta", 0, &o.meta));
    assert_ok(smki_store_db(s, "certs", 0, &o.certs));
    for (int i = 0; i < 7; i++) assert_ok(smki_store_db(s, OLD_NAMES[i], SMKI_DB_DUPSORT, &o.idx[i]));
    assert_ok(smki_store_write(s, write_old, &o));
    smki_store_close(s);
}

/* ---- Queries against the list they should select from ------------------------------ */

typedef struct {
    size_t n;
    int seen[N_CERTS];
    const smki_cert *all;
    size_t n_all; /* of all; the first N_CERTS at most are checked one by one */
} found_t;

static int note(const smki_cert *c, void *arg)
{
    found_t *f = arg;
    for (size_t i = 0; i < f->n_all && i < N_CERTS; i++)
        if (memcmp(f->all[i].issuer_ski, c->issuer_ski, SMKI_KEYID_LEN) == 0 &&
            memcmp(f->all[i].serial, c->serial, SMKI_SERIAL_LEN) == 0) {
            assert_int_equal(f->seen[i], 0); /* each once */
            f->seen[i] = 1;
            assert_int_equal(c->status, f->all[i].status);
            assert_int_equal(c->role, f->all[i].role);
            assert_int_equal(c->usage, f->all[i].usage);
            assert_string_equal(c->env, f->all[i].env);
            assert_int_equal(c->der_len, f->all[i].der_len);
            assert_memory_equal(c->der, f->all[i].der, c->der_len);
            assert_true(c->seq != 0);
        }
    f->n++;
    return 0;
}

static int wanted(const smki_ca_query *q, const smki_cert *c)
{
    return (!q->env || strcmp(q->env, c->env) == 0) && (!q->eui || (c->has_eui && !memcmp(q->eui, &c->eui, 8))) &&
           (!q->ski || !memcmp(q->ski, c->ski, SMKI_KEYID_LEN)) &&
           (!q->serial || !memcmp(q->serial, c->serial, SMKI_SERIAL_LEN)) &&
           (!q->issuer_ski || !memcmp(q->issuer_ski, c->issuer_ski, SMKI_KEYID_LEN)) &&
           (q->role < 0 || q->role == c->role) && (q->usage < 0 || q->usage == c->usage) &&
           (!q->status || q->status == (int)c->status) &&
           (q->profile == SMKI_PROFILE_UNKNOWN || q->profile == c->profile);
}

/* The query finds exactly the certificates of `all` it names, and at least one. */
static size_t expect(smki_ca_db *db, const smki_cert *all, size_t n_all, const smki_ca_query *q)
{
    found_t f = {.all = all, .n_all = n_all};
    assert_ok(smki_ca_find(db, q, note, &f));
    size_t want = 0;
    for (size_t i = 0; i < n_all; i++) {
        int w = wanted(q, &all[i]);
        want += (size_t)w;
        if (i < N_CERTS) assert_int_equal(f.seen[i], w);
    }
    assert_int_equal(f.n, want);
    return want;
}

/* Every single facet, every pair of facets, and the other indices. */
static void expect_every_query(smki_ca_db *db, const smki_cert *all, size_t n_all)
{
    static const int USAGES[] = {0, SMKI_USAGE_DS, SMKI_USAGE_KA};
    size_t total = 0;
    for (size_t e = 0; e < 3; e++) {
        smki_ca_query q = SMKI_CA_QUERY_ALL;
        q.env = ENVS[e];
        total += expect(db, all, n_all, &q);
        for (size_t s = 0; s < 5; s++) {
            q.status = STATUSES[s];
            expect(db, all, n_all, &q);
        }
    }
    assert_int_equal(total, n_all);
    total = 0;
    for (size_t s = 0; s < 5; s++) {
        smki_ca_query q = SMKI_CA_QUERY_ALL;
        q.status = STATUSES[s];
        total += expect(db, all, n_all, &q);
        for (size_t u = 0; u < 3; u++) {
            q.usage = USAGES[u];
            q.role = -1;
            expect(db, all, n_all, &q);
            q.role = 2;
            expect(db, all, n_all, &q);
        }
    }
    assert_int_equal(total, n_all);
    for (int role = 1; role <= 4; role++) {
        smki_ca_query q = SMKI_CA_QUERY_ALL;
        q.role = role;
        assert_true(expect(db, all, n_all, &q) > 0);
        q.env = "prod";
        expect(db, all, n_all, &q);
        q.usage = SMKI_USAGE_KA;
        expect(db, all, n_all, &q);
    }
    for (size_t u = 0; u < 3; u++) {
        smki_ca_query q = SMKI_CA_QUERY_ALL;
        q.usage = USAGES[u];
        assert_true(expect(db, all, n_all, &q) > 0);
        q.env = "t2";
        expect(db, all, n_all, &q);
    }
    smki_ca_query none = SMKI_CA_QUERY_ALL;
    none.env = "nowhere";
    assert_int_equal(expect(db, all, n_all, &none), 0);
    for (unsigned i = 0; i < N_CERTS; i += 7) {
        smki_ca_query q = SMKI_CA_QUERY_ALL;
        q.serial = all[i].serial;
        assert_int_equal(expect(db, all, n_all, &q), 1);
        q = (smki_ca_query)SMKI_CA_QUERY_ALL;
        q.ski = all[i].ski;
        assert_true(expect(db, all, n_all, &q) >= 1);
        q = (smki_ca_query)SMKI_CA_QUERY_ALL;
        q.issuer_ski = all[i].issuer_ski;
        q.status = (int)all[i].status;
        assert_true(expect(db, all, n_all, &q) >= 1);
        if (all[i].has_eui) {
            q = (smki_ca_query)SMKI_CA_QUERY_ALL;
            q.eui = &all[i].eui;
            assert_true(expect(db, all, n_all, &q) >= 1);
        }
        smki_cert *got = malloc(sizeof *got);
        assert_ok(smki_ca_cert_get(db, all[i].issuer_ski, all[i].serial, got));
        assert_memory_equal(got->der, all[i].der, all[i].der_len);
        free(got);
    }
    assert_int_equal(expect(db, all, n_all, &(smki_ca_query)SMKI_CA_QUERY_ALL), n_all);
}

static size_t count_of(smki_store *s, const char *name)
{
    smki_db db = 0;
    assert_ok(smki_store_db(s, name, SMKI_DB_DUPSORT, &db));
    return test_store_count(s, db);
}

/* ---- Tests --------------------------------------------------------------------------- */

static void test_open_migrates_a_schema_1_store_and_every_query_finds_what_it_did(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("ca_migrate");
    smki_cert *all = all_certs();
    write_schema_1_store(dir, all);

    smki_store *s = NULL;
    assert_ok(smki_store_open(dir, NULL, &s));
    assert_int_equal(smki_store_schema(s), 1);
    smki_ca_db db;
    assert_ok(smki_ca_db_open(s, &db));
    assert_int_equal(smki_store_schema(s), SMKI_STORE_SCHEMA);
    expect_every_query(&db, all, N_CERTS);
    /* the old indices are emptied; the facet index holds one entry per certificate */
    for (int i = 0; i < 7; i++) {
        int is_kept = strcmp(OLD_NAMES[i], "by_eui") == 0 || strcmp(OLD_NAMES[i], "by_ski") == 0;
        assert_int_equal(count_of(s, OLD_NAMES[i]), is_kept ? (i == 1 ? 40 : N_CERTS) : 0);
    }
    assert_int_equal(count_of(s, "by_facet"), N_CERTS);

    /* records now carry distinct seqs; a second open changes nothing */
    smki_cert *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_ok(smki_ca_cert_get(&db, all[0].issuer_ski, all[0].serial, a));
    assert_ok(smki_ca_cert_get(&db, all[1].issuer_ski, all[1].serial, b));
    assert_true(a->seq != 0 && b->seq != 0 && a->seq != b->seq);
    smki_store_close(s);
    assert_ok(smki_store_open(dir, NULL, &s));
    assert_int_equal(smki_store_schema(s), SMKI_STORE_SCHEMA);
    assert_ok(smki_ca_db_open(s, &db));
    smki_cert *again = malloc(sizeof *again);
    assert_ok(smki_ca_cert_get(&db, all[0].issuer_ski, all[0].serial, again));
    assert_true(again->seq == a->seq);
    expect_every_query(&db, all, N_CERTS);
    smki_store_close(s);
    free(a);
    free(b);
    free(again);
    free(all);
}

static void test_read_only_open_of_a_schema_1_store_is_refused_until_a_write_open_migrates_it(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("ca_migrate_ro");
    smki_cert *all = all_certs();
    write_schema_1_store(dir, all);

    smki_store_opts ro = {.read_only = 1};
    smki_store *s = NULL;
    assert_ok(smki_store_open(dir, &ro, &s));
    smki_ca_db db;
    assert_fails(smki_ca_db_open(s, &db), SMKI_E_NOTFOUND, "in schema 1 and they could not be brought to schema 2");
    smki_store_close(s);

    assert_ok(smki_store_open(dir, NULL, &s));
    assert_ok(smki_ca_db_open(s, &db));
    smki_store_close(s);
    assert_ok(smki_store_open(dir, &ro, &s));
    assert_ok(smki_ca_db_open(s, &db));
    expect_every_query(&db, all, N_CERTS);
    smki_store_close(s);
    free(all);
}

typedef struct {
    const smki_ca_db *db;
    const smki_cert *c;
    size_t n;
} put_arg;

static int put_some(smki_txn *t, void *arg)
{
    put_arg *p = arg;
    for (size_t i = 0; i < p->n; i++) GUARD(smki_ca_cert_put(t, p->db, &p->c[i]));
    return 0;
}

static void test_certificates_recorded_after_migration_join_the_facet_index(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("ca_migrate_more");
    smki_cert *all = realloc(all_certs(), 2 * N_CERTS * sizeof(smki_cert));
    assert_non_null(all);
    write_schema_1_store(dir, all);
    smki_store *s = NULL;
    assert_ok(smki_store_open(dir, NULL, &s));
    smki_ca_db db;
    assert_ok(smki_ca_db_open(s, &db));
    /* new ones: other serials, same facets; half in a transaction, half in a batch */
    for (unsigned i = 0; i < N_CERTS; i++) {
        make_cert(i, &all[N_CERTS + i]);
        all[N_CERTS + i].serial[0] ^= 0x3f;
    }
    put_arg p = {&db, all + N_CERTS, N_CERTS / 2};
    assert_ok(smki_store_write(s, put_some, &p));
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(s, 7, NULL, NULL, &b));
    for (unsigned i = N_CERTS / 2; i < N_CERTS; i++) assert_ok(smki_ca_cert_queue(b, &db, &all[N_CERTS + i]));
    assert_ok(smki_batch_end(b));
    expect_every_query(&db, all, 2 * N_CERTS);
    assert_int_equal(count_of(s, "by_facet"), 2 * N_CERTS);
    /* the same certificate twice is refused by the store and adds nothing */
    p = (put_arg){&db, all, 1};
    assert_fails(smki_store_write(s, put_some, &p), SMKI_E_EXISTS, "already used by this issuer");
    assert_int_equal(count_of(s, "by_facet"), 2 * N_CERTS);
    smki_store_close(s);
    free(all);
}

/* Serials are unique per issuer only: a search by serial alone visits every issuer,
 * the lowest and highest SKIs too; with the issuer it finds that one. */
static void test_search_by_serial_finds_it_under_every_issuer(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("ca_serial_issuers");
    smki_cert *all = malloc(5 * sizeof *all);
    assert_non_null(all);
    static const uint8_t ISSUERS[4] = {0x00, 0x7f, 0xa1, 0xff};
    for (unsigned i = 0; i < 4; i++) {
        make_cert(3, &all[i]);
        memset(all[i].issuer_ski, ISSUERS[i], SMKI_KEYID_LEN);
    }
    make_cert(4, &all[4]); /* another serial */
    smki_store *s = NULL;
    assert_ok(smki_store_open(dir, NULL, &s));
    smki_ca_db db;
    assert_ok(smki_ca_db_open(s, &db));
    put_arg p = {&db, all, 5};
    assert_ok(smki_store_write(s, put_some, &p));
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.serial = all[0].serial;
    assert_int_equal(expect(&db, all, 5, &q), 4);
    for (unsigned i = 0; i < 4; i++) {
        q.issuer_ski = all[i].issuer_ski;
        assert_int_equal(expect(&db, all, 5, &q), 1);
    }
    uint8_t none[SMKI_KEYID_LEN];
    memset(none, 0x33, sizeof none);
    q.issuer_ski = none;
    assert_int_equal(expect(&db, all, 5, &q), 0);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.serial = all[4].serial;
    assert_int_equal(expect(&db, all, 5, &q), 1);
    uint8_t absent[SMKI_SERIAL_LEN];
    memset(absent, 0x55, sizeof absent);
    q.serial = absent;
    assert_int_equal(expect(&db, all, 5, &q), 0);
    smki_store_close(s);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_migrates_a_schema_1_store_and_every_query_finds_what_it_did),
        cmocka_unit_test(test_read_only_open_of_a_schema_1_store_is_refused_until_a_write_open_migrates_it),
        cmocka_unit_test(test_certificates_recorded_after_migration_join_the_facet_index),
        cmocka_unit_test(test_search_by_serial_finds_it_under_every_issuer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
