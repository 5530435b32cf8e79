/* libFuzzer target for the Service Request eligibility table (gbcs/srv.c). Beyond not
 * crashing: parsing is deterministic; a refusal is SMKI_E_INPUT naming "fuzz:LINE"; an
 * accepted table has no more rows than lines, no (srv, code) twice, at least one eligible
 * User Role a row among at most 32 names, and each row's roles give back its mask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_gbcs_srv: invariant failed: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    smki_srv_table a, b;
    smki_error_clear();
    int rc = smki_srv_table_parse(data, size, "fuzz", &a);
    int rc2 = smki_srv_table_parse(data, size, "fuzz", &b);
    require(rc == rc2, "parsing twice gives the same outcome");
    if (rc < 0) {
        require(rc == SMKI_E_INPUT || rc == SMKI_E_NOMEM, "a refusal is SMKI_E_INPUT");
        require(strncmp(smki_error_msg(), "fuzz:", 5) == 0, "the refusal names the line");
        require(a.rows == NULL && a.count == 0, "nothing returned on a refusal");
        smki_error_clear();
        return 0;
    }
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    require(a.count <= lines && a.count == b.count, "rows bounded by lines, the same twice");
    require(a.nroles <= SMKI_SRV_MAX_ROLE_NAMES, "at most 32 role names");
    for (size_t i = 0; i < a.count; i++) {
        require(a.rows[i].roles != 0, "every row names a User Role");
        require(a.nroles == 32 || a.rows[i].roles < (1u << a.nroles), "roles within the names");
        for (size_t j = 0; j < i; j++)
            require(!(a.rows[j].code == a.rows[i].code && strcmp(a.rows[j].srv, a.rows[i].srv) == 0),
                    "no (srv, code) twice");
        char roles[32 * 10] = "";
        size_t o = 0;
        for (size_t k = 0; k < a.nroles; k++)
            if (a.rows[i].roles & (1u << k))
                o += (size_t)snprintf(roles + o, sizeof roles - o, "%s%s", o ? "," : "", a.role_names[k]);
        require(smki_srv_roles_mask(&a, roles) == a.rows[i].roles, "a row's role names give back its mask");
    }
    smki_srv_table_free(&a);
    smki_srv_table_free(&b);
    return 0;
}
