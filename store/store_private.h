/* store: what the store's own files share and nothing outside store/ may use. */
#ifndef SMKI_STORE_PRIVATE_H
#define SMKI_STORE_PRIVATE_H

#include "store.h"

/* The longest key LMDB accepts in this environment (511 with Debian's build). */
size_t store_max_key(const smki_store *s);
int store_is_read_only(const smki_store *s);

#endif
