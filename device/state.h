/* Private to the device model: the handle's layout and the helpers its files share. */
#ifndef SMKI_DEVICE_STATE_H
#define SMKI_DEVICE_STATE_H

#include <openssl/x509.h>
#include <pthread.h>

#include "device.h"

typedef struct {
    smki_db db; /* not stored: the handle of the database, set before transactions */
    uint32_t flags;
    uint64_t alert_counter;
    char ds_ref[SMKI_KEY_URI_MAX];
    char ka_ref[SMKI_KEY_URI_MAX];
    char token[64];
    char pending_ref[SMKI_KEY_URI_MAX]; /* the last CS02c key, awaiting its certificate */
} dev_record;

#define DEV_ZCACHE 4
struct smki_device {
    smki_eui64_t eui;
    dev_record rec;
    smki_hsm_opts hsm;
    size_t ncells;
    smki_ta_cell cells[SMKI_DEVICE_MAX_CELLS];
    EVP_PKEY *cell_pub[SMKI_DEVICE_MAX_CELLS];
    uint64_t floors[256];
    uint8_t has_floor[256];
    EVP_PKEY *ka_pub; /* the device's own KA public key */
    uint8_t ka_point[SMKI_POINT_LEN];
    smki_key *ds, *ka;
    pthread_mutex_t mu;
    struct {
        int used, mode;
        uint8_t point[SMKI_POINT_LEN];
        uint8_t z[32];
    } zcache[DEV_ZCACHE];
    unsigned znext;
};

typedef struct {
    int role;
    unsigned key_usage;
    int has_id;
    uint8_t id[8];
    uint8_t ski[8];
    int has_aki;
    uint8_t aki[8];
    uint8_t point[SMKI_POINT_LEN];
} dev_cert_facts_t;

int smki_dev_cert_facts(X509 *x, const uint8_t *der, size_t len, dev_cert_facts_t *f);
int smki_dev_cell_index(const smki_device *d, const smki_ta_cell_id *id);
int smki_dev_own_key(smki_device *d, int ka, smki_key **out);
/* peer's point is the cache key (the cell's stored point: not re-encoded per message). */
int smki_dev_shared_z(smki_device *d, smki_key *mine, int mode, EVP_PKEY *peer, const uint8_t point[SMKI_POINT_LEN],
                 uint8_t z[32]);
/* One transaction: cells replaced, floors set, the record's alert counter. */
int smki_dev_store_commit(smki_store *s, smki_device *d, const smki_ta_cell *cells, size_t ncells, const uint8_t *roles,
                     const uint64_t *floors, size_t nfloors, uint64_t alert_counter);

/* Future-dated commands waiting for their execution date-time (a CS02b today), in the
 * device's database: 'P' EUI(8) exec(8, +2^63: time order) counter(8) -> role(1)
 * originator(8) message code(2) content. */
#define DEV_CANCEL_TIME ((time_t)253402300799) /* 99991231235959Z: cancel, do not schedule */
typedef struct {
    int64_t exec;
    uint64_t counter;
    uint8_t role;
    uint8_t originator[8];
    uint16_t message_code;
    uint8_t *content; /* malloc'd */
    size_t content_len;
} dev_pending;
int smki_dev_pending_put(smki_store *s, smki_device *d, int64_t exec, uint64_t counter, uint8_t role,
                    const uint8_t originator[8], uint16_t mc, const uint8_t *content, size_t len);
/* Those due at `now` (exec <= now), oldest first; caller frees with smki_dev_pending_free. */
int smki_dev_pending_due(smki_store *s, smki_device *d, int64_t now, dev_pending **out, size_t *n);
void smki_dev_pending_free(dev_pending *p, size_t n);
int smki_dev_pending_del(smki_store *s, smki_device *d, int64_t exec, uint64_t counter);
/* Remove every pending command of this message code; *n: how many. */
int smki_dev_pending_cancel(smki_store *s, smki_device *d, uint16_t mc, size_t *n);

#endif
