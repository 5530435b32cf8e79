/* The RA (ra/): the registry and every refusal of it, requests through eligibility,
 * approvals and execution by the CA, demand controls, direct issuance in the test
 * environment, and the audit trail: fail-closed appends and verification that names
 * each kind of tampering, made here by editing the LMDB records directly. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "ra/ra.h"
#include "ra/ra_test.h"
#include "helpers.h"

static const uint8_t DEV_EUI[8] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0};
#define NOW 1790000000 /* 2026-09-21, a fixed clock: rate and demand counters are per day and month */

typedef struct {
    char dir[1024];
    smki_store *store;
    smki_ra *ra;
    smki_conf *conf;
    smki_key *alice_k, *bob_k, *carol_k, *mallory_k;
    smki_ra_actor alice, bob, carol, mallory;
    char ckpt_path[1200];
} fixture;

static smki_ra_policy policy(unsigned every)
{
    smki_ra_policy p;
    assert_ok(smki_ra_policy_load(NULL, &p));
    p.checkpoint_every = every;
    p.batch_group = 2;
    p.batch_review_size = 4;
    p.demand_baseline = 100;
    return p;
}

static void open_ra(fixture *f, const smki_ra_policy *p)
{
    assert_ok(smki_ra_open(f->store, p, &f->ra));
    smki_ra_set_clock(f->ra, NOW);
    smki_ra_set_checkpoint_key(f->ra, test_open_file_key(f->ckpt_path));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("ra"));
    char path[1100];
    snprintf(path, sizeof path, "%s/store", f->dir);
    if (smki_store_open(path, NULL, &f->store) != 0) return -1;
    snprintf(f->ckpt_path, sizeof f->ckpt_path, "%s/checkpoint.pem", f->dir);
    test_write_ec_key(f->ckpt_path, "P-256");
    smki_ra_policy p = policy(5);
    open_ra(f, &p);
    f->conf = test_software_ca_conf(f->dir, "test", NULL);
    smki_ca_init_opts o = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    if (smki_ca_init(smki_ra_ca_db(f->ra), "test", f->conf, &o, &rep) != 0) {
        print_error("ceremony: %s\n", smki_error_msg());
        return -1;
    }
    f->alice_k = test_new_file_key(f->dir, "alice");
    f->bob_k = test_new_file_key(f->dir, "bob");
    f->carol_k = test_new_file_key(f->dir, "carol");
    f->mallory_k = test_new_file_key(f->dir, "mallory");
    f->alice = (smki_ra_actor){"alice", f->alice_k};
    f->bob = (smki_ra_actor){"bob", f->bob_k};
    f->carol = (smki_ra_actor){"carol", f->carol_k};
    f->mallory = (smki_ra_actor){"mallory", f->mallory_k};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smki_ra_close(f->ra);
    smki_store_close(f->store);
    smki_conf_free(f->conf);
    smki_key_free(f->alice_k);
    smki_key_free(f->bob_k);
    smki_key_free(f->carol_k);
    smki_key_free(f->mallory_k);
    free(f);
    return 0;
}

/* alice (bootstrap), bob and carol registered. */
static void operators(fixture *f)
{
    assert_ok(smki_ra_operator_add(f->ra, &f->alice, "alice", smki_key_public(f->alice_k)));
    assert_ok(smki_ra_operator_add(f->ra, &f->alice, "bob", smki_key_public(f->bob_k)));
    assert_ok(smki_ra_operator_add(f->ra, &f->alice, "carol", smki_key_public(f->carol_k)));
}

static smki_eui64_range_t range(const char *text)
{
    smki_eui64_range_t r;
    assert_ok(smki_eui64_range_parse(text, &r));
    return r;
}

static smki_eui64_t eui(const char *text)
{
    smki_eui64_t e;
    assert_ok(smki_eui64_parse(text, &e));
    return e;
}

/* A supplier SUP1 (Testing Participant, agreement signed) with block 90B3D51F3/36, User
 * ID 90-B3-D5-1F-30-00-00-00 (EIS,GIS), authorised for supplier certificates and device
 * certificates in test; a network operator NET1 with block 90B3D51F4/36. */
static void registry(fixture *f)
{
    operators(f);
    smki_ra_party p = {.signifier = "SUP1", .name = "Supplier One", .is_testing_participant = 1, .agreement_signed = 1};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &p));
    smki_ra_party n = {.signifier = "NET1", .name = "Network One", .is_testing_participant = 1, .agreement_signed = 1};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &n));
    smki_eui64_range_t r1 = range("90B3D51F3/36"), r2 = range("90B3D51F4/36"), r3 = range("00DB12/24");
    assert_ok(smki_ra_range_assign(f->ra, &f->alice, &r1, SMKI_RANGE_CENTRAL, "SUP1"));
    assert_ok(smki_ra_range_assign(f->ra, &f->alice, &r2, SMKI_RANGE_CENTRAL, "NET1"));
    assert_ok(smki_ra_range_assign(f->ra, &f->alice, &r3, SMKI_RANGE_DEVICE, "SUP1"));
    smki_eui64_t id;
    assert_ok(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", SMKI_UROLE_EIS | SMKI_UROLE_GIS, NULL, &id));
    assert_ok(smki_ra_id_allocate(f->ra, &f->alice, "NET1", SMKI_UROLE_ENO, NULL, &id));
    smki_ra_subscriber s1 = {"SUP1", SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, "test"};
    smki_ra_subscriber s2 = {"SUP1", SMKI_PROFILE_DEVICE, -1, "test"};
    smki_ra_subscriber s3 = {"NET1", SMKI_PROFILE_ORGANISATION, SMKI_ROLE_NETWORK_OPERATOR, "test"};
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &s1));
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &s2));
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &s3));
}

/* ---- CSRs ------------------------------------------------------------------------------------- */

static size_t csr_der(unsigned ku, const uint8_t *hw_eui, uint8_t *out, size_t cap)
{
    return test_device_csr_der(ku, hw_eui, out, cap);
}

static int count_req(const smki_ra_request *r, void *arg)
{
    (void)r;
    ++*(size_t *)arg;
    return 0;
}

static int count_cert(const smki_cert *c, void *arg)
{
    (void)c;
    ++*(size_t *)arg;
    return 0;
}

static int org_submit(fixture *f, const smki_ra_actor *by, const char *party, const char *env, int role,
                      const char *eui_text, uint64_t *id)
{
    uint8_t der[1024];
    size_t n = csr_der(SMKI_KU_DIGITAL_SIGNATURE, NULL, der, sizeof der);
    smki_eui64_t e = eui(eui_text);
    smki_ra_submit s = {.type = SMKI_REQ_ORGANISATION, .party = party, .env = env, .csr = der, .csr_len = n,
                        .role = role, .eui = &e, .cn = "SUPPLIERONE"};
    return smki_ra_request_submit(f->ra, by, &s, id);
}

/* n device CSRs with consecutive IDs from first. */
static int batch_submit(fixture *f, const smki_ra_actor *by, const uint8_t first[8], size_t n, uint64_t *id)
{
    uint8_t **ders = calloc(n, sizeof *ders);
    size_t *lens = calloc(n, sizeof *lens);
    for (size_t i = 0; i < n; i++) {
        uint8_t hw[8];
        memcpy(hw, first, 8);
        hw[7] = (uint8_t)(hw[7] + i);
        ders[i] = malloc(1024);
        lens[i] = csr_der(i % 2 ? SMKI_KU_KEY_AGREEMENT : SMKI_KU_DIGITAL_SIGNATURE, hw, ders[i], 1024);
    }
    smki_ra_submit s = {.type = SMKI_REQ_DEVICE_BATCH, .party = "SUP1", .env = "test",
                        .csrs = (const uint8_t *const *)ders, .csr_lens = lens, .n_csrs = n};
    int rc = smki_ra_request_submit(f->ra, by, &s, id);
    for (size_t i = 0; i < n; i++) free(ders[i]);
    free(ders);
    free(lens);
    return rc;
}

static uint64_t head(fixture *f)
{
    uint64_t seq;
    assert_ok(smki_audit_head(f->ra, &seq, NULL));
    return seq;
}

static size_t cert_count(fixture *f)
{
    size_t n;
    assert_ok(smki_ca_count(smki_ra_ca_db(f->ra), &n));
    return n;
}

static EVP_PKEY *ckpt_pub(fixture *f)
{
    EVP_PKEY *pk = NULL;
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s", f->ckpt_path);
    assert_ok(smki_key_public_load(ref, NULL, &pk));
    return pk;
}

/* The audit trail verifies under the checkpoint key (what it holds is not looked at). */
static void audit_verifies(fixture *f)
{
    EVP_PKEY *pk = ckpt_pub(f);
    smki_audit_report *rep = calloc(1, sizeof *rep);
    assert_ok(smki_audit_verify(f->ra, pk, rep));
    free(rep);
    EVP_PKEY_free(pk);
}

/* ---- Operators ------------------------------------------------------------------------------------ */

static void test_first_operator_registers_themself_and_no_one_else(void **state)
{
    fixture *f = *state;
    assert_fails(smki_ra_operator_add(f->ra, &f->alice, "bob", smki_key_public(f->bob_k)), SMKI_E_REFUSED,
                 "registers themself");
    /* Claiming a name with someone else's key is the same refusal. */
    smki_ra_actor fake = {"bob", f->alice_k};
    assert_fails(smki_ra_operator_add(f->ra, &fake, "bob", smki_key_public(f->bob_k)), SMKI_E_REFUSED,
                 "registers themself");
    assert_int_equal(head(f), 0);
    operators(f);
    assert_fails(smki_ra_operator_add(f->ra, &f->alice, "bob", smki_key_public(f->bob_k)), SMKI_E_EXISTS,
                 "already registered");
    assert_fails(smki_ra_operator_add(f->ra, &f->mallory, "eve", smki_key_public(f->mallory_k)), SMKI_E_REFUSED,
                 "not a registered RA operator");
    smki_ra_actor impostor = {"bob", f->mallory_k};
    smki_ra_party p = {.signifier = "X1"};
    assert_fails(smki_ra_party_add(f->ra, &impostor, &p), SMKI_E_REFUSED, "not operator bob's registered key");
    assert_fails(smki_ra_operator_add(f->ra, &f->alice, "bad name", smki_key_public(f->bob_k)), SMKI_E_USAGE,
                 "only letters");
    assert_ok(smki_ra_operator_deactivate(f->ra, &f->alice, "carol"));
    assert_fails(smki_ra_party_add(f->ra, &f->carol, &p), SMKI_E_REFUSED, "deactivated");
    assert_fails(smki_ra_operator_deactivate(f->ra, &f->alice, "carol"), SMKI_E_REFUSED, "already deactivated");
    assert_fails(smki_ra_operator_deactivate(f->ra, &f->alice, "nobody"), SMKI_E_NOTFOUND, "no operator");
    assert_ok(smki_ra_operator_deactivate(f->ra, &f->alice, "bob"));
    assert_fails(smki_ra_operator_deactivate(f->ra, &f->alice, "alice"), SMKI_E_REFUSED, "last active operator");
    size_t n;
    assert_ok(smki_ra_operator_count(f->ra, &n));
    assert_int_equal(n, 3);
    assert_int_equal(head(f), 5);
}

/* ---- Registry refusals ----------------------------------------------------------------------------- */

static void test_registry_refuses_duplicates_overlaps_and_unknown_parties(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t before = head(f);
    smki_ra_party p = {.signifier = "SUP1"};
    assert_fails(smki_ra_party_add(f->ra, &f->alice, &p), SMKI_E_EXISTS, "already registered");
    smki_ra_party q = {.signifier = "has space"};
    assert_fails(smki_ra_party_add(f->ra, &f->alice, &q), SMKI_E_USAGE, "Party Signifier");
    smki_ra_party r = {.signifier = "X2", .agreement_signed = 1};
    assert_fails(smki_ra_party_add(f->ra, &f->alice, &r), SMKI_E_USAGE, "only for a Testing Participant");
    smki_eui64_range_t inside = range("90B3D5/24"), other = range("90B3D51F5/36");
    assert_fails(smki_ra_range_assign(f->ra, &f->alice, &inside, SMKI_RANGE_CENTRAL, "NET1"), SMKI_E_REFUSED,
                 "already assigned to SUP1");
    assert_fails(smki_ra_range_assign(f->ra, &f->alice, &other, SMKI_RANGE_CENTRAL, "NOBODY"), SMKI_E_NOTFOUND,
                 "no party 'NOBODY'");
    smki_ra_subscriber s = {"SUP1", SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, "test"};
    assert_fails(smki_ra_subscriber_authorise(f->ra, &f->alice, &s), SMKI_E_EXISTS, "already an Authorised");
    smki_ra_subscriber s2 = {"SUP1", SMKI_PROFILE_DEVICE, SMKI_ROLE_SUPPLIER, "test"};
    assert_fails(smki_ra_subscriber_authorise(f->ra, &f->alice, &s2), SMKI_E_USAGE, "the others do not");
    smki_ra_subscriber s3 = {"GHOST", SMKI_PROFILE_DEVICE, -1, "test"};
    assert_fails(smki_ra_subscriber_authorise(f->ra, &f->alice, &s3), SMKI_E_NOTFOUND, "no party 'GHOST'");
    assert_int_equal(head(f), before); /* refusals leave no entry */
}

static void test_ids_come_only_from_the_requesters_own_block_and_never_twice(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_eui64_t got;
    /* The next free ID of SUP1's block: the first was allocated by registry(). */
    assert_ok(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", SMKI_UROLE_EES, NULL, &got));
    smki_eui64_t want = eui("90-B3-D5-1F-30-00-00-01");
    assert_memory_equal(got.b, want.b, 8);
    smki_eui64_t mine = eui("90-B3-D5-1F-30-00-00-09");
    assert_ok(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", SMKI_UROLE_OU, &mine, &got));
    assert_fails(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", SMKI_UROLE_OU, &mine, &got), SMKI_E_EXISTS,
                 "never allocated twice");
    smki_eui64_t theirs = eui("90-B3-D5-1F-40-00-00-05");
    assert_fails(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", SMKI_UROLE_EIS, &theirs, &got), SMKI_E_REFUSED,
                 "central block of NET1");
    smki_eui64_t device = eui("00-DB-12-00-00-00-00-01");
    assert_fails(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", SMKI_UROLE_EIS, &device, &got), SMKI_E_REFUSED,
                 "device block of SUP1");
    smki_eui64_t nowhere = eui("11-22-33-44-55-66-77-88");
    assert_fails(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", SMKI_UROLE_EIS, &nowhere, &got), SMKI_E_REFUSED,
                 "outside party SUP1's central blocks");
    smki_ra_party p = {.signifier = "NOBLOCK"};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &p));
    assert_fails(smki_ra_id_allocate(f->ra, &f->alice, "NOBLOCK", SMKI_UROLE_EIS, NULL, &got), SMKI_E_REFUSED,
                 "no central EUI-64 block");
    assert_fails(smki_ra_id_allocate(f->ra, &f->alice, "SUP1", 0, NULL, &got), SMKI_E_USAGE, "at least one User Role");
    unsigned bits;
    assert_fails(smki_user_roles_parse("EIS,XYZ", &bits), SMKI_E_USAGE, "'XYZ' is not a User Role");
    assert_ok(smki_user_roles_parse("eis,GNO", &bits));
    assert_int_equal(bits, SMKI_UROLE_EIS | SMKI_UROLE_GNO);
    /* A full block: a /64-sized block of one ID. */
    smki_ra_party t = {.signifier = "TINY"};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &t));
    smki_eui64_range_t tiny;
    tiny.first = eui("90-B3-D5-1F-50-00-00-00");
    assert_ok(smki_eui64_range_from_prefix(&tiny.first, 36, &tiny));
    assert_ok(smki_ra_range_assign(f->ra, &f->alice, &tiny, SMKI_RANGE_CENTRAL, "TINY"));
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "TINY", 1, "unpaid invoices"));
    assert_fails(smki_ra_id_allocate(f->ra, &f->alice, "TINY", SMKI_UROLE_EIS, NULL, &got), SMKI_E_REFUSED,
                 "suspended");
}

typedef struct {
    uint64_t seq;
    smki_audit_entry e;
} entry_at;

static int keep_entry(const smki_audit_entry *e, void *arg)
{
    entry_at *le = arg;
    if (e->seq == le->seq) le->e = *e;
    return 0;
}

static void test_suspension_is_what_the_gateway_check_reads(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_eui64_t sup = eui("90-B3-D5-1F-30-00-00-00"), unknown = eui("90-B3-D5-1F-30-00-00-77");
    assert_ok(smki_ra_check_sender(f->ra, &sup));
    assert_fails(smki_ra_check_sender(f->ra, &unknown), SMKI_E_NOTFOUND, "not an allocated User ID");
    assert_ok(smki_ra_id_suspend(f->ra, &f->alice, &sup, 1, "key compromise reported"));
    assert_fails(smki_ra_check_sender(f->ra, &sup), SMKI_E_REFUSED, "key compromise reported");
    assert_fails(smki_ra_id_suspend(f->ra, &f->alice, &sup, 1, "again"), SMKI_E_REFUSED, "already suspended");
    assert_ok(smki_ra_id_suspend(f->ra, &f->alice, &sup, 0, NULL));
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 1, "SEC suspension"));
    assert_fails(smki_ra_check_sender(f->ra, &sup), SMKI_E_REFUSED, "party SUP1, which is suspended");
    assert_fails(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 1, ""), SMKI_E_USAGE, "needs a reason");
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 0, NULL));
    assert_ok(smki_ra_check_sender(f->ra, &sup));
}

/* A User ID's User Roles change (what the gateway's eligibility reads), audited; refused
 * without a role, for an unknown ID, to the same roles, and by an impostor. */
static void test_user_roles_change_audited_with_each_refusal(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_eui64_t sup = eui("90-B3-D5-1F-30-00-00-00"), unknown = eui("90-B3-D5-1F-30-00-00-77");
    smki_ra_actor impostor = {"alice", f->mallory_k};
    assert_fails(smki_ra_id_set_roles(f->ra, &f->alice, &sup, 0), SMKI_E_USAGE, "at least one User Role");
    assert_fails(smki_ra_id_set_roles(f->ra, &f->alice, &unknown, SMKI_UROLE_GIS), SMKI_E_NOTFOUND, NULL);
    assert_fails(smki_ra_id_set_roles(f->ra, &f->alice, &sup, SMKI_UROLE_EIS | SMKI_UROLE_GIS), SMKI_E_REFUSED,
                 "has the User Roles EIS,GIS already");
    assert_fails(smki_ra_id_set_roles(f->ra, &impostor, &sup, SMKI_UROLE_GIS), SMKI_E_REFUSED, "registered key");
    assert_ok(smki_ra_id_set_roles(f->ra, &f->alice, &sup, SMKI_UROLE_GIS));
    smki_ra_user_id u;
    assert_ok(smki_ra_id_get(f->ra, &sup, &u));
    assert_int_equal(u.roles, SMKI_UROLE_GIS);
    uint64_t head;
    uint8_t hash[SMKI_AUDIT_HASH_LEN];
    assert_ok(smki_audit_head(f->ra, &head, hash));
    entry_at le = {head, {0}};
    assert_ok(smki_audit_each(f->ra, head, keep_entry, &le));
    assert_string_equal(le.e.action, "id-set-roles");
    assert_string_equal(le.e.detail, "User Roles GIS (were EIS,GIS)");
}

static int service_write(smki_txn *t, void *arg)
{
    smki_db *db = arg;
    return smki_txn_put(t, *db, "svc", 3, "1", 1, 0);
}

static int service_fail(smki_txn *t, void *arg)
{
    GUARD(service_write(t, arg));
    return SMKI_FAIL(SMKI_E_REFUSED, "the service refuses");
}

/* A service above the RA (the gateway) acts through smki_ra_service_act: its change and a
 * signed entry in one transaction, or neither; refused without an operator, with an
 * impostor, and under an action name the RA's own trail would read (no SERVICE. prefix). */
static void test_service_actions_are_ra_actions(void **state)
{
    fixture *f = *state;
    operators(f);
    smki_db db;
    assert_ok(smki_store_db(f->store, "svc.test", 0, &db));
    smki_ra_actor impostor = {"alice", f->mallory_k};
    smki_ra_service_note ok = {"svc.do-thing", "thing 1", "as asked"};
    smki_ra_service_note bad[] = {{"operator-add", "operator eve", ""}, {"svc.", "", ""}, {".x", "", ""},
                                  {"svc.Do", "", ""}, {"a.b.c", "", ""}};
    uint64_t head0, head1;
    uint8_t hash[SMKI_AUDIT_HASH_LEN];
    assert_ok(smki_audit_head(f->ra, &head0, hash));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_fails(smki_ra_service_act(f->ra, &f->alice, &bad[i], service_write, &db), SMKI_E_USAGE,
                     "write SERVICE.VERB");
    assert_fails(smki_ra_service_act(f->ra, NULL, &ok, service_write, &db), SMKI_E_USAGE, "no operator");
    assert_fails(smki_ra_service_act(f->ra, &impostor, &ok, service_write, &db), SMKI_E_REFUSED, "registered key");
    assert_fails(smki_ra_service_act(f->ra, &f->alice, &ok, service_fail, &db), SMKI_E_REFUSED, "service refuses");
    assert_int_equal(test_store_count(f->store, db), 0);
    assert_ok(smki_audit_head(f->ra, &head1, hash));
    assert_int_equal(head1, head0);
    assert_ok(smki_ra_service_act(f->ra, &f->alice, &ok, service_write, &db));
    assert_int_equal(test_store_count(f->store, db), 1);
    assert_ok(smki_audit_head(f->ra, &head1, hash));
    assert_int_equal(head1, head0 + 1);
    entry_at le = {head1, {0}};
    assert_ok(smki_audit_each(f->ra, head1, keep_entry, &le));
    assert_string_equal(le.e.action, "svc.do-thing");
    assert_string_equal(le.e.operator_name, "alice");
    assert_string_equal(le.e.object, "thing 1");
}

/* ---- Eligibility --------------------------------------------------------------------------------- */

static void test_eligibility_refuses_each_rule_naming_it(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_eui64_t sup = eui("90-B3-D5-1F-30-00-00-00"), net = eui("90-B3-D5-1F-40-00-00-00");
    smki_eui64_t free_id = eui("90-B3-D5-1F-30-00-00-55");
    smki_ra_eligibility ok = {"SUP1", "test", SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, &sup, NULL, 0};
    assert_ok(smki_ra_check_eligible(f->ra, &ok));
    smki_ra_eligibility e = ok;
    e.party = "GHOST";
    assert_fails(smki_ra_check_eligible(f->ra, &e), SMKI_E_NOTFOUND, "no party 'GHOST'");
    e = ok;
    e.eui = &net;
    assert_fails(smki_ra_check_eligible(f->ra, &e), SMKI_E_REFUSED, "belongs to party NET1, not to SUP1");
    e = ok;
    e.eui = &free_id;
    assert_fails(smki_ra_check_eligible(f->ra, &e), SMKI_E_NOTFOUND, "not an allocated User ID");
    /* Authorised for supplier only; networkOperator is another subscription. */
    e = ok;
    e.role = SMKI_ROLE_NETWORK_OPERATOR;
    assert_fails(smki_ra_check_eligible(f->ra, &e), SMKI_E_REFUSED, "not an Authorised Subscriber");
    /* Authorised for xmlSign, but the role must also be bound to the ID: it is (any User). */
    smki_ra_subscriber x = {"SUP1", SMKI_PROFILE_ORGANISATION, SMKI_ROLE_OTHER, "test"};
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &x));
    e = ok;
    e.role = SMKI_ROLE_OTHER;
    assert_fails(smki_ra_check_eligible(f->ra, &e), SMKI_E_REFUSED, "role 7F (other) is not bound to");
    /* Another environment: no subscription there. */
    e = ok;
    e.env = "production";
    assert_fails(smki_ra_check_eligible(f->ra, &e), SMKI_E_REFUSED, "in production");
    /* Test certificates: a Testing Participant with the agreement on file. */
    assert_ok(smki_ra_party_set_testing(f->ra, &f->alice, "SUP1", -1, 0));
    assert_fails(smki_ra_check_eligible(f->ra, &ok), SMKI_E_REFUSED, "without its signed agreement");
    assert_ok(smki_ra_party_set_testing(f->ra, &f->alice, "SUP1", 0, -1));
    assert_fails(smki_ra_check_eligible(f->ra, &ok), SMKI_E_REFUSED, "not a Testing Participant");
    assert_fails(smki_ra_party_set_testing(f->ra, &f->alice, "SUP1", -1, 1), SMKI_E_REFUSED,
                 "not a Testing Participant");
    assert_ok(smki_ra_party_set_testing(f->ra, &f->alice, "SUP1", 1, 1));
    assert_ok(smki_ra_check_eligible(f->ra, &ok));
    assert_ok(smki_ra_id_suspend(f->ra, &f->alice, &sup, 1, "lost key"));
    assert_fails(smki_ra_check_eligible(f->ra, &ok), SMKI_E_REFUSED, "is suspended: lost key");
    assert_ok(smki_ra_id_suspend(f->ra, &f->alice, &sup, 0, NULL));
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 1, "audit finding"));
    assert_fails(smki_ra_check_eligible(f->ra, &ok), SMKI_E_REFUSED, "suspended (audit finding)");
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 0, NULL));
    /* Devices: never an ID of a central block; only authorised subscribers. */
    smki_ra_eligibility d = {"SUP1", "test", SMKI_PROFILE_DEVICE, -1, &sup, NULL, 0};
    assert_fails(smki_ra_check_eligible(f->ra, &d), SMKI_E_REFUSED, "never a Device ID");
    smki_eui64_t dev;
    memcpy(dev.b, DEV_EUI, 8);
    d.eui = &dev;
    assert_ok(smki_ra_check_eligible(f->ra, &d));
    d.party = "NET1";
    assert_fails(smki_ra_check_eligible(f->ra, &d), SMKI_E_REFUSED, "not an Authorised Subscriber for device");
    /* A role no User holds (recovery is the DCC's). */
    assert_int_equal(smki_ra_role_allowed(SMKI_UROLE_ALL, 0, SMKI_ROLE_RECOVERY), 0);
    assert_int_equal(smki_ra_role_allowed(0, 1, SMKI_ROLE_RECOVERY), 1);
    assert_int_equal(smki_ra_role_allowed(0, 1, SMKI_ROLE_ROOT), 0);
}

/* A Party asking for itself (a service's subscriber: EST) certifies only the devices of
 * its own device blocks; an RA operator acting for it is not bound by that. */
static void test_a_subscriber_asking_for_itself_gets_only_devices_of_its_own_blocks(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_ra_subscriber s4 = {"NET1", SMKI_PROFILE_DEVICE, -1, "test"};
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &s4));
    smki_eui64_range_t r4 = range("00DB14/24");
    assert_ok(smki_ra_range_assign(f->ra, &f->alice, &r4, SMKI_RANGE_DEVICE, "NET1"));
    smki_eui64_t own = eui("00-DB-12-00-00-00-00-01"), none = eui("00-DB-13-00-00-00-00-01"),
                 theirs = eui("00-DB-14-00-00-00-00-01");
    smki_ra_eligibility d = {"SUP1", "test", SMKI_PROFILE_DEVICE, -1, &own, NULL, 1};
    assert_ok(smki_ra_check_eligible(f->ra, &d));
    d.eui = &none;
    assert_fails(smki_ra_check_eligible(f->ra, &d), SMKI_E_REFUSED, "00-DB-13-00-00-00-00-01 is in no device block "
                                                                     "of party SUP1");
    d.eui = &theirs;
    assert_fails(smki_ra_check_eligible(f->ra, &d), SMKI_E_REFUSED, "is in a device block of party NET1, not of SUP1");
    /* The same IDs when an operator asks on the Party's behalf: only the central-block rule. */
    d.subscriber_asks = 0;
    assert_ok(smki_ra_check_eligible(f->ra, &d));
    d.eui = &none;
    assert_ok(smki_ra_check_eligible(f->ra, &d));
    /* A batch submitted for itself: refused whole, naming the CSR, nothing made. */
    uint8_t a[1024], b[1024];
    const uint8_t *ders[2] = {a, b};
    size_t lens[2] = {csr_der(SMKI_KU_DIGITAL_SIGNATURE, own.b, a, sizeof a),
                      csr_der(SMKI_KU_DIGITAL_SIGNATURE, theirs.b, b, sizeof b)};
    smki_ra_submit s = {.type = SMKI_REQ_DEVICE_BATCH, .party = "SUP1", .env = "test", .csrs = ders,
                        .csr_lens = lens, .n_csrs = 2, .subscriber_asks = 1};
    uint64_t id = 0;
    uint64_t before = head(f);
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_REFUSED,
                 "CSR 2 of the batch: Device ID 00-DB-14-00-00-00-00-01 is in a device block of party NET1");
    assert_int_equal(head(f), before);
    s.n_csrs = 1;
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
}

/* ---- Requests --------------------------------------------------------------------------------------- */

static void test_organisation_request_needs_another_operators_approval_then_issues(void **state)
{
    fixture *f = *state;
    registry(f);
    size_t certs = cert_count(f);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_PENDING);
    assert_int_equal(r.approvals_required, 1);
    assert_string_equal(r.requester, "alice");
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_fails(smki_ra_request_execute(f->ra, &f->alice, id, &o), SMKI_E_REFUSED, "awaits approvals");
    assert_fails(smki_ra_request_approve(f->ra, &f->alice, id, NULL), SMKI_E_REFUSED, "may not approve it");
    int approved = 0;
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, &approved));
    assert_int_equal(approved, 1);
    /* more approvals before it runs are recorded (one whose approver leaves is made whole so) */
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, id, &approved));
    assert_int_equal(approved, 0);
    assert_fails(smki_ra_request_approve(f->ra, &f->carol, id, NULL), SMKI_E_REFUSED, "has already approved");
    assert_int_equal(cert_count(f), certs);
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, &o));
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_DONE);
    assert_true(r.has_result);
    assert_int_equal(cert_count(f), certs + 1);
    smki_cert c;
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), r.result_issuer, r.result_serial, &c));
    assert_int_equal(c.role, SMKI_ROLE_SUPPLIER);
    smki_eui64_t want = eui("90-B3-D5-1F-30-00-00-00");
    assert_memory_equal(c.eui.b, want.b, 8);
    smki_env env;
    assert_ok(smki_env_load("test", NULL, &env));
    smki_lint_report *rep = malloc(sizeof *rep);
    assert_ok(smki_lint_der(c.der, c.der_len, &env, rep));
    assert_true(smki_lint_is_clean(rep));
    free(rep);
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, &o), SMKI_E_REFUSED, "is done");
    assert_fails(smki_ra_request_approve(f->ra, &f->mallory, id, NULL), SMKI_E_REFUSED, "not a registered");
    assert_fails(smki_ra_request_reject(f->ra, &f->carol, id, "too late"), SMKI_E_REFUSED, "no longer be rejected");
    assert_fails(smki_ra_request_get(f->ra, 999, &r), SMKI_E_NOTFOUND, "no request 999");
}

static void test_submission_refusals_write_nothing(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t before = head(f), id;
    assert_fails(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-40-00-00-00", &id),
                 SMKI_E_REFUSED, "belongs to party NET1");
    assert_fails(org_submit(f, &f->alice, "GHOST", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id),
                 SMKI_E_NOTFOUND, "no party 'GHOST'");
    assert_fails(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_NETWORK_OPERATOR, "90-B3-D5-1F-30-00-00-00", &id),
                 SMKI_E_REFUSED, "not an Authorised Subscriber");
    assert_fails(org_submit(f, &f->mallory, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id),
                 SMKI_E_REFUSED, "not a registered RA operator");
    uint8_t bad[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    smki_eui64_t e = eui("90-B3-D5-1F-30-00-00-00");
    smki_ra_submit s = {.type = SMKI_REQ_ORGANISATION, .party = "SUP1", .env = "test", .csr = bad,
                        .csr_len = sizeof bad, .role = SMKI_ROLE_SUPPLIER, .eui = &e};
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_INPUT, NULL);
    /* A device CSR in an organisation request. */
    uint8_t der[1024];
    s.csr = der;
    s.csr_len = csr_der(SMKI_KU_DIGITAL_SIGNATURE, DEV_EUI, der, sizeof der);
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_REFUSED, NULL);
    /* A device batch with one CSR whose ID is central. */
    uint8_t central[8] = {0x90, 0xb3, 0xd5, 0x1f, 0x30, 0, 0, 0};
    assert_fails(batch_submit(f, &f->alice, central, 2, &id), SMKI_E_REFUSED, "CSR 1 of the batch");
    assert_int_equal(head(f), before);
    size_t n = 0;
    assert_ok(smki_ra_request_each(f->ra, 0, count_req, &n));
    assert_int_equal(n, 0);
}

static void test_any_rejection_rejects_and_approvals_are_distinct(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    /* A batch above the review size is sensitive: two approvals. */
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 5, &id));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.approvals_required, 2);
    int approved = 1;
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, &approved));
    assert_int_equal(approved, 0);
    assert_fails(smki_ra_request_approve(f->ra, &f->bob, id, NULL), SMKI_E_REFUSED, "already approved");
    assert_ok(smki_ra_request_reject(f->ra, &f->carol, id, "the manufacturer's batch file is the wrong one"));
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_REJECTED);
    assert_string_equal(r.rejected_by, "carol");
    assert_string_equal(r.note, "the manufacturer's batch file is the wrong one");
    assert_fails(smki_ra_request_approve(f->ra, &f->carol, id, NULL), SMKI_E_REFUSED, "is rejected");
    assert_fails(smki_ra_request_reject(f->ra, &f->carol, id, "again"), SMKI_E_REFUSED, "no longer be rejected");
    assert_fails(smki_ra_request_reject(f->ra, &f->carol, id + 1, "x"), SMKI_E_NOTFOUND, "no request");
    size_t n = 0;
    assert_ok(smki_ra_request_each(f->ra, SMKI_REQ_REJECTED, count_req, &n));
    assert_int_equal(n, 1);
}

typedef struct {
    size_t calls, last_done, total;
} progress;

static void on_progress(size_t done, size_t total, void *arg)
{
    progress *p = arg;
    p->calls++;
    p->last_done = done;
    p->total = total;
}

static void test_device_batch_issues_in_group_commits_each_with_its_entry(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 3, &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    progress p = {0, 0, 0};
    smki_ra_exec_opts o = {.progress = on_progress, .progress_arg = &p};
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, &o));
    assert_int_equal(cert_count(f), certs + 3);
    assert_int_equal(p.calls, 2); /* groups of 2: 2 + 1 */
    assert_int_equal(p.last_done, 3);
    assert_int_equal(head(f), before + 2);
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_DONE);
    assert_int_equal(r.done_count, 3);
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    smki_eui64_t dev;
    memcpy(dev.b, DEV_EUI, 8);
    q.eui = &dev;
    q.profile = SMKI_PROFILE_DEVICE;
    size_t n = 0;
    assert_ok(smki_ca_find(smki_ra_ca_db(f->ra), &q, count_cert, &n));
    assert_int_equal(n, 1);
}

/* The stored CSR of a request (index idx): its last octet flipped (the signature's s), or
 * with 'v' its recorded SHA-256. */
typedef struct {
    smki_db db;
    uint64_t id;
    uint32_t idx;
    int hash;
} csr_tamper;

static int csr_tamper_txn(smki_txn *t, void *arg)
{
    csr_tamper *x = arg;
    uint8_t key[13];
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(x->id >> (56 - 8 * i));
    key[8] = (uint8_t)(x->idx >> 24), key[9] = (uint8_t)(x->idx >> 16), key[10] = (uint8_t)(x->idx >> 8);
    key[11] = (uint8_t)x->idx, key[12] = 'v';
    size_t kl = x->hash ? 13 : 12;
    const void *v;
    size_t n;
    GUARD(smki_txn_get(t, x->db, key, kl, &v, &n));
    uint8_t val[2048];
    memcpy(val, v, n);
    val[n - 1] ^= 0x01;
    return smki_txn_put(t, x->db, key, kl, val, n, 0);
}

/* Submission verifies each CSR's proof of possession and records the SHA-256 of its octets;
 * execution skips the second verification only for octets that still match: a CSR changed
 * in the store in between is verified in full and refused, and nothing of its group is
 * issued. */
static void test_execution_verifies_again_a_csr_changed_after_submission(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 2, &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    csr_tamper x = {smki_ra_databases(f->ra)->csrs, id, 1, 0};
    assert_ok(smki_store_write(f->store, csr_tamper_txn, &x));
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    smki_ra_exec_opts o = {.hsm = NULL};
    /* The approvals signed the CSRs as submitted: changed octets are not what was approved. */
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, &o), SMKI_E_REFUSED, "is not what was approved");
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, &o), SMKI_E_REFUSED, "bob (entry");
    assert_int_equal(cert_count(f), certs);
    assert_int_equal(head(f), before);
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_APPROVED);
    assert_int_equal(r.done_count, 0);
    /* restored: it executes */
    assert_ok(smki_store_write(f->store, csr_tamper_txn, &x));
    /* the record of the hash changed instead: the octets are verified in full, and they verify */
    csr_tamper xh = {smki_ra_databases(f->ra)->csrs, id, 0, 1};
    assert_ok(smki_store_write(f->store, csr_tamper_txn, &xh));
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, &o));
    assert_int_equal(cert_count(f), certs + 2);
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_DONE);
}

/* DCCKI TLS certificates: only to an Authorised Subscriber for that type, by request
 * (approved by another operator) or directly in a direct environment, the Party's
 * Signifier in the certificate, audited in the transaction that stores it. */
static int has_bytes(const uint8_t *p, size_t n, const char *text)
{
    size_t k = strlen(text);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, text, k) == 0) return 1;
    return 0;
}

static void test_dccki_tls_certificates_go_only_through_the_ra(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_ra_subscriber ts = {"SUP1", SMKI_PROFILE_DCCKI_SERVER, -1, "test"};
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &ts));
    smki_ra_subscriber bad = {"SUP1", SMKI_PROFILE_DCCKI_SERVER, SMKI_ROLE_SUPPLIER, "test"};
    assert_fails(smki_ra_subscriber_authorise(f->ra, &f->alice, &bad), SMKI_E_USAGE, "the others do not");
    uint8_t der[1024];
    size_t n = csr_der(SMKI_KU_DIGITAL_SIGNATURE, NULL, der, sizeof der);
    const char *dns[] = {"gw1.example.net"};
    smki_ra_submit s = {.type = SMKI_REQ_DCCKI_SERVER, .party = "SUP1", .env = "test", .csr = der, .csr_len = n,
                        .cn = "gw1", .dns = dns, .n_dns = 1};
    size_t certs = cert_count(f);
    uint64_t before = head(f), id = 0;
    /* refusals, each writing nothing */
    smki_ra_submit x = s;
    x.party = "NOPE";
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &x, &id), SMKI_E_NOTFOUND, "NOPE");
    x = s;
    x.type = SMKI_REQ_DCCKI_CLIENT;
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &x, &id), SMKI_E_REFUSED,
                 "not an Authorised Subscriber for DCCKI TLS client");
    x = s;
    x.n_dns = 0;
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &x, &id), SMKI_E_USAGE, "--dns NAME");
    x = s;
    x.party = "NET1";
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &x, &id), SMKI_E_REFUSED, "not an Authorised Subscriber");
    assert_int_equal(head(f), before);
    /* the request */
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.type, SMKI_REQ_DCCKI_SERVER);
    assert_int_equal(r.state, SMKI_REQ_PENDING);
    assert_string_equal(smki_req_type_name(r.type), "dccki-server");
    char names[256];
    assert_ok(smki_ra_request_names(f->ra, id, names, sizeof names));
    assert_string_equal(names, "dns gw1.example.net\n");
    assert_fails(smki_ra_request_approve(f->ra, &f->alice, id, NULL), SMKI_E_REFUSED, "may not approve it");
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, &o), SMKI_E_REFUSED, "awaits approvals");
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, &o));
    assert_int_equal(cert_count(f), certs + 1);
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_DONE);
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), r.result_issuer, r.result_serial, c));
    assert_int_equal(c->profile, SMKI_PROFILE_DCCKI_SERVER);
    assert_true(has_bytes(c->der, c->der_len, "SUP1"));            /* the Party's Signifier */
    assert_true(has_bytes(c->der, c->der_len, "gw1.example.net")); /* its host */
    /* directly, in a direct environment: the same rules, audited */
    smki_ca_issuer *is = NULL;
    assert_ok(smki_ca_issuer_open(smki_ra_ca_db(f->ra), "test", SMKI_PROFILE_DCCKI_SERVER, NULL, &is));
    smki_csr *csr = NULL;
    assert_ok(smki_csr_parse(der, n, &csr));
    smki_tls_req tr = {csr, SMKI_PROFILE_DCCKI_SERVER, "NET1", NULL, dns, 1, NULL, 0, 0};
    uint64_t h0 = head(f);
    assert_fails(smki_ra_issue_tls_direct(f->ra, &f->alice, is, "test", &tr, c), SMKI_E_REFUSED,
                 "not an Authorised Subscriber");
    tr.party = NULL;
    assert_fails(smki_ra_issue_tls_direct(f->ra, &f->alice, is, "test", &tr, c), SMKI_E_REFUSED,
                 "registered Parties");
    tr.party = "SUP1";
    assert_fails(smki_ra_issue_tls_direct(f->ra, &f->alice, is, "production", &tr, c), SMKI_E_REFUSED,
                 "only through approved RA requests ('smki ra request submit --type dccki-server')");
    tr.party = "SUP1";
    assert_fails(smki_ra_issue_tls_direct(f->ra, &f->mallory, is, "test", &tr, c), SMKI_E_REFUSED, "not a registered RA operator");
    assert_int_equal(head(f), h0);
    assert_int_equal(cert_count(f), certs + 1);
    assert_ok(smki_ra_issue_tls_direct(f->ra, &f->alice, is, "test", &tr, c));
    assert_int_equal(cert_count(f), certs + 2);
    assert_int_equal(head(f), h0 + 1);
    assert_int_equal(c->profile, SMKI_PROFILE_DCCKI_SERVER);
    smki_csr_free(csr);
    smki_ca_issuer_free(is);
    free(c);
    audit_verifies(f);
}

static void test_demand_above_the_monthly_average_is_held_not_dropped(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_ra_policy p = *smki_ra_get_policy(f->ra);
    p.demand_baseline = 2; /* 150% of 2 is 3: a batch of 4 is exceptional */
    p.batch_review_size = 100;
    smki_ra_close(f->ra);
    open_ra(f, &p);
    uint64_t small, big;
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 4, &small));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, small, &r));
    assert_int_equal(r.state, SMKI_REQ_HELD);
    assert_int_equal(r.approvals_required, 2);
    assert_non_null(strstr(r.note, "above 150% of the monthly average 2"));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, small, NULL));
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, small, NULL));
    assert_ok(smki_ra_request_get(f->ra, small, &r));
    assert_int_equal(r.state, SMKI_REQ_APPROVED);
    /* Last month's demand sets the average for this one. */
    smki_ra_set_clock(f->ra, NOW + 31 * 86400);
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 4, &big));
    assert_ok(smki_ra_request_get(f->ra, big, &r));
    assert_int_equal(r.state, SMKI_REQ_PENDING);
    uint64_t third;
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 3, &third));
    assert_ok(smki_ra_request_get(f->ra, third, &r));
    assert_int_equal(r.state, SMKI_REQ_HELD); /* 7 this month > 150% of 4 */
}

static void test_rate_limit_per_subscriber_per_day(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_ra_policy p = *smki_ra_get_policy(f->ra);
    p.rate_per_day = 2;
    smki_ra_close(f->ra);
    open_ra(f, &p);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    assert_fails(org_submit(f, &f->bob, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id),
                 SMKI_E_REFUSED, "its limit (ra.rate_per_day = 2)");
    /* Another subscriber has its own count; the next day starts afresh. */
    assert_ok(org_submit(f, &f->alice, "NET1", "test", SMKI_ROLE_NETWORK_OPERATOR, "90-B3-D5-1F-40-00-00-00", &id));
    smki_ra_set_clock(f->ra, NOW + 86400);
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
}

static void test_execution_rechecks_eligibility(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 1, "suspended after approval"));
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, NULL), SMKI_E_REFUSED, "suspended after approval");
    assert_int_equal(cert_count(f), certs);
    assert_int_equal(head(f), before);
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_APPROVED);
}

/* ---- Revocation ---------------------------------------------------------------------------------- */

/* An organisation certificate issued through an approved request; its serial and issuer. */
static void issued_org(fixture *f, smki_cert *out)
{
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, NULL));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), r.result_issuer, r.result_serial, out));
}

static int audit_has(const smki_audit_entry *e, void *arg)
{
    if (strcmp(e->action, (const char *)((void **)arg)[0]) == 0) ((void **)arg)[1] = (void *)1;
    return 0;
}

static void test_revocation_needs_two_other_operators_then_revokes_and_publishes_the_crl(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_cert *c = malloc(sizeof *c);
    issued_org(f, c);
    smki_ra_submit s = {.type = SMKI_REQ_REVOKE, .serial = c->serial, .reason = SMKI_REASON_KEY_COMPROMISE};
    uint64_t id;
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.type, SMKI_REQ_REVOKE);
    assert_int_equal(r.approvals_required, 2);
    assert_string_equal(r.party, "SUP1"); /* from the certificate's EUI */
    assert_string_equal(r.env, "test");
    assert_fails(smki_ra_request_approve(f->ra, &f->alice, id, NULL), SMKI_E_REFUSED, "may not approve");
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, NULL), SMKI_E_REFUSED, "awaits approvals");
    smki_cert now;
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), c->issuer_ski, c->serial, &now));
    assert_int_equal(now.status, SMKI_STATUS_IN_USE);
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, id, NULL));
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_ok(smki_ra_request_execute(f->ra, &f->carol, id, &o));
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), c->issuer_ski, c->serial, &now));
    assert_int_equal(now.status, SMKI_STATUS_REVOKED);
    smki_revocation rev;
    assert_ok(smki_ca_revocation_get(smki_ra_ca_db(f->ra), c->issuer_ski, c->serial, &rev));
    assert_int_equal(rev.reason, SMKI_REASON_KEY_COMPROMISE);
    assert_int_equal(o.crl_number, 1);
    smki_crl crl;
    assert_ok(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &crl));
    assert_int_equal(crl.entries, 1);
    smki_crl_clear(&crl);
    void *want[2] = {(void *)"crl-publish", NULL};
    assert_ok(smki_audit_each(f->ra, 1, audit_has, want));
    assert_non_null(want[1]);
    /* Once revoked, a second request is refused at submission. */
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_REFUSED, "already revoked");
    audit_verifies(f);
    free(c);
}

static void test_revocation_refusals_write_nothing(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id, before;
    /* A device certificate is replaced, not revoked. */
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 1, &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, NULL));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    before = head(f);
    smki_ra_submit s = {.type = SMKI_REQ_REVOKE, .serial = r.result_serial, .reason = SMKI_REASON_KEY_COMPROMISE};
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_REFUSED, "replaced, not revoked");
    uint8_t none[SMKI_SERIAL_LEN] = {0x7f};
    s.serial = none;
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_NOTFOUND, "no certificate of serial");
    smki_ca_record root;
    assert_ok(smki_ca_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_ROOT, &root));
    s.serial = root.cert.serial;
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_REFUSED, "withdrawn from the trust stores");
    smki_cert *c = malloc(sizeof *c);
    issued_org(f, c);
    before = head(f);
    s.serial = c->serial;
    s.reason = SMKI_REASON_CERTIFICATE_HOLD;
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_USAGE, NULL);
    s.reason = SMKI_REASON_SUPERSEDED;
    s.env = "production";
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_NOTFOUND, "not production");
    s.env = NULL;
    assert_fails(smki_ra_request_submit(f->ra, &f->mallory, &s, &id), SMKI_E_REFUSED, "not a registered RA operator");
    assert_int_equal(head(f), before);
    free(c);
}

static void test_a_revoked_issuing_ca_issues_nothing_through_the_ra(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t org;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &org));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, org, NULL));
    smki_ca_record oca;
    assert_ok(smki_ca_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &oca));
    smki_ra_submit s = {.type = SMKI_REQ_REVOKE, .serial = oca.cert.serial, .reason = SMKI_REASON_CA_COMPROMISE};
    uint64_t id;
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, id, NULL));
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_ok(smki_ra_request_execute(f->ra, &f->carol, id, &o));
    smki_crl arl;
    assert_ok(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_ROOT, &arl));
    assert_int_equal(arl.entries, 1);
    smki_crl_clear(&arl);
    size_t certs = cert_count(f);
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, org, NULL), SMKI_E_REFUSED, "revoked");
    assert_int_equal(cert_count(f), certs);
}

static void test_direct_revocation_only_in_direct_environments_and_audited(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_cert *c = malloc(sizeof *c), *out = malloc(sizeof *out);
    issued_org(f, c);
    smki_ra_policy p = *smki_ra_get_policy(f->ra);
    snprintf(p.direct_envs, sizeof p.direct_envs, "staging");
    smki_ra_close(f->ra);
    open_ra(f, &p);
    uint64_t before = head(f);
    smki_revoke_req r = {c->serial, NULL, "test", SMKI_REASON_SUPERSEDED, 0};
    assert_fails(smki_ra_revoke_direct(f->ra, &f->alice, &r, out, NULL), SMKI_E_REFUSED,
                 "revokes only through approved RA requests");
    smki_cert now;
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), c->issuer_ski, c->serial, &now));
    assert_int_equal(now.status, SMKI_STATUS_IN_USE);
    assert_int_equal(head(f), before);
    snprintf(p.direct_envs, sizeof p.direct_envs, "staging, test");
    smki_ra_close(f->ra);
    open_ra(f, &p);
    assert_fails(smki_ra_revoke_direct(f->ra, &f->mallory, &r, out, NULL), SMKI_E_REFUSED, "not a registered");
    assert_ok(smki_ra_revoke_direct(f->ra, &f->alice, &r, out, NULL));
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), c->issuer_ski, c->serial, &now));
    assert_int_equal(now.status, SMKI_STATUS_REVOKED);
    assert_int_equal(head(f), before + 1);
    void *want[2] = {(void *)"ca-revoke-direct", NULL};
    assert_ok(smki_audit_each(f->ra, 1, audit_has, want));
    assert_non_null(want[1]);
    free(c);
    free(out);
}

/* ---- CA compromise recovery -------------------------------------------------------------------- */

static int collect_live(const smki_cert *c, void *arg)
{
    smki_cert *out = arg;
    size_t i = 0;
    while (out[i].der_len) i++;
    if (i < 4) out[i] = *c;
    return 0;
}

static int last_entry(const smki_audit_entry *e, void *arg);

/* arg: {action, out detail buffer (512)}: the detail of the last entry of that action. */
static int detail_of(const smki_audit_entry *e, void *arg)
{
    void **a = arg;
    if (strcmp(e->action, (const char *)a[0]) == 0) snprintf((char *)a[1], 512, "%s", e->detail);
    return 0;
}

static void test_ca_compromise_recovery_revokes_succeeds_and_reissues(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_cert *c1 = malloc(sizeof *c1), *c2 = malloc(sizeof *c2);
    issued_org(f, c1);
    issued_org(f, c2);
    smki_ca_record *old = malloc(sizeof *old), *now = malloc(sizeof *now);
    assert_ok(smki_ca_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, old));
    /* A successor is refused while the CA is not revoked, and writes nothing. */
    smki_ca_init_opts io = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_item item;
    assert_fails(smki_ca_successor(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, f->conf, &io, &item), SMKI_E_REFUSED,
                 "only for a revoked CA");
    assert_fails(smki_ca_successor(smki_ra_ca_db(f->ra), "test", SMKI_CA_ROOT, f->conf, &io, &item), SMKI_E_USAGE,
                 "issuing CA");
    smki_ra_submit s = {.type = SMKI_REQ_RECOVER, .env = "test", .ca_kind = SMKI_CA_OCA};
    uint64_t id;
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.approvals_required, 2);
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, id, NULL));
    /* The successor's key: a file here (a token key in practice), configured like the ceremony's. */
    char path[1200], text[1400];
    snprintf(path, sizeof path, "%s/oca-successor.pem", f->dir);
    test_write_ec_key(path, "P-256");
    snprintf(text, sizeof text, "[ca.test]\nsmki_oca_successor_key = file:%s\n", path);
    smki_conf *conf = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)text, strlen(text), "successor.conf", &conf));
    smki_ra_exec_opts o = {.hsm = NULL, .home = f->dir, .conf = conf};
    assert_ok(smki_ra_request_execute(f->ra, &f->carol, id, &o));
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_DONE);
    assert_int_equal(r.csr_count, 2);
    assert_int_equal(r.done_count, 2);
    /* The old CA revoked onto the ARL; the successor in its place, with a new key. */
    smki_cert oc;
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), old->cert.issuer_ski, old->cert.serial, &oc));
    assert_int_equal(oc.status, SMKI_STATUS_REVOKED);
    smki_crl arl;
    assert_ok(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_ROOT, &arl));
    assert_int_equal(arl.entries, 1);
    smki_crl_clear(&arl);
    assert_ok(smki_ca_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, now));
    assert_int_equal(now->cert.status, SMKI_STATUS_IN_USE);
    assert_memory_not_equal(now->cert.ski, old->cert.ski, SMKI_KEYID_LEN);
    assert_memory_equal(now->cert.serial, r.new_ca_serial, SMKI_SERIAL_LEN);
    /* Each live certificate re-issued under it: same subject key, EUI and role; linted clean. */
    smki_cert *re = calloc(4, sizeof *re);
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.issuer_ski = now->cert.ski;
    q.profile = SMKI_PROFILE_ORGANISATION;
    assert_ok(smki_ca_find(smki_ra_ca_db(f->ra), &q, collect_live, re));
    assert_int_equal(re[1].der_len != 0, 1);
    assert_int_equal(re[2].der_len, 0);
    smki_env env;
    assert_ok(smki_env_load("test", NULL, &env));
    smki_lint_report *lint = malloc(sizeof *lint);
    for (int i = 0; i < 2; i++) {
        assert_true(memcmp(re[i].ski, c1->ski, SMKI_KEYID_LEN) == 0 || memcmp(re[i].ski, c2->ski, SMKI_KEYID_LEN) == 0);
        assert_int_equal(re[i].role, SMKI_ROLE_SUPPLIER);
        assert_memory_equal(re[i].eui.b, c1->eui.b, 8);
        assert_ok(smki_lint_der(re[i].der, re[i].der_len, &env, lint));
        assert_true(smki_lint_is_clean(lint));
    }
    free(lint);
    /* The old CA's certificates are revoked with it in the store (cACompromise, at its
     * revocation time): the store, 'ca list' and the repository show them as not valid. */
    smki_revocation ca_rev, rv;
    assert_ok(smki_ca_revocation_get(smki_ra_ca_db(f->ra), old->cert.issuer_ski, old->cert.serial, &ca_rev));
    assert_int_equal(ca_rev.reason, SMKI_REASON_CA_COMPROMISE);
    smki_cert *cur = malloc(sizeof *cur);
    for (int i = 0; i < 2; i++) {
        const smki_cert *ci = i ? c2 : c1;
        assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), ci->issuer_ski, ci->serial, cur));
        assert_int_equal(cur->status, SMKI_STATUS_REVOKED);
        assert_ok(smki_ca_revocation_get(smki_ra_ca_db(f->ra), ci->issuer_ski, ci->serial, &rv));
        assert_int_equal(rv.reason, SMKI_REASON_CA_COMPROMISE);
        assert_int_equal(rv.revoked_at, ca_rev.revoked_at);
    }
    free(cur);
    char detail[512] = "";
    void *da[2] = {(void *)"recover-revoke-ca", detail};
    assert_ok(smki_audit_each(f->ra, 1, detail_of, da));
    assert_non_null(strstr(detail, "; 2 certificate(s) it issued revoked with it")); /* the trail says how many */
    size_t in_use = 0;
    smki_ca_query qo = SMKI_CA_QUERY_ALL;
    qo.issuer_ski = old->cert.ski;
    qo.status = SMKI_STATUS_IN_USE;
    assert_ok(smki_ca_find(smki_ra_ca_db(f->ra), &qo, count_cert, &in_use));
    assert_int_equal(in_use, 0);
    /* The old CA's own CRL can still be published after its successor exists: found by its
     * SKI (superseded), signed with its key, kept apart from the successor's list. */
    smki_ca_record *sup = malloc(sizeof *sup);
    int current = -1;
    assert_ok(smki_ca_get_by_ski(smki_ra_ca_db(f->ra), "test", old->cert.ski, sup, &current));
    assert_int_equal(current, 0);
    assert_memory_equal(sup->cert.serial, old->cert.serial, SMKI_SERIAL_LEN);
    assert_ok(smki_ca_get_by_ski(smki_ra_ca_db(f->ra), "test", now->cert.ski, sup, &current));
    assert_int_equal(current, 1);
    free(sup);
    uint8_t nope[SMKI_KEYID_LEN] = {0x40, 1, 2, 3, 4, 5, 6, 7};
    smki_crl old_crl;
    smki_crl_opts co = {NULL, f->dir, 0, 0, NULL, NULL};
    uint64_t h0 = head(f);
    assert_fails(smki_ra_crl_publish_ski(f->ra, &f->alice, "test", nope, &co, &old_crl), SMKI_E_NOTFOUND,
                 "of SKI 4001020304050607");
    assert_fails(smki_ra_crl_publish_ski(f->ra, &f->mallory, "test", old->cert.ski, &co, &old_crl), SMKI_E_REFUSED,
                 "not a registered RA operator");
    assert_int_equal(head(f), h0);
    assert_ok(smki_ra_crl_publish_ski(f->ra, &f->alice, "test", old->cert.ski, &co, &old_crl));
    assert_int_equal(old_crl.number, 1);
    assert_int_equal(old_crl.entries, 2); /* both of its certificates */
    assert_int_equal(old_crl.ca, SMKI_CA_OCA);
    char hx[2 * SMKI_SERIAL_LEN + 1], want_path[1300];
    smki_hex_encode(old->cert.serial, SMKI_SERIAL_LEN, hx, 0);
    snprintf(want_path, sizeof want_path, "%s/ca/test/smki-oca-%s.crl", f->dir, hx);
    assert_string_equal(old_crl.path, want_path);
    const unsigned char *cp = old_crl.der;
    X509_CRL *xc = d2i_X509_CRL(NULL, &cp, (long)old_crl.der_len);
    cp = old->cert.der;
    X509 *ox = d2i_X509(NULL, &cp, (long)old->cert.der_len);
    assert_non_null(xc);
    assert_int_equal(X509_CRL_verify(xc, X509_get0_pubkey(ox)), 1); /* the old CA's key signed it */
    X509_CRL_free(xc);
    X509_free(ox);
    smki_crl_clear(&old_crl);
    assert_int_equal(head(f), h0 + 1);
    smki_audit_entry *le = calloc(1, sizeof *le);
    assert_ok(smki_audit_each(f->ra, h0 + 1, last_entry, le));
    assert_string_equal(le->action, "crl-publish");
    char want_obj[128];
    snprintf(want_obj, sizeof want_obj, "crl of test/smki-oca (superseded CA serial %s) number 1", hx);
    assert_string_equal(le->object, want_obj);
    free(le);
    assert_fails(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &old_crl), SMKI_E_NOTFOUND,
                 "no CRL"); /* the successor's own list is not the old one's */
    /* New requests issue under the successor. */
    smki_cert *c3 = malloc(sizeof *c3);
    issued_org(f, c3);
    assert_memory_equal(c3->issuer_ski, now->cert.ski, SMKI_KEYID_LEN);
    /* Executing again changes nothing; the trail verifies, every step in it. */
    assert_fails(smki_ra_request_execute(f->ra, &f->carol, id, &o), SMKI_E_REFUSED, "is done");
    audit_verifies(f);
    const char *steps[] = {"recover-revoke-ca", "arl-publish", "recover-successor-begin", "ca-successor",
                           "recover-reissue"};
    for (size_t i = 0; i < 5; i++) {
        void *want[2] = {(void *)steps[i], NULL};
        assert_ok(smki_audit_each(f->ra, 1, audit_has, want));
        if (!want[1]) fail_msg("no %s entry", steps[i]);
    }
    smki_conf_free(conf);
    free(re);
    free(c1);
    free(c2);
    free(c3);
    free(old);
    free(now);
}

static void test_issue_gate_binds_test_always_and_others_once_the_ra_has_operators(void **state)
{
    fixture *f = *state;
    int gated = -1;
    /* No operators yet: production issues nothing (no certificate outside the RA) unless
     * the store is declared a lab store for it (ra.unmanaged); then ungated. Test never
     * issues without a Party. */
    assert_fails(smki_ra_issue_gate(f->ra, "production", NULL, "certificates", &gated), SMKI_E_REFUSED,
                 "environment production: issuance goes only through the RA, and this store has no RA operators yet");
    int managed = -1;
    assert_fails(smki_ra_unmanaged_check(f->ra, "production", "revocation", &managed), SMKI_E_REFUSED,
                 "revocation goes only through the RA");
    assert_int_equal(managed, 0);
    static const char LAB[] = "[ra]\nunmanaged = lab, production\n";
    smki_conf *conf = NULL;
    smki_ra_policy pol;
    smki_ra *lab = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)LAB, sizeof LAB - 1, "lab.conf", &conf));
    assert_ok(smki_ra_policy_load(conf, &pol));
    smki_conf_free(conf);
    assert_string_equal(pol.unmanaged_envs, "lab, production");
    assert_ok(smki_ra_open(f->store, &pol, &lab));
    assert_ok(smki_ra_issue_gate(lab, "production", NULL, "certificates", &gated));
    assert_int_equal(gated, 0);
    assert_ok(smki_ra_unmanaged_check(lab, "production", "revocation", &managed));
    assert_int_equal(managed, 0);
    assert_fails(smki_ra_issue_gate(lab, "productio", NULL, "certificates", &gated), SMKI_E_REFUSED,
                 "no RA operators yet");
    smki_ra_close(lab);
    assert_fails(smki_ra_issue_gate(f->ra, "test", NULL, "device certificates", &gated), SMKI_E_REFUSED,
                 "test environment: device certificates go only to registered Parties that are Testing Participants");
    assert_ok(smki_ra_issue_gate(f->ra, "test", "GITTEST", "certificates", &gated));
    assert_int_equal(gated, 1);
    /* Once the store has an RA, every environment is gated. */
    operators(f);
    assert_fails(smki_ra_issue_gate(f->ra, "production", NULL, "certificates", &gated), SMKI_E_REFUSED,
                 "this store has an RA: certificates go only to registered Parties: give --party");
    assert_ok(smki_ra_issue_gate(f->ra, "production", "GITTEST", "certificates", &gated));
    assert_int_equal(gated, 1);
}

static void test_an_expired_issuing_ca_issues_nothing_through_the_ra(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    smki_ca_record oca;
    assert_ok(smki_ca_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &oca));
    smki_ra_set_clock(f->ra, oca.cert.not_after + 1);
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, NULL), SMKI_E_REFUSED, "has expired");
    assert_int_equal(cert_count(f), certs);
    assert_int_equal(head(f), before);
}

/* ---- Direct issuance ------------------------------------------------------------------------------ */

static void test_direct_issue_only_in_direct_environments_after_eligibility(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_ca_issuer *is = NULL;
    assert_ok(smki_ca_issuer_open(smki_ra_ca_db(f->ra), "test", SMKI_PROFILE_ORGANISATION, NULL, &is));
    uint8_t der[1024];
    size_t n = csr_der(SMKI_KU_KEY_AGREEMENT, NULL, der, sizeof der);
    smki_csr *csr = NULL;
    assert_ok(smki_csr_parse(der, n, &csr));
    smki_eui64_t sup = eui("90-B3-D5-1F-30-00-00-00");
    smki_ra_eligibility e = {"SUP1", "test", SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, &sup, csr, 0};
    smki_cert *c = malloc(sizeof *c);
    size_t certs = cert_count(f);
    assert_ok(smki_ra_issue_direct(f->ra, &f->alice, is, &e, NULL, c));
    assert_int_equal(cert_count(f), certs + 1);
    assert_ok(smki_ra_party_set_testing(f->ra, &f->alice, "SUP1", -1, 0));
    assert_fails(smki_ra_issue_direct(f->ra, &f->alice, is, &e, NULL, c), SMKI_E_REFUSED, "signed agreement");
    e.env = "production";
    assert_fails(smki_ra_issue_direct(f->ra, &f->alice, is, &e, NULL, c), SMKI_E_REFUSED,
                 "issues only through approved RA requests");
    assert_int_equal(cert_count(f), certs + 1);
    free(c);
    smki_csr_free(csr);
    smki_ca_issuer_free(is);
}

/* ---- Direct device batches ('smki ca batch' under the RA) ---------------------------------------- */

/* Device CSRs as files of a folder <dir>/<name>: n with consecutive IDs from first. */
static void csr_files(fixture *f, const char *name, const uint8_t first[8], size_t n)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", f->dir, name);
    mkdir(dir, 0755);
    for (size_t i = 0; i < n; i++) {
        uint8_t hw[8], der[1024];
        memcpy(hw, first, 8);
        hw[7] = (uint8_t)(hw[7] + i);
        size_t len = csr_der(i % 2 ? SMKI_KU_KEY_AGREEMENT : SMKI_KU_DIGITAL_SIGNATURE, hw, der, sizeof der);
        char path[1300];
        snprintf(path, sizeof path, "%s/%02x%02x%02x%02x%02x%02x%02x%02x.csr", dir, hw[0], hw[1], hw[2], hw[3], hw[4],
                 hw[5], hw[6], hw[7]);
        assert_ok(smki_file_write_atomic(path, der, len, 0644, 0));
    }
}

typedef struct {
    fixture *f;
    smki_ca_batch_input *in;
    smki_ca_issuer *is;
    char out[1200];
    smki_ca_batch_opts o;
} batch_ctx;

static void batch_open(fixture *f, const char *name, batch_ctx *b)
{
    memset(b, 0, sizeof *b);
    b->f = f;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", f->dir, name);
    assert_ok(smki_ca_batch_input_open(dir, &b->in));
    assert_ok(smki_ca_issuer_open(smki_ra_ca_db(f->ra), "test", SMKI_PROFILE_DEVICE, NULL, &b->is));
    snprintf(b->out, sizeof b->out, "%s/%s-out", f->dir, name);
    b->o.out_dir = b->out;
    b->o.threads = 2;
    b->o.group = 2;
}

static void batch_close(batch_ctx *b)
{
    smki_ca_issuer_free(b->is);
    smki_ca_batch_input_free(b->in);
}

static int batch_run(batch_ctx *b, const smki_ra_actor *by, const char *party, const char *env,
                     smki_ca_batch_report **rep)
{
    return smki_ra_batch_direct(b->f->ra, by, b->is, party, env, b->in, &b->o, rep);
}

typedef struct {
    const char *action;
    size_t n;
    char detail[512];
} entries_run;

static int count_action(const smki_audit_entry *e, void *arg)
{
    entries_run *x = arg;
    if (strcmp(e->action, x->action) == 0) {
        x->n++;
        snprintf(x->detail, sizeof x->detail, "%s", e->detail);
    }
    return 0;
}

static void test_direct_batch_refused_whole_before_any_csr_is_read(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_ra_party notp = {.signifier = "NOTTP", .name = "Not a Testing Participant"};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &notp));
    smki_ra_subscriber s = {"NOTTP", SMKI_PROFILE_DEVICE, -1, "test"};
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &s));
    csr_files(f, "refused", DEV_EUI, 3);
    batch_ctx b;
    batch_open(f, "refused", &b);
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    smki_ca_batch_report *rep = NULL;
    assert_fails(batch_run(&b, &f->alice, NULL, "test", &rep), SMKI_E_REFUSED, "--party");
    assert_fails(batch_run(&b, NULL, "SUP1", "test", &rep), SMKI_E_USAGE, "--operator");
    assert_fails(batch_run(&b, &f->mallory, "SUP1", "test", &rep), SMKI_E_REFUSED, "not a registered RA operator");
    assert_fails(batch_run(&b, &f->alice, "NOSUCH", "test", &rep), SMKI_E_NOTFOUND, "NOSUCH");
    assert_fails(batch_run(&b, &f->alice, "NOTTP", "test", &rep), SMKI_E_REFUSED, "not a Testing Participant");
    assert_fails(batch_run(&b, &f->alice, "NET1", "test", &rep), SMKI_E_REFUSED,
                 "not an Authorised Subscriber for device");
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 1, "paperwork overdue"));
    before = head(f);
    assert_fails(batch_run(&b, &f->alice, "SUP1", "test", &rep), SMKI_E_REFUSED, "paperwork overdue");
    assert_ok(smki_ra_party_suspend(f->ra, &f->alice, "SUP1", 0, NULL));
    before = head(f);
    assert_fails(batch_run(&b, &f->alice, "SUP1", "production", &rep), SMKI_E_USAGE, "not environment production");
    /* Test made a request-only environment: the batch points at the device-batch request. */
    smki_ra_close(f->ra);
    smki_ra_policy p = policy(5);
    p.direct_envs[0] = '\0';
    open_ra(f, &p);
    assert_fails(batch_run(&b, &f->alice, "SUP1", "test", &rep), SMKI_E_REFUSED, "--type device-batch");
    assert_null(rep);
    assert_int_equal(cert_count(f), certs);
    assert_int_equal(head(f), before);
    struct stat st;
    assert_int_not_equal(stat(b.out, &st), 0); /* no output folder: nothing was read or written */
    batch_close(&b);
}

static void test_direct_batch_checks_each_csr_and_audits_each_group(void **state)
{
    fixture *f = *state;
    registry(f);
    csr_files(f, "mixed", DEV_EUI, 3);
    static const uint8_t CENTRAL[8] = {0x90, 0xb3, 0xd5, 0x1f, 0x30, 0x00, 0x00, 0x05}; /* SUP1's central block */
    csr_files(f, "mixed", CENTRAL, 1);
    batch_ctx b;
    batch_open(f, "mixed", &b);
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    smki_ca_batch_report *rep = NULL;
    assert_ok(batch_run(&b, &f->alice, "SUP1", "test", &rep));
    assert_int_equal(rep->issued, 3);
    assert_int_equal(rep->refused, 1);
    size_t refused = 0;
    for (size_t i = 0; i < rep->total; i++)
        if (rep->items[i].outcome == SMKI_BATCH_REFUSED) {
            refused = i;
            assert_int_equal(rep->items[i].code, SMKI_E_REFUSED);
            assert_non_null(strstr(rep->items[i].reason, "never a Device ID"));
        }
    assert_non_null(strstr(smki_ca_batch_input_name(b.in, refused), "90b3d51f30000005"));
    assert_int_equal(cert_count(f), certs + 3);
    /* Groups of 2: two commits, each with its entry, signed by alice. */
    assert_int_equal(rep->commits, 2);
    assert_int_equal(head(f), before + 2);
    entries_run x = {"ca-batch-direct", 0, ""};
    assert_ok(smki_audit_each(f->ra, 1, count_action, &x));
    assert_int_equal(x.n, 2);
    assert_non_null(strstr(x.detail, "issued 1 device certificate(s)"));
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report ar;
    assert_ok(smki_audit_verify(f->ra, pub, &ar));
    EVP_PKEY_free(pub);
    smki_ca_batch_report_free(rep);
    /* Again: nothing issued twice, nothing audited twice. */
    rep = NULL;
    assert_ok(batch_run(&b, &f->alice, "SUP1", "test", &rep));
    assert_int_equal(rep->issued, 0);
    assert_int_equal(rep->existing, 3);
    assert_int_equal(rep->refused, 1);
    assert_int_equal(cert_count(f), certs + 3);
    assert_int_equal(head(f), before + 2);
    smki_ca_batch_report_free(rep);
    batch_close(&b);
    /* Each group commit anchored the head beside the checkpoint key. */
    EVP_PKEY *cpub = ckpt_pub(f);
    smki_audit_report *vr = malloc(sizeof *vr);
    assert_ok(smki_audit_verify(f->ra, cpub, vr));
    assert_true(vr->anchor_checked);
    assert_int_equal(vr->anchor_seq, head(f));
    free(vr);
    EVP_PKEY_free(cpub);
}

typedef struct {
    fixture *f;
    int suspended;
} suspend_run;

/* After the first group commit: the Party is suspended while the batch runs on. */
static void suspend_after_first_commit(const smki_ca_batch_report *r, void *arg)
{
    suspend_run *x = arg;
    if (r->commits == 1 && !x->suspended) {
        assert_ok(smki_ra_party_suspend(x->f->ra, &x->f->alice, "SUP1", 1, "suspended mid-batch"));
        x->suspended = 1;
    }
}

static void test_direct_batch_issues_nothing_after_the_party_is_suspended(void **state)
{
    fixture *f = *state;
    registry(f);
    csr_files(f, "long", DEV_EUI, 6);
    batch_ctx b;
    batch_open(f, "long", &b);
    suspend_run x = {f, 0};
    b.o.progress = suspend_after_first_commit;
    b.o.progress_arg = &x;
    b.o.threads = 1;
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    smki_ca_batch_report *rep = NULL;
    int rc = batch_run(&b, &f->alice, "SUP1", "test", &rep);
    assert_true(x.suspended);
    /* The CSRs already past the per-CSR check meet the check again in their group's
     * transaction (the run stops there); the others are refused one by one. Either way
     * only the first group was issued. */
    if (rc == 0) assert_int_equal(rep->refused, 4);
    else assert_int_equal(rc, SMKI_E_REFUSED);
    assert_int_equal(cert_count(f), certs + 2);
    assert_int_equal(head(f), before + 2); /* the first group's entry and the suspension's */
    smki_ca_batch_report_free(rep);
    batch_close(&b);
}

/* After the first group commit: the block of the batch's Device IDs is assigned as a
 * central block (User and DCC IDs) while the batch runs on. */
static void central_after_first_commit(const smki_ca_batch_report *r, void *arg)
{
    suspend_run *x = arg;
    if (r->commits == 1 && !x->suspended) {
        smki_eui64_range_t central = range("00DC00/24");
        assert_ok(smki_ra_range_assign(x->f->ra, &x->f->alice, &central, SMKI_RANGE_CENTRAL, "NET1"));
        x->suspended = 1;
    }
}

static void test_direct_batch_group_rechecks_the_blocks_it_records_under(void **state)
{
    fixture *f = *state;
    registry(f);
    static const uint8_t UNBLOCKED[8] = {0x00, 0xdc, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10}; /* in no block yet */
    csr_files(f, "moved", UNBLOCKED, 6);
    batch_ctx b;
    batch_open(f, "moved", &b);
    suspend_run x = {f, 0};
    b.o.progress = central_after_first_commit;
    b.o.progress_arg = &x;
    b.o.threads = 1;
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    smki_ca_batch_report *rep = NULL;
    /* The workers check each CSR against the blocks read by the last transaction (the
     * first group's, before the change); the second group's transaction reads them
     * again and refuses the whole group: nothing of it is recorded. */
    assert_fails(batch_run(&b, &f->alice, "SUP1", "test", &rep), SMKI_E_REFUSED, "never a Device ID");
    assert_true(x.suspended);
    assert_int_equal(cert_count(f), certs + 2);
    assert_int_equal(head(f), before + 2); /* the first group's entry and the block's */
    smki_ca_batch_report_free(rep);
    /* Run again: the workers' facts are the new ones, read at the start: each CSR is
     * refused by name (the gate comes before the lookup), nothing issued. */
    rep = NULL;
    b.o.progress = NULL;
    assert_ok(batch_run(&b, &f->alice, "SUP1", "test", &rep));
    assert_int_equal(rep->issued, 0);
    assert_int_equal(rep->refused, 6);
    for (size_t i = 0; i < rep->total; i++)
        assert_non_null(strstr(rep->items[i].reason, "never a Device ID"));
    assert_int_equal(cert_count(f), certs + 2);
    smki_ca_batch_report_free(rep);
    batch_close(&b);
}

static int count_exp(const smki_ra_expiring *x, void *arg)
{
    assert_string_equal(x->party, "SUP1");
    ++*(size_t *)arg;
    return 0;
}

static void test_expiry_monitor_names_the_party(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, NULL));
    size_t n = 0;
    /* Issued now (the real clock) for 10 years: not within 30 days, within 11 years. */
    smki_ra_set_clock(f->ra, 0);
    assert_ok(smki_ra_expiring_each(f->ra, "test", 30, count_exp, &n));
    assert_int_equal(n, 0);
    assert_ok(smki_ra_expiring_each(f->ra, "test", 11 * 366, count_exp, &n));
    assert_int_equal(n, 1);
}

/* ---- The audit trail ------------------------------------------------------------------------------ */

static void test_audit_fails_closed_without_the_checkpoint_key(void **state)
{
    fixture *f = *state;
    operators(f); /* 3 entries; a checkpoint falls due at 5 */
    smki_ra_party p = {.signifier = "P4"};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &p));
    smki_ra_set_checkpoint_key(f->ra, NULL);
    smki_ra_party q = {.signifier = "P5"};
    assert_fails(smki_ra_party_add(f->ra, &f->alice, &q), SMKI_E_REFUSED, "checkpoint 5 is due");
    smki_ra_party got;
    assert_fails(smki_ra_party_get(f->ra, "P5", &got), SMKI_E_NOTFOUND, "no party 'P5'");
    assert_int_equal(head(f), 4);
    /* A signing failure mid-action is the same: the key of an operator that cannot sign. */
    smki_ra_set_checkpoint_key(f->ra, test_open_file_key(f->ckpt_path));
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &q));
    assert_int_equal(head(f), 5);
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report rep;
    assert_ok(smki_audit_verify(f->ra, pub, &rep));
    assert_int_equal(rep.entries, 5);
    assert_int_equal(rep.checkpoints, 1);
    assert_int_equal(rep.last_checkpoint, 5);
    EVP_PKEY_free(pub);
}

/* Tampering, directly on the LMDB records. */
typedef struct {
    smki_db db;
    uint64_t a, b;
    int op;
} tamper;
enum { T_FLIP, T_DELETE, T_SWAP, T_COPY_OVER };

static int tamper_txn(smki_txn *t, void *arg)
{
    tamper *x = arg;
    uint8_t ka[8], kb[8];
    for (int i = 0; i < 8; i++) ka[i] = (uint8_t)(x->a >> (56 - 8 * i)), kb[i] = (uint8_t)(x->b >> (56 - 8 * i));
    const void *v;
    size_t n;
    if (x->op == T_DELETE) return smki_txn_del(t, x->db, ka, 8);
    GUARD(smki_txn_get(t, x->db, ka, 8, &v, &n));
    uint8_t va[2048], vb[2048];
    size_t na = n, nb = 0;
    memcpy(va, v, n);
    if (x->op == T_FLIP) {
        /* a character of the detail text near the end of the body */
        va[n - 80] ^= 0x01;
        return smki_txn_put(t, x->db, ka, 8, va, na, 0);
    }
    GUARD(smki_txn_get(t, x->db, kb, 8, &v, &n));
    memcpy(vb, v, n);
    nb = n;
    if (x->op == T_COPY_OVER) return smki_txn_put(t, x->db, kb, 8, va, na, 0);
    GUARD(smki_txn_put(t, x->db, ka, 8, vb, nb, 0));
    return smki_txn_put(t, x->db, kb, 8, va, na, 0);
}

static void do_tamper(fixture *f, smki_db db, int op, uint64_t a, uint64_t b)
{
    tamper x = {db, a, b, op};
    assert_ok(smki_store_write(f->store, tamper_txn, &x));
}

static int has_finding(const smki_audit_report *rep, smki_audit_finding_kind kind, uint64_t seq)
{
    for (size_t i = 0; i < rep->n_findings; i++)
        if (rep->findings[i].kind == kind && rep->findings[i].seq == seq) return 1;
    return 0;
}

static void dump(const smki_audit_report *rep)
{
    for (size_t i = 0; i < rep->n_findings; i++)
        print_message("  finding %s at %llu: %s\n", smki_audit_finding_name(rep->findings[i].kind),
                      (unsigned long long)rep->findings[i].seq, rep->findings[i].message);
}

/* 17 entries, checkpoints at 5, 10 and 15. */
static void seventeen(fixture *f)
{
    registry(f);
    while (head(f) < 17) {
        char sig[16];
        snprintf(sig, sizeof sig, "FILL%llu", (unsigned long long)head(f));
        smki_ra_party p;
        memset(&p, 0, sizeof p);
        snprintf(p.signifier, sizeof p.signifier, "%s", sig);
        assert_ok(smki_ra_party_add(f->ra, &f->alice, &p));
    }
    assert_int_equal(head(f), 17);
}

static void verify_expect(fixture *f, smki_audit_finding_kind kind, uint64_t seq)
{
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report *rep = malloc(sizeof *rep);
    int rc = smki_audit_verify(f->ra, pub, rep);
    dump(rep);
    assert_int_equal(rc, SMKI_E_VERIFY);
    assert_true(has_finding(rep, kind, seq));
    free(rep);
    EVP_PKEY_free(pub);
}

static void verify_clean_any(fixture *f)
{
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report *rep = malloc(sizeof *rep);
    int rc = smki_audit_verify(f->ra, pub, rep);
    dump(rep);
    assert_int_equal(rc, 0);
    free(rep);
    EVP_PKEY_free(pub);
}

static void test_audit_verify_is_clean_on_an_untouched_log(void **state)
{
    fixture *f = *state;
    seventeen(f);
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report rep;
    assert_ok(smki_audit_verify(f->ra, pub, &rep));
    assert_int_equal(rep.entries, 17);
    assert_int_equal(rep.checkpoints, 3);
    assert_int_equal(rep.last_checkpoint, 15);
    assert_int_equal(rep.head_seq, 17);
    EVP_PKEY_free(pub);
    /* A checkpoint key that is not the one that signed: every checkpoint is refused. */
    char path[1200], ref[1300];
    snprintf(path, sizeof path, "%s/other.pem", f->dir);
    test_write_ec_key(path, "P-256");
    snprintf(ref, sizeof ref, "file:%s", path);
    EVP_PKEY *other = NULL;
    assert_ok(smki_key_public_load(ref, NULL, &other));
    assert_fails(smki_audit_verify(f->ra, other, &rep), SMKI_E_VERIFY, "checkpoint 5's signature");
    EVP_PKEY_free(other);
}

static void test_audit_verify_names_an_altered_entry(void **state)
{
    fixture *f = *state;
    seventeen(f);
    do_tamper(f, smki_ra_databases(f->ra)->audit, T_FLIP, 7, 0);
    verify_expect(f, SMKI_AUDIT_ALTERED, 7);
    verify_expect(f, SMKI_AUDIT_CHAIN, 8); /* its successor no longer chains to it */
}

static void test_audit_verify_names_a_deleted_entry(void **state)
{
    fixture *f = *state;
    seventeen(f);
    do_tamper(f, smki_ra_databases(f->ra)->audit, T_DELETE, 6, 0);
    verify_expect(f, SMKI_AUDIT_MISSING, 6);
}

static void test_audit_verify_names_reordered_entries(void **state)
{
    fixture *f = *state;
    seventeen(f);
    do_tamper(f, smki_ra_databases(f->ra)->audit, T_SWAP, 3, 4);
    verify_expect(f, SMKI_AUDIT_MISPLACED, 3);
    verify_expect(f, SMKI_AUDIT_MISPLACED, 4);
}

static void test_audit_verify_names_an_inserted_entry(void **state)
{
    fixture *f = *state;
    seventeen(f);
    /* Entry 8 replaced by a copy of entry 2 (a validly signed entry put where it was not
     * written), as an insertion into a renumbered log would look. */
    do_tamper(f, smki_ra_databases(f->ra)->audit, T_COPY_OVER, 2, 8);
    verify_expect(f, SMKI_AUDIT_MISPLACED, 8);
    verify_expect(f, SMKI_AUDIT_CHAIN, 8);
}

typedef struct {
    uint64_t seq;
    uint8_t hash[32];
} last_hash;

static int keep_last(const smki_audit_entry *e, void *arg)
{
    last_hash *l = arg;
    l->seq = e->seq;
    memcpy(l->hash, e->hash, 32);
    return 0;
}

typedef struct {
    smki_db meta;
    last_hash last;
} head_rewrite;

static int head_txn(smki_txn *t, void *arg)
{
    head_rewrite *h = arg;
    uint8_t rec[40];
    for (int i = 0; i < 8; i++) rec[i] = (uint8_t)(h->last.seq >> (56 - 8 * i));
    memcpy(rec + 8, h->last.hash, 32);
    return smki_txn_put(t, h->meta, "head", 4, rec, sizeof rec, 0);
}

static void test_audit_verify_names_a_truncated_tail(void **state)
{
    fixture *f = *state;
    seventeen(f);
    const smki_ra_dbs *db = smki_ra_databases(f->ra);
    /* Cut back to 14, past checkpoint 15, and rewrite the head to match: the signed
     * checkpoint still names entry 15. */
    for (uint64_t s = 15; s <= 17; s++) do_tamper(f, db->audit, T_DELETE, s, 0);
    last_hash lh = {0, {0}};
    assert_ok(smki_audit_each(f->ra, 1, keep_last, &lh));
    assert_int_equal(lh.seq, 14);
    head_rewrite hr = {db->meta, lh};
    assert_ok(smki_store_write(f->store, head_txn, &hr));
    verify_expect(f, SMKI_AUDIT_TRUNCATED, 15);
    /* Deleting that checkpoint too leaves a log that is consistent as far as it goes:
     * the head anchored beside the checkpoint key (outside the store) shows the cut. */
    do_tamper(f, db->checkpoints, T_DELETE, 15, 0);
    verify_expect(f, SMKI_AUDIT_ANCHOR, 17);
    /* A verifier without the checkpoint key (no PIN) does not read the anchor. */
    smki_ra_set_checkpoint_key(f->ra, NULL);
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report rep;
    assert_ok(smki_audit_verify(f->ra, pub, &rep));
    assert_int_equal(rep.last_checkpoint, 10);
    assert_false(rep.anchor_checked);
    EVP_PKEY_free(pub);
    /* Deleting an earlier checkpoint is caught: one is expected at every multiple of 5. */
    do_tamper(f, db->checkpoints, T_DELETE, 10, 0);
    verify_expect(f, SMKI_AUDIT_CHECKPOINT_MISSING, 10);
}

/* The trail cut back to any prefix, head rewritten, no checkpoint touched; and a new
 * home, before its first checkpoint: the anchor beside the checkpoint key names the cut. */
static void test_audit_verify_names_a_trail_cut_short_behind_its_anchor(void **state)
{
    fixture *f = *state;
    operators(f); /* 3 entries, no checkpoint yet (every 5) */
    const smki_ra_dbs *db = smki_ra_databases(f->ra);
    verify_clean_any(f);
    do_tamper(f, db->audit, T_DELETE, 3, 0);
    last_hash lh = {0, {0}};
    assert_ok(smki_audit_each(f->ra, 1, keep_last, &lh));
    head_rewrite hr = {db->meta, lh};
    assert_ok(smki_store_write(f->store, head_txn, &hr));
    verify_expect(f, SMKI_AUDIT_ANCHOR, 3);
}

static void test_audit_verify_names_a_cut_after_the_last_checkpoint(void **state)
{
    fixture *f = *state;
    seventeen(f);
    const smki_ra_dbs *db = smki_ra_databases(f->ra);
    do_tamper(f, db->audit, T_DELETE, 17, 0);
    last_hash lh = {0, {0}};
    assert_ok(smki_audit_each(f->ra, 1, keep_last, &lh));
    head_rewrite hr = {db->meta, lh};
    assert_ok(smki_store_write(f->store, head_txn, &hr));
    verify_expect(f, SMKI_AUDIT_ANCHOR, 17);
    /* A rewritten entry at the anchor's number (the tail replaced) is named too. */
    smki_audit_report *rep = malloc(sizeof *rep);
    EVP_PKEY *pub = ckpt_pub(f);
    assert_fails(smki_audit_verify(f->ra, pub, rep), SMKI_E_VERIFY, "cut off the end");
    assert_int_equal(rep->anchor_seq, 17);
    assert_true(rep->anchor_checked);
    free(rep);
    EVP_PKEY_free(pub);
}

/* The anchor's two slots beside a file: key (PATH.smki-audit-head-<16 hex>-a / -b). */
static void anchor_slot_path(fixture *f, char slot, char *out, size_t cap)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *e;
    out[0] = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (strstr(e->d_name, "checkpoint.pem.smki-audit-head-") == e->d_name && e->d_name[n - 1] == slot)
            snprintf(out, cap, "%s/%s", f->dir, e->d_name);
    }
    closedir(d);
    assert_true(out[0]);
}

static uint64_t slot_seq(const char *path)
{
    uint8_t *b = NULL;
    size_t n = 0;
    assert_ok(smki_file_read(path, 4096, &b, &n));
    assert_true(n > 9);
    uint64_t seq = smki_get_be64(b + 1);
    free(b);
    return seq;
}

static uint64_t verify_anchor_seq(fixture *f)
{
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report *rep = malloc(sizeof *rep);
    int rc = smki_audit_verify(f->ra, pub, rep);
    dump(rep);
    assert_int_equal(rc, 0);
    assert_true(rep->anchor_checked);
    uint64_t seq = rep->anchor_seq;
    free(rep);
    EVP_PKEY_free(pub);
    return seq;
}

/* Each slot is overwritten in place, the older one each time: a write torn by a crash
 * (cut short, or old and new bytes mixed) leaves the other, and the anchor is read from
 * it; the next write replaces the torn one. A trail cut back behind the older slot is
 * still named; two slots with no valid record are a finding, not a fallback. */
static void test_audit_anchor_torn_slot_falls_back_to_the_older_one(void **state)
{
    fixture *f = *state;
    seventeen(f);
    char pa[1400], pb[1400];
    anchor_slot_path(f, 'a', pa, sizeof pa);
    anchor_slot_path(f, 'b', pb, sizeof pb);
    uint64_t sa = slot_seq(pa), sb = slot_seq(pb);
    const char *newer = sa > sb ? pa : pb, *older = sa > sb ? pb : pa;
    uint64_t old_seq = sa > sb ? sb : sa;
    assert_int_equal(sa > sb ? sa : sb, 17);
    assert_int_equal(verify_anchor_seq(f), 17);
    uint8_t *rec = NULL;
    size_t n = 0;
    assert_ok(smki_file_read(newer, 4096, &rec, &n));
    /* Cut short: the older slot is read. */
    assert_ok(smki_file_overwrite(newer, rec, 30, 0600));
    assert_int_equal(verify_anchor_seq(f), old_seq);
    /* Whole length, a byte of its signature changed (old and new mixed): the same. */
    rec[n - 3] ^= 0x01;
    assert_ok(smki_file_overwrite(newer, rec, n, 0600));
    assert_int_equal(verify_anchor_seq(f), old_seq);
    /* The number changed, the signature not: not signed, passed over too. */
    rec[n - 3] ^= 0x01;
    rec[8] ^= 0x01;
    assert_ok(smki_file_overwrite(newer, rec, n, 0600));
    assert_int_equal(verify_anchor_seq(f), old_seq);
    /* The next action writes the torn slot (the older by what it holds), not the whole one. */
    uint8_t *keep = NULL;
    size_t keep_n = 0;
    assert_ok(smki_file_read(older, 4096, &keep, &keep_n));
    smki_ra_party p;
    memset(&p, 0, sizeof p);
    snprintf(p.signifier, sizeof p.signifier, "AFTERTORN");
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &p));
    assert_int_equal(slot_seq(newer), 18);
    assert_int_equal(verify_anchor_seq(f), 18);
    uint8_t *again = NULL;
    size_t again_n = 0;
    assert_ok(smki_file_read(older, 4096, &again, &again_n));
    assert_int_equal(again_n, keep_n);
    assert_memory_equal(again, keep, keep_n);
    free(again);
    free(keep);
    /* Tear the newest again, then cut the trail back behind the older slot (a rollback
     * the fallback must not hide): the anchor names it. */
    rec[8] ^= 0x01;
    assert_ok(smki_file_overwrite(newer, rec, 30, 0600));
    free(rec);
    const smki_ra_dbs *db = smki_ra_databases(f->ra);
    for (uint64_t s = old_seq; s <= 18; s++) do_tamper(f, db->audit, T_DELETE, s, 0);
    last_hash lh = {0, {0}};
    assert_ok(smki_audit_each(f->ra, 1, keep_last, &lh));
    head_rewrite hr = {db->meta, lh};
    assert_ok(smki_store_write(f->store, head_txn, &hr));
    verify_expect(f, SMKI_AUDIT_ANCHOR, old_seq);
    /* Both slots without a valid record: a finding that says so, not "never anchored". */
    assert_ok(smki_file_overwrite(older, (const uint8_t *)"torn", 4, 0600));
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report *rep = malloc(sizeof *rep);
    assert_int_equal(smki_audit_verify(f->ra, pub, rep), SMKI_E_VERIFY);
    int named = 0;
    for (size_t i = 0; i < rep->n_findings; i++)
        if (rep->findings[i].kind == SMKI_AUDIT_ANCHOR && strstr(rep->findings[i].message, "damaged or forged")) named = 1;
    assert_true(named);
    free(rep);
    EVP_PKEY_free(pub);
}

/* Actions of one writer, each a Party PREFIX<n>: on their own each anchors the head. */
typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    char prefix[8];
    int n, failed;
} anchor_writer;

static void *write_parties(void *arg)
{
    anchor_writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        smki_ra_party p;
        memset(&p, 0, sizeof p);
        snprintf(p.signifier, sizeof p.signifier, "%s%d", w->prefix, i);
        if (smki_ra_party_add(w->ra, w->by, &p) < 0) w->failed++;
        smki_error_clear();
    }
    return NULL;
}

/* Another process on the same home (its own store handle, RA and checkpoint key), which
 * waits for the byte on go, then writes. */
static pid_t other_writer(fixture *f, int go)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid) return pid;
    char c, path[1100];
    snprintf(path, sizeof path, "%s/store", f->dir);
    smki_store *st = NULL;
    smki_ra *ra = NULL;
    smki_ra_policy p = policy(5);
    if (read(go, &c, 1) != 1 || smki_store_open(path, NULL, &st) < 0 || smki_ra_open(st, &p, &ra) < 0) _exit(2);
    smki_ra_set_clock(ra, NOW);
    smki_ra_set_checkpoint_key(ra, test_open_file_key(f->ckpt_path));
    anchor_writer w = {ra, &f->alice, "PROC", 12, 0};
    write_parties(&w);
    _exit(w.failed ? 1 : 0); /* no exit handlers: the parent's store is not this process's */
}

/* A slot's file holds one whole record (version 1, the signature's length as said). */
static void slot_is_whole(fixture *f, char slot)
{
    char path[1400];
    anchor_slot_path(f, slot, path, sizeof path);
    uint8_t *b = NULL;
    size_t n = 0;
    assert_ok(smki_file_read(path, 4096, &b, &n));
    assert_true(n >= 51 && b[0] == 1 && (size_t)b[49] + 50 == n);
    free(b);
}

/* The anchor written at once by threads of one process (which share its lock) and by
 * another process on the same home: every action is done, both slots hold a whole
 * record, and the trail verifies with its anchor; within one process the anchor is the
 * head itself, the last action's. */
static void test_audit_anchor_concurrent_writers_keep_both_slots_whole(void **state)
{
    fixture *f = *state;
    operators(f);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = other_writer(f, go[0]);
    close(go[0]);
    anchor_writer w[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (anchor_writer){f->ra, &f->alice, "THR", 12, 0};
        w[i].prefix[3] = (char)('A' + i);
        assert_int_equal(pthread_create(&t[i], NULL, write_parties, &w[i]), 0);
    }
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(head(f), 3 + 4 * 12);
    slot_is_whole(f, 'a');
    slot_is_whole(f, 'b');
    uint64_t seq = verify_anchor_seq(f);
    assert_true(seq >= 3 && seq <= head(f));
    /* One more action, in this process alone: anchored at the head. */
    w[0].n = 1;
    w[0].prefix[3] = 'Z';
    write_parties(&w[0]);
    assert_int_equal(w[0].failed, 0);
    assert_int_equal(verify_anchor_seq(f), head(f));
    slot_is_whole(f, 'a');
    slot_is_whole(f, 'b');
}

/* The slots' lock beside a file: key (PATH.smki-audit-head-<16 hex>-lock) taken with
 * flock(2) here, as another process would hold it: an action commits, but its anchor
 * waits for the lock, then is written (and anchors the head). */
static void test_audit_anchor_waits_for_the_slots_lock_of_another_writer(void **state)
{
    fixture *f = *state;
    operators(f);
    char pa[1400], pb[1400], lock[1400];
    anchor_slot_path(f, 'a', pa, sizeof pa);
    anchor_slot_path(f, 'b', pb, sizeof pb);
    snprintf(lock, sizeof lock, "%.*slock", (int)strlen(pa) - 1, pa);
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0); /* made by the writers before */
    assert_int_equal(flock(fd, LOCK_EX), 0);
    uint64_t before = head(f), sa = slot_seq(pa), sb = slot_seq(pb);
    assert_int_equal(sa > sb ? sa : sb, before);
    anchor_writer w = {f->ra, &f->alice, "LOCKED", 1, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_parties, &w), 0);
    for (int i = 0; i < 200 && head(f) == before; i++) {
        struct timespec ms = {0, 5 * 1000000L};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(head(f), before + 1); /* committed */
    struct timespec wait = {0, 100 * 1000000L};
    nanosleep(&wait, NULL);
    assert_int_equal(slot_seq(pa), sa); /* its anchor waits */
    assert_int_equal(slot_seq(pb), sb);
    close(fd);
    pthread_join(t, NULL);
    assert_int_equal(w.failed, 0);
    assert_int_equal(slot_seq(sa < sb ? pa : pb), before + 1); /* the older slot replaced */
    assert_int_equal(verify_anchor_seq(f), before + 1);
}

static void test_audit_verify_names_a_forged_checkpoint(void **state)
{
    fixture *f = *state;
    seventeen(f);
    do_tamper(f, smki_ra_databases(f->ra)->checkpoints, T_FLIP, 10, 0);
    verify_expect(f, SMKI_AUDIT_CHECKPOINT, 10);
}

/* ---- The CA's own actions: the ceremony and CRL/ARL publication ------------------------------------- */

static int last_entry(const smki_audit_entry *e, void *arg)
{
    *(smki_audit_entry *)arg = *e;
    return 0;
}

static smki_audit_entry *latest(fixture *f, smki_audit_entry *e)
{
    memset(e, 0, sizeof *e);
    assert_ok(smki_audit_each(f->ra, 1, last_entry, e));
    return e;
}

static void verify_clean(fixture *f, uint64_t entries)
{
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report rep;
    assert_ok(smki_audit_verify(f->ra, pub, &rep));
    assert_int_equal(rep.entries, entries);
    assert_int_equal(rep.total_findings, 0);
    EVP_PKEY_free(pub);
}

static void test_crl_and_arl_publication_is_audited_with_the_list(void **state)
{
    fixture *f = *state;
    operators(f); /* 3 entries; a checkpoint falls due at 5 */
    smki_crl_opts o = {NULL, NULL, NOW, 0, NULL, NULL};
    smki_crl crl;
    assert_ok(smki_ra_crl_publish(f->ra, &f->bob, "test", SMKI_CA_OCA, &o, &crl));
    assert_int_equal(head(f), 4);
    smki_audit_entry *e = malloc(sizeof *e);
    latest(f, e);
    assert_string_equal(e->action, "crl-publish");
    assert_string_equal(e->operator_name, "bob");
    assert_string_equal(e->object, "crl of test/smki-oca number 1");
    uint8_t h[32];
    unsigned hl = 32;
    char hx[65], want[128];
    EVP_Digest(crl.der, crl.der_len, h, &hl, EVP_sha256(), NULL);
    smki_hex_encode(h, 32, hx, 0);
    snprintf(want, sizeof want, "0 entries; SHA-256 %s", hx);
    assert_string_equal(e->detail, want);
    smki_crl_clear(&crl);
    /* The root's list is an ARL; this entry is the one a checkpoint falls on. */
    assert_ok(smki_ra_crl_publish(f->ra, &f->carol, "test", SMKI_CA_ROOT, &o, &crl));
    latest(f, e);
    assert_string_equal(e->action, "arl-publish");
    assert_string_equal(e->object, "arl of test/smki-root number 1");
    smki_crl_clear(&crl);
    verify_clean(f, 5);
    free(e);
}

static void test_crl_publication_whose_entry_cannot_be_written_records_no_list(void **state)
{
    fixture *f = *state;
    operators(f);
    smki_ra_party p = {.signifier = "P4"};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &p)); /* entry 4: the next one is checkpoint 5 */
    smki_crl_opts o = {NULL, NULL, NOW, 0, NULL, NULL};
    smki_crl crl;
    assert_fails(smki_ra_crl_publish(f->ra, &f->mallory, "test", SMKI_CA_OCA, &o, &crl), SMKI_E_REFUSED,
                 "not a registered RA operator");
    assert_fails(smki_ra_crl_publish(f->ra, NULL, "test", SMKI_CA_OCA, &o, &crl), SMKI_E_USAGE, "--operator");
    smki_ra_set_checkpoint_key(f->ra, NULL);
    assert_fails(smki_ra_crl_publish(f->ra, &f->alice, "test", SMKI_CA_OCA, &o, &crl), SMKI_E_REFUSED,
                 "checkpoint 5 is due");
    assert_fails(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &crl), SMKI_E_NOTFOUND, "");
    assert_int_equal(head(f), 4);
    verify_clean(f, 4);
}

/* The mechanism underneath: the CA's hook fails inside the CA's own transaction. */
static int failing_crl_hook(smki_txn *t, const smki_crl *crl, void *arg)
{
    (void)t;
    *(uint64_t *)arg = crl->number;
    return SMKI_FAIL(SMKI_E_REFUSED, "the audit entry of list %llu cannot be written",
                     (unsigned long long)crl->number);
}

static void test_crl_hook_failure_inside_the_transaction_records_and_writes_nothing(void **state)
{
    fixture *f = *state;
    uint64_t seen = 0;
    smki_crl_opts o = {NULL, f->dir, NOW, 0, failing_crl_hook, &seen};
    smki_crl crl;
    assert_fails(smki_ca_crl_publish(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &o, &crl), SMKI_E_REFUSED,
                 "list 1 cannot be written");
    assert_int_equal(seen, 1);
    assert_fails(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &crl), SMKI_E_NOTFOUND, "");
    char path[1200];
    snprintf(path, sizeof path, "%s/ca/test/smki-oca.crl", f->dir);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
}

/* A second store (and RA) in a folder of its own, alice its first operator. */
typedef struct {
    char dir[1100];
    smki_store *store;
    smki_ra *ra;
    smki_conf *conf;
} second;

static void second_open(fixture *f, second *s, const char *name, unsigned every, int alice)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s/%s", f->dir, name);
    assert_int_equal(mkdir(s->dir, 0700), 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/store", s->dir);
    assert_ok(smki_store_open(path, NULL, &s->store));
    smki_ra_policy p = policy(every);
    assert_ok(smki_ra_open(s->store, &p, &s->ra));
    smki_ra_set_clock(s->ra, NOW);
    smki_ra_set_checkpoint_key(s->ra, test_open_file_key(f->ckpt_path));
    if (alice) assert_ok(smki_ra_operator_add(s->ra, &f->alice, "alice", smki_key_public(f->alice_k)));
    s->conf = test_software_ca_conf(s->dir, "test", NULL);
}

static void second_close(second *s)
{
    smki_ra_close(s->ra);
    smki_store_close(s->store);
    smki_conf_free(s->conf);
}

static void no_ca(second *s)
{
    smki_ca_record *rec = malloc(sizeof *rec);
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++)
        assert_fails(smki_ca_get(smki_ra_ca_db(s->ra), "test", (smki_ca_kind)k, rec), SMKI_E_NOTFOUND, "");
    free(rec);
}

static void test_ceremony_in_an_ra_governed_store_is_audited_with_the_cas(void **state)
{
    fixture *f = *state;
    second s;
    second_open(f, &s, "governed", 5, 1);
    smki_ca_init_opts o = {NULL, s.dir, 0, NULL, NULL};
    smki_ca_init_report *rep = malloc(sizeof *rep);
    assert_ok(smki_ra_ca_init(s.ra, &f->alice, "test", s.conf, &o, rep));
    assert_int_equal(rep->created, 5);
    uint64_t seq;
    assert_ok(smki_audit_head(s.ra, &seq, NULL));
    assert_int_equal(seq, 2);
    smki_audit_entry *e = malloc(sizeof *e);
    memset(e, 0, sizeof *e);
    assert_ok(smki_audit_each(s.ra, 1, last_entry, e));
    assert_string_equal(e->action, "ca-init");
    assert_string_equal(e->operator_name, "alice");
    assert_string_equal(e->object, "environment test");
    /* Each CA made, with its serial and its certificate's hash. */
    for (size_t i = 0; i < rep->n; i++) {
        char serial[2 * SMKI_SERIAL_LEN + 1], want[128];
        smki_hex_encode(rep->items[i].serial, SMKI_SERIAL_LEN, serial, 0);
        snprintf(want, sizeof want, "%s serial %s sha256 ", smki_ca_kind_name(rep->items[i].kind), serial);
        assert_non_null(strstr(e->detail, want));
    }
    smki_ca_record *root = malloc(sizeof *root);
    assert_ok(smki_ca_get(smki_ra_ca_db(s.ra), "test", SMKI_CA_ROOT, root));
    uint8_t h[32];
    unsigned hl = 32;
    char hx[65];
    EVP_Digest(root->cert.der, root->cert.der_len, h, &hl, EVP_sha256(), NULL);
    smki_hex_encode(h, 16, hx, 0);
    assert_non_null(strstr(e->detail, hx));
    /* Run again: nothing is made, nothing is recorded. */
    assert_ok(smki_ra_ca_init(s.ra, &f->alice, "test", s.conf, &o, rep));
    assert_int_equal(rep->created, 0);
    assert_ok(smki_audit_head(s.ra, &seq, NULL));
    assert_int_equal(seq, 2);
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report ar;
    assert_ok(smki_audit_verify(s.ra, pub, &ar));
    assert_int_equal(ar.entries, 2);
    /* The audited ceremony's CAs are in the trail: adopting them adds nothing. */
    size_t adopted = 99;
    assert_ok(smki_ra_ca_adopt(s.ra, &f->alice, &adopted));
    assert_int_equal(adopted, 0);
    assert_ok(smki_audit_head(s.ra, &seq, NULL));
    assert_int_equal(seq, 2);
    EVP_PKEY_free(pub);
    free(root);
    free(e);
    free(rep);
    second_close(&s);
}

typedef struct {
    size_t n;
    char details[8][512];
} adopt_seen;

static int collect_adopt(const smki_audit_entry *e, void *arg)
{
    adopt_seen *a = arg;
    if (strcmp(e->action, "ca-adopt") == 0 && a->n < 8) snprintf(a->details[a->n++], 512, "%s", e->detail);
    return 0;
}

static int each_ca_cert(const smki_cert *c, void *arg)
{
    adopt_seen *a = arg;
    uint8_t h[32];
    unsigned hl = 32;
    char hx[65];
    EVP_Digest(c->der, c->der_len, h, &hl, EVP_sha256(), NULL);
    smki_hex_encode(h, 32, hx, 0);
    int found = 0;
    for (size_t i = 0; i < a->n; i++) found |= strstr(a->details[i], hx) != NULL;
    assert_true(found);
    return 0;
}

/* The bootstrap ceremony (the fixture's smki_ca_init, before any operator) is bound to
 * the trail by an operator afterwards: one ca-adopt entry per CA certificate, holding
 * its SHA-256; once only; refused to an unregistered operator, writing nothing. */
static void test_bootstrap_ceremony_cas_are_adopted_into_the_trail_once(void **state)
{
    fixture *f = *state;
    size_t adopted = 0;
    assert_fails(smki_ra_ca_adopt(f->ra, &f->alice, &adopted), SMKI_E_REFUSED, "not a registered RA operator");
    operators(f);
    uint64_t before = head(f);
    assert_fails(smki_ra_ca_adopt(f->ra, &f->mallory, &adopted), SMKI_E_REFUSED, "not a registered RA operator");
    assert_fails(smki_ra_ca_adopt(f->ra, NULL, &adopted), SMKI_E_USAGE, "no operator");
    assert_int_equal(head(f), before);
    assert_ok(smki_ra_ca_adopt(f->ra, &f->bob, &adopted));
    assert_int_equal(adopted, 5); /* SMKI root, OCA, DCA, DCCKI root and ICA of test */
    assert_int_equal(head(f), before + 5);
    adopt_seen *seen = calloc(1, sizeof *seen);
    assert_ok(smki_audit_each(f->ra, 1, collect_adopt, seen));
    assert_int_equal(seen->n, 5);
    assert_non_null(strstr(seen->details[0], "bootstrap ceremony"));
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.usage = 0;
    assert_ok(smki_ca_find(smki_ra_ca_db(f->ra), &q, each_ca_cert, seen)); /* every CA's SHA-256 is in an entry */
    free(seen);
    assert_ok(smki_ra_ca_adopt(f->ra, &f->alice, &adopted));
    assert_int_equal(adopted, 0);
    assert_int_equal(head(f), before + 5);
    audit_verifies(f);
}

static void test_ceremony_whose_entry_cannot_be_written_records_no_ca(void **state)
{
    fixture *f = *state;
    second s;
    second_open(f, &s, "refused", 2, 1); /* entry 1: alice; a checkpoint falls due on entry 2 */
    smki_ca_init_opts o = {NULL, s.dir, 0, NULL, NULL};
    smki_ca_init_report *rep = malloc(sizeof *rep);
    assert_fails(smki_ra_ca_init(s.ra, &f->mallory, "test", s.conf, &o, rep), SMKI_E_REFUSED,
                 "not a registered RA operator");
    no_ca(&s);
    smki_ra_set_checkpoint_key(s.ra, NULL);
    assert_fails(smki_ra_ca_init(s.ra, &f->alice, "test", s.conf, &o, rep), SMKI_E_REFUSED, "checkpoint 2 is due");
    no_ca(&s);
    uint64_t seq;
    assert_ok(smki_audit_head(s.ra, &seq, NULL));
    assert_int_equal(seq, 1);
    free(rep);
    second_close(&s);
}

static int failing_init_hook(smki_txn *t, const smki_ca_record *const *made, size_t n, void *arg)
{
    (void)t, (void)made;
    *(size_t *)arg = n;
    return SMKI_FAIL(SMKI_E_REFUSED, "the ceremony's audit entry cannot be written");
}

static void test_ceremony_hook_failure_inside_the_transaction_records_no_ca(void **state)
{
    fixture *f = *state;
    second s;
    second_open(f, &s, "hooked", 5, 0);
    size_t seen = 0;
    smki_ca_init_opts o = {NULL, s.dir, 0, failing_init_hook, &seen};
    smki_ca_init_report *rep = malloc(sizeof *rep);
    assert_fails(smki_ca_init(smki_ra_ca_db(s.ra), "test", s.conf, &o, rep), SMKI_E_REFUSED,
                 "audit entry cannot be written");
    assert_int_equal(seen, 5);
    no_ca(&s);
    free(rep);
    second_close(&s);
}

static void test_revocation_and_its_crl_are_one_commit_refused_whole_when_the_crl_entry_cannot_be_written(void **state)
{
    fixture *f = *state;
    registry(f);
    smki_cert *c = malloc(sizeof *c);
    issued_org(f, c);
    smki_ra_submit s = {.type = SMKI_REQ_REVOKE, .serial = c->serial, .reason = SMKI_REASON_KEY_COMPROMISE};
    uint64_t id;
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, id, NULL));
    /* Pad the trail so that the revocation's entry is fine and the list's entry (the next
     * one) is a checkpoint. */
    for (int i = 0; (head(f) + 2) % 5 != 0; i++) {
        smki_ra_party p;
        memset(&p, 0, sizeof p);
        snprintf(p.signifier, sizeof p.signifier, "PAD%d", i);
        assert_ok(smki_ra_party_add(f->ra, &f->alice, &p));
    }
    uint64_t before = head(f);
    smki_ra_set_checkpoint_key(f->ra, NULL);
    smki_ra_exec_opts o = {.hsm = NULL};
    char due[64];
    snprintf(due, sizeof due, "checkpoint %llu is due", (unsigned long long)(before + 2)); /* the list's entry */
    assert_fails(smki_ra_request_execute(f->ra, &f->carol, id, &o), SMKI_E_REFUSED, due);
    smki_cert now;
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), c->issuer_ski, c->serial, &now));
    assert_int_equal(now.status, SMKI_STATUS_IN_USE);
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    assert_int_equal(r.state, SMKI_REQ_APPROVED);
    smki_crl crl;
    assert_fails(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &crl), SMKI_E_NOTFOUND, "");
    assert_int_equal(head(f), before);
    /* With the key back: revoked, listed and recorded, the two entries consecutive. */
    smki_ra_set_checkpoint_key(f->ra, test_open_file_key(f->ckpt_path));
    assert_ok(smki_ra_request_execute(f->ra, &f->carol, id, &o));
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), c->issuer_ski, c->serial, &now));
    assert_int_equal(now.status, SMKI_STATUS_REVOKED);
    assert_ok(smki_ca_crl_get(smki_ra_ca_db(f->ra), "test", SMKI_CA_OCA, &crl));
    assert_int_equal(crl.entries, 1);
    assert_int_equal(crl.number, 1);
    smki_crl_clear(&crl);
    assert_int_equal(head(f), before + 2);
    smki_audit_entry *e = malloc(sizeof *e);
    latest(f, e);
    assert_string_equal(e->action, "crl-publish");
    assert_int_equal(e->seq, before + 2);
    verify_clean(f, before + 2);
    free(e);
    free(c);
}

/* ---- For a service acting for subscribers (est/): submission keys, via, one-commit execution ---- */

static int detail_has(const smki_audit_entry *e, void *arg)
{
    void **a = arg;
    if (strcmp(e->action, (const char *)a[0]) == 0 && strstr(e->detail, (const char *)a[1])) ++*(size_t *)a[2];
    return 0;
}

static size_t entries_with(fixture *f, const char *action, const char *text)
{
    size_t n = 0;
    void *a[3] = {(void *)action, (void *)text, &n};
    assert_ok(smki_audit_each(f->ra, 1, detail_has, a));
    return n;
}

static void test_a_keyed_submission_sent_again_finds_its_request_and_writes_nothing(void **state)
{
    fixture *f = *state;
    registry(f);
    uint8_t der[1024], key[32] = {1, 2, 3};
    size_t n = csr_der(SMKI_KU_DIGITAL_SIGNATURE, NULL, der, sizeof der);
    smki_eui64_t e = eui("90-B3-D5-1F-30-00-00-00");
    smki_ra_submit s = {.type = SMKI_REQ_ORGANISATION, .party = "SUP1", .env = "test", .csr = der, .csr_len = n,
                        .role = SMKI_ROLE_SUPPLIER, .eui = &e, .submission_key = key, .via = "party SUP1 over EST"};
    uint64_t id = 0, again = 0;
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
    uint64_t h = head(f);
    assert_int_equal(smki_ra_request_submit(f->ra, &f->alice, &s, &again), SMKI_E_EXISTS);
    assert_non_null(strstr(smki_error_msg(), "submitted this before"));
    smki_error_clear();
    assert_int_equal(again, id);
    assert_int_equal(head(f), h);
    size_t reqs = 0;
    assert_ok(smki_ra_request_each(f->ra, 0, count_req, &reqs));
    assert_int_equal(reqs, 1);
    /* The key is per Party: NET1 sending the same octets is its own submission (refused
     * here by eligibility, not taken for SUP1's). */
    s.party = "NET1";
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &again), SMKI_E_REFUSED, NULL);
    assert_int_equal(entries_with(f, "request-submit", "; via party SUP1 over EST"), 1);
    /* Not yet issued: no certificate of the request. */
    smki_cert c;
    assert_fails(smki_ra_request_cert(f->ra, id, 0, &c), SMKI_E_NOTFOUND, "not issued");
}

/* PEM of DER CSRs, one after another, as a batch's body (malloc'd). */
static uint8_t *pem_of(const uint8_t (*der)[1024], const size_t *lens, size_t n, size_t *len)
{
    char *text = NULL;
    FILE *m = open_memstream(&text, len);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++) assert_true(PEM_write(m, "CERTIFICATE REQUEST", "", der[i], (long)lens[i]) > 0);
    fclose(m);
    return (uint8_t *)text;
}

/* A batch for a Party asking for itself (the enrolment service in a direct environment):
 * judged whole first (a Device ID outside the Party's own blocks refuses it, naming the
 * CSR, nothing written), then the gate's batch from memory without files, one audit
 * entry per group commit carrying via; sent again, nothing issued and nothing audited. */
static void test_a_service_batch_for_a_party_itself_is_judged_whole_then_issued_once_via(void **state)
{
    fixture *f = *state;
    registry(f);
    uint8_t der[3][1024], ids[3][8] = {{0x00, 0xdb, 0x12, 0, 0, 0, 0, 1}, {0x00, 0xdb, 0x12, 0, 0, 0, 0, 2},
                                         {0x00, 0xdb, 0x13, 0, 0, 0, 0, 1}}; /* the third: no block of SUP1's */
    size_t lens[3], len = 0;
    for (int i = 0; i < 3; i++) lens[i] = csr_der(SMKI_KU_DIGITAL_SIGNATURE, ids[i], der[i], sizeof der[i]);
    size_t certs = cert_count(f);
    uint64_t h = head(f);
    smki_ca_batch_input *in = NULL;
    uint8_t *bytes = pem_of(der, lens, 3, &len);
    assert_ok(smki_ca_batch_input_from_bytes("CSR", bytes, len, &in));
    assert_ok(smki_ra_batch_check_all(f->ra, &f->alice, "SUP1", "test", 0, in)); /* an operator on its behalf */
    assert_fails(smki_ra_batch_check_all(f->ra, &f->alice, "SUP1", "test", 1, in), SMKI_E_REFUSED,
                 "CSR#3: Device ID 00-DB-13-00-00-00-00-01 is in no device block of party SUP1");
    assert_fails(smki_ra_batch_check_all(f->ra, NULL, "SUP1", "test", 1, in), SMKI_E_USAGE, "no operator");
    assert_fails(smki_ra_batch_check_all(f->ra, &f->alice, "NOBODY", "test", 1, in), SMKI_E_NOTFOUND, NULL);
    smki_ca_batch_input_free(in);
    assert_int_equal(cert_count(f), certs);
    assert_int_equal(head(f), h);
    smki_ra_batch_req br = {.env = "test", .party = "SUP1", .subscriber_asks = 1, .via = "party SUP1 over EST"};
    smki_ca_batch_report *rep[2] = {NULL, NULL};
    for (int run = 0; run < 2; run++) {
        bytes = pem_of(der, lens, 2, &len);
        assert_ok(smki_ca_batch_input_from_bytes("CSR", bytes, len, &in));
        assert_ok(smki_ra_batch_check_all(f->ra, &f->alice, "SUP1", "test", 1, in));
        smki_ca_batch_opts o = {.threads = 1};
        assert_ok(smki_ra_batch(f->ra, &f->alice, &br, in, &o, &rep[run]));
        smki_ca_batch_input_free(in);
    }
    assert_int_equal(rep[0]->issued, 2);
    assert_int_equal(rep[0]->files_written, 0);
    assert_int_equal(rep[1]->issued, 0);
    assert_int_equal(rep[1]->existing, 2);
    assert_int_equal(cert_count(f), certs + 2);
    assert_int_equal(entries_with(f, "ca-batch-direct", "; via party SUP1 over EST"), 1);
    smki_cert c;
    assert_ok(smki_ca_cert_get(smki_ra_ca_db(f->ra), rep[0]->issuer_ski, rep[0]->items[1].serial, &c));
    assert_memory_equal(c.eui.b, ids[1], 8);
    assert_memory_equal(rep[1]->items[1].serial, rep[0]->items[1].serial, SMKI_SERIAL_LEN);
    smki_ca_batch_report_free(rep[0]);
    smki_ca_batch_report_free(rep[1]);
    audit_verifies(f);
}

/* An auto-approved enrolment is direct issuance through the gate (smki_ra_issue), in
 * the environments of [ra] direct_issue: the certificate and its one entry, with "via",
 * in one commit; asked again with the same key, the same certificate and nothing
 * written. (Approval counts are at least 1: a request is never executed unapproved.) */
static void test_a_service_issues_through_the_gate_keyed_and_via_in_one_commit(void **state)
{
    fixture *f = *state;
    registry(f);
    assert_true(smki_ra_issues_directly(f->ra, "test"));
    assert_false(smki_ra_issues_directly(f->ra, "production"));
    size_t certs = cert_count(f);
    uint8_t der[1024], key[32] = {7, 7, 7};
    size_t n = csr_der(SMKI_KU_KEY_AGREEMENT, DEV_EUI, der, sizeof der);
    smki_csr *csr = NULL;
    assert_ok(smki_csr_parse(der, n, &csr));
    smki_ca_issuer *is = NULL;
    assert_ok(smki_ca_issuer_open(smki_ra_ca_db(f->ra), "test", SMKI_PROFILE_DEVICE, NULL, &is));
    smki_ra_issue_req r = {.env = "test", .csr = csr, .party = "SUP1", .role = -1, .via = "party SUP1 over EST",
                           .submission_key = key, .issuer = is};
    smki_cert *c = malloc(sizeof *c), *again = malloc(sizeof *again);
    uint64_t h = head(f);
    assert_ok(smki_ra_issue(f->ra, &f->alice, &r, c, NULL));
    assert_int_equal(cert_count(f), certs + 1);
    assert_int_equal(head(f), h + 1); /* ca-issue-direct, in the certificate's own commit */
    assert_memory_equal(c->eui.b, DEV_EUI, 8);
    assert_int_equal(c->profile, SMKI_PROFILE_DEVICE);
    assert_int_equal(entries_with(f, "ca-issue-direct", "; via party SUP1 over EST"), 1);
    /* The same key again: the first certificate, nothing written. */
    assert_ok(smki_ra_issue(f->ra, &f->alice, &r, again, NULL));
    assert_memory_equal(again->serial, c->serial, SMKI_SERIAL_LEN);
    assert_int_equal(again->der_len, c->der_len);
    assert_memory_equal(again->der, c->der, c->der_len);
    assert_int_equal(cert_count(f), certs + 1);
    assert_int_equal(head(f), h + 1);
    /* Without the key: a second in-use certificate of that device and key is refused. */
    r.submission_key = NULL;
    assert_fails(smki_ra_issue(f->ra, &f->alice, &r, again, NULL), SMKI_E_EXISTS, "already holds in-use certificate");
    assert_int_equal(cert_count(f), certs + 1);
    assert_int_equal(head(f), h + 1);
    /* ... unless asked for. */
    r.allow_duplicate_key = 1;
    assert_ok(smki_ra_issue(f->ra, &f->alice, &r, again, NULL));
    assert_memory_not_equal(again->serial, c->serial, SMKI_SERIAL_LEN);
    assert_int_equal(cert_count(f), certs + 2);
    assert_int_equal(head(f), h + 2);
    r.allow_duplicate_key = 0;
    /* Refused by the RA: nothing written. */
    uint8_t central[8] = {0x90, 0xb3, 0xd5, 0x1f, 0x30, 0, 0, 9};
    smki_csr *bad = NULL;
    n = csr_der(SMKI_KU_KEY_AGREEMENT, central, der, sizeof der);
    assert_ok(smki_csr_parse(der, n, &bad));
    r.csr = bad;
    r.submission_key = key; /* another CSR: the key is the service's to keep distinct */
    key[0] = 8;
    assert_fails(smki_ra_issue(f->ra, &f->alice, &r, again, NULL), SMKI_E_REFUSED, NULL);
    assert_int_equal(head(f), h + 2);
    assert_int_equal(cert_count(f), certs + 2);
    audit_verifies(f);
    smki_csr_free(bad);
    smki_csr_free(csr);
    smki_ca_issuer_free(is);
    free(again);
    free(c);
}

/* Threads of one service (the enrolment service's) share one handle: each issuance
 * and the anchor written after it, all of them at once. */
#define THREAD_ISSUES 12
typedef struct {
    fixture *f;
    smki_csr *csrs[THREAD_ISSUES];
    int failed;
    char msg[SMKI_ERR_MSG_MAX];
} issuer_thread;

static void *issue_many(void *arg)
{
    issuer_thread *x = arg;
    smki_cert *c = malloc(sizeof *c);
    for (int i = 0; i < THREAD_ISSUES && c; i++) {
        smki_ra_issue_req r = {.env = "test", .csr = x->csrs[i], .party = "SUP1", .role = -1, .via = "a thread"};
        if (smki_ra_issue(x->f->ra, &x->f->alice, &r, c, NULL) < 0 && !x->failed) {
            x->failed = 1;
            snprintf(x->msg, sizeof x->msg, "%s", smki_error_msg());
        }
    }
    free(c);
    return NULL;
}

static void test_threads_sharing_the_handle_issue_and_anchor_together(void **state)
{
    fixture *f = *state;
    registry(f);
    size_t certs = cert_count(f);
    issuer_thread t[2];
    memset(t, 0, sizeof t);
    for (int k = 0; k < 2; k++) {
        t[k].f = f;
        for (int i = 0; i < THREAD_ISSUES; i++) {
            uint8_t der[1024], hw[8];
            memcpy(hw, DEV_EUI, 8);
            hw[7] = (uint8_t)(0x10 + k * THREAD_ISSUES + i);
            size_t n = csr_der(SMKI_KU_DIGITAL_SIGNATURE, hw, der, sizeof der);
            assert_ok(smki_csr_parse(der, n, &t[k].csrs[i]));
        }
    }
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, issue_many, &t[k]), 0);
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < 2; k++) {
        if (t[k].failed) print_error("thread %d: %s\n", k, t[k].msg);
        assert_false(t[k].failed);
        for (int i = 0; i < THREAD_ISSUES; i++) smki_csr_free(t[k].csrs[i]);
    }
    assert_int_equal(cert_count(f), certs + 2 * THREAD_ISSUES);
    EVP_PKEY *pk = ckpt_pub(f);
    smki_audit_report *rep = malloc(sizeof *rep);
    assert_ok(smki_audit_verify(f->ra, pk, rep));
    assert_true(rep->anchor_checked);
    assert_int_equal(rep->anchor_seq, head(f));
    free(rep);
    EVP_PKEY_free(pk);
}

/* ---- Approvals proved against the trail ------------------------------------------------------------ */


/* A request record edited in the store (no operator key) to say what nobody signed. */
typedef struct {
    smki_db db;
    uint64_t id;
    uint8_t state;
} record_edit;

static int record_edit_txn(smki_txn *t, void *arg)
{
    record_edit *x = arg;
    uint8_t key[8], val[4096];
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(x->id >> (56 - 8 * i));
    const void *v;
    size_t n;
    GUARD(smki_txn_get(t, x->db, key, 8, &v, &n));
    memcpy(val, v, n);
    val[2] = x->state; /* version, type, state, ... */
    return smki_txn_put(t, x->db, key, 8, val, n, 0);
}

static void record_set_state(fixture *f, uint64_t id, smki_req_state state)
{
    record_edit x = {smki_ra_databases(f->ra)->requests, id, (uint8_t)state};
    assert_ok(smki_store_write(f->store, record_edit_txn, &x));
}

static void test_execution_refuses_a_record_edited_to_approved(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 2, &id));
    record_set_state(f, id, SMKI_REQ_APPROVED);
    size_t certs = cert_count(f);
    uint64_t before = head(f);
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_fails(smki_ra_request_execute(f->ra, &f->alice, id, &o), SMKI_E_REFUSED,
                 "0 valid signed approval(s) in the audit trail of the 1 it needs");
    assert_int_equal(cert_count(f), certs);
    assert_int_equal(head(f), before);
    /* the requester's own approval, signed, counts no more than the edit */
    record_set_state(f, id, SMKI_REQ_PENDING);
    assert_fails(smki_ra_request_approve(f->ra, &f->alice, id, NULL), SMKI_E_REFUSED, "may not approve");
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->alice, id, &o));
    assert_int_equal(cert_count(f), certs + 2);
}

static void test_an_approval_by_an_operator_deactivated_before_execution_does_not_count(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    int now = 0;
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, &now));
    assert_true(now);
    assert_ok(smki_ra_operator_deactivate(f->ra, &f->alice, "bob"));
    size_t certs = cert_count(f);
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_fails(smki_ra_request_execute(f->ra, &f->alice, id, &o), SMKI_E_REFUSED,
                 "bob (entry 15) was deactivated before execution");
    assert_int_equal(cert_count(f), certs);
    /* another operator's approval, before it runs, makes it whole */
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, id, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->alice, id, &o));
    assert_int_equal(cert_count(f), certs + 1);
    verify_clean_any(f);
}

/* Another device CSR, its octets and their SHA-256 written over CSR idx of request id. */
typedef struct {
    smki_db db;
    uint64_t id;
    uint32_t idx;
    const uint8_t *der;
    size_t len;
} csr_replace;

static int csr_replace_txn(smki_txn *t, void *arg)
{
    csr_replace *x = arg;
    uint8_t key[13], h[32];
    unsigned hl = 32;
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(x->id >> (56 - 8 * i));
    key[8] = (uint8_t)(x->idx >> 24), key[9] = (uint8_t)(x->idx >> 16), key[10] = (uint8_t)(x->idx >> 8);
    key[11] = (uint8_t)x->idx, key[12] = 'v';
    EVP_Digest(x->der, x->len, h, &hl, EVP_sha256(), NULL);
    GUARD(smki_txn_put(t, x->db, key, 12, x->der, x->len, 0));
    return smki_txn_put(t, x->db, key, 13, h, 32, 0);
}

static void substitute_csr(fixture *f, uint64_t id, uint32_t idx)
{
    uint8_t der[1024], hw[8];
    memcpy(hw, DEV_EUI, 8);
    hw[7] = (uint8_t)(hw[7] + idx);
    size_t n = csr_der(SMKI_KU_DIGITAL_SIGNATURE, hw, der, sizeof der); /* the same Device ID, another key */
    csr_replace x = {smki_ra_databases(f->ra)->csrs, id, idx, der, n};
    assert_ok(smki_store_write(f->store, csr_replace_txn, &x));
}

static void test_content_substituted_after_approval_does_not_execute_and_verify_names_it(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(batch_submit(f, &f->alice, DEV_EUI, 2, &id));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    substitute_csr(f, id, 1);
    size_t certs = cert_count(f);
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_fails(smki_ra_request_execute(f->ra, &f->bob, id, &o), SMKI_E_REFUSED, "is not what was approved");
    assert_int_equal(cert_count(f), certs);
    /* Executed as approved, then substituted: 'audit verify' names the request. */
    uint64_t id2;
    uint8_t first[8];
    memcpy(first, DEV_EUI, 8);
    first[7] = 0x10;
    assert_ok(batch_submit(f, &f->alice, first, 2, &id2));
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id2, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id2, &o));
    verify_clean_any(f);
    substitute_csr(f, id2, 0);
    EVP_PKEY *pub = ckpt_pub(f);
    smki_audit_report *rep = malloc(sizeof *rep);
    assert_fails(smki_audit_verify(f->ra, pub, rep), SMKI_E_VERIFY, "changed after approval");
    assert_int_equal(rep->findings[0].kind, SMKI_AUDIT_CONTENT);
    assert_non_null(strstr(rep->findings[0].message, "request 2's content"));
    free(rep);
    EVP_PKEY_free(pub);
}

/* An entry appended as someone holding the store and one operator's own key would. */
typedef struct {
    const smki_ra_dbs *db;
    smki_audit_entry e;
} append_job;

static int append_job_txn(smki_txn *t, void *arg)
{
    append_job *j = arg;
    uint8_t rec[1200], key[8], headrec[40];
    size_t n;
    GUARD(smki_audit_entry_body(&j->e, rec, 1100, &n));
    rec[n] = (uint8_t)j->e.sig_len;
    memcpy(rec + n + 1, j->e.sig, j->e.sig_len);
    smki_audit_entry back;
    GUARD(smki_audit_entry_decode(rec, n + 1 + j->e.sig_len, &back));
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(j->e.seq >> (56 - 8 * i));
    memcpy(headrec, key, 8);
    memcpy(headrec + 8, back.hash, 32);
    GUARD(smki_txn_put(t, j->db->audit, key, 8, rec, n + 1 + j->e.sig_len, 0));
    return smki_txn_put(t, j->db->meta, "head", 4, headrec, 40, 0);
}

static uint64_t append_signed(fixture *f, const smki_ra_actor *by, const char *action, const char *object,
                              const char *detail)
{
    append_job j;
    memset(&j, 0, sizeof j);
    j.db = smki_ra_databases(f->ra);
    assert_ok(smki_audit_head(f->ra, &j.e.seq, j.e.prev));
    j.e.seq++;
    j.e.time = NOW;
    snprintf(j.e.operator_name, sizeof j.e.operator_name, "%s", by->name);
    snprintf(j.e.action, sizeof j.e.action, "%s", action);
    snprintf(j.e.object, sizeof j.e.object, "%s", object);
    snprintf(j.e.detail, sizeof j.e.detail, "%s", detail);
    uint8_t body[1100];
    size_t n;
    assert_ok(smki_audit_entry_body(&j.e, body, sizeof body, &n));
    j.e.sig_len = SMKI_SIG_MAX;
    assert_ok(smki_key_sign(by->key, body, n, SMKI_SIG_DER, j.e.sig, &j.e.sig_len));
    assert_ok(smki_store_write(f->store, append_job_txn, &j));
    return j.e.seq;
}

static void test_audit_verify_names_a_request_executed_without_signed_approvals(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    /* alice edits the store and appends an execution entry signed with her own key: the
     * chain and her signature are sound, the approvals are not there. */
    record_set_state(f, id, SMKI_REQ_DONE);
    char object[32];
    snprintf(object, sizeof object, "request %llu", (unsigned long long)id);
    uint64_t seq = append_signed(f, &f->alice, "request-execute", object, "issued organisation certificate serial 01; "
                                 "content SHA-256 0000000000000000000000000000000000000000000000000000000000000000");
    verify_expect(f, SMKI_AUDIT_UNAPPROVED, seq);
}

static int reactivate_txn(smki_txn *t, void *arg)
{
    const smki_ra_dbs *db = arg;
    const void *v;
    size_t n;
    uint8_t val[256];
    GUARD(smki_txn_get(t, db->operators, "carol", 5, &v, &n));
    memcpy(val, v, n);
    val[1] = 1; /* version, active, ... */
    return smki_txn_put(t, db->operators, "carol", 5, val, n, 0);
}

static void test_audit_verify_names_an_operator_reactivated_outside_smki(void **state)
{
    fixture *f = *state;
    operators(f);
    assert_ok(smki_ra_operator_deactivate(f->ra, &f->alice, "carol"));
    verify_clean_any(f);
    assert_ok(smki_store_write(f->store, reactivate_txn, (void *)smki_ra_databases(f->ra)));
    smki_ra_operator c;
    assert_ok(smki_ra_operator_get(f->ra, "carol", &c));
    assert_true(c.active);
    verify_expect(f, SMKI_AUDIT_REGISTRY, 0);
}

static void test_approval_counts_are_at_least_one_and_fixed_in_the_store(void **state)
{
    fixture *f = *state;
    static const char ZERO[] = "[ra]\napprovals_organisation = 0\n";
    smki_conf *conf = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)ZERO, sizeof ZERO - 1, "zero.conf", &conf));
    smki_ra_policy p;
    assert_fails(smki_ra_policy_load(conf, &p), SMKI_E_USAGE, "ra.approvals_organisation");
    smki_conf_free(conf);
    registry(f);
    smki_ra_submit s = {.type = SMKI_REQ_POLICY, .cn = "approvals_organisation", .reason = 0};
    uint64_t id;
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_REFUSED, "one operator alone");
    s.reason = 3;
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_REFUSED, "may not be below");
    s.cn = "rate_per_day";
    assert_fails(smki_ra_request_submit(f->ra, &f->alice, &s, &id), SMKI_E_USAGE, "not a setting");
    s.cn = "approvals_organisation";
    s.reason = 2;
    assert_ok(smki_ra_request_submit(f->ra, &f->alice, &s, &id));
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    /* a policy change is sensitive: two approvals by others */
    assert_fails(smki_ra_request_execute(f->ra, &f->alice, id, &o), SMKI_E_REFUSED, "only an approved request");
    assert_ok(smki_ra_request_approve(f->ra, &f->carol, id, NULL));
    assert_ok(smki_ra_request_execute(f->ra, &f->alice, id, &o));
    assert_int_equal(smki_ra_get_policy(f->ra)->approvals_org, 2);
    /* Fixed in the store: a handle opened with the policy's 1 reads 2. */
    smki_ra_close(f->ra);
    smki_ra_policy p1 = policy(5);
    assert_int_equal(p1.approvals_org, 1);
    open_ra(f, &p1);
    assert_int_equal(smki_ra_get_policy(f->ra)->approvals_org, 2);
    uint64_t org;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &org));
    int now = 1;
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, org, &now));
    assert_false(now);
    /* the record edited back to one approval: the trail still holds it to two */
    record_set_state(f, org, SMKI_REQ_APPROVED);
    assert_fails(smki_ra_request_execute(f->ra, &f->alice, org, &o), SMKI_E_REFUSED, "1 valid signed approval(s)");
    verify_clean_any(f);
}

/* ---- What the operators' tools hand over (ra/io.c) ------------------------------------------------ */

static void test_first_operator_added_adopts_the_bootstrap_cas_and_later_ones_do_not(void **state)
{
    fixture *f = *state;
    size_t adopted = 99;
    assert_fails(smki_ra_operator_add_bootstrap(f->ra, &f->mallory, "alice", smki_key_public(f->alice_k), &adopted),
                 SMKI_E_REFUSED, NULL);
    assert_int_equal(adopted, 0);
    assert_ok(smki_ra_operator_add_bootstrap(f->ra, &f->alice, "alice", smki_key_public(f->alice_k), &adopted));
    assert_int_equal(adopted, 5); /* the test ceremony's five CAs */
    assert_ok(smki_ra_operator_add_bootstrap(f->ra, &f->alice, "bob", smki_key_public(f->bob_k), &adopted));
    assert_int_equal(adopted, 0);
    audit_verifies(f);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_request_certs_are_written_once_and_another_file_is_replaced_only_by_force(void **state)
{
    fixture *f = *state;
    registry(f);
    uint64_t id;
    assert_ok(org_submit(f, &f->alice, "SUP1", "test", SMKI_ROLE_SUPPLIER, "90-B3-D5-1F-30-00-00-00", &id));
    char dir[1200], path[1300], s[2 * SMKI_SERIAL_LEN + 1];
    snprintf(dir, sizeof dir, "%s/out/certs", f->dir);
    size_t written = 9, present = 9;
    assert_fails(smki_ra_request_write_certs(f->ra, 999, dir, 0, &written, &present), SMKI_E_NOTFOUND, "no request 999");
    assert_ok(smki_ra_request_write_certs(f->ra, id, dir, 0, &written, &present)); /* not executed: nothing */
    assert_int_equal(written + present, 0);
    assert_ok(smki_ra_request_approve(f->ra, &f->bob, id, NULL));
    smki_ra_exec_opts o = {.hsm = NULL};
    assert_ok(smki_ra_request_execute(f->ra, &f->bob, id, &o));
    assert_ok(smki_ra_request_write_certs(f->ra, id, dir, 0, &written, &present));
    assert_int_equal(written, 1);
    assert_int_equal(present, 0);
    smki_ra_request r;
    assert_ok(smki_ra_request_get(f->ra, id, &r));
    smki_hex_encode(r.result_serial, SMKI_SERIAL_LEN, s, 0);
    snprintf(path, sizeof path, "%s/%s.pem", dir, s);
    X509 *x = NULL;
    assert_ok(smki_cert_load_file(path, &x)); /* the file is the certificate */
    X509_free(x);
    assert_ok(smki_ra_request_write_certs(f->ra, id, dir, 0, &written, &present));
    assert_int_equal(written, 0);
    assert_int_equal(present, 1);
    write_text(path, "not this certificate\n");
    assert_fails(smki_ra_request_write_certs(f->ra, id, dir, 0, &written, &present), SMKI_E_EXISTS,
                 "--force replaces it");
    assert_ok(smki_ra_request_write_certs(f->ra, id, dir, 1, &written, &present));
    assert_int_equal(written, 1);
    assert_ok(smki_cert_load_file(path, &x));
    X509_free(x);
}

static void test_csr_set_reads_the_files_then_the_folder_in_name_order(void **state)
{
    fixture *f = *state;
    char dir[1200], p[1300], one[1300], empty[1200];
    snprintf(dir, sizeof dir, "%s/csrs", f->dir);
    snprintf(empty, sizeof empty, "%s/no-csrs", f->dir);
    assert_ok(smki_mkdirs(dir, 0755));
    assert_ok(smki_mkdirs(empty, 0755));
    snprintf(p, sizeof p, "%s/b.csr", dir), write_text(p, "B");
    snprintf(p, sizeof p, "%s/a.csr", dir), write_text(p, "A");
    snprintf(p, sizeof p, "%s/.hidden", dir), write_text(p, "H");
    snprintf(p, sizeof p, "%s/sub", dir), assert_ok(smki_mkdirs(p, 0755));
    snprintf(one, sizeof one, "%s/one.csr", f->dir), write_text(one, "1");
    const char *files[] = {one};
    smki_ra_csr_set set;
    assert_ok(smki_ra_csr_set_read(files, 1, dir, &set));
    assert_int_equal(set.n, 3);
    assert_memory_equal(set.ders[0], "1", 1);
    assert_memory_equal(set.ders[1], "A", 1);
    assert_memory_equal(set.ders[2], "B", 1);
    smki_ra_csr_set_free(&set);
    assert_fails(smki_ra_csr_set_read(NULL, 0, empty, &set), SMKI_E_USAGE, "a device batch needs CSRs");
    smki_ra_csr_set_free(&set);
    assert_fails(smki_ra_csr_set_read(NULL, 0, NULL, &set), SMKI_E_USAGE, "a device batch needs CSRs");
    snprintf(p, sizeof p, "%s/missing.csr", f->dir);
    const char *missing[] = {one, p};
    assert_fails(smki_ra_csr_set_read(missing, 2, NULL, &set), SMKI_E_NOTFOUND, "missing.csr");
    smki_ra_csr_set_free(&set);
    snprintf(p, sizeof p, "%s/no-such-folder", f->dir);
    assert_fails(smki_ra_csr_set_read(NULL, 0, p, &set), SMKI_E_IO, "cannot read folder");
    smki_ra_csr_set_free(&set);
}

static void test_text_forms_are_parsed_and_refused_by_name(void **state)
{
    (void)state;
    smki_range_kind k;
    assert_ok(smki_range_kind_parse("central", &k));
    assert_int_equal(k, SMKI_RANGE_CENTRAL);
    assert_string_equal(smki_range_kind_name(k), "central");
    assert_ok(smki_range_kind_parse("device", &k));
    assert_string_equal(smki_range_kind_name(k), "device");
    assert_fails(smki_range_kind_parse("Central", &k), SMKI_E_USAGE, "not 'Central'");
    smki_ra_subscriber s;
    assert_ok(smki_ra_subscriber_make("SUP1", "organisation", "supplier", "test", &s));
    assert_int_equal(s.type, SMKI_PROFILE_ORGANISATION);
    assert_int_equal(s.role, SMKI_ROLE_SUPPLIER);
    assert_ok(smki_ra_subscriber_make("SUP1", "dccki-client", NULL, "test", &s));
    assert_int_equal(s.type, SMKI_PROFILE_DCCKI_CLIENT);
    assert_int_equal(s.role, -1);
    assert_fails(smki_ra_subscriber_make("SUP1", "smki-root", NULL, "test", &s), SMKI_E_USAGE, "not 'smki-root'");
    assert_fails(smki_ra_subscriber_make("SUP1", "device", "nosuchrole", "test", &s), SMKI_E_USAGE, NULL);
    char longp[100];
    memset(longp, 'P', sizeof longp - 1), longp[sizeof longp - 1] = '\0';
    assert_fails(smki_ra_subscriber_make(longp, "device", NULL, "test", &s), SMKI_E_USAGE, "too long");
    uint8_t ski[SMKI_KEYID_LEN]; /* serials: ca's smki_serial_parse, test_ca_names */
    assert_ok(smki_ra_ski_parse("4001020304050607", ski));
    assert_int_equal(ski[7], 0x07);
    assert_fails(smki_ra_ski_parse("40:01:02:03:04:05:06:07", ski), SMKI_E_USAGE, "16 hex digits");
}

static void test_reading_where_no_store_is_an_empty_registry(void **state)
{
    fixture *f = *state;
    char where[1200];
    snprintf(where, sizeof where, "%s/nothing-here", f->dir);
    smki_store *s = (smki_store *)f;
    smki_ra *ra = (smki_ra *)f;
    assert_ok(smki_ra_open_read(where, NULL, &s, &ra));
    assert_null(s);
    assert_null(ra);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_operator_added_adopts_the_bootstrap_cas_and_later_ones_do_not, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_request_certs_are_written_once_and_another_file_is_replaced_only_by_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csr_set_reads_the_files_then_the_folder_in_name_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_forms_are_parsed_and_refused_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reading_where_no_store_is_an_empty_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_operator_registers_themself_and_no_one_else, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_refuses_duplicates_overlaps_and_unknown_parties, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ids_come_only_from_the_requesters_own_block_and_never_twice, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_suspension_is_what_the_gateway_check_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_roles_change_audited_with_each_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_actions_are_ra_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eligibility_refuses_each_rule_naming_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_subscriber_asking_for_itself_gets_only_devices_of_its_own_blocks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_organisation_request_needs_another_operators_approval_then_issues, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_submission_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_rejection_rejects_and_approvals_are_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_batch_issues_in_group_commits_each_with_its_entry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_execution_verifies_again_a_csr_changed_after_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execution_refuses_a_record_edited_to_approved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_approval_by_an_operator_deactivated_before_execution_does_not_count,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_substituted_after_approval_does_not_execute_and_verify_names_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_a_request_executed_without_signed_approvals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_approval_counts_are_at_least_one_and_fixed_in_the_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_an_operator_reactivated_outside_smki, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_a_trail_cut_short_behind_its_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_anchor_torn_slot_falls_back_to_the_older_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_anchor_concurrent_writers_keep_both_slots_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_anchor_waits_for_the_slots_lock_of_another_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_a_cut_after_the_last_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dccki_tls_certificates_go_only_through_the_ra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demand_above_the_monthly_average_is_held_not_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_per_subscriber_per_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_keyed_submission_sent_again_finds_its_request_and_writes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_threads_sharing_the_handle_issue_and_anchor_together, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_service_batch_for_a_party_itself_is_judged_whole_then_issued_once_via,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_service_issues_through_the_gate_keyed_and_via_in_one_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_execution_rechecks_eligibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_needs_two_other_operators_then_revokes_and_publishes_the_crl,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_revoked_issuing_ca_issues_nothing_through_the_ra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_gate_binds_test_always_and_others_once_the_ra_has_operators, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_expired_issuing_ca_issues_nothing_through_the_ra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_revocation_only_in_direct_environments_and_audited, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ca_compromise_recovery_revokes_succeeds_and_reissues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_issue_only_in_direct_environments_after_eligibility, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_direct_batch_refused_whole_before_any_csr_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_batch_checks_each_csr_and_audits_each_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_batch_issues_nothing_after_the_party_is_suspended, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_direct_batch_group_rechecks_the_blocks_it_records_under, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expiry_monitor_names_the_party, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_fails_closed_without_the_checkpoint_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_is_clean_on_an_untouched_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_an_altered_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_a_deleted_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_reordered_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_an_inserted_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_a_truncated_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_a_forged_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_and_arl_publication_is_audited_with_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_publication_whose_entry_cannot_be_written_records_no_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crl_hook_failure_inside_the_transaction_records_and_writes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ceremony_in_an_ra_governed_store_is_audited_with_the_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ceremony_whose_entry_cannot_be_written_records_no_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_ceremony_cas_are_adopted_into_the_trail_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ceremony_hook_failure_inside_the_transaction_records_no_ca, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_revocation_and_its_crl_are_one_commit_refused_whole_when_the_crl_entry_cannot_be_written, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
