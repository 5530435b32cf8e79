/* The RA's gate as a new service meets it: the public API only, no smki command. In a
 * store with RA operators the CA's ungated functions write nothing (with a handle of
 * their own, with the RA's read view, with one opened before the store had operators),
 * and the gate's entry points refuse an action without an operator and with an operator
 * whose key is not theirs, then act, with the audit entry, for the operator. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ra.h"
#include "helpers.h"

#define REAL_CSR "vectors/gbcs/csr/00db1234567890a0-ds.csr.der" /* Device ID 00-DB-12-34-56-78-90-A0 */
#define GOVERNED "refused: this store has RA operators"

typedef struct {
    char dir[1024];
    smki_store *store;
    smki_ca_db db; /* opened by the bootstrap, before the store had operators */
    smki_ra *ra;
    smki_key *alice_k, *mallory_k;
    smki_ra_actor alice, impostor;
    smki_csr *csr;
    uint8_t *csr_der;
    size_t csr_len;
} fixture;

static void open_ra(fixture *f)
{
    smki_ra_policy p;
    assert_ok(smki_ra_policy_load(NULL, &p));
    assert_ok(smki_ra_open(f->store, &p, &f->ra));
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.pem", f->dir);
    smki_ra_set_checkpoint_key(f->ra, test_open_file_key(path));
}

/* The test hierarchy made before any operator (the bootstrap), then alice registered and
 * the Party SUP1 able to receive device certificates in test. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("ra_gate"));
    if (test_software_hierarchy(f->dir, NULL, &f->store, &f->db) != 0) {
        print_error("hierarchy: %s\n", smki_error_msg());
        return -1;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.pem", f->dir);
    test_write_ec_key(path, "P-256");
    open_ra(f);
    f->alice_k = test_new_file_key(f->dir, "alice");
    f->mallory_k = test_new_file_key(f->dir, "mallory");
    f->alice = (smki_ra_actor){"alice", f->alice_k};
    f->impostor = (smki_ra_actor){"alice", f->mallory_k}; /* alice's name, not her key */
    assert_ok(smki_ra_operator_add(f->ra, &f->alice, "alice", smki_key_public(f->alice_k)));
    smki_ra_party p = {.signifier = "SUP1", .name = "Supplier One", .is_testing_participant = 1, .agreement_signed = 1};
    assert_ok(smki_ra_party_add(f->ra, &f->alice, &p));
    smki_eui64_range_t devices;
    assert_ok(smki_eui64_range_parse("00DB12/24", &devices));
    assert_ok(smki_ra_range_assign(f->ra, &f->alice, &devices, SMKI_RANGE_DEVICE, "SUP1"));
    smki_ra_subscriber s = {"SUP1", SMKI_PROFILE_DEVICE, -1, "test"};
    assert_ok(smki_ra_subscriber_authorise(f->ra, &f->alice, &s));
    f->csr_der = test_read_shared(REAL_CSR, &f->csr_len);
    assert_ok(smki_csr_parse(f->csr_der, f->csr_len, &f->csr));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smki_csr_free(f->csr);
    free(f->csr_der);
    smki_ra_close(f->ra);
    smki_store_close(f->store);
    smki_key_free(f->alice_k);
    smki_key_free(f->mallory_k);
    free(f);
    return 0;
}

static size_t certs(fixture *f)
{
    size_t n = 0;
    assert_ok(smki_ca_count(&f->db, &n));
    return n;
}

static uint64_t head(fixture *f)
{
    uint64_t seq = 0;
    assert_ok(smki_audit_head(f->ra, &seq, NULL));
    return seq;
}

static void refused_ungated(fixture *f, smki_ca_db *db)
{
    size_t before = certs(f);
    smki_ca_issuer *is = NULL;
    assert_ok(smki_ca_issuer_open(db, "test", SMKI_PROFILE_DEVICE, NULL, &is)); /* reading is free */
    smki_cert *c = malloc(sizeof *c);
    smki_issue_req r = {f->csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
    assert_fails(smki_ca_issue(is, db, &r, c), SMKI_E_REFUSED, "recording a certificate " GOVERNED);
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(f->store, 16, NULL, NULL, &b));
    assert_fails(smki_ca_issue_batch(is, db, b, &r, c), SMKI_E_REFUSED, GOVERNED);
    assert_ok(smki_batch_end(b));
    smki_ca_issuer_free(is);

    smki_ca_record *oca = malloc(sizeof *oca);
    assert_ok(smki_ca_get(db, "test", SMKI_CA_OCA, oca));
    smki_revoke_req rv = {oca->cert.serial, oca->cert.issuer_ski, "test", SMKI_REASON_KEY_COMPROMISE, 0};
    assert_fails(smki_ca_revoke(db, &rv, c, NULL), SMKI_E_REFUSED, "revocation " GOVERNED);
    assert_fails(smki_ca_set_status(db, oca->cert.issuer_ski, oca->cert.serial, SMKI_STATUS_NOT_IN_USE),
                 SMKI_E_REFUSED, "a change of status " GOVERNED);
    smki_crl_opts co = {NULL, NULL, 0, 0, NULL, NULL};
    smki_crl crl;
    assert_fails(smki_ca_crl_publish(db, "test", SMKI_CA_OCA, &co, &crl), SMKI_E_REFUSED,
                 "publishing a CRL " GOVERNED);
    assert_fails(smki_ca_crl_publish(db, "test", SMKI_CA_ROOT, &co, &crl), SMKI_E_REFUSED,
                 "publishing an ARL " GOVERNED);
    assert_fails(smki_ca_crl_get(db, "test", SMKI_CA_OCA, &crl), SMKI_E_NOTFOUND, NULL);
    smki_cert now;
    assert_ok(smki_ca_cert_get(db, oca->cert.issuer_ski, oca->cert.serial, &now));
    assert_int_equal(now.status, SMKI_STATUS_IN_USE);
    assert_int_equal(certs(f), before);
    free(oca);
    free(c);
}

static void test_ungated_ca_functions_write_nothing_in_a_store_with_operators(void **state)
{
    fixture *f = *state;
    uint64_t seq = head(f);
    refused_ungated(f, &f->db);               /* a handle opened before the store had operators */
    refused_ungated(f, smki_ra_ca_db(f->ra)); /* the RA's read view */
    smki_ca_db own;
    assert_ok(smki_ca_db_open(f->store, &own)); /* a new one, as a service would open it */
    refused_ungated(f, &own);
    assert_int_equal(head(f), seq);
}

/* The real device CSR as the one file of a batch input folder (<dir>/csrs), opened; out_dir
 * (1200 octets) gets the folder the batch writes to (<dir>/certs). */
static smki_ca_batch_input *one_csr_batch(fixture *f, char *out_dir)
{
    char in_dir[1200], path[1300];
    snprintf(in_dir, sizeof in_dir, "%s/csrs", f->dir);
    snprintf(out_dir, 1200, "%s/certs", f->dir);
    assert_ok(smki_mkdirs(in_dir, 0700));
    snprintf(path, sizeof path, "%s/dev.csr.der", in_dir);
    assert_ok(smki_file_write_atomic(path, f->csr_der, f->csr_len, 0600, 1));
    smki_ca_batch_input *in = NULL;
    assert_ok(smki_ca_batch_input_open(in_dir, &in));
    return in;
}

static void test_ungated_batch_issues_nothing_in_a_store_with_operators(void **state)
{
    fixture *f = *state;
    char out_dir[1200];
    smki_ca_batch_input *in = one_csr_batch(f, out_dir);
    smki_ca_issuer *is = NULL;
    assert_ok(smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DEVICE, NULL, &is));
    smki_ca_batch_opts o = {out_dir, 1, 0, 0, NULL, NULL, NULL, NULL, NULL};
    smki_ca_batch_report *rep = NULL;
    size_t before = certs(f);
    /* The group commit meets the gate: the run stops, nothing of the group is recorded. */
    assert_fails(smki_ca_batch_run(is, &f->db, in, &o, &rep), SMKI_E_REFUSED, "recording a certificate " GOVERNED);
    assert_non_null(rep);
    assert_int_equal(rep->issued, 0);
    assert_int_equal(rep->commits, 0);
    assert_int_equal(certs(f), before);
    smki_ca_batch_report_free(rep);
    smki_ca_issuer_free(is);
    smki_ca_batch_input_free(in);
}

static void test_the_gate_refuses_a_service_without_an_operator_or_with_a_key_not_theirs(void **state)
{
    fixture *f = *state;
    size_t before = certs(f);
    uint64_t seq = head(f);
    int needs = 0;
    assert_ok(smki_ra_needs_operator(f->ra, "production", 0, &needs)); /* every action, once there are operators */
    assert_int_equal(needs, 1);
    smki_cert *c = malloc(sizeof *c);
    smki_ra_issue_req r = {.env = "test", .csr = f->csr, .party = "SUP1", .role = -1};
    assert_fails(smki_ra_issue(f->ra, NULL, &r, c, NULL), SMKI_E_USAGE, "--operator NAME");
    assert_fails(smki_ra_issue(f->ra, &f->impostor, &r, c, NULL), SMKI_E_REFUSED,
                 "the key given is not operator alice's registered key");
    smki_ra_actor stranger = {"mallory", f->mallory_k};
    assert_fails(smki_ra_issue(f->ra, &stranger, &r, c, NULL), SMKI_E_REFUSED, "'mallory' is not a registered RA operator");

    smki_ca_record *oca = malloc(sizeof *oca);
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_OCA, oca));
    smki_ra_revoke_req rv = {"test", oca->cert.serial, "oca", SMKI_REASON_KEY_COMPROMISE};
    assert_fails(smki_ra_revoke(f->ra, NULL, &rv, c, NULL, NULL), SMKI_E_USAGE, "--operator NAME");
    assert_fails(smki_ra_revoke(f->ra, &f->impostor, &rv, c, NULL, NULL), SMKI_E_REFUSED, "not operator alice's");

    smki_crl lists[SMKI_CA_KIND_COUNT];
    size_t n = 9;
    smki_ra_lists_req lr = {"test", 0, NULL, NULL, NULL, NULL, 0};
    assert_fails(smki_ra_lists_publish(f->ra, NULL, &lr, lists, &n), SMKI_E_USAGE, "--operator NAME");
    assert_int_equal(n, 0);
    assert_fails(smki_ra_lists_publish(f->ra, &f->impostor, &lr, lists, &n), SMKI_E_REFUSED, "not operator alice's");
    assert_int_equal(n, 0);

    smki_ca_init_opts io = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report *rep = malloc(sizeof *rep);
    smki_conf *conf = test_software_ca_conf(f->dir, "test", NULL);
    assert_fails(smki_ra_ca_init(f->ra, NULL, "test", conf, &io, rep), SMKI_E_USAGE, "--operator NAME");
    assert_fails(smki_ra_ca_init(f->ra, &f->impostor, "test", conf, &io, rep), SMKI_E_REFUSED, "not operator alice's");

    char out_dir[1200];
    smki_ca_batch_input *in = one_csr_batch(f, out_dir);
    smki_ra_batch_req br = {"test", "SUP1", NULL, NULL, NULL, 0, NULL};
    smki_ca_batch_opts bo = {out_dir, 1, 0, 0, NULL, NULL, NULL, NULL, NULL};
    smki_ca_batch_report *brep = NULL;
    assert_fails(smki_ra_batch(f->ra, NULL, &br, in, &bo, &brep), SMKI_E_USAGE, "--operator NAME");
    assert_fails(smki_ra_batch(f->ra, &f->impostor, &br, in, &bo, &brep), SMKI_E_REFUSED, "not operator alice's");
    smki_ca_batch_report_free(brep);
    smki_ca_batch_input_free(in);

    /* Nothing of it was written. */
    assert_int_equal(certs(f), before);
    assert_int_equal(head(f), seq);
    smki_crl crl;
    assert_fails(smki_ca_crl_get(&f->db, "test", SMKI_CA_OCA, &crl), SMKI_E_NOTFOUND, NULL);

    /* The request must fit its profile, whoever asks. */
    static const char *const DNS[] = {"gw1.example.net"};
    smki_ra_issue_req bad = r;
    bad.dns = DNS;
    bad.n_dns = 1;
    assert_fails(smki_ra_issue(f->ra, &f->alice, &bad, c, NULL), SMKI_E_USAGE, "a device certificate names no endpoint");
    bad = r;
    bad.profile = SMKI_PROFILE_DCCKI_SERVER;
    bad.role = SMKI_ROLE_SUPPLIER;
    assert_fails(smki_ra_issue(f->ra, &f->alice, &bad, c, NULL), SMKI_E_USAGE, "no Remote Party Role or EUI-64");
    bad = r;
    bad.profile = SMKI_PROFILE_DCCKI_ROOT;
    assert_fails(smki_ra_issue(f->ra, &f->alice, &bad, c, NULL), SMKI_E_USAGE, "not dccki-root");
    assert_int_equal(certs(f), before);

    /* The operator herself: the certificate and its audit entry, in one transaction. */
    assert_ok(smki_ra_issue(f->ra, &f->alice, &r, c, NULL));
    assert_int_equal(c->profile, SMKI_PROFILE_DEVICE); /* chosen from the CSR */
    assert_int_equal(certs(f), before + 1);
    assert_int_equal(head(f), seq + 1);
    assert_ok(smki_ra_lists_publish(f->ra, &f->alice, &lr, lists, &n));
    assert_int_equal(n, 3); /* the OCA's, the DCA's and the DCCKI issuing CA's */
    for (size_t i = 0; i < n; i++) smki_crl_clear(&lists[i]);
    assert_int_equal(head(f), seq + 4);
    smki_conf_free(conf);
    free(rep);
    free(oca);
    free(c);
}

/* After each of the gate's entry points the trail's head is anchored beside the
 * checkpoint key (issue 15): a trail cut back afterwards would be named. */
static void anchored_at_head(fixture *f)
{
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s/checkpoint.pem", f->dir);
    EVP_PKEY *pub = NULL;
    assert_ok(smki_key_public_load(ref, NULL, &pub));
    smki_audit_report *rep = malloc(sizeof *rep);
    assert_ok(smki_audit_verify(f->ra, pub, rep));
    assert_true(rep->anchor_checked);
    assert_int_equal(rep->total_findings, 0);
    assert_int_equal(rep->anchor_seq, head(f));
    free(rep);
    EVP_PKEY_free(pub);
}

static void test_each_entry_point_leaves_the_head_anchored(void **state)
{
    fixture *f = *state;
    uint64_t seq = head(f);
    smki_cert *c = malloc(sizeof *c);
    smki_ra_issue_req r = {.env = "test", .csr = f->csr, .party = "SUP1", .role = -1};
    assert_ok(smki_ra_issue(f->ra, &f->alice, &r, c, NULL));
    assert_int_equal(head(f), seq + 1);
    anchored_at_head(f);
    seq = head(f);
    smki_crl lists[SMKI_CA_KIND_COUNT];
    size_t n = 0;
    smki_ra_lists_req lr = {"test", 1, NULL, NULL, NULL, NULL, 0};
    assert_ok(smki_ra_lists_publish(f->ra, &f->alice, &lr, lists, &n));
    assert_int_equal(n, 2); /* the SMKI root's ARL and the DCCKI root's */
    for (size_t i = 0; i < n; i++) smki_crl_clear(&lists[i]);
    assert_int_equal(head(f), seq + 2);
    anchored_at_head(f);
    /* A revocation (the organisation CA's certificate: device certificates are replaced). */
    smki_ca_record *oca = malloc(sizeof *oca);
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_OCA, oca));
    smki_ra_revoke_req rv = {"test", oca->cert.serial, NULL, SMKI_REASON_KEY_COMPROMISE};
    smki_cert *gone = malloc(sizeof *gone);
    int audited = 0;
    seq = head(f);
    assert_ok(smki_ra_revoke(f->ra, &f->alice, &rv, gone, NULL, &audited));
    assert_true(audited);
    assert_true(head(f) > seq);
    anchored_at_head(f);
    free(oca);
    free(gone);
    free(c);
}

/* Direct issuances from several threads at once (a service's handler threads) share
 * group commits: each gets its certificate and its own entry, the trail verifies and is
 * anchored at its head; one that is refused in the middle refuses only itself. */
#define ISSUERS 4
#define EACH 6
typedef struct {
    fixture *f;
    int t;
    int ok, refused;
} issuer_run;

static void *issue_some(void *arg)
{
    issuer_run *x = arg;
    for (int i = 0; i < EACH; i++) {
        uint8_t hw[8] = {0x00, 0xDB, 0x12, 0x00, 0x00, 0x00, (uint8_t)x->t, (uint8_t)i};
        if (x->t == 0 && i == EACH / 2) hw[1] = 0xDC; /* in no block of SUP1's: refused for a subscriber */
        uint8_t der[1024];
        size_t n = test_device_csr_der(SMKI_KU_DIGITAL_SIGNATURE, hw, der, sizeof der);
        smki_csr *csr = NULL;
        if (smki_csr_parse(der, n, &csr) < 0) return NULL;
        smki_ra_issue_req r = {.env = "test", .csr = csr, .party = "SUP1", .role = -1, .subscriber_asks = 1};
        smki_cert c;
        int rc = smki_ra_issue(x->f->ra, &x->f->alice, &r, &c, NULL);
        if (rc == 0) x->ok++;
        else if (rc == SMKI_E_REFUSED && strstr(smki_error_msg(), "in no device block of party SUP1")) x->refused++;
        smki_error_clear();
        smki_csr_free(csr);
    }
    return NULL;
}

static void test_concurrent_direct_issuances_share_commits_each_with_its_entry(void **state)
{
    fixture *f = *state;
    size_t before = certs(f);
    uint64_t seq = head(f);
    pthread_t th[ISSUERS];
    issuer_run runs[ISSUERS];
    for (int t = 0; t < ISSUERS; t++) {
        runs[t] = (issuer_run){f, t, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, issue_some, &runs[t]), 0);
    }
    int ok = 0, refused = 0;
    for (int t = 0; t < ISSUERS; t++) {
        pthread_join(th[t], NULL);
        ok += runs[t].ok;
        refused += runs[t].refused;
    }
    assert_int_equal(refused, 1);
    assert_int_equal(ok, ISSUERS * EACH - 1);
    assert_int_equal(certs(f), before + (size_t)ok);
    assert_int_equal(head(f), seq + (uint64_t)ok); /* one entry each, none for the refused one */
    anchored_at_head(f);                            /* verifies clean, anchored at the head */
}

static void test_lists_belong_to_the_ca_named_and_of_its_sort(void **state)
{
    fixture *f = *state;
    smki_crl lists[SMKI_CA_KIND_COUNT];
    size_t n = 9;
    uint64_t seq = head(f);
    smki_ra_lists_req r = {"test", 0, "smki-root", NULL, NULL, NULL, 0};
    assert_fails(smki_ra_lists_publish(f->ra, &f->alice, &r, lists, &n), SMKI_E_USAGE,
                 "smki-root is a root: its list is published by 'smki ca arl'");
    r = (smki_ra_lists_req){"test", 1, "oca", NULL, NULL, NULL, 0};
    assert_fails(smki_ra_lists_publish(f->ra, &f->alice, &r, lists, &n), SMKI_E_USAGE, "smki-oca is an issuing CA");
    smki_ca_record root;
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_ROOT, &root));
    char ski[2 * SMKI_KEYID_LEN + 1];
    smki_hex_encode(root.cert.ski, SMKI_KEYID_LEN, ski, 0);
    r = (smki_ra_lists_req){"test", 0, ski, NULL, NULL, NULL, 0};
    assert_fails(smki_ra_lists_publish(f->ra, &f->alice, &r, lists, &n), SMKI_E_USAGE, "the CA of SKI");
    r = (smki_ra_lists_req){"elsewhere", 0, NULL, NULL, NULL, NULL, 0};
    assert_fails(smki_ra_lists_publish(f->ra, &f->alice, &r, lists, &n), SMKI_E_NOTFOUND,
                 "environment elsewhere has no CA yet");
    assert_int_equal(n, 0);
    assert_int_equal(head(f), seq); /* nothing published, nothing audited */
    /* Named by its SKI: the root's ARL, one list, with its entry. */
    r = (smki_ra_lists_req){"test", 1, ski, NULL, NULL, NULL, 0};
    assert_ok(smki_ra_lists_publish(f->ra, &f->alice, &r, lists, &n));
    assert_int_equal(n, 1);
    assert_int_equal(lists[0].ca, SMKI_CA_ROOT);
    smki_crl_clear(&lists[0]);
    assert_int_equal(head(f), seq + 1);
}

/* A store without operators: revocation and issuance only in ra.unmanaged (a lab
 * store), and there without the RA; anywhere else refused until the RA exists. */
static void test_a_store_without_operators_acts_only_in_its_unmanaged_environments(void **state)
{
    fixture *f = *state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/lab", f->dir);
    assert_ok(smki_mkdirs(dir, 0700));
    smki_store *s = NULL;
    smki_ca_db db;
    assert_ok(test_software_hierarchy(dir, NULL, &s, &db));
    smki_ra_policy strict, lab;
    assert_ok(smki_ra_policy_load(NULL, &strict));
    lab = strict;
    snprintf(lab.unmanaged_envs, sizeof lab.unmanaged_envs, "test");
    smki_ra *ra = NULL;
    assert_ok(smki_ra_open(s, &strict, &ra));
    smki_ca_record oca;
    assert_ok(smki_ca_get(&db, "test", SMKI_CA_OCA, &oca));
    smki_cert *c = malloc(sizeof *c);
    smki_revocation rev;
    int audited = -1;
    smki_ra_revoke_req rv = {"test", oca.cert.serial, NULL, SMKI_REASON_CESSATION_OF_OPERATION};
    assert_fails(smki_ra_revoke(ra, NULL, &rv, c, &rev, &audited), SMKI_E_REFUSED,
                 "revocation goes only through the RA, and this store has no RA operators yet");
    assert_int_equal(audited, 0);
    smki_ra_issue_req ir = {.env = "test", .csr = f->csr, .role = -1};
    assert_fails(smki_ra_issue(ra, NULL, &ir, c, NULL), SMKI_E_REFUSED, "go only to registered Parties");
    smki_ra_close(ra);
    assert_ok(smki_ra_open(s, &lab, &ra));
    assert_ok(smki_ra_revoke(ra, NULL, &rv, c, &rev, &audited)); /* the lab's: without the RA, unaudited */
    assert_int_equal(audited, 0);
    assert_int_equal(c->status, SMKI_STATUS_REVOKED);
    assert_int_equal(rev.reason, SMKI_REASON_CESSATION_OF_OPERATION);
    smki_ra_close(ra);
    smki_store_close(s);
    free(c);
}

/* ca/gate.c's mark in "cas", removed as a store registered before the mark existed lacks it. */
static int unmark(smki_txn *t, void *arg)
{
    static const char KEY[] = "/governed-by-ra";
    return smki_txn_del(t, ((smki_ca_db *)arg)->cas, KEY, sizeof KEY - 1);
}

/* A store whose operators came before the CA knew of governed stores: the RA marks it
 * when it opens it, and the CA's ungated functions refuse from then on. */
static void test_a_store_with_operators_but_no_mark_is_marked_when_the_ra_opens_it(void **state)
{
    fixture *f = *state;
    smki_ra_close(f->ra);
    f->ra = NULL;
    assert_ok(smki_store_write(f->store, unmark, &f->db));
    smki_crl_opts co = {NULL, NULL, 0, 0, NULL, NULL};
    smki_crl crl;
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_DCA, &co, &crl)); /* unmarked: the CA cannot tell */
    smki_crl_clear(&crl);
    open_ra(f);
    assert_fails(smki_ca_crl_publish(&f->db, "test", SMKI_CA_DCA, &co, &crl), SMKI_E_REFUSED,
                 "publishing a CRL " GOVERNED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ungated_ca_functions_write_nothing_in_a_store_with_operators, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ungated_batch_issues_nothing_in_a_store_with_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_gate_refuses_a_service_without_an_operator_or_with_a_key_not_theirs,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_entry_point_leaves_the_head_anchored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_direct_issuances_share_commits_each_with_its_entry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lists_belong_to_the_ca_named_and_of_its_sort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_store_without_operators_acts_only_in_its_unmanaged_environments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_store_with_operators_but_no_mark_is_marked_when_the_ra_opens_it, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
