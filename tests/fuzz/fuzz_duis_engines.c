/* libFuzzer target: smki's DUIS verification (libxml2's C14N straight into SHA-256,
 * duis/c14n.c) and xmlsec's own DSig processing give the same answer on any bytes: the
 * same status and, on a failed check, the same reason (digest, signature value, or
 * the same refusal before either). Seeded with the DCC's signed vectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duis/duis.h"
#include "duis/duis_private.h"

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

static int add(void *ctx, size_t index, const uint8_t *der, size_t len)
{
    (void)index;
    X509 *c = NULL;
    if (smki_cert_load(der, len, &c) < 0) return -1;
    int rc = smki_duis_trust_add_cert(ctx, c);
    X509_free(c);
    return rc;
}

/* The status and what kind of failure, as text to compare. */
static void outcome(int rc, char *out, size_t cap)
{
    const char *m = smki_error_msg();
    const char *kind = rc == 0                                              ? "accepted"
                       : strstr(m, "Reference digest does not match")        ? "digest"
                       : strstr(m, "signature value does not verify")       ? "signature"
                       : rc == SMKI_E_VERIFY                                ? "unprocessable"
                                                                            : m;
    snprintf(out, cap, "%d %s", rc, kind);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smki_duis_trust *t;
    if (!t) {
        size_t certs = 0, others = 0;
        if (smki_duis_trust_new(&t) < 0 ||
            smki_cert_each((const uint8_t *)CERTS, sizeof CERTS - 1, add, t, &certs, &others) < 0 || certs != 2) {
            fprintf(stderr, "fuzz_duis_engines: the two certificates do not load\n");
            abort();
        }
    }
    char a[600], b[600];
    outcome(smki_duis_engine_verify(DUIS_ENGINE_C14N, t, T2020, data, size, NULL), a, sizeof a);
    outcome(smki_duis_engine_verify(DUIS_ENGINE_XMLSEC, t, T2020, data, size, NULL), b, sizeof b);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "fuzz_duis_engines: libxml2 C14N path '%s', xmlsec '%s'\n", a, b);
        abort();
    }
    smki_error_clear();
    return 0;
}
