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

/* ../shared/vectors/duis/keystore: the User's xmlSign and the DCC's DSP xmlSign. */
static const char CERTS[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfzCCASWgAwIBAgIQFL5K0uodDk7H9xVr0kYkpzAKBggqhkjOPQQDAjAaMQsw\n"
    "CQYDVQQLDAIwNzELMAkGA1UEAwwCWjEwIBcNMTgwMTAxMDAwMDAwWhgPMjExODAx\n"
    "MDEwMDAwMDBaMCExCzAJBgNVBAsMAjg3MRIwEAYDVQQtAwkAkLPVHzABAAAwWTAT\n"
    "BgcqhkjOPQIBBggqhkjOPQMBBwNCAASfiKvSIFxEFeHhGzLWEiBlfi045xQ/m4hL\n"
    "+s1+SKlje0Vb//LRzGVaUobobAJaVN5cRd43ZiioDY+0cTTwvUcuo0QwQjAdBgNV\n"
    "HSABAf8EEzARMA8GDSqGOgABhI+5DwECAQQwEQYDVR0OBAoECEusYLdMsaDbMA4G\n"
    "A1UdDwEB/wQEAwIHgDAKBggqhkjOPQQDAgNIADBFAiEA4LXpqbs5lRubjOM4FtEy\n"
    "7rowBKUyf62/hreDAIn3fEoCIDVnSEzk+wBn2NJ392d+S9sd03Wca5m4YVgyb2GT\n"
    "eX8c\n"
    "-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfzCCASWgAwIBAgIQfaxyg6rSm90jye+/3bUqQTAKBggqhkjOPQQDAjAaMQsw\n"
    "CQYDVQQLDAIwNzELMAkGA1UEAwwCWjEwIBcNMTgwMTAxMDAwMDAwWhgPMjExODAx\n"
    "MDEwMDAwMDBaMCExCzAJBgNVBAsMAjg5MRIwEAYDVQQtAwkAkLPVHzAAAAIwWTAT\n"
    "BgcqhkjOPQIBBggqhkjOPQMBBwNCAAR1LbFUHYKtxEOMX4h+bY8hpwWEzI6FjtFA\n"
    "aF1nucF1lKREzlMSYh3KE1HZh81lawKkvZXywU+n4AYtJHIlMq31o0QwQjAdBgNV\n"
    "HSABAf8EEzARMA8GDSqGOgABhI+5DwECAQQwEQYDVR0OBAoECEOVe67lfUfyMA4G\n"
    "A1UdDwEB/wQEAwIHgDAKBggqhkjOPQQDAgNIADBFAiEA+DDqU1AXTmCrr6xM4r/j\n"
    "qBYL5JxO66Os2aHtINwfGNgCIBkW84SMGAUWQ3gXbgiAKDhXu8KtwOjC3zUhihwQ\n"
    "1AKt\n"
    "-----END CERTIFICATE-----\n"
    ;
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
