/* ../shared/vectors/duis/keystore (test data published by the DCC), as PEM text for the
 * DUIS fuzz targets: the User 90-B3-D5-1F-30-01-00-00's xmlSign certificate
 * and the DCC's DSP xmlSign certificate. */
#ifndef SMKI_FUZZ_DUIS_KEYSTORE_H
#define SMKI_FUZZ_DUIS_KEYSTORE_H

#define DUIS_USER_XMLSIGN_CERT \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIBfzCCASWgAwIBAgIQFL5K0uodDk7H9xVr0kYkpzAKBggqhkjOPQQDAjAaMQsw\n" \
    "CQYDVQQLDAIwNzELMAkGA1UEAwwCWjEwIBcNMTgwMTAxMDAwMDAwWhgPMjExODAx\n" \
    "MDEwMDAwMDBaMCExCzAJBgNVBAsMAjg3MRIwEAYDVQQtAwkAkLPVHzABAAAwWTAT\n" \
    "BgcqhkjOPQIBBggqhkjOPQMBBwNCAASfiKvSIFxEFeHhGzLWEiBlfi045xQ/m4hL\n" \
    "+s1+SKlje0Vb//LRzGVaUobobAJaVN5cRd43ZiioDY+0cTTwvUcuo0QwQjAdBgNV\n" \
    "HSABAf8EEzARMA8GDSqGOgABhI+5DwECAQQwEQYDVR0OBAoECEusYLdMsaDbMA4G\n" \
    "A1UdDwEB/wQEAwIHgDAKBggqhkjOPQQDAgNIADBFAiEA4LXpqbs5lRubjOM4FtEy\n" \
    "7rowBKUyf62/hreDAIn3fEoCIDVnSEzk+wBn2NJ392d+S9sd03Wca5m4YVgyb2GT\n" \
    "eX8c\n" \
    "-----END CERTIFICATE-----\n"

#define DUIS_DSP_XMLSIGN_CERT \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIBfzCCASWgAwIBAgIQfaxyg6rSm90jye+/3bUqQTAKBggqhkjOPQQDAjAaMQsw\n" \
    "CQYDVQQLDAIwNzELMAkGA1UEAwwCWjEwIBcNMTgwMTAxMDAwMDAwWhgPMjExODAx\n" \
    "MDEwMDAwMDBaMCExCzAJBgNVBAsMAjg5MRIwEAYDVQQtAwkAkLPVHzAAAAIwWTAT\n" \
    "BgcqhkjOPQIBBggqhkjOPQMBBwNCAAR1LbFUHYKtxEOMX4h+bY8hpwWEzI6FjtFA\n" \
    "aF1nucF1lKREzlMSYh3KE1HZh81lawKkvZXywU+n4AYtJHIlMq31o0QwQjAdBgNV\n" \
    "HSABAf8EEzARMA8GDSqGOgABhI+5DwECAQQwEQYDVR0OBAoECEOVe67lfUfyMA4G\n" \
    "A1UdDwEB/wQEAwIHgDAKBggqhkjOPQQDAgNIADBFAiEA+DDqU1AXTmCrr6xM4r/j\n" \
    "qBYL5JxO66Os2aHtINwfGNgCIBkW84SMGAUWQ3gXbgiAKDhXu8KtwOjC3zUhihwQ\n" \
    "1AKt\n" \
    "-----END CERTIFICATE-----\n"

#endif
