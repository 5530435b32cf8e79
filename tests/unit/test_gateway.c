/* The gateway (gateway/gateway.h): signed threshold files, the strict CSV parser, the
 * registry (its Users the RA's), every administration action an audited RA action, and
 * every refusal of the §7 checks, each by its reason code. Proved on the
 * RTDS data (the supplier's pre-command signed with its published test key, under the Z1
 * organisation CA carried in an RTDS CS02b command) and, for revocation, on a small test
 * hierarchy made here with OpenSSL (the RTDS OCA key is not published). */
#include "helpers.h"
#include "ra/ra_test.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gateway/gateway.h"

#define KS "vectors/gbcs/keystore/"
#define RTDS "vectors/gbcs/rtds/"
#define SUPPLIER "90B3D51F30010000"
#define NETOP "90B3D51F30020000"
#define METER "00DB1234567890A0"
#define PRE_ECS01A RTDS "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX"
#define CMD_ECS01A RTDS "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_COMMAND_GBCS.HEX"
#define RESP_ECS01A RTDS "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_RESPONSE_GBCS.HEX"
#define CS02B_CMD RTDS "6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
#define T2020 1577836800 /* 2020-01-01 */

static smki_eui64_t eui(const char *t)
{
    smki_eui64_t e;
    assert_ok(smki_eui64_parse(t, &e));
    return e;
}

static uint8_t *read_msg(const char *rel, size_t *len)
{
    uint8_t *b = NULL;
    assert_ok(smki_gbcs_read_file(test_shared_path(rel), &b, len));
    return b;
}

/* The Z1 organisation CA certificate, as the RTDS CS02b command carries it in its
 * certification path (the keystore has none). */
static const char *z1_path(const char *dir)
{
    static char path[1200];
    size_t len;
    uint8_t *b = read_msg(CS02B_CMD, &len);
    int found = 0;
    for (size_t i = 0; i + 4 < len && !found; i++) {
        if (b[i] != 0x30 || b[i + 1] != 0x82) continue;
        size_t l = (size_t)b[i + 2] << 8 | b[i + 3];
        if (i + 4 + l > len) continue;
        const uint8_t *p = b + i;
        X509 *x = d2i_X509(NULL, &p, (long)(4 + l));
        if (!x) continue;
        char subj[256];
        X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
        if (strstr(subj, "CN=Z1")) {
            snprintf(path, sizeof path, "%s/z1.der", dir);
            assert_ok(smki_file_write_atomic(path, b + i, 4 + l, 0644, 0));
            found = 1;
        }
        X509_free(x);
    }
    free(b);
    assert_true(found);
    return path;
}

static uint8_t *shared_file(const char *rel, size_t *len)
{
    return test_read_shared(rel, len);
}

static smki_key *open_key(const char *rel)
{
    char ref[1200];
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(rel));
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, NULL, &k));
    return k;
}

/* The RTDS pre-command with the originator and counter set, signed with key. */
static uint8_t *signed_pre(smki_key *k, const char *originator, uint64_t counter, size_t *out_len)
{
    size_t len;
    uint8_t *pre = read_msg(PRE_ECS01A, &len);
    smki_eui64_t o = eui(originator);
    for (int i = 0; i < 8; i++) pre[3 + i] = (uint8_t)(counter >> (56 - 8 * i));
    memcpy(pre + 12, o.b, 8);
    uint8_t *out = NULL;
    assert_ok(smki_gbcs_sign(k, pre, len, &out, out_len));
    free(pre);
    return out;
}

/* The RA on a gateway's store, whose registry holds the Users: operator alice (her key and
 * the checkpoint key files in dir), the Party RTDS holding the RTDS block 90B3D51F3/36 (a
 * DCC party when dcc: its IDs are DCC IDs), and the User IDs asked for. */
typedef struct {
    smki_ra *ra;
    smki_key *alice_k, *mallory_k;
    smki_ra_actor alice, impostor;
    smki_gw_admin adm; /* alice's */
} ra_fx;

static void ra_fx_open(ra_fx *x, smki_store *s, const char *dir, int dcc)
{
    memset(x, 0, sizeof *x);
    smki_ra_policy p;
    assert_ok(smki_ra_policy_load(NULL, &p));
    assert_ok(smki_ra_open(s, &p, &x->ra));
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.pem", dir);
    test_write_ec_key(path, "P-256");
    smki_ra_set_checkpoint_key(x->ra, test_open_file_key(path));
    x->alice_k = test_new_file_key(dir, "alice");
    x->mallory_k = test_new_file_key(dir, "mallory");
    x->alice = (smki_ra_actor){"alice", x->alice_k};
    x->impostor = (smki_ra_actor){"alice", x->mallory_k}; /* alice's name, not her key */
    x->adm = (smki_gw_admin){x->ra, &x->alice};
    assert_ok(smki_ra_operator_add(x->ra, &x->alice, "alice", smki_key_public(x->alice_k)));
    smki_ra_party party = {.signifier = "RTDS", .name = "RTDS parties", .is_dcc = dcc};
    assert_ok(smki_ra_party_add(x->ra, &x->alice, &party));
    smki_eui64_range_t r;
    assert_ok(smki_eui64_range_parse("90B3D51F3/36", &r));
    assert_ok(smki_ra_range_assign(x->ra, &x->alice, &r, SMKI_RANGE_CENTRAL, "RTDS"));
}

/* A User ID of the RA with these User Roles (SMKI_UROLE_*). */
static void ra_fx_user(ra_fx *x, const char *id, unsigned roles)
{
    smki_eui64_t want = eui(id), got;
    assert_ok(smki_ra_id_allocate(x->ra, &x->alice, "RTDS", roles, &want, &got));
}

static void ra_fx_close(ra_fx *x)
{
    smki_ra_close(x->ra);
    smki_key_free(x->alice_k);
    smki_key_free(x->mallory_k);
}

typedef struct {
    const char *dir;
    smki_store *s;
    char z1[1200];
    ra_fx x;
} fx;

/* The supplier (an Import Supplier) and the network operator are Users of the RA; the
 * supplier's DS certificate and the meter are registered at the gateway. */
static void register_rtds(fx *f)
{
    ra_fx_user(&f->x, SUPPLIER, SMKI_UROLE_EIS);
    ra_fx_user(&f->x, NETOP, SMKI_UROLE_ENO);
    size_t len;
    uint8_t *c = shared_file(KS "90b3d51f30010000-ds.pem", &len);
    smki_eui64_t sup = eui(SUPPLIER), met = eui(METER);
    assert_ok(smki_gw_user_add(&f->x.adm, &sup, SMKI_ROLE_SUPPLIER, c, len));
    free(c);
    c = shared_file(KS "00db1234567890a0-ka.pem", &len);
    assert_ok(smki_gw_device_add(&f->x.adm, &met, SMKI_DEV_COMMISSIONED, c, len));
    free(c);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir("gateway");
    char sd[1100];
    snprintf(sd, sizeof sd, "%s/store", f->dir);
    assert_ok(smki_store_open(sd, NULL, &f->s));
    assert_ok(smki_gw_dbs(f->s));
    snprintf(f->z1, sizeof f->z1, "%s", z1_path(f->dir));
    ra_fx_open(&f->x, f->s, f->dir, 0);
    register_rtds(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ra_fx_close(&f->x);
    smki_store_close(f->s);
    free(f);
    return 0;
}

static smki_gateway *open_gw(fx *f, smki_key *acb)
{
    smki_gateway_opts o = {.oca_file = f->z1, .no_crl = 1, .acb_ka = acb, .ra = f->x.ra};
    smki_gateway *g = NULL;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    return g;
}

/* Check one message; returns the verdict and leaves the result in *r. */
static smki_gw_verdict check1(smki_gateway *g, const uint8_t *m, size_t len, time_t at, smki_gw_result *r)
{
    const uint8_t *ms[1] = {m};
    size_t ls[1] = {len};
    assert_ok(smki_gateway_check(g, ms, ls, 1, at, r));
    return r->verdict;
}

static void expect_reason(smki_gateway *g, const uint8_t *m, size_t len, time_t at, smki_gw_verdict v,
                          const char *reason)
{
    smki_gw_result r;
    smki_gw_verdict got = check1(g, m, len, at, &r);
    if (got != v || strcmp(r.reason, reason) != 0)
        fail_msg("wanted %d %s, got %d %s (%s)", v, reason, got, r.reason, r.detail);
    smki_gw_result_clear(&r);
}

/* ---- Signed files ------------------------------------------------------------------------------ */
static void test_signed_file_canonical_line_ends(void **state)
{
    (void)state;
    static const uint8_t in[] = "a\r\nb\rc\n\r\nd\r";
    uint8_t *out;
    size_t n;
    assert_ok(smki_signed_file_canonical(in, sizeof in - 1, &out, &n));
    assert_int_equal(n, 9);
    assert_memory_equal(out, "a\nb\nc\n\nd\n", 9);
    free(out);
}

static void test_signed_file_verifies_across_line_ends_and_refuses_changes(void **state)
{
    (void)state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    EVP_PKEY *pub = NULL;
    assert_ok(smki_pub_load_file(test_shared_path(KS "90b3d51f30010000-ds.pem"), &pub));
    static const char lf[] = "user,message_code,window_seconds,max_count\n90B3D51F30010000,0019,3600,5\n";
    static const char crlf[] = "user,message_code,window_seconds,max_count\r\n90B3D51F30010000,0019,3600,5\r\n";
    static const char changed[] = "user,message_code,window_seconds,max_count\n90B3D51F30010000,0019,3600,6\n";
    uint8_t sig[SMKI_SIG_MAX];
    size_t sl = sizeof sig;
    assert_ok(smki_signed_file_sign(k, (const uint8_t *)crlf, sizeof crlf - 1, sig, &sl));
    assert_ok(smki_signed_file_verify(pub, (const uint8_t *)lf, sizeof lf - 1, sig, sl));
    assert_ok(smki_signed_file_verify(pub, (const uint8_t *)crlf, sizeof crlf - 1, sig, sl));
    assert_fails(smki_signed_file_verify(pub, (const uint8_t *)changed, sizeof changed - 1, sig, sl), SMKI_E_VERIFY,
                 NULL);
    /* The signature is plain DER ECDSA over SHA-256: OpenSSL verifies it on the LF form. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(ctx, sig, sl, (const uint8_t *)lf, sizeof lf - 1), 1);
    EVP_MD_CTX_free(ctx);
    uint8_t raw[64] = {0};
    assert_fails(smki_signed_file_verify(pub, (const uint8_t *)lf, sizeof lf - 1, raw, 64), SMKI_E_INPUT, NULL);
    EVP_PKEY_free(pub);
    smki_key_free(k);
}

/* ---- Thresholds CSV ------------------------------------------------------------------------------- */
static void test_thresholds_parse_accepts_header_comments_and_line_ends(void **state)
{
    (void)state;
    static const char csv[] = "# thresholds of GITTESTSUPPLIER\r\n"
                              "user,message_code,window_seconds,max_count\r\n"
                              "\r\n"
                              "90-B3-D5-1F-30-01-00-00,0019,3600,50\r"
                              "90B3D51F30010000,*,86400,10000\n"
                              "90b3d51f30010000,006b,60,1";
    smki_thresholds t;
    assert_ok(smki_thresholds_parse((const uint8_t *)csv, sizeof csv - 1, "t.csv", &t));
    assert_int_equal(t.count, 3);
    assert_int_equal(t.rules[0].code, 0x0019);
    assert_int_equal(t.rules[0].window, 3600);
    assert_int_equal(t.rules[0].max_count, 50);
    assert_int_equal(t.rules[1].code, SMKI_CODE_ANY);
    assert_int_equal(t.rules[1].max_count, 10000);
    assert_int_equal(t.rules[2].code, 0x006B);
    smki_eui64_t s = eui(SUPPLIER);
    assert_int_equal(smki_eui64_cmp(&t.rules[2].user, &s), 0);
    smki_thresholds_free(&t);
    assert_ok(smki_thresholds_parse((const uint8_t *)"", 0, "empty", &t));
    assert_int_equal(t.count, 0);
}

static void test_thresholds_parse_names_line_and_column_of_each_error(void **state)
{
    (void)state;
    static const struct {
        const char *csv, *needle;
    } bad[] = {
        {"90B3D51F3001000,0019,3600,5", "t:1:1: user is not an EUI-64"},
        {"# c\n90B3D51F30010000,019,3600,5", "t:2:18: message_code must be 4 hex digits"},
        {"90B3D51F30010000,00G9,3600,5", "t:1:20: message_code"},
        {"90B3D51F30010000,0019,0,5", "t:1:23: window_seconds must be 1..31622400"},
        {"90B3D51F30010000,0019,31622401,5", "t:1:23: window_seconds must be 1..31622400"},
        {"90B3D51F30010000,0019,3600,10001", "t:1:28: max_count must be 1..10000"},
        {"90B3D51F30010000,0019,3600,05", "t:1:28: max_count has a leading zero"},
        {"90B3D51F30010000,0019,36x0,5", "t:1:25: window_seconds must be decimal digits"},
        {"90B3D51F30010000,0019,3600,", "t:1:28: max_count is empty"},
        {"90B3D51F30010000,0019,3600", "t:1:27: expected 4 or 5 fields"},
        {"90B3D51F30010000,0019,3600,5,1", "t:1:30: kind must be command, response or alert, found '1'"},
        {"90B3D51F30010000,0019,3600,5,Alert", "t:1:30: kind must be command"},
        {"90B3D51F30010000,0019,3600,5,alert,1", "t:1:35: more than 5 fields"},
        {"90B3D51F30010000,0019,3600,5,alert\n90B3D51F30010000,0019,3600,9,alert", "t:2:1: duplicate rule"},
        {"90B3D51F30010000, 0019,3600,5", "t:1:18: blank, quote or control character"},
        {"user,code,window,max\n", "t:1:1: header must be exactly"},
        {"90B3D51F30010000,0019,3600,5\n90B3D51F30010000,0019,3600,9", "t:2:1: duplicate rule"},
        {"90B3D51F30010000,0019,3600,5\nuser,message_code,window_seconds,max_count", "t:2:1: user is not an EUI-64"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        smki_thresholds t = {0, NULL};
        assert_fails(smki_thresholds_parse((const uint8_t *)bad[i].csv, strlen(bad[i].csv), "t", &t), SMKI_E_INPUT,
                     bad[i].needle);
        assert_null(t.rules);
    }
    char longline[400];
    memset(longline, '9', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    smki_thresholds t;
    assert_fails(smki_thresholds_parse((const uint8_t *)longline, strlen(longline), "t", &t), SMKI_E_INPUT,
                 "t:1:257: line longer than 256");
}

static int count_users(const smki_gw_user *u, void *arg)
{
    (void)u;
    (*(size_t *)arg)++;
    return 0;
}

typedef struct {
    const char *action, *object;
    int found;
    uint64_t seq;
} trail_find;

static int find_entry(const smki_audit_entry *e, void *arg)
{
    trail_find *fd = arg;
    if (strcmp(e->action, fd->action) != 0 || strcmp(e->object, fd->object) != 0) return 0;
    assert_string_equal(e->operator_name, "alice");
    assert_true(e->sig_len > 0);
    fd->found = 1;
    fd->seq = e->seq;
    return 0;
}

typedef struct {
    smki_db db;
    uint64_t seq;
} tamper_op;

/* One octet of the stored entry's body flipped (its detail, at the end of the body). */
static int tamper_txn(smki_txn *t, void *arg)
{
    tamper_op *op = arg;
    uint8_t key[8];
    smki_put_be64(key, op->seq);
    const void *v;
    size_t vl;
    GUARD(smki_txn_get(t, op->db, key, 8, &v, &vl));
    uint8_t *copy = malloc(vl);
    ENSURE(copy, SMKI_E_NOMEM, "entry");
    memcpy(copy, v, vl);
    smki_audit_entry e;
    int rc = smki_audit_entry_decode(copy, vl, &e);
    size_t body = vl - 1 - e.sig_len;
    if (rc == 0) copy[body - 2] ^= 0x01;
    if (rc == 0) rc = smki_txn_put(t, op->db, key, 8, copy, vl, 0);
    free(copy);
    return rc;
}

static void tamper_entry(fx *f, uint64_t seq)
{
    tamper_op op = {smki_ra_databases(f->x.ra)->audit, seq};
    assert_ok(smki_store_write(f->s, tamper_txn, &op));
}

/* ---- Registry ------------------------------------------------------------------------------------- */
static void test_registry_users_devices_and_eligibility(void **state)
{
    fx *f = *state;
    size_t len;
    smki_eui64_t sup = eui(SUPPLIER), no = eui(NETOP), met = eui(METER);
    uint8_t *c = shared_file(KS "90b3d51f30010000-ds.pem", &len);
    assert_fails(smki_gw_user_add(&f->x.adm, &sup, SMKI_ROLE_SUPPLIER, c, len), SMKI_E_EXISTS, "already registered");
    assert_fails(smki_gw_user_add(&f->x.adm, &no, SMKI_ROLE_NETWORK_OPERATOR, c, len), SMKI_E_REFUSED,
                 "not of this User ID");
    assert_fails(smki_gw_user_add(&f->x.adm, &no, 0x55, c, len), SMKI_E_USAGE, "not a Remote Party Role");
    free(c);
    smki_gw_user u;
    assert_ok(smki_gw_user_get(f->x.ra, &sup, &u));
    assert_int_equal(u.role, SMKI_ROLE_SUPPLIER);
    assert_false(u.suspended);
    /* Suspension is the RA's: the gateway reads it, it keeps none of its own. */
    assert_ok(smki_ra_id_suspend(f->x.ra, &f->x.alice, &sup, 1, "contract ended"));
    assert_ok(smki_gw_user_get(f->x.ra, &sup, &u));
    assert_true(u.suspended);
    assert_non_null(strstr(u.suspend_reason, "contract ended"));
    assert_fails(smki_gw_user_get(f->x.ra, &no, &u), SMKI_E_NOTFOUND, "no DS certificate registered");

    smki_gw_device d;
    assert_ok(smki_gw_device_get(f->s, &met, &d));
    assert_int_equal(d.status, SMKI_DEV_COMMISSIONED);
    assert_true(d.ka_len > 0);
    assert_fails(smki_gw_device_add(&f->x.adm, &met, SMKI_DEV_INSTALLED, NULL, 0), SMKI_E_EXISTS, "already");
    assert_ok(smki_gw_device_set_status(&f->x.adm, &met, SMKI_DEV_SUSPENDED));
    assert_ok(smki_gw_device_get(f->s, &met, &d));
    assert_int_equal(d.status, SMKI_DEV_SUSPENDED);
    int st;
    assert_fails(smki_dev_status_parse("broken", &st), SMKI_E_USAGE, "not one of");
    assert_true(smki_dev_status_allows_commands(SMKI_DEV_INSTALLED));
    assert_false(smki_dev_status_allows_commands(SMKI_DEV_DECOMMISSIONED));

    int allowed;
    assert_ok(smki_gw_elig_allows(f->s, SMKI_ROLE_SUPPLIER, 0x0019, &allowed));
    assert_true(allowed);
    assert_ok(smki_gw_elig_allows(f->s, SMKI_ROLE_NETWORK_OPERATOR, 0x0019, &allowed));
    assert_false(allowed);
    /* The first change copies the default: the rest of it stays in force. */
    assert_ok(smki_gw_elig_set(&f->x.adm, SMKI_ROLE_NETWORK_OPERATOR, 0x0019, 1));
    assert_ok(smki_gw_elig_allows(f->s, SMKI_ROLE_NETWORK_OPERATOR, 0x0019, &allowed));
    assert_true(allowed);
    assert_ok(smki_gw_elig_allows(f->s, SMKI_ROLE_SUPPLIER, 0x006B, &allowed));
    assert_true(allowed);
    assert_ok(smki_gw_elig_set(&f->x.adm, SMKI_ROLE_SUPPLIER, 0x006B, 0));
    assert_ok(smki_gw_elig_allows(f->s, SMKI_ROLE_SUPPLIER, 0x006B, &allowed));
    assert_false(allowed);
    assert_fails(smki_gw_elig_set(&f->x.adm, SMKI_ROLE_SUPPLIER, 0x006B, 0), SMKI_E_NOTFOUND, "nothing to remove");
    smki_gw_elig *rows;
    size_t n;
    int def;
    assert_ok(smki_gw_elig_list(f->s, &rows, &n, &def));
    assert_false(def);
    assert_true(n > 10);
    free(rows);
}

/* One source of truth: a User is the RA's. The gateway registers a certificate only for a
 * User ID the RA knows, for a Remote Party Role its User Roles allow, and shows the RA's
 * Party, User Roles and suspension (the ID's or its Party's). */
static void test_users_are_the_ras(void **state)
{
    fx *f = *state;
    size_t len;
    smki_eui64_t no = eui(NETOP), stranger = eui("90B3D51F30030000"), sup = eui(SUPPLIER);
    uint8_t *c = shared_file(KS "90b3d51f30020000-ds.pem", &len);
    assert_fails(smki_gw_user_add(&f->x.adm, &no, SMKI_ROLE_SUPPLIER, c, len), SMKI_E_REFUSED,
                 "User Roles ENO in the RA's registry) may not hold a supplier certificate");
    assert_ok(smki_gw_user_add(&f->x.adm, &no, SMKI_ROLE_NETWORK_OPERATOR, c, len));
    free(c);
    c = shared_file(KS "90b3d51f30010000-ds.pem", &len);
    assert_fails(smki_gw_user_add(&f->x.adm, &stranger, SMKI_ROLE_SUPPLIER, c, len), SMKI_E_NOTFOUND,
                 "is not a User ID of the RA's registry");
    free(c);
    /* A certificate of an ID the RA has never allocated. */
    char sd[1100];
    snprintf(sd, sizeof sd, "%s/store-unknown", f->dir);
    smki_store *s2;
    assert_ok(smki_store_open(sd, NULL, &s2));
    assert_ok(smki_gw_dbs(s2));
    ra_fx x2;
    ra_fx_open(&x2, s2, sd, 0);
    c = shared_file(KS "90b3d51f30010000-ds.pem", &len);
    assert_fails(smki_gw_user_add(&x2.adm, &sup, SMKI_ROLE_SUPPLIER, c, len), SMKI_E_NOTFOUND,
                 "is not a User ID of the RA's registry");
    free(c);
    ra_fx_close(&x2);
    smki_store_close(s2);

    smki_gw_user u;
    assert_ok(smki_gw_user_get(f->x.ra, &no, &u));
    assert_true(u.ra_known);
    assert_string_equal(u.party, "RTDS");
    assert_string_equal(u.user_roles, "ENO");
    assert_false(u.suspended);
    assert_ok(smki_ra_party_suspend(f->x.ra, &f->x.alice, "RTDS", 1, "licence revoked"));
    assert_ok(smki_gw_user_get(f->x.ra, &no, &u));
    assert_true(u.suspended);
    assert_non_null(strstr(u.suspend_reason, "licence revoked"));
    size_t seen = 0;
    assert_ok(smki_gw_user_list(f->x.ra, count_users, &seen));
    assert_int_equal(seen, 2);
}

/* Every administration action is an RA action: refused without an operator and with an
 * operator whose key does not sign (nothing changes), and, when taken, an entry in the
 * RA's audit trail signed by the operator, which audit verify checks with the rest; an
 * entry changed afterwards is found. */
static void test_administration_is_audited_and_needs_an_operator(void **state)
{
    fx *f = *state;
    smki_gw_admin none = {f->x.ra, NULL}, impostor = {f->x.ra, &f->x.impostor}, nora = {NULL, &f->x.alice};
    smki_eui64_t met = eui(METER), gas = eui("00DB1234567890A1");
    uint64_t head0 = 0, head1 = 0;
    uint8_t hash[SMKI_AUDIT_HASH_LEN];
    assert_ok(smki_audit_head(f->x.ra, &head0, hash));
    assert_fails(smki_gw_device_add(&none, &gas, SMKI_DEV_INSTALLED, NULL, 0), SMKI_E_USAGE, "no operator");
    assert_fails(smki_gw_device_add(&impostor, &gas, SMKI_DEV_INSTALLED, NULL, 0), SMKI_E_REFUSED,
                 "not operator alice's registered key");
    assert_fails(smki_gw_device_add(&nora, &gas, SMKI_DEV_INSTALLED, NULL, 0), SMKI_E_USAGE, "needs the RA");
    assert_fails(smki_gw_device_set_status(&none, &met, SMKI_DEV_SUSPENDED), SMKI_E_USAGE, "no operator");
    assert_fails(smki_gw_device_set_status(&impostor, &met, SMKI_DEV_SUSPENDED), SMKI_E_REFUSED, "registered key");
    assert_fails(smki_gw_elig_set(&impostor, SMKI_ROLE_SUPPLIER, 0x0019, 0), SMKI_E_REFUSED, "registered key");
    static const char csv[] = "1.1.1,ECS01a,0019,EIS\n";
    size_t rows;
    assert_fails(smki_gw_srv_load(&none, (const uint8_t *)csv, sizeof csv - 1, &rows), SMKI_E_USAGE, "no operator");
    smki_gw_device d;
    assert_fails(smki_gw_device_get(f->s, &gas, &d), SMKI_E_NOTFOUND, "not in the inventory");
    assert_ok(smki_gw_device_get(f->s, &met, &d));
    assert_int_equal(d.status, SMKI_DEV_COMMISSIONED);
    assert_ok(smki_audit_head(f->x.ra, &head1, hash));
    assert_int_equal(head1, head0); /* nothing written */

    assert_ok(smki_gw_device_add(&f->x.adm, &gas, SMKI_DEV_INSTALLED, NULL, 0));
    assert_ok(smki_gw_device_set_status(&f->x.adm, &gas, SMKI_DEV_COMMISSIONED));
    assert_ok(smki_audit_head(f->x.ra, &head1, hash));
    assert_int_equal(head1, head0 + 2);
    trail_find fd = {"gateway.device-add", "device 00-DB-12-34-56-78-90-A1", 0, 0};
    assert_ok(smki_audit_each(f->x.ra, 1, find_entry, &fd));
    assert_true(fd.found);
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.pem", f->dir);
    smki_key *ck = test_open_file_key(path);
    smki_audit_report rep;
    assert_ok(smki_audit_verify(f->x.ra, smki_key_public(ck), &rep));
    assert_int_equal(rep.entries, head1);
    /* The device-add entry's detail changed in the store: the operator's signature no longer verifies. */
    tamper_entry(f, fd.seq);
    assert_fails(smki_audit_verify(f->x.ra, smki_key_public(ck), &rep), SMKI_E_VERIFY, NULL);
    int altered = 0;
    for (size_t i = 0; i < rep.n_findings; i++) altered |= rep.findings[i].kind == SMKI_AUDIT_ALTERED;
    assert_true(altered);
    smki_key_free(ck);
}

static void test_thresholds_load_only_with_a_verifying_signature(void **state)
{
    fx *f = *state;
    smki_eui64_t sup = eui(SUPPLIER);
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    smki_key *other = open_key(KS "90b3d51f30020000-ds.key");
    static const char csv[] = "90B3D51F30010000,0019,3600,2\n90B3D51F30010000,*,60,100\n";
    static const char foreign[] = "90B3D51F30020000,0019,3600,2\n";
    uint8_t sig[SMKI_SIG_MAX], osig[SMKI_SIG_MAX], fsig[SMKI_SIG_MAX];
    size_t sl = sizeof sig, osl = sizeof osig, fsl = sizeof fsig;
    assert_ok(smki_signed_file_sign(k, (const uint8_t *)csv, sizeof csv - 1, sig, &sl));
    assert_ok(smki_signed_file_sign(other, (const uint8_t *)csv, sizeof csv - 1, osig, &osl));
    assert_ok(smki_signed_file_sign(k, (const uint8_t *)foreign, sizeof foreign - 1, fsig, &fsl));
    size_t loaded = 0;
    smki_thresholds t;
    /* Signed by another party's key: refused, nothing stored. */
    assert_fails(smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)csv, sizeof csv - 1, osig, osl, NULL, &loaded),
                 SMKI_E_VERIFY, "does not verify against the user's DS certificate");
    assert_ok(smki_gw_thresholds_get(f->s, &sup, &t));
    assert_int_equal(t.count, 0);
    /* A user sets only its own rules. */
    assert_fails(
        smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)foreign, sizeof foreign - 1, fsig, fsl, NULL, &loaded),
        SMKI_E_REFUSED, "names another user");
    assert_ok(smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)csv, sizeof csv - 1, sig, sl, NULL, &loaded));
    assert_int_equal(loaded, 2);
    assert_ok(smki_gw_thresholds_get(f->s, &sup, &t));
    assert_int_equal(t.count, 2);
    smki_thresholds_free(&t);
    /* A configured signer (here the network operator's key) may set anyone's rules. */
    EVP_PKEY *signer = NULL;
    assert_ok(smki_pub_load_file(test_shared_path(KS "90b3d51f30020000-ds.pem"), &signer));
    assert_ok(smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)csv, sizeof csv - 1, osig, osl, signer, &loaded));
    assert_fails(smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)csv, sizeof csv - 1, sig, sl, signer, &loaded),
                 SMKI_E_VERIFY, "configured signer");
    EVP_PKEY_free(signer);
    smki_key_free(k);
    smki_key_free(other);
}

/* ---- The checks on RTDS data ------------------------------------------------------------------------- */
static void test_rtds_precommand_signed_by_supplier_passes_then_replay_is_refused(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    smki_gateway *g = open_gw(f, NULL);
    size_t len;
    uint8_t *m = signed_pre(k, SUPPLIER, 0x3EF, &len);
    expect_reason(g, m, len, T2020, SMKI_GW_PASS, "");
    smki_eui64_t sup = eui(SUPPLIER);
    uint64_t last;
    int seen;
    assert_ok(smki_gw_counter_get(f->s, &sup, &last, &seen));
    assert_true(seen);
    assert_int_equal(last, 0x3EF);
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "counter.replay");
    free(m);
    m = signed_pre(k, SUPPLIER, 0x3EE, &len);
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "counter.replay");
    free(m);
    m = signed_pre(k, SUPPLIER, 0x3F0, &len);
    expect_reason(g, m, len, T2020, SMKI_GW_PASS, "");
    free(m);
    smki_gateway_free(g);
    smki_key_free(k);
}

static void test_rtds_command_is_remaced_byte_for_byte(void **state)
{
    fx *f = *state;
    smki_key *acb = open_key(KS "90b3d51f30000002-ka.key");
    smki_gateway *g = open_gw(f, acb);
    size_t len, clen;
    uint8_t *m = read_msg(CMD_ECS01A, &len);
    smki_gw_result r;
    assert_int_equal(check1(g, m, len, T2020, &r), SMKI_GW_PASS);
    assert_non_null(r.command);
    assert_int_equal(r.command_len, len);
    assert_memory_equal(r.command, m, len);
    /* The same as the codec's own wrapper. */
    smki_gbcs_msg pm;
    assert_ok(smki_gbcs_parse(m, len, &pm));
    EVP_PKEY *dev = NULL;
    assert_ok(smki_pub_load_file(test_shared_path(KS "00db1234567890a0-ka.pem"), &dev));
    uint8_t *w = NULL;
    assert_ok(smki_gbcs_wrap(m + pm.gsa.offset, pm.gsa.len, acb, dev, 0, &w, &clen));
    assert_int_equal(clen, len);
    assert_memory_equal(w, m, len);
    free(w);
    EVP_PKEY_free(dev);
    smki_gw_result_clear(&r);
    /* The invocation counter moved on for the next command to the device. */
    smki_gw_device d;
    smki_eui64_t met = eui(METER);
    assert_ok(smki_gw_device_get(f->s, &met, &d));
    assert_int_equal(d.invocation, 1);
    free(m);
    smki_gateway_free(g);
    smki_key_free(acb);
}

/* Every signed RTDS command whose signer is a registered remote party with a published
 * certificate passes the gateway (fresh registry each, Z1 as anchor, 2020-01-01) and comes
 * out re-MACed as the very bytes of the RTDS file; the unsigned (non-critical) ones are
 * refused as structure.unsigned. */
static void test_every_signed_rtds_command_passes_and_is_remaced_byte_for_byte(void **state)
{
    fx *f = *state;
    static const struct {
        const char *id;
        uint8_t role;
    } parties[] = {{"90b3d51f30010000", SMKI_ROLE_SUPPLIER},
                   {"90b3d51f30020000", SMKI_ROLE_NETWORK_OPERATOR},
                   {"90b3d51f30000002", SMKI_ROLE_ACB},
                   {"90b3d51f30000004", SMKI_ROLE_TRANSITIONAL_COS}};
    smki_key *acb = open_key(KS "90b3d51f30000002-ka.key");
    char list[1400];
    snprintf(list, sizeof list, "ls %s/*/*_COMMAND_GBCS.HEX", test_shared_path("vectors/gbcs/rtds"));
    FILE *ls = popen(list, "r");
    assert_non_null(ls);
    char path[1200];
    size_t passed = 0, unsigned_ = 0, n = 0;
    while (fgets(path, sizeof path, ls)) {
        path[strcspn(path, "\n")] = '\0';
        uint8_t *m = NULL;
        size_t len = 0;
        assert_ok(smki_gbcs_read_file(path, &m, &len));
        smki_gbcs_msg pm;
        assert_ok(smki_gbcs_parse(m, len, &pm));
        char oid[SMKI_EUI64_TEXT_MAX];
        smki_eui64_t o = smki_gbcs_eui(pm.gsa.originator), t = smki_gbcs_eui(pm.gsa.recipient);
        smki_eui64_format(&o, SMKI_EUI64_PLAIN, oid);
        int known = -1;
        for (size_t i = 0; i < 4; i++)
            if (strcasecmp(parties[i].id, oid) == 0) known = (int)i;
        if (pm.kind != SMKI_GBCS_CIPHERING || known < 0) { /* device-originated (PCS01) */
            free(m);
            continue;
        }
        n++;
        char sd[1100], rel[200];
        snprintf(sd, sizeof sd, "%s/rtds%zu", f->dir, n);
        smki_store *s;
        assert_ok(smki_store_open(sd, NULL, &s));
        assert_ok(smki_gw_dbs(s));
        /* The DCC's Users (the ACB, the transitional CoS party) beside the supplier and the
         * network operator: one DCC party holds the RTDS block, its IDs DCC IDs. */
        ra_fx x;
        ra_fx_open(&x, s, sd, 1);
        ra_fx_user(&x, parties[known].id, SMKI_UROLE_OU);
        size_t cl;
        snprintf(rel, sizeof rel, KS "%s-ds.pem", parties[known].id);
        uint8_t *c = shared_file(rel, &cl);
        assert_ok(smki_gw_user_add(&x.adm, &o, parties[known].role, c, cl));
        free(c);
        char tid[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&t, SMKI_EUI64_PLAIN, tid);
        for (char *q = tid; *q; q++) *q = (char)(*q >= 'A' && *q <= 'F' ? *q + 32 : *q);
        snprintf(rel, sizeof rel, KS "%s-ka.pem", tid);
        c = shared_file(rel, &cl);
        assert_ok(smki_gw_device_add(&x.adm, &t, SMKI_DEV_COMMISSIONED, c, cl));
        free(c);
        /* The RTDS future-dated commands execute in January 2030, the signers' certificates
         * expired in 2025: checked in 2020, with a future-dating limit reaching 2030. */
        smki_gateway_opts go = {
            .oca_file = f->z1, .no_crl = 1, .acb_ka = acb, .max_future_seconds = 3700u * 86400u, .ra = x.ra};
        smki_gateway *g;
        assert_ok(smki_gateway_open(s, &go, &g));
        smki_gw_result r;
        check1(g, m, len, T2020, &r);
        if (pm.gsa.sig_state != SMKI_GBCS_SIG_PRESENT) {
            if (strcmp(r.reason, "structure.unsigned") != 0) fail_msg("%s: %s (%s)", path, r.reason, r.detail);
            unsigned_++;
        } else {
            if (r.verdict != SMKI_GW_PASS) fail_msg("%s: %s (%s)", path, r.reason, r.detail);
            assert_int_equal(r.command_len, len);
            if (memcmp(r.command, m, len) != 0) fail_msg("%s: the new MAC differs from the RTDS file's", path);
            passed++;
        }
        smki_gw_result_clear(&r);
        smki_gateway_free(g);
        ra_fx_close(&x);
        smki_store_close(s);
        free(m);
    }
    pclose(ls);
    print_message("%zu signed RTDS commands passed and re-MACed identically; %zu unsigned refused\n", passed,
                  unsigned_);
    assert_true(passed >= 25);
    smki_key_free(acb);
}

/* Two threads on one gateway, one originator each (the supplier, the network operator),
 * batches of 10: every message passes, and each originator's last counter is its highest. */
typedef struct {
    smki_gateway *g;
    uint8_t *msgs[40];
    size_t lens[40];
    int bad;
} thread_job;

static void *check_thread(void *arg)
{
    thread_job *j = arg;
    smki_gw_result r[10];
    for (size_t i = 0; i < 40; i += 10) {
        if (smki_gateway_check(j->g, (const uint8_t *const *)(j->msgs + i), j->lens + i, 10, T2020, r) != 0) {
            j->bad = 1;
            return NULL;
        }
        for (size_t k = 0; k < 10; k++) {
            if (r[k].verdict != SMKI_GW_PASS) j->bad = 1;
            smki_gw_result_clear(&r[k]);
        }
    }
    return NULL;
}

static void test_two_threads_on_one_gateway(void **state)
{
    fx *f = *state;
    smki_eui64_t no = eui(NETOP), sup = eui(SUPPLIER);
    size_t cl;
    uint8_t *c = shared_file(KS "90b3d51f30020000-ds.pem", &cl);
    assert_ok(smki_gw_user_add(&f->x.adm, &no, SMKI_ROLE_NETWORK_OPERATOR, c, cl));
    free(c);
    assert_ok(smki_gw_elig_set(&f->x.adm, SMKI_ROLE_NETWORK_OPERATOR, 0x0019, 1));
    smki_key *acb = open_key(KS "90b3d51f30000002-ka.key");
    smki_key *k[2] = {open_key(KS "90b3d51f30010000-ds.key"), open_key(KS "90b3d51f30020000-ds.key")};
    const char *ids[2] = {SUPPLIER, NETOP};
    smki_gateway *g = open_gw(f, acb);
    thread_job jobs[2];
    memset(jobs, 0, sizeof jobs);
    for (int t = 0; t < 2; t++) {
        jobs[t].g = g;
        for (size_t i = 0; i < 40; i++) jobs[t].msgs[i] = signed_pre(k[t], ids[t], 100 + i, &jobs[t].lens[i]);
    }
    pthread_t th[2];
    for (int t = 0; t < 2; t++) assert_int_equal(pthread_create(&th[t], NULL, check_thread, &jobs[t]), 0);
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    uint64_t last;
    int seen;
    for (int t = 0; t < 2; t++) {
        assert_false(jobs[t].bad);
        assert_ok(smki_gw_counter_get(f->s, t == 0 ? &sup : &no, &last, &seen));
        assert_true(seen);
        assert_int_equal(last, 139);
        for (size_t i = 0; i < 40; i++) free(jobs[t].msgs[i]);
        smki_key_free(k[t]);
    }
    /* 80 commands to one device: its invocation counter moved 80 times. */
    smki_gw_device d;
    smki_eui64_t met = eui(METER);
    assert_ok(smki_gw_device_get(f->s, &met, &d));
    assert_int_equal(d.invocation, 80);
    smki_gateway_free(g);
    smki_key_free(acb);
}

static void test_structure_refusals(void **state)
{
    fx *f = *state;
    smki_gateway *g = open_gw(f, NULL);
    size_t len;
    uint8_t *m = read_msg(PRE_ECS01A, &len);
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "structure.unsigned");
    expect_reason(g, m, 20, T2020, SMKI_GW_REJECT, "structure.malformed");
    m[0] = 0xDE;
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "structure.malformed");
    free(m);
    smki_gateway_free(g);
}

#define CS02B_FUTURE_PRE                                                                                             \
    RTDS "6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_PRECOMMAND_GBCS.HEX"
#define EXEC_2030 1894665600 /* 2030-01-15T00:00:00Z: the RTDS future-dated CS02b's executionDateTime */

/* A pre-command from the RTDS, its date-time field set (NULL: absent), signed by key. */
static uint8_t *signed_with_date(smki_key *k, const char *rel, const uint8_t *date_time, size_t *out_len)
{
    size_t len, blen;
    uint8_t *pre = read_msg(rel, &len), *built = NULL, *out = NULL;
    smki_gbcs_msg m;
    assert_ok(smki_gbcs_parse(pre, len, &m));
    smki_gbcs_fields f = m.gsa;
    f.date_time = date_time;
    f.sig_state = SMKI_GBCS_SIG_NONE;
    assert_ok(smki_gbcs_build_signing(&f, &built, &blen));
    assert_ok(smki_gbcs_sign(k, built, blen, &out, out_len));
    free(built);
    free(pre);
    return out;
}

/* SEC Stage 4 consultation Q22: a command to be executed more than 30 days ahead (the
 * limit is configuration) is refused with its own reason code. */
static void test_future_dated_beyond_the_limit_is_refused(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    size_t len;
    /* The RTDS CS02b's executionDateTime, 2030-01-15: ten years after the check time. */
    uint8_t *cs02b = signed_with_date(k, CS02B_FUTURE_PRE, NULL, &len);
    smki_gateway *g = open_gw(f, NULL);
    smki_gw_result r;
    assert_int_equal(check1(g, cs02b, len, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "future-dated.too-far");
    assert_non_null(strstr(r.detail, "2030-01-15T00:00:00Z (the CS02b executionDateTime)"));
    assert_non_null(strstr(r.detail, "at most 30 day(s)"));
    /* 30 days ahead exactly is allowed (the next check, the signer's validity, fails in 2029);
     * a second more is not. */
    expect_reason(g, cs02b, len, EXEC_2030 - 30 * 86400, SMKI_GW_REJECT, "cert.expired");
    expect_reason(g, cs02b, len, EXEC_2030 - 30 * 86400 - 1, SMKI_GW_REJECT, "future-dated.too-far");
    smki_gateway_free(g);
    /* The limit is configuration: with 3700 days the same command passes in 2020. */
    smki_gateway_opts o = {.oca_file = f->z1, .no_crl = 1, .max_future_seconds = 3700u * 86400u, .ra = f->x.ra};
    assert_ok(smki_gateway_open(f->s, &o, &g));
    expect_reason(g, cs02b, len, T2020, SMKI_GW_PASS, "");
    smki_gateway_free(g);
    /* The APDU's date-time field (COSEM): 2030-01-15 09:00 is too far; with the year
     * unspecified (FFFF) there is no instant to judge. */
    static const uint8_t when[12] = {0x07, 0xEE, 0x01, 0x0F, 0xFF, 0x09, 0x00, 0x00, 0x00, 0x80, 0x00, 0xFF};
    static const uint8_t any_year[12] = {0xFF, 0xFF, 0x01, 0x0F, 0xFF, 0x09, 0x00, 0x00, 0x00, 0x80, 0x00, 0xFF};
    size_t l1, l2;
    uint8_t *dated = signed_with_date(k, PRE_ECS01A, when, &l1);
    uint8_t *vague = signed_with_date(k, PRE_ECS01A, any_year, &l2);
    g = open_gw(f, NULL);
    assert_int_equal(check1(g, dated, l1, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "future-dated.too-far");
    assert_non_null(strstr(r.detail, "2030-01-15T09:00:00Z (the APDU's date-time)"));
    expect_reason(g, vague, l2, T2020, SMKI_GW_PASS, "");
    smki_gateway_free(g);
    free(dated);
    free(vague);
    free(cs02b);
    smki_key_free(k);
}

/* Load rules for the supplier, signed with its key. */
static void load_rules(fx *f, smki_key *k, const char *csv)
{
    uint8_t sig[SMKI_SIG_MAX];
    size_t sl = sizeof sig, loaded = 0;
    assert_ok(smki_signed_file_sign(k, (const uint8_t *)csv, strlen(csv), sig, &sl));
    smki_eui64_t sup = eui(SUPPLIER);
    assert_ok(smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)csv, strlen(csv), sig, sl, NULL, &loaded));
}

static size_t count_in_file(const char *path, const char *needle)
{
    uint8_t *b = NULL;
    size_t n = 0, hits = 0;
    if (smki_file_read(path, 1u << 20, &b, &n) < 0) {
        smki_error_clear();
        return 0;
    }
    char *text = realloc(b, n + 1);
    assert_non_null(text);
    text[n] = '\0';
    for (char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) hits++;
    free(text);
    return hits;
}

static size_t count_in(const char *text, const char *needle)
{
    size_t hits = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) hits++;
    return hits;
}

/* The notification counter in the JSON log: one line per quarantined message (none for
 * one that passed), each with the quarantine counters as they stand after its hook ran:
 * a failed hook is counted there as well, and the quarantine is kept. */
static void test_quarantine_counters_in_the_json_log(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    load_rules(f, k, SUPPLIER ",0019,3600,1\n");
    char *text = NULL;
    size_t tlen = 0;
    FILE *log = open_memstream(&text, &tlen);
    assert_non_null(log);
    smki_gateway_opts o = {.oca_file = f->z1, .no_crl = 1, .hook = {"cat > /dev/null; exit 4", 5}, .ra = f->x.ra,
                           .log = log};
    smki_gateway *g = NULL;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    size_t l1, l2, l3;
    uint8_t *m1 = signed_pre(k, SUPPLIER, 300, &l1), *m2 = signed_pre(k, SUPPLIER, 301, &l2),
            *m3 = signed_pre(k, SUPPLIER, 302, &l3);
    const uint8_t *ms[3] = {m1, m2, m3};
    size_t ls[3] = {l1, l2, l3};
    smki_gw_result r[3];
    assert_ok(smki_gateway_check(g, ms, ls, 3, T2020, r));
    assert_int_equal(r[1].verdict, SMKI_GW_QUARANTINE);
    assert_int_equal(r[2].verdict, SMKI_GW_QUARANTINE);
    assert_int_equal(r[2].notified, -1);
    fclose(log);
    assert_int_equal(count_in(text, "\"event\":\"gateway_quarantine\""), 2);
    assert_int_equal(count_in(text, "\n"), 2);
    char needle[96];
    snprintf(needle, sizeof needle, "\"id\":%llu,\"reason\":\"threshold.exceeded\"",
             (unsigned long long)r[2].quarantine_id);
    assert_int_equal(count_in(text, needle), 1);
    assert_int_equal(count_in(text, "\"originator\":\"90-B3-D5-1F-30-01-00-00\""), 2);
    assert_int_equal(count_in(text, "\"notified\":false"), 2);
    /* Both lines are written after the batch's hooks: both carry the totals then. */
    assert_int_equal(count_in(text, "\"quarantined_total\":2,\"notified_total\":0,\"notify_failed_total\":2}"), 2);
    smki_gwq_record q;
    assert_ok(smki_gwq_get(f->s, r[2].quarantine_id, &q));
    assert_int_equal(q.state, SMKI_GWQ_HELD);
    smki_gwq_clear(&q);
    for (int i = 0; i < 3; i++) smki_gw_result_clear(&r[i]);
    smki_gateway_free(g);
    free(text);
    free(m1);
    free(m2);
    free(m3);
    smki_key_free(k);
}

/* Anomalous Service Requests are notified within 30 minutes: the hook runs once for each
 * quarantined message with its record on stdin; a failing or hanging hook loses nothing
 * and is counted; the pending ones are retried once each. */
static void test_quarantine_hook_fires_once_per_message_and_a_failure_loses_nothing(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    load_rules(f, k, SUPPLIER ",0019,3600,1\n");
    char log[1200], cmd[2600];
    snprintf(log, sizeof log, "%s/hook.log", f->dir);
    snprintf(cmd, sizeof cmd, "cat >> '%s' && echo \"env=$SMKI_QUARANTINE_ID pin=${SMKI_PIN:-none}\" >> '%s'", log,
             log);
    setenv("SMKI_PIN", "not-for-hooks", 1);
    smki_gateway_opts o = {.oca_file = f->z1, .no_crl = 1, .hook = {cmd, 5}, .ra = f->x.ra};
    smki_gateway *g = NULL;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    size_t l1, l2, l3;
    uint8_t *m1 = signed_pre(k, SUPPLIER, 100, &l1), *m2 = signed_pre(k, SUPPLIER, 101, &l2),
            *m3 = signed_pre(k, SUPPLIER, 102, &l3);
    const uint8_t *ms[3] = {m1, m2, m3};
    size_t ls[3] = {l1, l2, l3};
    smki_gw_result r[3];
    assert_ok(smki_gateway_check(g, ms, ls, 3, T2020, r));
    assert_int_equal(r[0].verdict, SMKI_GW_PASS);
    assert_int_equal(r[0].notified, 0);
    assert_int_equal(r[1].verdict, SMKI_GW_QUARANTINE);
    assert_int_equal(r[2].verdict, SMKI_GW_QUARANTINE);
    assert_int_equal(r[1].notified, 1);
    assert_int_equal(r[2].notified, 1);
    char needle[64];
    for (int i = 1; i < 3; i++) {
        snprintf(needle, sizeof needle, "{\"id\":%llu,", (unsigned long long)r[i].quarantine_id);
        assert_int_equal(count_in_file(log, needle), 1);
        snprintf(needle, sizeof needle, "env=%llu pin=none", (unsigned long long)r[i].quarantine_id);
        assert_int_equal(count_in_file(log, needle), 1);
    }
    assert_int_equal(count_in_file(log, "\"reason\":\"threshold.exceeded\""), 2);
    assert_int_equal(count_in_file(log, "\"kind\":\"command\""), 2);
    uint64_t first_held = r[1].quarantine_id;
    for (int i = 0; i < 3; i++) smki_gw_result_clear(&r[i]);
    smki_gateway_free(g);

    /* A failing hook: the message is quarantined all the same, the failure counted. */
    o.hook.command = "cat > /dev/null; exit 3";
    assert_ok(smki_gateway_open(f->s, &o, &g));
    size_t l4;
    uint8_t *m4 = signed_pre(k, SUPPLIER, 103, &l4);
    smki_gw_result r4;
    assert_int_equal(check1(g, m4, l4, T2020 + 1, &r4), SMKI_GW_QUARANTINE);
    assert_int_equal(r4.notified, -1);
    assert_non_null(strstr(r4.notify_error, "exited 3"));
    smki_gwq_record q;
    assert_ok(smki_gwq_get(f->s, r4.quarantine_id, &q));
    assert_int_equal(q.state, SMKI_GWQ_HELD);
    assert_int_equal(q.notify_state, SMKI_GWQ_NOTIFY_FAILED);
    assert_int_equal(q.notify_attempts, 1);
    smki_gwq_clear(&q);
    smki_gateway_free(g);
    /* A hook that hangs is killed at its timeout and counted as failed. */
    o.hook.command = "sleep 10";
    o.hook.timeout_seconds = 1;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    size_t l5;
    uint8_t *m5 = signed_pre(k, SUPPLIER, 104, &l5);
    smki_gw_result r5;
    assert_int_equal(check1(g, m5, l5, T2020 + 2, &r5), SMKI_GW_QUARANTINE);
    assert_int_equal(r5.notified, -1);
    assert_non_null(strstr(r5.notify_error, "within 1 s"));
    smki_gateway_free(g);
    smki_gwq_stats st;
    assert_ok(smki_gwq_stats_get(f->s, &st));
    assert_int_equal(st.quarantined, 4);
    assert_int_equal(st.notified, 2);
    assert_int_equal(st.notify_failed, 2);

    /* The pending ones (the two failures), once each; a record rejected meanwhile is not
     * raised again; a second sweep finds nothing. */
    smki_gwq_hook h = {cmd, 5};
    size_t fired = 0, failed = 0;
    assert_ok(smki_gwq_notify_pending(f->s, &h, &fired, &failed));
    assert_int_equal(fired, 2);
    assert_int_equal(failed, 0);
    snprintf(needle, sizeof needle, "{\"id\":%llu,", (unsigned long long)r4.quarantine_id);
    assert_int_equal(count_in_file(log, needle), 1);
    assert_ok(smki_gwq_notify_pending(f->s, &h, &fired, &failed));
    assert_int_equal(fired + failed, 0);
    snprintf(needle, sizeof needle, "{\"id\":%llu,", (unsigned long long)first_held);
    assert_int_equal(count_in_file(log, needle), 1);
    assert_ok(smki_gwq_stats_get(f->s, &st));
    assert_int_equal(st.notified, 4);
    smki_gwq_hook none = {NULL, 0};
    assert_fails(smki_gwq_notify_pending(f->s, &none, &fired, &failed), SMKI_E_USAGE, "no quarantine hook");
    unsetenv("SMKI_PIN");
    smki_gw_result_clear(&r4);
    smki_gw_result_clear(&r5);
    free(m1);
    free(m2);
    free(m3);
    free(m4);
    free(m5);
    smki_key_free(k);
}

#define ALERT_8F72 RTDS "NA_FDRA-DLMS/FDRA-DLMS_NA_8F72_ALERT_GBCS.HEX"

static void test_srv_table_parse_names_each_error(void **state)
{
    (void)state;
    static const struct {
        const char *csv, *needle;
    } bad[] = {
        {"1.1.1,ECS01a,0019", "t:1: expected 4 fields"},
        {"1.1.1,ECS01a,0019,EIS,x", "t:1: more than 4 fields"},
        {"1..1,ECS01a,0019,EIS", "t:1: srv has an empty part"},
        {"x.1,ECS01a,0019,EIS", "t:1: srv 'x.1' is not a Service Reference Variant"},
        {"1.1.,ECS01a,0019,EIS", "is not a Service Reference Variant"},
        {"1.1.1,,0019,EIS", "t:1: use_case must be 1..24"},
        {"1.1.1,EC S01a,0019,EIS", "use_case 'EC S01a' has a character"},
        {"1.1.1,ECS01a,019,EIS", "t:1: message_code must be 4 hex digits"},
        {"1.1.1,ECS01a,00G9,EIS", "message_code must be 4 hex digits"},
        {"1.1.1,ECS01a,0019,", "t:1: no User Role is eligible"},
        {"1.1.1,ECS01a,0019,eis", "User Role 'eis' is not a code"},
        {"1.1.1,ECS01a,0019,TOOLONGROLE", "is not a code"},
        {"# c\n1.1.1,ECS01a,0019,EIS\n1.1.1,ECS01a,0019,GIS", "t:3: srv 1.1.1 with message code 0019 twice"},
        {"1.1.1,ECS01a,0019,EIS\t", "t:1: a control or non-ASCII character at column 22"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        smki_srv_table t;
        assert_fails(smki_srv_table_parse((const uint8_t *)bad[i].csv, strlen(bad[i].csv), "t", &t), SMKI_E_INPUT,
                     bad[i].needle);
        assert_null(t.rows);
    }
    static const char good[] = "srv,use_case,message_code,user_roles\r\n# comment\r\n\r\n"
                               "1.1.1,ECS01a,0019,EIS\r\n1.1.1,GCS01a,006b,GIS\n6.15.1,CS02b,0102,EIS  GIS EES\n";
    smki_srv_table t;
    assert_ok(smki_srv_table_parse((const uint8_t *)good, sizeof good - 1, "t", &t));
    assert_int_equal(t.count, 3);
    assert_int_equal(t.nroles, 3);
    assert_int_equal(t.rows[1].code, 0x006B);
    assert_string_equal(t.rows[2].use_case, "CS02b");
    assert_int_equal(smki_srv_roles_mask(&t, "GIS"), t.rows[1].roles);
    assert_int_equal(smki_srv_roles_mask(&t, "OU,XYZ"), 0);
    assert_int_equal(smki_srv_roles_mask(&t, "EIS,GIS,EES"), t.rows[2].roles);
    smki_srv_table_free(&t);
    char canon[SMKI_GW_USER_ROLES_MAX];
    assert_ok(smki_user_roles_canon(" eis, Gis ", canon, sizeof canon));
    assert_string_equal(canon, "EIS,GIS");
    assert_fails(smki_user_roles_canon("EIS,9X", canon, sizeof canon), SMKI_E_USAGE, "'9X' is not a code");
    assert_fails(smki_user_roles_canon("A,B,C,D,E,F,G,H,I", canon, sizeof canon), SMKI_E_USAGE, "more than 8");
}

/* One source of truth: with the eligibility table loaded, the RA's User Roles of the
 * sender decide, as the RA has them at the check (a change there is seen at once); an ID
 * the RA does not know is no User at all. */
static void test_eligibility_reads_the_ras_user_roles(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    static const char csv[] = "1.1.1,ECS01a,0019,EIS\n1.1.1,GCS01a,006B,GIS\n";
    size_t rows = 0;
    assert_ok(smki_gw_srv_load(&f->x.adm, (const uint8_t *)csv, sizeof csv - 1, &rows));
    smki_eui64_t sup = eui(SUPPLIER);
    smki_gateway *g = open_gw(f, NULL);
    size_t l1, l2, l3;
    uint8_t *m1 = signed_pre(k, SUPPLIER, 9101, &l1), *m2 = signed_pre(k, SUPPLIER, 9102, &l2),
            *m3 = signed_pre(k, "90B3D51F30030000", 9103, &l3);
    expect_reason(g, m1, l1, T2020, SMKI_GW_PASS, ""); /* the RA says Import Supplier */
    assert_ok(smki_ra_id_set_roles(f->x.ra, &f->x.alice, &sup, SMKI_UROLE_GIS));
    smki_gw_result r;
    assert_int_equal(check1(g, m2, l2, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "user.not-eligible");
    assert_non_null(strstr(r.detail, "User Roles GIS"));
    assert_int_equal(check1(g, m3, l3, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "user.unknown");
    assert_non_null(strstr(r.detail, "not a User ID of the RA's registry"));
    smki_gateway_free(g);
    free(m1);
    free(m2);
    free(m3);
    smki_key_free(k);
}

/* An Import Supplier and a Gas Supplier no longer look alike: with the Service Request
 * eligibility table loaded, the sender's User Roles decide per Service Reference Variant. */
static void test_eligibility_by_user_role_per_service_reference_variant(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    static const char csv[] = "1.1.1,ECS01a,0019,EIS\n1.1.1,GCS01a,006B,GIS\n6.15.1,CS02b,0102,EIS GIS\n";
    size_t rows = 0;
    assert_ok(smki_gw_srv_load(&f->x.adm, (const uint8_t *)csv, sizeof csv - 1, &rows));
    assert_int_equal(rows, 3);
    smki_gateway *g = open_gw(f, NULL);
    size_t l1, l2;
    uint8_t *m1 = signed_pre(k, SUPPLIER, 9001, &l1), *m2 = signed_pre(k, SUPPLIER, 9002, &l2);
    smki_gw_result r;
    smki_eui64_t sup = eui(SUPPLIER);
    /* An Export Supplier, a role of no row of the table: not eligible. */
    assert_ok(smki_ra_id_set_roles(f->x.ra, &f->x.alice, &sup, SMKI_UROLE_EES));
    assert_int_equal(check1(g, m1, l1, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "user.not-eligible");
    assert_non_null(strstr(r.detail, "(User Roles EES) is eligible for none of 1.1.1 (ECS01a)"));
    /* A Gas Supplier may not send the electricity ECS01a ... */
    assert_ok(smki_ra_id_set_roles(f->x.ra, &f->x.alice, &sup, SMKI_UROLE_GIS));
    smki_gw_user u;
    assert_ok(smki_gw_user_get(f->x.ra, &sup, &u));
    assert_string_equal(u.user_roles, "GIS");
    assert_int_equal(check1(g, m1, l1, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "user.not-eligible");
    assert_non_null(strstr(r.detail, "(User Roles GIS) is eligible for none of 1.1.1 (ECS01a) with message code 0019"));
    /* ... an Import Supplier may. */
    assert_ok(smki_ra_id_set_roles(f->x.ra, &f->x.alice, &sup, SMKI_UROLE_GIS | SMKI_UROLE_EIS));
    expect_reason(g, m1, l1, T2020, SMKI_GW_PASS, "");
    /* A message code in no Service Reference Variant of the table (the RTDS pre-command
     * rebuilt as ECS10, 0021, and signed). */
    size_t plen;
    uint8_t *pre = read_msg(PRE_ECS01A, &plen);
    uint8_t *built = NULL, *other = NULL;
    size_t blen, olen;
    smki_gbcs_msg pp;
    assert_ok(smki_gbcs_parse(pre, plen, &pp));
    smki_gbcs_fields fl = pp.gsa;
    fl.other_info = NULL;
    fl.message_code = 0x0021; /* ECS10 */
    fl.counter = 9004;
    fl.sig_state = SMKI_GBCS_SIG_NONE;
    assert_ok(smki_gbcs_build_signing(&fl, &built, &blen));
    assert_ok(smki_gbcs_sign(k, built, blen, &other, &olen));
    assert_int_equal(check1(g, other, olen, T2020, &r), SMKI_GW_REJECT);
    assert_non_null(strstr(r.detail, "message code 0021 is in no Service Reference Variant"));
    smki_gateway_free(g);
    /* An empty file removes the table: the Remote Party Role table decides again. */
    assert_ok(smki_gw_srv_load(&f->x.adm, (const uint8_t *)"", 0, &rows));
    assert_int_equal(rows, 0);
    g = open_gw(f, NULL);
    expect_reason(g, m2, l2, T2020, SMKI_GW_PASS, "");
    smki_gateway_free(g);
    free(pre);
    free(built);
    free(other);
    free(m1);
    free(m2);
    smki_key_free(k);
}

static int collect_log(const smki_gw_log_record *r, void *arg)
{
    smki_gw_log_record *out = arg;
    size_t i = 0;
    while (i < 8 && out[i].at) i++;
    if (i < 8) out[i] = *r;
    return 0;
}

static size_t log_count(fx *f, int64_t before, smki_gw_log_record got[8])
{
    memset(got, 0, 8 * sizeof *got);
    assert_ok(smki_gw_log_list(f->s, before, collect_log, got));
    size_t n = 0;
    while (n < 8 && got[n].at) n++;
    return n;
}

/* Records of checked messages are kept, then written to a signed archive and only then
 * pruned; the archive verifies, and refuses a changed octet or another key. */
static void test_checked_messages_are_recorded_then_archived_signed_and_pruned(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    size_t l1;
    uint8_t *m1 = signed_pre(k, SUPPLIER, 8000, &l1);
    smki_gateway *g = open_gw(f, NULL);
    expect_reason(g, m1, l1, T2020, SMKI_GW_PASS, "");
    expect_reason(g, m1, l1, T2020 + 100, SMKI_GW_REJECT, "counter.replay");
    expect_reason(g, m1, 10, T2020 + 200, SMKI_GW_REJECT, "structure.malformed");
    smki_gateway_free(g);
    smki_gw_log_record got[8];
    assert_int_equal(log_count(f, INT64_MAX, got), 3);
    assert_int_equal(got[0].at, T2020);
    assert_int_equal(got[0].verdict, SMKI_GW_PASS);
    assert_int_equal(got[0].counter, 8000);
    assert_int_equal(got[0].code, 0x0019);
    assert_memory_equal(got[0].originator.b, eui(SUPPLIER).b, 8);
    assert_string_equal(got[1].reason, "counter.replay");
    assert_false(got[2].parsed);
    assert_string_equal(got[2].reason, "structure.malformed");
    assert_int_equal(log_count(f, T2020 + 150, got), 2);

    char path[1200];
    snprintf(path, sizeof path, "%s/gw.archive", f->dir);
    size_t n = 0;
    assert_ok(smki_gw_log_archive(f->s, T2020 + 150, T2020 + 1000, k, path, &n));
    assert_int_equal(n, 2);
    assert_int_equal(log_count(f, INT64_MAX, got), 1); /* the two older ones pruned */
    assert_string_equal(got[0].reason, "structure.malformed");
    /* Nothing left before the cut-off: no archive written. */
    char path2[1300];
    snprintf(path2, sizeof path2, "%s.none", path);
    assert_ok(smki_gw_log_archive(f->s, T2020 + 150, T2020 + 1000, k, path2, &n));
    assert_int_equal(n, 0);
    assert_int_equal(access(path2, F_OK), -1);
    /* An existing file is not overwritten, and then nothing is pruned. */
    assert_fails(smki_gw_log_archive(f->s, T2020 + 300, T2020 + 1000, k, path, &n), SMKI_E_EXISTS, "");
    assert_int_equal(log_count(f, INT64_MAX, got), 1);

    size_t len = 0, records = 0;
    uint8_t *a = NULL;
    assert_ok(smki_file_read(path, 1u << 20, &a, &len));
    size_t cl, ol;
    uint8_t *cert = shared_file(KS "90b3d51f30010000-ds.pem", &cl);
    uint8_t *other = shared_file(KS "90b3d51f30020000-ds.pem", &ol);
    EVP_PKEY *pub = NULL, *opub = NULL;
    assert_ok(smki_pub_load(cert, cl, &pub));
    free(cert);
    assert_ok(smki_pub_load(other, ol, &opub));
    free(other);
    assert_ok(smki_gw_archive_verify(a, len, pub, &records));
    assert_int_equal(records, 2);
    assert_fails(smki_gw_archive_verify(a, len, opub, &records), SMKI_E_VERIFY, "does not verify");
    char *body = (char *)a;
    char *reason = strstr(body, "counter.replay");
    assert_non_null(reason);
    reason[0] = 'C';
    assert_fails(smki_gw_archive_verify(a, len, pub, &records), SMKI_E_VERIFY, "changed");
    reason[0] = 'c';
    assert_fails(smki_gw_archive_verify(a, len - 10, pub, &records), SMKI_E_INPUT, "signature");
    assert_fails(smki_gw_archive_verify(a + 1, len - 1, pub, &records), SMKI_E_INPUT, "not a smki gateway archive");
    assert_non_null(strstr(body, "\"verdict\":\"passed\",\"reason\":\"\",\"kind\":\"command\","
                                 "\"originator\":\"90-B3-D5-1F-30-01-00-00\""));
    EVP_PKEY_free(pub);
    EVP_PKEY_free(opub);
    free(a);
    free(m1);
    smki_key_free(k);
}

/* Test and live never mix: with the gateway's environment given, a signer certificate, a
 * device certificate or a User's registered certificate of another environment is refused
 * with its own reason code, although every one chains to the anchors given. */
static void test_another_environment_is_refused_whatever_the_anchors(void **state)
{
    fx *f = *state;
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    size_t len, rlen;
    uint8_t *m = signed_pre(k, SUPPLIER, 7000, &rlen), *resp = read_msg(RESP_ECS01A, &len);
    smki_env test = *smki_env_builtin("test"), live = test;
    snprintf(live.name, sizeof live.name, "live");
    smki_gateway_opts o = {.oca_file = f->z1, .no_crl = 1, .env = &test, .ra = f->x.ra};
    smki_gateway *g = NULL;
    /* The RTDS data is the test environment's: it passes a test gateway. */
    assert_ok(smki_gateway_open(f->s, &o, &g));
    expect_reason(g, m, rlen, T2020, SMKI_GW_PASS, "");
    expect_reason(g, resp, len, T2020, SMKI_GW_PASS, "");
    smki_gateway_free(g);
    /* A gateway whose device policy differs: the meter's certificate is another environment's. */
    snprintf(live.device_policy, sizeof live.device_policy, "1.2.826.0.1.1800000.9.9");
    o.env = &live;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    uint8_t *m2 = signed_pre(k, SUPPLIER, 7001, &rlen);
    smki_gw_result r;
    assert_int_equal(check1(g, m2, rlen, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "device.environment");
    assert_non_null(strstr(r.detail, "1.2.826.0.1.1800000.1.2.1.4"));
    expect_reason(g, resp, len, T2020, SMKI_GW_REJECT, "device.environment");
    smki_gateway_free(g);
    /* ... whose organisation policy differs: the supplier's certificate is refused as a
     * signer, and as the recipient of a response. */
    live = test;
    snprintf(live.name, sizeof live.name, "live");
    snprintf(live.org_policy, sizeof live.org_policy, "1.2.826.0.1.8641679.9.9");
    assert_ok(smki_gateway_open(f->s, &o, &g));
    assert_int_equal(check1(g, m2, rlen, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "cert.environment");
    assert_non_null(strstr(r.detail, "1.2.826.0.1.8641679.1.2.1.4"));
    expect_reason(g, resp, len, T2020, SMKI_GW_REJECT, "user.environment");
    smki_gateway_free(g);
    /* An environment without its OIDs (production's placeholders) is refused at open. */
    o.env = smki_env_builtin("production");
    assert_fails(smki_gateway_open(f->s, &o, &g), SMKI_E_USAGE, "no organisation or device policy");
    free(m);
    free(m2);
    free(resp);
    smki_key_free(k);
}
#define RESP_CS08 RTDS "11.2_CS08/CS08_11.2_SUCCESS_RESPONSE_GBCS.HEX"

/* Stage 2 ¶136: responses and alerts pass anomaly detection and quarantine as commands do,
 * with their own thresholds (counted for the User they are addressed to). */
static void test_responses_and_alerts_take_the_return_path_with_their_own_thresholds(void **state)
{
    fx *f = *state;
    smki_gateway *g = open_gw(f, NULL);
    size_t len, alen, mlen;
    uint8_t *resp = read_msg(RESP_ECS01A, &len), *alert = read_msg(ALERT_8F72, &alen),
            *maced = read_msg(RESP_CS08, &mlen);
    /* Both ends known: a response from the meter to the supplier passes as received. */
    smki_gw_result r;
    assert_int_equal(check1(g, resp, len, T2020, &r), SMKI_GW_PASS);
    assert_int_equal(r.cra, SMKI_GBCS_CRA_RESPONSE);
    assert_null(r.command);
    smki_gw_result_clear(&r);
    /* A response from a device not in the inventory, to a User not registered. */
    resp[19] ^= 0x01; /* originator 00DB1234567890A1 */
    expect_reason(g, resp, len, T2020, SMKI_GW_REJECT, "device.unknown");
    resp[19] ^= 0x01;
    expect_reason(g, maced, mlen, T2020, SMKI_GW_REJECT, "device.unknown"); /* CS08 from A4 */
    memcpy(resp + 21, eui(NETOP).b, 8);
    expect_reason(g, resp, len, T2020, SMKI_GW_REJECT, "user.unknown");
    memcpy(resp + 21, eui(SUPPLIER).b, 8);

    /* The supplier's thresholds: 2 responses and 1 alert an hour addressed to it. */
    static const char csv[] = "user,message_code,window_seconds,max_count,kind\n"
                              SUPPLIER ",*,3600,2,response\n" SUPPLIER ",00CE,3600,1,alert\n";
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    uint8_t sig[SMKI_SIG_MAX];
    size_t sl = sizeof sig, loaded = 0;
    assert_ok(smki_signed_file_sign(k, (const uint8_t *)csv, sizeof csv - 1, sig, &sl));
    smki_eui64_t sup = eui(SUPPLIER);
    assert_ok(smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)csv, sizeof csv - 1, sig, sl, NULL, &loaded));
    assert_int_equal(loaded, 2);
    smki_thresholds th;
    assert_ok(smki_gw_thresholds_get(f->s, &sup, &th));
    assert_int_equal(th.count, 2);
    assert_int_equal(th.rules[0].kind, SMKI_GBCS_CRA_RESPONSE);
    assert_int_equal(th.rules[1].kind, SMKI_GBCS_CRA_ALERT);
    smki_thresholds_free(&th);
    expect_reason(g, resp, len, T2020 + 10, SMKI_GW_PASS, "");
    expect_reason(g, resp, len, T2020 + 11, SMKI_GW_PASS, "");
    assert_int_equal(check1(g, resp, len, T2020 + 12, &r), SMKI_GW_QUARANTINE);
    assert_string_equal(r.reason, "threshold.exceeded");
    assert_non_null(strstr(r.detail, "responses"));
    uint64_t qid = r.quarantine_id;
    smki_gw_result_clear(&r);
    /* The supplier's commands are not counted by its response rules. */
    size_t plen;
    uint8_t *pre = signed_pre(k, SUPPLIER, 5000, &plen);
    expect_reason(g, pre, plen, T2020 + 13, SMKI_GW_PASS, "");
    /* Alerts have their own rule. */
    expect_reason(g, alert, alen, T2020 + 14, SMKI_GW_PASS, "");
    expect_reason(g, alert, alen, T2020 + 15, SMKI_GW_QUARANTINE, "threshold.exceeded");
    /* An hour later the response window has room again. */
    expect_reason(g, resp, len, T2020 + 10 + 3600, SMKI_GW_PASS, "");
    /* Released, a held response is the message as the device sent it: no ACB key needed. */
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_ok(smki_gwq_release(&f->x.adm, qid, NULL, &out, &out_len));
    assert_int_equal(out_len, len);
    assert_memory_equal(out, resp, len);
    free(out);
    assert_fails(smki_gwq_release(&f->x.adm, qid, NULL, &out, &out_len), SMKI_E_REFUSED, "already released");
    free(pre);
    free(resp);
    free(alert);
    free(maced);
    smki_key_free(k);
    smki_gateway_free(g);
}

/* The RA's suspension of a User ID or of its Party refuses the sender's commands
 * (user.suspended, with the RA's reason); lifted, they pass again. */
static void test_sender_suspended_by_the_ra_is_refused(void **state)
{
    fx *f = *state;
    smki_key *sk = open_key(KS "90b3d51f30010000-ds.key");
    smki_gateway *g = open_gw(f, NULL);
    smki_eui64_t sup = eui(SUPPLIER);
    size_t len;
    uint8_t *m = signed_pre(sk, SUPPLIER, 150, &len);
    smki_gw_result r;
    assert_ok(smki_ra_party_suspend(f->x.ra, &f->x.alice, "RTDS", 1, "contract ended"));
    assert_int_equal(check1(g, m, len, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "user.suspended");
    assert_non_null(strstr(r.detail, "by the RA: "));
    assert_non_null(strstr(r.detail, "party RTDS, which is suspended: contract ended"));
    assert_ok(smki_ra_party_suspend(f->x.ra, &f->x.alice, "RTDS", 0, NULL));
    assert_ok(smki_ra_id_suspend(f->x.ra, &f->x.alice, &sup, 1, "key compromised"));
    assert_int_equal(check1(g, m, len, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "user.suspended");
    assert_non_null(strstr(r.detail, "is suspended: key compromised"));
    /* Not suspended: it passes. */
    assert_ok(smki_ra_id_suspend(f->x.ra, &f->x.alice, &sup, 0, NULL));
    expect_reason(g, m, len, T2020, SMKI_GW_PASS, "");
    free(m);
    smki_gateway_free(g);
    smki_key_free(sk);
}

/* The RA's User Roles are read at every check: a User whose roles no longer allow the
 * role its certificate was registered for is refused (cert.role), and passes again when
 * they do. */
static void test_a_role_the_ras_user_roles_no_longer_allow_is_refused(void **state)
{
    fx *f = *state;
    smki_key *sk = open_key(KS "90b3d51f30010000-ds.key");
    smki_gateway *g = open_gw(f, NULL);
    smki_eui64_t sup = eui(SUPPLIER);
    size_t l1, l2;
    uint8_t *m1 = signed_pre(sk, SUPPLIER, 170, &l1), *m2 = signed_pre(sk, SUPPLIER, 171, &l2);
    expect_reason(g, m1, l1, T2020, SMKI_GW_PASS, ""); /* the signer's chain is cached now */
    assert_ok(smki_ra_id_set_roles(f->x.ra, &f->x.alice, &sup, SMKI_UROLE_ENO));
    smki_gw_result r;
    assert_int_equal(check1(g, m2, l2, T2020, &r), SMKI_GW_REJECT);
    assert_string_equal(r.reason, "cert.role");
    assert_non_null(strstr(r.detail, "(ENO) no longer allow its registered role supplier"));
    assert_ok(smki_ra_id_set_roles(f->x.ra, &f->x.alice, &sup, SMKI_UROLE_GIS));
    expect_reason(g, m2, l2, T2020, SMKI_GW_PASS, "");
    free(m1);
    free(m2);
    smki_gateway_free(g);
    smki_key_free(sk);
}

static void test_registry_refusals_in_order(void **state)
{
    fx *f = *state;
    smki_key *sk = open_key(KS "90b3d51f30010000-ds.key");
    smki_key *nk = open_key(KS "90b3d51f30020000-ds.key");
    smki_gateway *g = open_gw(f, NULL);
    size_t len;
    smki_eui64_t sup = eui(SUPPLIER), no = eui(NETOP), met = eui(METER);
    /* Unknown user: the network operator is the RA's, but has no certificate registered. */
    uint8_t *m = signed_pre(nk, NETOP, 10, &len);
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "user.unknown");
    /* Registered, but ECS01a is not a network operator's message. */
    size_t cl;
    uint8_t *c = shared_file(KS "90b3d51f30020000-ds.pem", &cl);
    assert_ok(smki_gw_user_add(&f->x.adm, &no, SMKI_ROLE_NETWORK_OPERATOR, c, cl));
    free(c);
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "user.not-eligible");
    free(m);
    /* Suspended user. */
    m = signed_pre(sk, SUPPLIER, 100, &len);
    assert_ok(smki_ra_id_suspend(f->x.ra, &f->x.alice, &sup, 1, "test"));
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "user.suspended");
    assert_ok(smki_ra_id_suspend(f->x.ra, &f->x.alice, &sup, 0, NULL));
    /* Device status. */
    assert_ok(smki_gw_device_set_status(&f->x.adm, &met, SMKI_DEV_DECOMMISSIONED));
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "device.status");
    assert_ok(smki_gw_device_set_status(&f->x.adm, &met, SMKI_DEV_INSTALLED));
    expect_reason(g, m, len, T2020, SMKI_GW_PASS, "");
    free(m);
    /* Unknown device: the gas meter is not in the inventory. */
    m = signed_pre(sk, SUPPLIER, 101, &len);
    m[21] = 0xA1; /* recipient's last octet: 00DB1234567890A1 */
    free(m);
    size_t pl;
    uint8_t *pre = read_msg(PRE_ECS01A, &pl);
    pre[21] = 0xA1;
    pre[10] = 0x80;
    uint8_t *s2 = NULL;
    assert_ok(smki_gbcs_sign(sk, pre, pl, &s2, &len));
    expect_reason(g, s2, len, T2020, SMKI_GW_REJECT, "device.unknown");
    free(s2);
    free(pre);
    /* No counter was recorded by any refusal. */
    uint64_t last;
    int seen;
    assert_ok(smki_gw_counter_get(f->s, &no, &last, &seen));
    assert_false(seen);
    smki_gateway_free(g);
    smki_key_free(sk);
    smki_key_free(nk);
}

static void test_certificate_refusals_on_rtds(void **state)
{
    fx *f = *state;
    smki_key *sk = open_key(KS "90b3d51f30010000-ds.key");
    smki_key *nk = open_key(KS "90b3d51f30020000-ds.key");
    smki_gateway *g = open_gw(f, NULL);
    size_t len;
    uint8_t *m = signed_pre(sk, SUPPLIER, 200, &len);
    expect_reason(g, m, len, 1893456000 /* 2030 */, SMKI_GW_REJECT, "cert.expired");
    expect_reason(g, m, len, 1262304000 /* 2010 */, SMKI_GW_REJECT, "cert.not-yet-valid");
    free(m);
    /* Wrong signer: the network operator's key over the supplier's message. */
    m = signed_pre(nk, SUPPLIER, 201, &len);
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "signature.invalid");
    free(m);
    /* One flipped octet in the content. */
    m = signed_pre(sk, SUPPLIER, 202, &len);
    m[40] ^= 1;
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "signature.invalid");
    free(m);
    /* Registered as network operator with the supplier's certificate: wrong role. */
    smki_eui64_t sup = eui(SUPPLIER);
    size_t cl;
    uint8_t *c = shared_file(KS "90b3d51f30010000-ds.pem", &cl);
    char sd[1100];
    snprintf(sd, sizeof sd, "%s/store2", f->dir);
    smki_store *s2;
    assert_ok(smki_store_open(sd, NULL, &s2));
    assert_ok(smki_gw_dbs(s2));
    ra_fx x2;
    ra_fx_open(&x2, s2, sd, 0);
    ra_fx_user(&x2, SUPPLIER, SMKI_UROLE_EIS | SMKI_UROLE_ENO); /* may hold either role */
    assert_ok(smki_gw_user_add(&x2.adm, &sup, SMKI_ROLE_NETWORK_OPERATOR, c, cl));
    assert_ok(smki_gw_elig_set(&x2.adm, SMKI_ROLE_NETWORK_OPERATOR, 0x0019, 1));
    free(c);
    smki_eui64_t met = eui(METER);
    assert_ok(smki_gw_device_add(&x2.adm, &met, SMKI_DEV_COMMISSIONED, NULL, 0));
    smki_gateway_opts o = {.oca_file = f->z1, .no_crl = 1, .ra = x2.ra};
    smki_gateway *g2;
    assert_ok(smki_gateway_open(s2, &o, &g2));
    m = signed_pre(sk, SUPPLIER, 203, &len);
    expect_reason(g2, m, len, T2020, SMKI_GW_REJECT, "cert.role");
    smki_gateway_free(g2);
    ra_fx_close(&x2);
    smki_store_close(s2);
    /* Registered with its KA certificate: not a signing certificate. */
    snprintf(sd, sizeof sd, "%s/store3", f->dir);
    assert_ok(smki_store_open(sd, NULL, &s2));
    assert_ok(smki_gw_dbs(s2));
    ra_fx_open(&x2, s2, sd, 0);
    ra_fx_user(&x2, SUPPLIER, SMKI_UROLE_EIS);
    c = shared_file(KS "90b3d51f30010000-ka.pem", &cl);
    assert_ok(smki_gw_user_add(&x2.adm, &sup, SMKI_ROLE_SUPPLIER, c, cl));
    free(c);
    assert_ok(smki_gw_device_add(&x2.adm, &met, SMKI_DEV_COMMISSIONED, NULL, 0));
    o.ra = x2.ra;
    assert_ok(smki_gateway_open(s2, &o, &g2));
    expect_reason(g2, m, len, T2020, SMKI_GW_REJECT, "cert.key-usage");
    smki_gateway_free(g2);
    ra_fx_close(&x2);
    smki_store_close(s2);
    free(m);
    smki_gateway_free(g);
    smki_key_free(sk);
    smki_key_free(nk);
}

static void test_device_without_ka_key_is_refused_when_macing(void **state)
{
    fx *f = *state;
    smki_key *sk = open_key(KS "90b3d51f30010000-ds.key");
    smki_key *acb = open_key(KS "90b3d51f30000002-ka.key");
    char sd[1100];
    snprintf(sd, sizeof sd, "%s/store-noka", f->dir);
    smki_store *s2;
    assert_ok(smki_store_open(sd, NULL, &s2));
    assert_ok(smki_gw_dbs(s2));
    ra_fx x2;
    ra_fx_open(&x2, s2, sd, 0);
    ra_fx_user(&x2, SUPPLIER, SMKI_UROLE_EIS);
    smki_eui64_t sup = eui(SUPPLIER), met = eui(METER);
    size_t cl, len;
    uint8_t *c = shared_file(KS "90b3d51f30010000-ds.pem", &cl);
    assert_ok(smki_gw_user_add(&x2.adm, &sup, SMKI_ROLE_SUPPLIER, c, cl));
    free(c);
    assert_ok(smki_gw_device_add(&x2.adm, &met, SMKI_DEV_COMMISSIONED, NULL, 0));
    smki_gateway_opts o = {.oca_file = f->z1, .no_crl = 1, .acb_ka = acb, .ra = x2.ra};
    smki_gateway *g;
    assert_ok(smki_gateway_open(s2, &o, &g));
    uint8_t *m = signed_pre(sk, SUPPLIER, 7, &len);
    expect_reason(g, m, len, T2020, SMKI_GW_REJECT, "device.no-ka-key");
    uint64_t last;
    int seen;
    assert_ok(smki_gw_counter_get(s2, &sup, &last, &seen));
    assert_false(seen);
    free(m);
    smki_gateway_free(g);
    ra_fx_close(&x2);
    smki_store_close(s2);
    smki_key_free(sk);
    smki_key_free(acb);
}

static void test_threshold_exceeded_is_quarantined_then_released_or_rejected(void **state)
{
    fx *f = *state;
    smki_eui64_t sup = eui(SUPPLIER);
    smki_key *k = open_key(KS "90b3d51f30010000-ds.key");
    smki_key *acb = open_key(KS "90b3d51f30000002-ka.key");
    static const char csv[] = "90B3D51F30010000,0019,3600,2\n";
    uint8_t sig[SMKI_SIG_MAX];
    size_t sl = sizeof sig;
    assert_ok(smki_signed_file_sign(k, (const uint8_t *)csv, sizeof csv - 1, sig, &sl));
    assert_ok(smki_gw_thresholds_load(&f->x.adm, &sup, (const uint8_t *)csv, sizeof csv - 1, sig, sl, NULL, NULL));
    smki_gateway *g = open_gw(f, acb);
    size_t l1, l2, l3, l4, l5;
    uint8_t *m1 = signed_pre(k, SUPPLIER, 1, &l1), *m2 = signed_pre(k, SUPPLIER, 2, &l2),
            *m3 = signed_pre(k, SUPPLIER, 3, &l3), *m4 = signed_pre(k, SUPPLIER, 4, &l4),
            *m5 = signed_pre(k, SUPPLIER, 5, &l5);
    /* Two in one batch pass, the third in the same hour is quarantined. */
    const uint8_t *ms[3] = {m1, m2, m3};
    size_t ls[3] = {l1, l2, l3};
    smki_gw_result r[3];
    assert_ok(smki_gateway_check(g, ms, ls, 3, T2020, r));
    assert_int_equal(r[0].verdict, SMKI_GW_PASS);
    assert_int_equal(r[1].verdict, SMKI_GW_PASS);
    assert_int_equal(r[2].verdict, SMKI_GW_QUARANTINE);
    assert_string_equal(r[2].reason, "threshold.exceeded");
    assert_null(r[2].command);
    uint64_t qid = r[2].quarantine_id;
    assert_true(qid > 0);
    for (int i = 0; i < 3; i++) smki_gw_result_clear(&r[i]);
    /* Quarantined, not recorded: the counter stays at 2. */
    uint64_t last;
    int seen;
    assert_ok(smki_gw_counter_get(f->s, &sup, &last, &seen));
    assert_int_equal(last, 2);
    expect_reason(g, m4, l4, T2020 + 10, SMKI_GW_QUARANTINE, "threshold.exceeded");
    /* An hour later the window has room again. */
    expect_reason(g, m5, l5, T2020 + 3600, SMKI_GW_PASS, "");
    smki_gwq_record q;
    assert_ok(smki_gwq_get(f->s, qid, &q));
    assert_int_equal(q.state, SMKI_GWQ_HELD);
    assert_int_equal(q.counter, 3);
    assert_string_equal(q.reason, "threshold.exceeded");
    assert_int_equal(q.msg_len, l3);
    assert_memory_equal(q.msg, m3, l3);
    smki_gwq_clear(&q);
    /* Counter 3 is below the 5 that passed since: release is refused as a replay. */
    uint8_t *cmd = NULL;
    size_t cl;
    assert_fails(smki_gwq_release(&f->x.adm, qid, acb, &cmd, &cl), SMKI_E_REFUSED, "counter.replay");
    assert_fails(smki_gwq_reject(&f->x.adm, qid, ""), SMKI_E_USAGE, "needs a reason");
    assert_ok(smki_gwq_reject(&f->x.adm, qid, "operator: burst from a test script"));
    assert_ok(smki_gwq_get(f->s, qid, &q));
    assert_int_equal(q.state, SMKI_GWQ_REJECTED);
    assert_string_equal(q.note, "operator: burst from a test script");
    smki_gwq_clear(&q);
    assert_fails(smki_gwq_reject(&f->x.adm, qid, "again"), SMKI_E_REFUSED, "already rejected");
    /* The next one quarantined (counter 6 after 5) is released: MACed, counter recorded. */
    size_t l6;
    uint8_t *m6 = signed_pre(k, SUPPLIER, 6, &l6);
    smki_gw_result r6;
    assert_int_equal(check1(g, m6, l6, T2020 + 3601, &r6), SMKI_GW_PASS);
    smki_gw_result_clear(&r6);
    uint8_t *m8 = signed_pre(k, SUPPLIER, 8, &l6);
    assert_int_equal(check1(g, m8, l6, T2020 + 3602, &r6), SMKI_GW_QUARANTINE);
    uint64_t q2 = r6.quarantine_id;
    assert_ok(smki_gwq_release(&f->x.adm, q2, acb, &cmd, &cl));
    smki_gbcs_msg pm;
    assert_ok(smki_gbcs_parse(cmd, cl, &pm));
    assert_int_equal(pm.kind, SMKI_GBCS_CIPHERING);
    EVP_PKEY *dev = NULL;
    assert_ok(smki_pub_load_file(test_shared_path(KS "00db1234567890a0-ka.pem"), &dev));
    assert_ok(smki_gbcs_verify_mac(&pm, acb, dev));
    EVP_PKEY_free(dev);
    free(cmd);
    assert_ok(smki_gw_counter_get(f->s, &sup, &last, &seen));
    assert_int_equal(last, 8);
    assert_fails(smki_gwq_release(&f->x.adm, q2, acb, &cmd, &cl), SMKI_E_REFUSED, "already released");
    assert_fails(smki_gwq_get(f->s, 999, &q), SMKI_E_NOTFOUND, "no quarantined message");
    free(m1), free(m2), free(m3), free(m4), free(m5), free(m6), free(m8);
    smki_gateway_free(g);
    smki_key_free(k);
    smki_key_free(acb);
}

/* ---- A test hierarchy of our own, for revocation ----------------------------------------------------- */
typedef struct {
    EVP_PKEY *key;
    X509 *cert;
    char key_ref[1200];
} party;

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

/* OU=<role>, x500UniqueIdentifier=<EUI-64> (reference §4), assembled as DER. */
static X509_NAME *org_name(const char *role, const char *id)
{
    smki_eui64_t e = eui(id);
    uint8_t der[] = {0x30, 0x21, 0x31, 0x0B, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x0B, 0x0C, 0x02, (uint8_t)role[0],
                     (uint8_t)role[1], 0x31, 0x12, 0x30, 0x10, 0x06, 0x03, 0x55, 0x04, 0x2D, 0x03, 0x09, 0x00, 0, 0,
                     0, 0, 0, 0, 0, 0};
    memcpy(der + sizeof der - 8, e.b, 8);
    const uint8_t *p = der;
    X509_NAME *n = d2i_X509_NAME(NULL, &p, sizeof der);
    assert_non_null(n);
    return n;
}

static X509_NAME *ca_name(const char *ou, const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const uint8_t *)ou, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const uint8_t *)cn, -1, -1, 0);
    return n;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

static X509 *make_cert(X509_NAME *subj, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *ikey, long serial, int is_ca,
                       const char *ku, time_t nb, time_t na)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_set_subject_name(x, subj);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj);
    ASN1_TIME_set(X509_getm_notBefore(x), nb);
    ASN1_TIME_set(X509_getm_notAfter(x), na);
    X509_set_pubkey(x, pub);
    add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, issuer, NID_authority_key_identifier, "keyid");
    if (is_ca) add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, x, NID_key_usage, ku);
    assert_true(X509_sign(x, ikey ? ikey : pub, EVP_sha256()) > 0);
    X509_NAME_free(subj);
    return x;
}

static void write_key(const char *dir, const char *name, party *p)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, p->key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    snprintf(p->key_ref, sizeof p->key_ref, "file:%s", path);
}

static void write_der(const char *path, X509 *x)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    assert_ok(smki_file_write_atomic(path, der, (size_t)n, 0644, 0));
    OPENSSL_free(der);
}

static void write_crl(const char *path, X509 *ca, EVP_PKEY *key, const long *revoked, size_t n, time_t last,
                      time_t next)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    ASN1_TIME *t = ASN1_TIME_set(NULL, last);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_set(t, next);
    X509_CRL_set1_nextUpdate(crl, t);
    ASN1_TIME_free(t);
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        ASN1_INTEGER_set(s, revoked[i]);
        X509_REVOKED_set_serialNumber(r, s);
        ASN1_TIME *rt = ASN1_TIME_set(NULL, last);
        X509_REVOKED_set_revocationDate(r, rt);
        ASN1_TIME_free(rt);
        ASN1_INTEGER_free(s);
        X509_CRL_add0_revoked(crl, r);
    }
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    uint8_t *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    assert_ok(smki_file_write_atomic(path, der, (size_t)len, 0644, 0));
    OPENSSL_free(der);
    X509_CRL_free(crl);
}

#define A_ID "90B3D51F3F000001"
#define B_ID "90B3D51F3F000002"
#define DAY 86400

static void test_revoked_signer_and_crl_refusals_on_a_test_hierarchy(void **state)
{
    fx *f = *state;
    time_t t0 = T2020 - 30 * DAY, t1 = T2020 + 3650 * DAY;
    party root = {new_key(), NULL, ""}, oca = {new_key(), NULL, ""}, a = {new_key(), NULL, ""},
          b = {new_key(), NULL, ""}, rogue = {new_key(), NULL, ""};
    root.cert = make_cert(ca_name("00", "TROOT"), root.key, NULL, NULL, 1, 1, "critical,keyCertSign,cRLSign", t0, t1);
    oca.cert = make_cert(ca_name("07", "TOCA"), oca.key, root.cert, root.key, 2, 1, "critical,keyCertSign,cRLSign",
                         t0, t1);
    a.cert = make_cert(org_name("02", A_ID), a.key, oca.cert, oca.key, 100, 0, "critical,digitalSignature", t0, t1);
    b.cert = make_cert(org_name("02", B_ID), b.key, oca.cert, oca.key, 101, 0, "critical,digitalSignature", t0, t1);
    write_key(f->dir, "a", &a);
    write_key(f->dir, "b", &b);
    char trust[1100], crl[1100], badcrl[1100], oldcrl[1100], path[1200];
    snprintf(trust, sizeof trust, "%s/trust", f->dir);
    assert_ok(smki_mkdirs(trust, 0700));
    snprintf(path, sizeof path, "%s/root.der", trust);
    write_der(path, root.cert);
    snprintf(path, sizeof path, "%s/oca.der", trust);
    write_der(path, oca.cert);
    snprintf(crl, sizeof crl, "%s/oca.crl", f->dir);
    snprintf(badcrl, sizeof badcrl, "%s/rogue.crl", f->dir);
    snprintf(oldcrl, sizeof oldcrl, "%s/old.crl", f->dir);
    long revoked[] = {100};
    write_crl(crl, oca.cert, oca.key, revoked, 1, T2020 - DAY, T2020 + 7 * DAY);
    write_crl(badcrl, oca.cert, rogue.key, NULL, 0, T2020 - DAY, T2020 + 7 * DAY);
    write_crl(oldcrl, oca.cert, oca.key, NULL, 0, T2020 - 30 * DAY, T2020 - 20 * DAY);

    smki_eui64_t ia = eui(A_ID), ib = eui(B_ID);
    ra_fx_user(&f->x, A_ID, SMKI_UROLE_EIS);
    ra_fx_user(&f->x, B_ID, SMKI_UROLE_EIS);
    uint8_t *der = NULL;
    int n = i2d_X509(a.cert, &der);
    assert_ok(smki_gw_user_add(&f->x.adm, &ia, SMKI_ROLE_SUPPLIER, der, (size_t)n));
    OPENSSL_free(der);
    der = NULL;
    n = i2d_X509(b.cert, &der);
    assert_ok(smki_gw_user_add(&f->x.adm, &ib, SMKI_ROLE_SUPPLIER, der, (size_t)n));
    OPENSSL_free(der);

    smki_key *ka = NULL, *kb = NULL;
    assert_ok(smki_key_open(a.key_ref, NULL, &ka));
    assert_ok(smki_key_open(b.key_ref, NULL, &kb));
    size_t la, lb;
    uint8_t *ma = signed_pre(ka, A_ID, 1, &la), *mb = signed_pre(kb, B_ID, 1, &lb);

    /* A CRL signed by anyone but its issuer is refused when the gateway opens. */
    smki_gateway_opts o = {.trust_dir = trust, .crl_file = badcrl, .ra = f->x.ra};
    smki_gateway *g = NULL;
    assert_fails(smki_gateway_open(f->s, &o, &g), SMKI_E_VERIFY, "does not verify under its issuer's key");
    o.crl_file = NULL;
    assert_fails(smki_gateway_open(f->s, &o, &g), SMKI_E_USAGE, "give a CRL");
    o.crl_file = crl;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    expect_reason(g, ma, la, T2020, SMKI_GW_REJECT, "cert.revoked");
    expect_reason(g, mb, lb, T2020, SMKI_GW_PASS, "");
    /* After the CRL's nextUpdate the cached chain is not trusted: revocation unknown. */
    free(mb);
    mb = signed_pre(kb, B_ID, 2, &lb);
    expect_reason(g, mb, lb, T2020 + 8 * DAY, SMKI_GW_REJECT, "cert.revocation-unknown");
    smki_gateway_free(g);
    o.crl_file = oldcrl;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    expect_reason(g, mb, lb, T2020, SMKI_GW_REJECT, "cert.revocation-unknown");
    smki_gateway_free(g);
    /* The RTDS supplier does not chain to this hierarchy. */
    smki_key *sk = open_key(KS "90b3d51f30010000-ds.key");
    size_t ls;
    uint8_t *ms = signed_pre(sk, SUPPLIER, 1, &ls);
    o.crl_file = crl;
    assert_ok(smki_gateway_open(f->s, &o, &g));
    expect_reason(g, ms, ls, T2020, SMKI_GW_REJECT, "cert.untrusted");
    smki_gateway_free(g);
    /* And our users do not chain to Z1. */
    g = open_gw(f, NULL);
    expect_reason(g, mb, lb, T2020, SMKI_GW_REJECT, "cert.untrusted");
    smki_gateway_free(g);
    o.trust_dir = NULL;
    o.oca_file = NULL;
    assert_fails(smki_gateway_open(f->s, &o, &g), SMKI_E_USAGE, "exactly one");
    free(ma), free(mb), free(ms);
    smki_key_free(ka), smki_key_free(kb), smki_key_free(sk);
    party *all[] = {&root, &oca, &a, &b, &rogue};
    for (size_t i = 0; i < 5; i++) {
        EVP_PKEY_free(all[i]->key);
        X509_free(all[i]->cert);
    }
}

static void test_time_parse(void **state)
{
    (void)state;
    time_t t;
    assert_ok(smki_gw_time_parse("2020-01-01", &t));
    assert_int_equal(t, T2020);
    assert_ok(smki_gw_time_parse("2020-01-01T00:00:10Z", &t));
    assert_int_equal(t, T2020 + 10);
    assert_ok(smki_gw_time_parse("@1577836800", &t));
    assert_int_equal(t, T2020);
    assert_fails(smki_gw_time_parse("2020-1-1", &t), SMKI_E_USAGE, "is not YYYY-MM-DD");
    assert_fails(smki_gw_time_parse("2020-13-01", &t), SMKI_E_USAGE, NULL);
    assert_fails(smki_gw_time_parse("@-5", &t), SMKI_E_USAGE, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_file_canonical_line_ends),
        cmocka_unit_test_setup_teardown(test_sender_suspended_by_the_ra_is_refused, setup,
                                        teardown),
        cmocka_unit_test(test_signed_file_verifies_across_line_ends_and_refuses_changes),
        cmocka_unit_test(test_thresholds_parse_accepts_header_comments_and_line_ends),
        cmocka_unit_test(test_thresholds_parse_names_line_and_column_of_each_error),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test_setup_teardown(test_registry_users_devices_and_eligibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thresholds_load_only_with_a_verifying_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rtds_precommand_signed_by_supplier_passes_then_replay_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rtds_command_is_remaced_byte_for_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_signed_rtds_command_passes_and_is_remaced_byte_for_byte, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_threads_on_one_gateway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structure_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responses_and_alerts_take_the_return_path_with_their_own_thresholds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_future_dated_beyond_the_limit_is_refused, setup, teardown),
        cmocka_unit_test(test_srv_table_parse_names_each_error),
        cmocka_unit_test_setup_teardown(test_eligibility_by_user_role_per_service_reference_variant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eligibility_reads_the_ras_user_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checked_messages_are_recorded_then_archived_signed_and_pruned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_another_environment_is_refused_whatever_the_anchors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_counters_in_the_json_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_hook_fires_once_per_message_and_a_failure_loses_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_registry_refusals_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_refusals_on_rtds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_without_ka_key_is_refused_when_macing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_are_the_ras, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_role_the_ras_user_roles_no_longer_allow_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_administration_is_audited_and_needs_an_operator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_exceeded_is_quarantined_then_released_or_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoked_signer_and_crl_refusals_on_a_test_hierarchy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
