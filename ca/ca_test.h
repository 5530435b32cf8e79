/* ca: hooks for tests only (never included by the library's callers): state a test
 * forces that production code never would. */
#ifndef SMKI_CA_TEST_H
#define SMKI_CA_TEST_H

#include <stdint.h>

#include "ca.h"

/* For tests only: the next serials are this one (NULL: back to the CSPRNG), so that
 * a duplicate can be forced; issuance does not retry a fixed serial. Per thread. */
void smki_ca_test_fix_serial(const uint8_t serial[SMKI_SERIAL_LEN]);

#endif
