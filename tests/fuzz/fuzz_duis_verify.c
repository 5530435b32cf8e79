/* libFuzzer target for the DUIS verifier (duis/dsig.c, trust.c): any bytes through
 * the hardened reader, the profile check, the signer look-up by issuer and serial, the
 * binding rules and xmlsec's digest and signature. Beyond not crashing: verification
 * is deterministic, and a document that verifies is a DUIS document whose signer is one
 * of the two trusted certificates (the DCC's published xmlSign and DSP xmlSign), of
 * the role its kind needs, bound to a Request's originator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duis/duis.h"
#include "duis_keystore.h"

/* ../shared/vectors/duis/keystore: the User's xmlSign and the DCC's DSP xmlSign. */
static const char CERTS[] = DUIS_USER_XMLSIGN_CERT DUIS_DSP_XMLSIGN_CERT;
#define T2020 ((time_t)1577836800)

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_duis_verify: invariant failed: %s\n", what);
    abort();
}

static int add(void *ctx, size_t index, const uint8_t *der, size_t len)
{
    (void)index;
    X509 *c = NULL;
    if (smki_cert_load(der, len, &c) < 0) return -1;
    int rc = smki_duis_trust_add_cert(ctx, c);
    X509_free(c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smki_duis_trust *t;
    if (!t) {
        size_t certs = 0, others = 0;
        require(smki_duis_trust_new(&t) == 0, "trust");
        require(smki_cert_each((const uint8_t *)CERTS, sizeof CERTS - 1, add, t, &certs, &others) == 0 && certs == 2,
                "the two certificates load");
    }
    smki_duis_report a, b;
    int ra = smki_duis_verify(t, T2020, data, size, &a);
    int rb = smki_duis_verify(t, T2020, data, size, &b);
    require(ra == rb, "deterministic status");
    if (ra == 0) {
        smki_duis_info i;
        require(smki_duis_read(data, size, &i) == 0, "a verified document reads");
        require(a.signer_role == smki_duis_signer_role(i.kind), "the signer's role is the kind's");
        if (i.kind == SMKI_DUIS_REQUEST)
            require(smki_eui64_cmp(&a.signer, &i.request_id.originator) == 0, "a Request's signer is its originator");
    }
    smki_error_clear();
    return 0;
}
