/* Private to gbcs: the DER readers and the General Signing parse that only the codec
 * (device_der.c) and its tests use; the rest of the device messages' codec is public
 * (gbcs.h). */
#ifndef SMKI_GBCS_DEVICE_PRIVATE_H
#define SMKI_GBCS_DEVICE_PRIVATE_H

#include "gbcs.h"

/* One TLV with a single-octet tag; *val covers its value. */
int smki_gbcs_der_tlv(smki_cursor_t *c, uint8_t *tag, smki_cursor_t *val);
/* The whole TLV (tag, length, value) as bytes. */
int smki_gbcs_der_take_tlv(smki_cursor_t *c, const uint8_t **p, size_t *n);
/* TrustAnchorCellIdentifier (value of its SEQUENCE). */
int smki_gbcs_der_cell_id(smki_cursor_t *val, smki_ta_cell_id *out);
/* A General Signing APDU on its own. */
int smki_gbcs_gs_parse(const uint8_t *data, size_t len, smki_gbcs_gs *g);


#endif
