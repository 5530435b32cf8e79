/* libFuzzer target for the certificate linter (policy/lint.c) and the PEM/DER
 * splitter in front of it. Beyond not crashing or leaking: a lint always completes
 * (status 0) and is deterministic, its totals cover what it stores, every finding
 * carries a known rule id and a printable message (they reach terminals and JSON),
 * and the description fits its buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_lint: invariant failed: %s\n", what);
    abort();
}

static void check_report(const smki_lint_report *r)
{
    require(r->count <= SMKI_LINT_MAX_FINDINGS, "stored findings fit the array");
    require(r->errors + r->warnings >= r->count, "totals cover the stored findings");
    require(r->profile >= SMKI_PROFILE_UNKNOWN && r->profile < SMKI_PROFILE_COUNT, "a profile of the table");
    require(r->role >= -1 && r->role <= 0xff, "role is -1 or an octet");
    require(r->role < 0 || smki_role_by_code((unsigned)r->role) != NULL, "a reported role is a Remote Party Role");
    size_t errors = 0;
    for (size_t i = 0; i < r->count; i++) {
        const smki_lint_finding *f = &r->findings[i];
        require(f->rule && f->rule[0], "a finding has a rule id");
        for (const char *p = f->rule; *p; p++)
            require((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_',
                    "a rule id is lowercase dotted");
        require(strchr(f->rule, '.') != NULL, "a rule id has a family");
        require(f->message[0] != '\0', "a finding has a message");
        for (const char *m = f->message; *m; m++)
            require((unsigned char)*m >= 0x20 && (unsigned char)*m != 0x7f, "a message is printable");
        if (f->level == SMKI_LINT_ERROR) errors++;
    }
    require(errors <= r->errors, "stored errors within the total");
    require(smki_lint_is_clean(r) == (r->errors == 0), "clean means no errors");
    char what[160];
    smki_lint_describe(r, what, sizeof what);
    require(strlen(what) < sizeof what, "description fits");
    char small[8];
    smki_lint_describe(r, small, sizeof small);
    require(strlen(small) < sizeof small, "description is cut to its buffer");
}

static int same(const smki_lint_report *a, const smki_lint_report *b)
{
    if (a->profile != b->profile || a->errors != b->errors || a->warnings != b->warnings || a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->findings[i].rule, b->findings[i].rule) != 0 ||
            strcmp(a->findings[i].message, b->findings[i].message) != 0)
            return 0;
    return 1;
}

static int lint_block(void *ctx, size_t index, const uint8_t *der, size_t len)
{
    (void)ctx;
    (void)index;
    static smki_lint_report r;
    require(smki_lint_der(der, len, NULL, &r) == 0, "a PEM block lints");
    check_report(&r);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smki_lint_report a, b;
    const smki_env *test = smki_env_builtin("test");
    require(smki_lint_der(data, size, NULL, &a) == 0, "lint completes without an environment");
    check_report(&a);
    require(smki_lint_der(data, size, NULL, &b) == 0 && same(&a, &b), "lint is deterministic");
    require(smki_lint_der(data, size, test, &b) == 0, "lint completes against the test environment");
    check_report(&b);
    if (a.env_inferred) require(same(&a, &b), "an inferred test environment is the test environment");

    size_t certs = 0, others = 0;
    int rc = smki_cert_each(data, size, lint_block, NULL, &certs, &others);
    require(rc == 0 || rc == SMKI_E_INPUT, "splitting succeeds or refuses the input");
    return 0;
}
