/* Private to the device model: the handle's layout and the helpers its files share. */
#ifndef SMKI_GBCS_DEVICE_STATE_H
#define SMKI_GBCS_DEVICE_STATE_H

#include <openssl/x509.h>
#include <pthread.h>

#include "gbcs.h"

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

int dev_cert_facts(X509 *x, const uint8_t *der, size_t len, dev_cert_facts_t *f);
int dev_cell_index(const smki_device *d, const smki_ta_cell_id *id);
int dev_own_key(smki_device *d, int ka, smki_key **out);
/* peer's point is the cache key (the cell's stored point: not re-encoded per message). */
int dev_shared_z(smki_device *d, smki_key *mine, int mode, EVP_PKEY *peer, const uint8_t point[SMKI_POINT_LEN],
                 uint8_t z[32]);
/* One transaction: cells replaced, floors set, the record's alert counter. */
int dev_reload(smki_store *s, smki_device *d);
int dev_store_commit(smki_store *s, smki_device *d, const smki_ta_cell *cells, size_t ncells, const uint8_t *roles,
                     const uint64_t *floors, size_t nfloors, uint64_t alert_counter);

#endif
