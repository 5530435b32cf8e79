/* What store_crash_child writes and test_store checks after killing it: record i
 * has an 8-octet big-endian key and a value derived from i alone, of varying size,
 * so the checker can recompute every value it finds. */
#ifndef SMKI_STORE_CRASH_H
#define SMKI_STORE_CRASH_H

#include <stddef.h>
#include <stdint.h>

#define CRASH_DB "records"
#define CRASH_GROUP 100
#define CRASH_VALUE_MAX 520

static inline void crash_key(uint64_t i, uint8_t key[8])
{
    for (int j = 0; j < 8; j++) key[j] = (uint8_t)(i >> (56 - 8 * j));
}

/* Fills out (CRASH_VALUE_MAX octets) and returns the length: 8 to 519 octets. */
static inline size_t crash_value(uint64_t i, uint8_t *out)
{
    size_t len = 8 + (size_t)((i * 2654435761u) % 512);
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    for (size_t j = 0; j < len; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[j] = (uint8_t)(x >> 24);
    }
    return len;
}

#endif
