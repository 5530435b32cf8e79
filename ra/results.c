/* What a request issued, found again in the CA's store: the certificate an organisation
 * or DCCKI request recorded, and for a device batch the certificates of each of its CSRs
 * (by the Device ID and the key's identifier, RFC 5280 4.2.1.2 method 2:
 * smki_keyid_method2). The smki command writes them out ('ra request execute
 * --out-dir'); a service hands them back. */
#include <stdlib.h>
#include <string.h>

#include "ra_private.h"

typedef struct {
    smki_cert_fn_t fn;
    void *arg;
    size_t found;
} certs_run;

static int certs_one(const smki_cert *c, void *arg)
{
    certs_run *x = arg;
    x->found++;
    return x->fn(c, x->arg);
}

int smki_ra_request_certs(smki_ra *ra, uint64_t id, smki_cert_fn_t fn, void *arg)
{
    ENSURE(ra && fn, SMKI_E_INTERNAL, "smki_ra_request_certs: missing argument");
    smki_ra_request r;
    GUARD(smki_ra_request_get(ra, id, &r));
    if (r.type != SMKI_REQ_ORGANISATION && r.type != SMKI_REQ_DEVICE_BATCH && r.type != SMKI_REQ_DCCKI_CLIENT &&
        r.type != SMKI_REQ_DCCKI_SERVER)
        return 0; /* revocations, recoveries and policy changes issue none */
    if (r.type != SMKI_REQ_DEVICE_BATCH) {
        if (!r.has_result) return 0;
        smki_cert *cert = malloc(sizeof *cert);
        ENSURE(cert, SMKI_E_NOMEM, "out of memory");
        int rc = smki_ca_cert_get(&ra->ca_view, r.result_issuer, r.result_serial, cert);
        if (rc == 0) rc = fn(cert, arg);
        free(cert);
        return rc < 0 ? rc : 0;
    }
    /* A batch: each issued CSR's certificates (the CSRs are issued in order, done_count of
     * them so far), found by its key's SKI and its Device ID. */
    certs_run x = {fn, arg, 0};
    for (uint32_t i = 0; i < r.done_count; i++) {
        uint8_t *der = NULL, ski[SMKI_KEYID_LEN];
        size_t len = 0;
        smki_csr *csr = NULL;
        GUARD(smki_ra_request_csr(ra, id, i, &der, &len));
        int rc = smki_csr_parse(der, len, &csr);
        free(der);
        GUARD(rc);
        rc = smki_keyid_method2(csr->point, SMKI_POINT_LEN, ski);
        smki_ca_query q = SMKI_CA_QUERY_ALL;
        q.ski = ski;
        q.eui = &csr->hw_serial;
        q.profile = SMKI_PROFILE_DEVICE;
        size_t before = x.found;
        /* every match: one, unless the same key was certified twice */
        if (rc == 0) rc = smki_ca_find(&ra->ca_view, &q, certs_one, &x);
        smki_csr_free(csr);
        GUARD(rc);
        ENSURE(x.found > before, SMKI_E_CORRUPT,
               "request %llu: no certificate in the store for its CSR %u, which it records as issued",
               (unsigned long long)id, i + 1);
    }
    return 0;
}
