/* Batches of device CSRs (ca/batch.c): one certificate per CSR named by EUI-64 and
 * usage, re-runs that give back the same certificates (the CSR index), lost files
 * written again, bad CSRs refused by name while the rest proceed, duplicates, name
 * clashes, bundle files, leftovers of a killed run swept, and the refusals of the
 * run itself. A test hierarchy of software keys in a fresh store. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca.h"
#include "helpers.h"

/* ---- Fixture ----------------------------------------------------------------------------- */

typedef struct {
    char dir[1024];
    smki_store *store;
    smki_ca_db db;
    smki_conf *conf;
    smki_ca_issuer *dca, *oca;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("ca_batch"));
    char path[1200];
    f->conf = test_software_ca_conf(f->dir, "test", NULL);
    snprintf(path, sizeof path, "%s/store", f->dir);
    smki_ca_init_opts o = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    if (smki_store_open(path, NULL, &f->store) != 0 || smki_ca_db_open(f->store, &f->db) != 0 ||
        smki_ca_init(&f->db, "test", f->conf, &o, &rep) != 0 ||
        smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DEVICE, NULL, &f->dca) != 0 ||
        smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_ORGANISATION, NULL, &f->oca) != 0) {
        print_error("fixture: %s\n", smki_error_msg());
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smki_ca_issuer_free(f->dca);
    smki_ca_issuer_free(f->oca);
    smki_conf_free(f->conf);
    smki_store_close(f->store);
    free(f);
    return 0;
}

/* ---- CSRs -------------------------------------------------------------------------------- */

enum { GOOD, BAD_SIGNATURE, WRONG_CURVE, BOTH_USAGES, NO_DEVICE };

/* A device CSR like the real one: P-256, empty subject, critical keyUsage, critical
 * hardwareModuleName SAN with the EUI-64. DER, OPENSSL_malloc'd. */
static unsigned char *csr_der(int kind, int ka, uint64_t eui, int *len)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind == WRONG_CURVE ? "P-384" : "P-256");
    X509_REQ *req = X509_REQ_new();
    assert_non_null(key);
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (kind == NO_DEVICE)
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)"ORG", -1, -1, 0),
                         1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    if (!ka || kind == BOTH_USAGES) ASN1_BIT_STRING_set_bit(bits, 0, 1);
    if (ka || kind == BOTH_USAGES) ASN1_BIT_STRING_set_bit(bits, 4, 1);
    sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_key_usage, 1, bits));
    ASN1_BIT_STRING_free(bits);
    if (kind != NO_DEVICE) {
        uint8_t id[8];
        smki_put_be64(id, eui);
        sk_X509_EXTENSION_push(exts, test_device_san(id));
    }
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    *len = i2d_X509_REQ(req, &der);
    assert_true(*len > 0);
    if (kind == BAD_SIGNATURE) der[*len - 1] ^= 1;
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return der;
}

static void put_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A CSR file <eui>-<ds|ka>.csr, PEM (or DER). */
static void put_csr(const char *dir, int kind, int ka, uint64_t eui, int pem)
{
    int len;
    unsigned char *der = csr_der(kind, ka, eui, &len);
    char name[64];
    snprintf(name, sizeof name, "%016llx-%s.csr%s", (unsigned long long)eui, ka ? "ka" : "ds", pem ? "" : ".der");
    if (pem) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_true(PEM_write(f, "CERTIFICATE REQUEST", "", der, len) > 0);
        fclose(f);
    } else {
        put_file(dir, name, der, (size_t)len);
    }
    OPENSSL_free(der);
}

static const char *subdir(fixture *f, const char *name)
{
    static char path[4][1200];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", f->dir, name);
    mkdir(p, 0755);
    return p;
}

static size_t cert_count(fixture *f)
{
    size_t n = 0;
    assert_ok(smki_ca_count(&f->db, &n));
    return n;
}

static smki_ca_batch_report *run_batch(fixture *f, const char *in_path, const char *out, unsigned threads,
                                       size_t group)
{
    smki_ca_batch_input *in = NULL;
    assert_ok(smki_ca_batch_input_open(in_path, &in));
    smki_ca_batch_opts o = {out, threads, group, 0, NULL, NULL, NULL, NULL, NULL};
    smki_ca_batch_report *r = NULL;
    assert_ok(smki_ca_batch_run(f->dca, &f->db, in, &o, &r));
    assert_non_null(r);
    smki_ca_batch_input_free(in);
    return r;
}

static uint8_t *read_file(const char *dir, const char *name, size_t *len)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *b = NULL;
    assert_ok(smki_file_read(path, 1 << 20, &b, len));
    return b;
}

static int exists(const char *dir, const char *name)
{
    char path[2048];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* ---- Tests -------------------------------------------------------------------------------- */

static void test_batch_issues_one_certificate_per_csr_named_by_eui_and_usage(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "in1"), *out = subdir(f, "out1");
    for (uint64_t i = 0; i < 10; i++) {
        put_csr(in, GOOD, 0, 0x00db123400000000ull + i, 1);
        put_csr(in, GOOD, 1, 0x00db123400000000ull + i, 0);
    }
    size_t before = cert_count(f);
    smki_ca_batch_report *r = run_batch(f, in, out, 2, 4);
    assert_int_equal(r->total, 20);
    assert_int_equal(r->issued, 20);
    assert_int_equal(r->refused + r->existing + r->duplicate, 0);
    assert_int_equal(r->files_written, 20);
    assert_int_equal(r->commits, 5); /* groups of 4 */
    assert_int_equal(cert_count(f), before + 20);
    /* Input order is name order: ...00-ds.csr, ...00-ka.csr.der, ...01-ds.csr, ... */
    assert_string_equal(r->items[0].file, "00db123400000000-ds.pem");
    assert_string_equal(r->items[1].file, "00db123400000000-ka.pem");
    assert_int_equal(r->items[1].usage, SMKI_USAGE_KA);
    assert_string_equal(r->items[19].file, "00db123400000009-ka.pem");
    /* Each file is the stored certificate, found again by its CSR. */
    char path[2048];
    snprintf(path, sizeof path, "%s/00db123400000003-ka.csr.der", in);
    uint8_t *csr;
    size_t csr_len, len;
    assert_ok(smki_file_read(path, 4096, &csr, &csr_len));
    smki_cert c;
    size_t ski_len;
    const uint8_t *ca_cert = smki_ca_issuer_cert(f->dca, &ski_len);
    X509 *x = d2i_X509(NULL, &ca_cert, (long)ski_len);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    assert_ok(smki_ca_find_by_csr(&f->db, ASN1_STRING_get0_data(ski), csr, csr_len, &c));
    assert_memory_equal(c.serial, r->items[7].serial, SMKI_SERIAL_LEN);
    char pem[4096];
    size_t pem_len;
    assert_ok(smki_cert_to_pem(c.der, c.der_len, pem, sizeof pem, &pem_len));
    uint8_t *file = read_file(out, "00db123400000003-ka.pem", &len);
    assert_int_equal(len, pem_len);
    assert_memory_equal(file, pem, len);
    /* Another issuer's SKI finds nothing. */
    uint8_t other[SMKI_KEYID_LEN] = {0x40, 1, 2, 3, 4, 5, 6, 7};
    assert_fails(smki_ca_find_by_csr(&f->db, other, csr, csr_len, &c), SMKI_E_NOTFOUND, "no certificate");
    X509_free(x);
    free(file);
    free(csr);
    smki_ca_batch_report_free(r);
}

static void test_batch_rerun_gives_back_the_same_certificates_and_rewrites_lost_files(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "in2"), *out = subdir(f, "out2");
    for (uint64_t i = 0; i < 12; i++) put_csr(in, GOOD, (int)(i & 1), 0x00db200000000000ull + i, 1);
    smki_ca_batch_report *r1 = run_batch(f, in, out, 3, 5);
    assert_int_equal(r1->issued, 12);
    size_t count = cert_count(f), len_before, len_after;
    uint8_t *before = read_file(out, r1->items[4].file, &len_before);
    /* A crash after the commit and before the files: the store has them, the folder not. */
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", out, r1->items[4].file);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/%s", out, r1->items[11].file);
    assert_int_equal(unlink(path), 0);
    smki_ca_batch_report *r2 = run_batch(f, in, out, 1, 0);
    assert_int_equal(r2->issued, 0);
    assert_int_equal(r2->existing, 12);
    assert_int_equal(r2->files_written, 2);
    assert_int_equal(r2->commits, 0);
    assert_int_equal(cert_count(f), count);
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(r2->items[i].outcome, SMKI_BATCH_EXISTING);
        assert_memory_equal(r2->items[i].serial, r1->items[i].serial, SMKI_SERIAL_LEN);
        assert_string_equal(r2->items[i].file, r1->items[i].file);
    }
    uint8_t *after = read_file(out, r1->items[4].file, &len_after);
    assert_int_equal(len_after, len_before);
    assert_memory_equal(after, before, len_after);
    free(before);
    free(after);
    smki_ca_batch_report_free(r1);
    smki_ca_batch_report_free(r2);
}

static void test_batch_refuses_bad_csrs_by_name_and_issues_the_rest(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "in3"), *out = subdir(f, "out3");
    put_csr(in, GOOD, 0, 0x00db300000000001ull, 1);
    put_csr(in, BAD_SIGNATURE, 0, 0x00db300000000002ull, 1);
    put_csr(in, WRONG_CURVE, 0, 0x00db300000000003ull, 1);
    put_csr(in, BOTH_USAGES, 0, 0x00db300000000004ull, 1);
    put_csr(in, NO_DEVICE, 0, 0x00db300000000005ull, 1);
    put_csr(in, GOOD, 1, 0x00db300000000006ull, 0);
    put_file(in, "00db300000000007-garbage.csr", "\x30\x03\x02\x01", 4);
    uint8_t big[SMKI_CSR_MAX + 1];
    memset(big, 'A', sizeof big);
    put_file(in, "00db300000000008-too-big.csr", big, sizeof big);
    put_file(in, ".00db300000000000-hidden.csr", "x", 1);
    smki_ca_batch_input *list = NULL;
    assert_ok(smki_ca_batch_input_open(in, &list));
    assert_int_equal(smki_ca_batch_input_count(list), 8);
    assert_non_null(strstr(smki_ca_batch_input_name(list, 6), "/00db300000000007-garbage.csr"));
    smki_ca_batch_input_free(list);

    size_t before = cert_count(f);
    smki_ca_batch_report *r = run_batch(f, in, out, 2, 0);
    assert_int_equal(r->issued, 2);
    assert_int_equal(r->refused, 6);
    assert_int_equal(cert_count(f), before + 2);
    assert_int_equal(r->items[0].outcome, SMKI_BATCH_ISSUED);
    assert_int_equal(r->items[5].outcome, SMKI_BATCH_ISSUED);
    static const struct {
        size_t i;
        int code;
        const char *needle;
    } WANT[] = {
        {1, SMKI_E_VERIFY, "does not verify"},   {2, SMKI_E_REFUSED, "P-256"},
        {3, SMKI_E_REFUSED, "both"},             {4, SMKI_E_REFUSED, "hardwareModuleName"},
        {6, SMKI_E_INPUT, NULL},                 {7, SMKI_E_INPUT, "over the limit"},
    };
    for (size_t k = 0; k < sizeof WANT / sizeof WANT[0]; k++) {
        const smki_ca_batch_item *it = &r->items[WANT[k].i];
        assert_int_equal(it->outcome, SMKI_BATCH_REFUSED);
        assert_int_equal(it->code, WANT[k].code);
        assert_non_null(it->reason);
        if (WANT[k].needle && !strstr(it->reason, WANT[k].needle)) fail_msg("item %zu: %s", WANT[k].i, it->reason);
        assert_int_equal(it->file[0], '\0');
    }
    assert_true(exists(out, "00db300000000001-ds.pem"));
    assert_true(exists(out, "00db300000000006-ka.pem"));
    assert_false(exists(out, "00db300000000002-ds.pem"));
    smki_ca_batch_report_free(r);
}

static void test_batch_same_csr_twice_is_issued_once(void **state)
{
    fixture *f = *state;
    const char *gen = subdir(f, "gen4"), *out = subdir(f, "out4");
    put_csr(gen, GOOD, 0, 0x00db400000000001ull, 1);
    put_csr(gen, GOOD, 1, 0x00db400000000002ull, 1);
    size_t a_len, b_len;
    uint8_t *a = read_file(gen, "00db400000000001-ds.csr", &a_len);
    uint8_t *b = read_file(gen, "00db400000000002-ka.csr", &b_len);
    /* A bundle: the CSR, another, the first again, with text around the blocks. */
    char bundle[8192];
    int n = snprintf(bundle, sizeof bundle, "first\n%.*sbetween\n%.*s%.*strailing", (int)a_len, (char *)a,
                     (int)b_len, (char *)b, (int)a_len, (char *)a);
    put_file(f->dir, "bundle.pem", bundle, (size_t)n);
    char path[1200];
    snprintf(path, sizeof path, "%s/bundle.pem", f->dir);
    size_t before = cert_count(f);
    smki_ca_batch_report *r = run_batch(f, path, out, 2, 0);
    assert_int_equal(r->total, 3);
    assert_int_equal(r->issued, 2);
    assert_int_equal(r->duplicate, 1);
    assert_int_equal(cert_count(f), before + 2);
    assert_int_equal(r->items[2].outcome, SMKI_BATCH_DUPLICATE);
    assert_int_equal(r->items[2].duplicate_of, 0);
    assert_memory_equal(r->items[2].serial, r->items[0].serial, SMKI_SERIAL_LEN);
    assert_string_equal(r->items[2].file, r->items[0].file);
    smki_ca_batch_input *list = NULL;
    assert_ok(smki_ca_batch_input_open(path, &list));
    assert_non_null(strstr(smki_ca_batch_input_name(list, 2), "bundle.pem#3"));
    smki_ca_batch_input_free(list);
    free(a);
    free(b);
    smki_ca_batch_report_free(r);
}

static void test_batch_name_clash_keeps_the_earlier_file(void **state)
{
    fixture *f = *state;
    const char *in1 = subdir(f, "in5a"), *in2 = subdir(f, "in5b"), *out = subdir(f, "out5");
    put_csr(in1, GOOD, 0, 0x00db500000000001ull, 1);
    smki_ca_batch_report *r1 = run_batch(f, in1, out, 1, 0);
    size_t len1, len2;
    uint8_t *first = read_file(out, "00db500000000001-ds.pem", &len1);
    put_csr(in2, GOOD, 0, 0x00db500000000001ull, 1); /* a new key for the same device and usage */
    smki_ca_batch_report *r2 = run_batch(f, in2, out, 1, 0);
    assert_int_equal(r2->issued, 1);
    assert_int_equal(r2->name_clashes, 1);
    assert_true(r2->items[0].name_clash);
    char serial[2 * SMKI_SERIAL_LEN + 1], want[128];
    smki_hex_encode(r2->items[0].serial, SMKI_SERIAL_LEN, serial, 0);
    snprintf(want, sizeof want, "00db500000000001-ds-%s.pem", serial);
    assert_string_equal(r2->items[0].file, want);
    uint8_t *still = read_file(out, "00db500000000001-ds.pem", &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(first, still, len1);
    free(first);
    free(still);
    smki_ca_batch_report_free(r1);
    smki_ca_batch_report_free(r2);

    /* Two new keys for one device in the same group: the first takes the name. */
    const char *in3 = subdir(f, "in5c"), *out3 = subdir(f, "out5c");
    put_csr(in3, GOOD, 1, 0x00db500000000002ull, 1);
    put_csr(in3, GOOD, 1, 0x00db500000000002ull, 0); /* .csr.der sorts after .csr */
    smki_ca_batch_report *r3 = run_batch(f, in3, out3, 2, 0);
    assert_int_equal(r3->issued, 2);
    assert_int_equal(r3->name_clashes, 1);
    assert_string_equal(r3->items[0].file, "00db500000000002-ka.pem");
    assert_false(r3->items[0].name_clash);
    assert_true(r3->items[1].name_clash);
    assert_true(exists(out3, r3->items[1].file));
    assert_int_equal(r3->files_written, 2);
    smki_ca_batch_report_free(r3);
}

static void test_batch_sweeps_temporaries_of_dead_runs(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "in6"), *out = subdir(f, "out6");
    put_csr(in, GOOD, 0, 0x00db600000000001ull, 1);
    /* No process has this id (above any pid_max Linux allows). */
    put_file(out, ".smki-batch.2147483000.00db600000000001-ds.pem.tmp", "half", 4);
    put_file(out, "keep-me.txt", "operator's", 10);
    smki_ca_batch_report *r = run_batch(f, in, out, 1, 0);
    assert_int_equal(r->issued, 1);
    assert_false(exists(out, ".smki-batch.2147483000.00db600000000001-ds.pem.tmp"));
    assert_true(exists(out, "keep-me.txt"));
    assert_true(exists(out, "00db600000000001-ds.pem"));
    smki_ca_batch_report_free(r);
}

typedef struct {
    size_t calls, last_done, total;
    int went_back;
} progress_seen;

static void on_progress(const smki_ca_batch_report *r, void *arg)
{
    progress_seen *p = arg;
    if (r->done < p->last_done) p->went_back = 1;
    p->last_done = r->done;
    p->total = r->total;
    p->calls++;
}

static void test_batch_reports_progress_in_order_and_keeps_input_order_with_threads(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "in7"), *out = subdir(f, "out7");
    for (uint64_t i = 0; i < 40; i++) put_csr(in, i % 7 == 3 ? BAD_SIGNATURE : GOOD, 0, 0x00db700000000000ull + i, 1);
    smki_ca_batch_input *list = NULL;
    assert_ok(smki_ca_batch_input_open(in, &list));
    progress_seen seen = {0};
    smki_ca_batch_opts o = {out, 4, 3, 0, on_progress, &seen, NULL, NULL, NULL};
    smki_ca_batch_report *r = NULL;
    assert_ok(smki_ca_batch_run(f->dca, &f->db, list, &o, &r));
    assert_int_equal(r->refused, 6);
    assert_int_equal(r->issued, 34);
    assert_false(seen.went_back);
    assert_int_equal(seen.last_done, 40);
    assert_true(seen.calls >= 34 / 3);
    for (size_t i = 0; i < 40; i++) {
        const smki_ca_batch_item *it = &r->items[i];
        if (i % 7 == 3) {
            assert_int_equal(it->outcome, SMKI_BATCH_REFUSED);
            continue;
        }
        char want[64];
        snprintf(want, sizeof want, "%016llx-ds.pem", 0x00db700000000000ull + i);
        assert_string_equal(it->file, want); /* item i is the i-th file by name */
    }
    smki_ca_batch_report_free(r);
    smki_ca_batch_input_free(list);
}

/* ---- The gate a caller puts on a batch ------------------------------------------------------ */

typedef struct {
    int checks, groups, fail_group; /* fail_group: refuse the n-th group (1-based; 0: none) */
    size_t certs_seen;
    smki_db marks; /* a record the hook writes in the group's transaction */
} gate_t;

/* Refuses the CSR of one EUI-64, as the RA refuses a central-block ID. */
static int gate_check(const smki_csr *csr, void *arg)
{
    gate_t *g = arg;
    __atomic_fetch_add(&g->checks, 1, __ATOMIC_RELAXED);
    ENSURE(csr->hw_serial.b[7] != 0x05, SMKI_E_REFUSED, "the gate refuses device ...05");
    return 0;
}

static int gate_group(smki_txn *t, const smki_cert *const *certs, size_t n, void *arg)
{
    gate_t *g = arg;
    g->groups++;
    ENSURE(g->groups != g->fail_group, SMKI_E_REFUSED, "the gate refuses group %d", g->groups);
    for (size_t i = 0; i < n; i++) {
        GUARD(smki_txn_put(t, g->marks, certs[i]->serial, SMKI_SERIAL_LEN, "m", 1, 0));
        g->certs_seen++;
    }
    return 0;
}

static size_t marks(fixture *f, const gate_t *g)
{
    return test_store_count(f->store, g->marks);
}

static void test_batch_gate_refuses_csrs_by_name_and_joins_each_group_commit(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "gate-in"), *out = subdir(f, "gate-out");
    for (uint64_t i = 0; i < 7; i++) put_csr(in, GOOD, 0, 0x00db123400000000ull + i, 1);
    gate_t g = {0, 0, 0, 0, 0};
    assert_ok(smki_store_db(f->store, "gate_marks", 0, &g.marks));
    smki_ca_batch_input *bi = NULL;
    assert_ok(smki_ca_batch_input_open(in, &bi));
    smki_ca_batch_opts o = {out, 2, 2, 0, NULL, NULL, gate_check, gate_group, &g};
    smki_ca_batch_report *r = NULL;
    size_t before = cert_count(f);
    assert_ok(smki_ca_batch_run(f->dca, &f->db, bi, &o, &r));
    assert_int_equal(g.checks, 7);
    assert_int_equal(r->issued, 6);
    assert_int_equal(r->refused, 1);
    assert_int_equal(r->items[5].outcome, SMKI_BATCH_REFUSED);
    assert_int_equal(r->items[5].code, SMKI_E_REFUSED);
    assert_non_null(strstr(r->items[5].reason, "the gate refuses device ...05"));
    assert_false(exists(out, "00db123400000005-ds.pem"));
    /* Groups of 2: 3 commits, each with the hook's records for exactly its certificates. */
    assert_int_equal(r->commits, 3);
    assert_int_equal(g.certs_seen, 6);
    assert_int_equal(marks(f, &g), 6);
    assert_int_equal(cert_count(f), before + 6);
    smki_ca_batch_report_free(r);
    smki_ca_batch_input_free(bi);
}

static void test_batch_gate_refusing_a_group_writes_none_of_it_and_a_rerun_carries_on(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "gate2-in"), *out = subdir(f, "gate2-out");
    for (uint64_t i = 0; i < 6; i++) put_csr(in, GOOD, i % 2, 0x00db123400000100ull + i / 2, 1);
    gate_t g = {0, 0, 2, 0, 0};
    assert_ok(smki_store_db(f->store, "gate_marks", 0, &g.marks));
    smki_ca_batch_input *bi = NULL;
    assert_ok(smki_ca_batch_input_open(in, &bi));
    smki_ca_batch_opts o = {out, 1, 2, 0, NULL, NULL, NULL, gate_group, &g};
    smki_ca_batch_report *r = NULL;
    size_t before = cert_count(f);
    assert_fails(smki_ca_batch_run(f->dca, &f->db, bi, &o, &r), SMKI_E_REFUSED, "the gate refuses group 2");
    assert_non_null(r);
    assert_int_equal(r->issued, 2); /* the first group only */
    assert_int_equal(cert_count(f), before + 2);
    assert_int_equal(marks(f, &g), 2);
    assert_true(exists(out, "00db123400000100-ds.pem"));
    assert_false(exists(out, "00db123400000101-ds.pem"));
    smki_ca_batch_report_free(r);
    /* Again, the gate open: the first group is found issued, the rest issued now. */
    g.fail_group = 0;
    r = NULL;
    assert_ok(smki_ca_batch_run(f->dca, &f->db, bi, &o, &r));
    assert_int_equal(r->existing, 2);
    assert_int_equal(r->issued, 4);
    assert_int_equal(cert_count(f), before + 6);
    assert_int_equal(marks(f, &g), 6);
    smki_ca_batch_report_free(r);
    smki_ca_batch_input_free(bi);
}

static void test_batch_refusals_of_the_run_itself(void **state)
{
    fixture *f = *state;
    const char *in = subdir(f, "in8");
    put_csr(in, GOOD, 0, 0x00db800000000001ull, 1);
    smki_ca_batch_input *list = NULL;
    assert_ok(smki_ca_batch_input_open(in, &list));
    smki_ca_batch_report *r = NULL;
    size_t before = cert_count(f);
    /* Into the input folder (also by another spelling of it). */
    char same[1300];
    snprintf(same, sizeof same, "%s/./", in);
    smki_ca_batch_opts o = {same, 1, 0, 0, NULL, NULL, NULL, NULL, NULL};
    assert_fails(smki_ca_batch_run(f->dca, &f->db, list, &o, &r), SMKI_E_USAGE, "is the input folder");
    smki_ca_batch_report_free(r);
    r = NULL;
    /* With the organisation CA. */
    o.out_dir = subdir(f, "out8");
    assert_fails(smki_ca_batch_run(f->oca, &f->db, list, &o, &r), SMKI_E_USAGE, "device CA");
    assert_null(r);
    assert_int_equal(cert_count(f), before);
    smki_ca_batch_input_free(list);
    /* An input that is not there. */
    char missing[1300];
    snprintf(missing, sizeof missing, "%s/no-such", f->dir);
    assert_fails(smki_ca_batch_input_open(missing, &list), SMKI_E_NOTFOUND, "no-such");
}

/* Standard input ('smki ca batch --in -'): the bytes split as a file's, items named
 * after the name given, the bytes taken. */
static void test_batch_input_from_bytes_splits_pem_blocks(void **state)
{
    (void)state;
    static const char TEXT[] = "junk before\n"
                               "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                               "between\n"
                               "-----BEGIN CERTIFICATE REQUEST-----\nBBBB\n-----END CERTIFICATE REQUEST-----\n";
    uint8_t *bytes = malloc(sizeof TEXT - 1);
    assert_non_null(bytes);
    memcpy(bytes, TEXT, sizeof TEXT - 1);
    smki_ca_batch_input *in = NULL;
    assert_ok(smki_ca_batch_input_from_bytes("stdin", bytes, sizeof TEXT - 1, &in));
    assert_int_equal(smki_ca_batch_input_count(in), 2);
    assert_string_equal(smki_ca_batch_input_name(in, 0), "stdin#1");
    assert_string_equal(smki_ca_batch_input_name(in, 1), "stdin#2");
    smki_ca_batch_input_free(in);
    /* no PEM block: one CSR, DER (checked when it is issued) */
    bytes = malloc(4);
    assert_non_null(bytes);
    memcpy(bytes, "\x30\x03\x02\x01", 4);
    assert_ok(smki_ca_batch_input_from_bytes("stdin", bytes, 4, &in));
    assert_int_equal(smki_ca_batch_input_count(in), 1);
    assert_string_equal(smki_ca_batch_input_name(in, 0), "stdin");
    smki_ca_batch_input_free(in);
}

/* A service's batch (the enrolment service): CSRs from memory, no output folder; every
 * certificate found in the store by the report's issuer SKI and serial, and a re-run of
 * the same bytes issues nothing. */
static void test_batch_from_memory_without_files_answers_from_the_store(void **state)
{
    fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    for (uint64_t i = 0; i < 5; i++) {
        int dl;
        unsigned char *der = csr_der(GOOD, (int)(i & 1), 0x00db300000000000ull + i, &dl);
        assert_true(PEM_write(m, "CERTIFICATE REQUEST", "", der, dl) > 0);
        OPENSSL_free(der);
    }
    fclose(m);
    size_t before = cert_count(f);
    smki_ca_batch_report *r[2] = {NULL, NULL};
    for (int run = 0; run < 2; run++) {
        uint8_t *bytes = malloc(len);
        assert_non_null(bytes);
        memcpy(bytes, text, len);
        smki_ca_batch_input *in = NULL;
        assert_ok(smki_ca_batch_input_from_bytes("body", bytes, len, &in));
        smki_ca_batch_opts o = {NULL, 2, 2, 0, NULL, NULL, NULL, NULL, NULL};
        assert_ok(smki_ca_batch_run(f->dca, &f->db, in, &o, &r[run]));
        smki_ca_batch_input_free(in);
    }
    assert_int_equal(r[0]->issued, 5);
    assert_int_equal(r[0]->files_written, 0);
    assert_int_equal(r[1]->issued, 0);
    assert_int_equal(r[1]->existing, 5);
    assert_int_equal(r[1]->commits, 0);
    assert_int_equal(cert_count(f), before + 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(r[0]->items[i].file, "");
        assert_memory_equal(r[1]->items[i].serial, r[0]->items[i].serial, SMKI_SERIAL_LEN);
        smki_cert c;
        assert_ok(smki_ca_cert_get(&f->db, r[0]->issuer_ski, r[0]->items[i].serial, &c));
        assert_true(c.eui.b[7] == i && c.usage == ((i & 1) ? SMKI_USAGE_KA : SMKI_USAGE_DS));
    }
    smki_ca_batch_report_free(r[0]);
    smki_ca_batch_report_free(r[1]);
    free(text);
}

/* ---- Re-runs that meet issued CSRs among new ones, and a damaged CSR index ------------- */

#define MIXED 70 /* over two of the workers' chunks, so each chunk meets issued and new CSRs */

typedef struct {
    unsigned char *der[MIXED];
    int len[MIXED];
} csr_set;

static void make_csrs(csr_set *c, uint64_t base)
{
    for (size_t i = 0; i < MIXED; i++)
        c->der[i] = csr_der(i == 40 ? BAD_SIGNATURE : GOOD, (int)(i & 1), base + i, &c->len[i]);
}

static void free_csrs(csr_set *c)
{
    for (size_t i = 0; i < MIXED; i++) OPENSSL_free(c->der[i]);
}

/* The CSRs i with pick(i), as one PEM bundle in memory, through a batch. */
static int run_picked(fixture *f, const csr_set *c, int (*pick)(size_t), smki_ca_batch_report **out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    for (size_t i = 0; i < MIXED; i++)
        if (pick(i)) assert_true(PEM_write(m, "CERTIFICATE REQUEST", "", c->der[i], c->len[i]) > 0);
    fclose(m);
    smki_ca_batch_input *in = NULL;
    assert_ok(smki_ca_batch_input_from_bytes("mixed", (uint8_t *)text, len, &in));
    smki_ca_batch_opts o = {NULL, 2, 8, 0, NULL, NULL, NULL, NULL, NULL};
    int rc = smki_ca_batch_run(f->dca, &f->db, in, &o, out);
    smki_ca_batch_input_free(in);
    return rc;
}

static int every_third(size_t i) { return i % 3 == 0; }
static int all(size_t i) { return i < MIXED; }
static int first_three(size_t i) { return i < 3; }

static void test_batch_rerun_with_new_csrs_among_issued_ones_issues_only_the_new(void **state)
{
    fixture *f = *state;
    csr_set *c = calloc(1, sizeof *c);
    assert_non_null(c);
    make_csrs(c, 0x00db700000000000ull);
    size_t before = cert_count(f);
    smki_ca_batch_report *r1 = NULL, *r2 = NULL;
    assert_ok(run_picked(f, c, every_third, &r1));
    assert_int_equal(r1->issued, 24);
    assert_ok(run_picked(f, c, all, &r2));
    assert_int_equal(r2->total, MIXED);
    assert_int_equal(r2->existing, 24);
    assert_int_equal(r2->refused, 1);
    assert_int_equal(r2->issued, MIXED - 25);
    assert_int_equal(cert_count(f), before + MIXED - 1);
    for (size_t i = 0; i < MIXED; i++) {
        const smki_ca_batch_item *it = &r2->items[i];
        if (i == 40) {
            assert_int_equal(it->outcome, SMKI_BATCH_REFUSED);
            assert_int_equal(it->code, SMKI_E_VERIFY);
        } else if (i % 3 == 0) {
            assert_int_equal(it->outcome, SMKI_BATCH_EXISTING);
            assert_memory_equal(it->serial, r1->items[i / 3].serial, SMKI_SERIAL_LEN);
        } else {
            assert_int_equal(it->outcome, SMKI_BATCH_ISSUED);
        }
        if (i != 40) assert_int_equal(it->eui.b[7], (uint8_t)i);
    }
    smki_ca_batch_report_free(r1);
    smki_ca_batch_report_free(r2);
    free_csrs(c);
    free(c);
}

typedef struct {
    smki_db by_csr;
    uint8_t key[SMKI_KEYID_LEN + 32];
    const void *val;
    size_t vlen;
} damage_arg;

static int damage_fn(smki_txn *t, void *arg)
{
    damage_arg *a = arg;
    return smki_txn_put(t, a->by_csr, a->key, sizeof a->key, a->val, a->vlen, 0);
}

/* The CSR index entry of CSR i replaced by val. */
static void damage_entry(fixture *f, const smki_ca_batch_report *r, const csr_set *c, size_t i, const void *val,
                         size_t vlen)
{
    damage_arg a = {.val = val, .vlen = vlen};
    assert_ok(smki_store_db(f->store, "by_csr", 0, &a.by_csr));
    memcpy(a.key, r->issuer_ski, SMKI_KEYID_LEN);
    unsigned n = 0;
    assert_int_equal(EVP_Digest(c->der[i], (size_t)c->len[i], a.key + SMKI_KEYID_LEN, &n, EVP_sha256(), NULL), 1);
    assert_ok(smki_store_write(f->store, damage_fn, &a));
}

static void test_batch_stops_at_a_damaged_csr_index_entry_naming_its_csr(void **state)
{
    fixture *f = *state;
    csr_set *c = calloc(1, sizeof *c);
    assert_non_null(c);
    make_csrs(c, 0x00db710000000000ull);
    smki_ca_batch_report *r = NULL, *again = NULL;
    assert_ok(run_picked(f, c, first_three, &r));
    assert_int_equal(r->issued, 3);
    size_t before = cert_count(f);

    damage_entry(f, r, c, 1, "\1\2\3", 3);
    assert_fails(run_picked(f, c, first_three, &again), SMKI_E_CORRUPT, "mixed#2");
    assert_non_null(strstr(smki_error_msg(), "a CSR index entry of 3 octets"));
    assert_non_null(again);
    assert_int_equal(again->issued, 0);
    smki_ca_batch_report_free(again);

    uint8_t absent[SMKI_KEYID_LEN + SMKI_SERIAL_LEN] = {0};
    damage_entry(f, r, c, 2, absent, sizeof absent);
    damage_entry(f, r, c, 1, NULL, 0); /* the first damage stays in front: 0 octets */
    assert_fails(run_picked(f, c, first_three, &again), SMKI_E_CORRUPT, "a CSR index entry of 0 octets");
    smki_ca_batch_report_free(again);
    uint8_t key1[SMKI_KEYID_LEN + SMKI_SERIAL_LEN];
    memcpy(key1, r->issuer_ski, SMKI_KEYID_LEN);
    memcpy(key1 + SMKI_KEYID_LEN, r->items[1].serial, SMKI_SERIAL_LEN);
    damage_entry(f, r, c, 1, key1, sizeof key1); /* mended */
    assert_fails(run_picked(f, c, first_three, &again), SMKI_E_CORRUPT, "mixed#3");
    assert_non_null(strstr(smki_error_msg(), "names a certificate the store lacks"));
    smki_ca_batch_report_free(again);
    assert_int_equal(cert_count(f), before);
    smki_ca_batch_report_free(r);
    free_csrs(c);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_issues_one_certificate_per_csr_named_by_eui_and_usage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_rerun_gives_back_the_same_certificates_and_rewrites_lost_files,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_refuses_bad_csrs_by_name_and_issues_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_same_csr_twice_is_issued_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_name_clash_keeps_the_earlier_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_sweeps_temporaries_of_dead_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_reports_progress_in_order_and_keeps_input_order_with_threads,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_gate_refuses_csrs_by_name_and_joins_each_group_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_gate_refusing_a_group_writes_none_of_it_and_a_rerun_carries_on,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_refusals_of_the_run_itself, setup, teardown),
        cmocka_unit_test(test_batch_input_from_bytes_splits_pem_blocks),
        cmocka_unit_test_setup_teardown(test_batch_from_memory_without_files_answers_from_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_rerun_with_new_csrs_among_issued_ones_issues_only_the_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_stops_at_a_damaged_csr_index_entry_naming_its_csr, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
