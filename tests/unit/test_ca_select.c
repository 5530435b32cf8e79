/* ca/select.c: the decisions the smki command used to make, now the CA's for every
 * caller: the profile a CSR is issued under, a CA named by kind or SKI, and whether an
 * environment can be used (from configuration, or from the hierarchy in the store). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "helpers.h"

#define REAL_CSR "vectors/gbcs/csr/00db1234567890a0-ds.csr.der"

typedef struct {
    char dir[1024];
    smki_store *store;
    smki_ca_db db;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("ca_select"));
    if (test_software_hierarchy(f->dir, NULL, &f->store, &f->db) != 0) {
        print_error("hierarchy: %s\n", smki_error_msg());
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smki_store_close(f->store);
    free(f);
    return 0;
}

static void test_leaf_profile_comes_from_the_csr_unless_one_is_asked_for(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = test_read_shared(REAL_CSR, &len);
    smki_csr *csr = NULL;
    assert_ok(smki_csr_parse(der, len, &csr));
    smki_profile_id p = SMKI_PROFILE_UNKNOWN;
    assert_ok(smki_ca_leaf_profile(csr, SMKI_PROFILE_UNKNOWN, &p));
    assert_int_equal(p, SMKI_PROFILE_DEVICE); /* it names a device */
    assert_ok(smki_ca_leaf_profile(csr, SMKI_PROFILE_DCCKI_CLIENT, &p));
    assert_int_equal(p, SMKI_PROFILE_DCCKI_CLIENT); /* asked for: the issuance checks the CSR fits */
    assert_fails(smki_ca_leaf_profile(csr, SMKI_PROFILE_SMKI_OCA, &p), SMKI_E_USAGE, "not smki-oca");
    smki_csr_free(csr);
    free(der);
}

static void test_a_ca_kind_is_named_long_or_short_and_nothing_else(void **state)
{
    (void)state;
    smki_ca_kind k;
    assert_ok(smki_ca_kind_parse("smki-dca", &k));
    assert_int_equal(k, SMKI_CA_DCA);
    assert_ok(smki_ca_kind_parse("ica", &k));
    assert_int_equal(k, SMKI_CA_DCCKI_ICA);
    assert_fails(smki_ca_kind_parse("OCA", &k), SMKI_E_USAGE, "'OCA' is not a CA: smki-root, smki-oca (oca)");
    assert_fails(smki_ca_kind_parse("", &k), SMKI_E_USAGE, "is not a CA");
}

static void test_a_ca_is_selected_by_kind_or_ski_and_refused_when_env_lacks_it(void **state)
{
    fixture *f = *state;
    smki_ca_record oca;
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_OCA, &oca));
    smki_ca_selection sel;
    assert_ok(smki_ca_select(&f->db, "test", "oca", &sel));
    assert_int_equal(sel.kind, SMKI_CA_OCA);
    assert_false(sel.by_ski);
    assert_true(sel.current);
    assert_memory_equal(sel.ski, oca.cert.ski, SMKI_KEYID_LEN);
    assert_memory_equal(sel.serial, oca.cert.serial, SMKI_SERIAL_LEN);
    char hx[2 * SMKI_KEYID_LEN + 1];
    smki_hex_encode(oca.cert.ski, SMKI_KEYID_LEN, hx, 0);
    assert_ok(smki_ca_select(&f->db, "test", hx, &sel));
    assert_int_equal(sel.kind, SMKI_CA_OCA);
    assert_true(sel.by_ski);
    assert_true(sel.current);
    assert_fails(smki_ca_select(&f->db, "test", "0000000000000000", &sel), SMKI_E_NOTFOUND, NULL);
    assert_fails(smki_ca_select(&f->db, "production", "oca", &sel), SMKI_E_NOTFOUND, NULL);
    assert_fails(smki_ca_select(&f->db, "test", "4a1b2c3d4e5f607", &sel), SMKI_E_USAGE, "is not a CA"); /* 15 digits */
}

static void test_an_environment_is_usable_configured_or_from_its_hierarchy_in_the_store(void **state)
{
    fixture *f = *state;
    char store_dir[2048];
    snprintf(store_dir, sizeof store_dir, "%s/store", f->dir);
    if (test_engine_is_pg()) { /* the folder's store lives in the test cluster: name it there */
        char loc[2048];
        assert_ok(test_pg_location(store_dir, loc, sizeof loc));
        snprintf(store_dir, sizeof store_dir, "%s", loc);
    }
    assert_true(smki_store_exists(store_dir));
    assert_false(smki_store_exists(f->dir)); /* a folder without a store */
    assert_ok(smki_ca_env_check(NULL, NULL, "test"));
    assert_fails(smki_ca_env_check(NULL, NULL, "production"), SMKI_E_USAGE, "placeholders");

    assert_fails(smki_ca_env_check(NULL, NULL, "nowhere"), SMKI_E_USAGE, "nowhere");
    /* A hierarchy made with a configuration no longer at hand: its store makes it usable. */
    smki_conf *conf = test_software_ca_conf(f->dir, "lab",
                                            "[env.lab]\norg_policy = 2.999.1.1\ndevice_policy = 2.999.1.2\n"
                                            "hw_type = 2.999.1.3\ndccki_policy = 2.999.1.4\nroot_name = LAB ROOT\n"
                                            "oca_name = LAB OCA\ndca_name = LAB DCA\n"
                                            "[ca.lab]\ndccki_root_name = LAB DCCKI ROOT\ndccki_ica_name = LAB DCCKI ICA\n");
    smki_ca_init_opts o = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report *rep = malloc(sizeof *rep);
    assert_ok(smki_ca_init(&f->db, "lab", conf, &o, rep));
    free(rep);
    assert_ok(smki_ca_env_check(conf, NULL, "lab"));
    smki_conf_free(conf);
    smki_store_close(f->store); /* smki_ca_env_check opens it itself: once per process */
    f->store = NULL;
    assert_ok(smki_ca_env_check(NULL, store_dir, "lab"));                       /* from the store */
    assert_fails(smki_ca_env_check(NULL, NULL, "lab"), SMKI_E_USAGE, "unknown environment 'lab'"); /* without it */
    assert_fails(smki_ca_env_check(NULL, store_dir, "production"), SMKI_E_USAGE, "placeholders"); /* no hierarchy */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_profile_comes_from_the_csr_unless_one_is_asked_for),
        cmocka_unit_test(test_a_ca_kind_is_named_long_or_short_and_nothing_else),
        cmocka_unit_test_setup_teardown(test_a_ca_is_selected_by_kind_or_ski_and_refused_when_env_lacks_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_environment_is_usable_configured_or_from_its_hierarchy_in_the_store,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
