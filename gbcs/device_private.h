/* Private to the device model: base's DER reader (with BER's long length forms, see
 * device_der.c) and writer, as the device model's messages use them. */
#ifndef SMKI_GBCS_DEVICE_PRIVATE_H
#define SMKI_GBCS_DEVICE_PRIVATE_H

#include "gbcs.h"

/* One TLV with a single-octet tag; *val covers its value. */
int smki_dev_dr_tlv(smki_cursor_t *c, uint8_t *tag, smki_cursor_t *val);
/* Expect tag; value in *val. */
int smki_dev_dr_expect(smki_cursor_t *c, uint8_t tag, const char *what, smki_cursor_t *val);
/* A non-negative INTEGER value (its content octets) of at most 8 octets. */
int smki_dev_dr_uint(smki_cursor_t *val, const char *what, uint64_t *out);
/* The whole TLV (tag, length, value) as bytes. */
int smki_dev_dr_take_tlv(smki_cursor_t *c, const uint8_t **p, size_t *n);
/* TrustAnchorCellIdentifier (value of its SEQUENCE). */
int smki_dev_dr_cell_id(smki_cursor_t *val, smki_ta_cell_id *out);

/* base's growing writer, with the TLVs begun and not ended (smki_dev_dw_end closes the last). */
typedef struct {
    smki_writer_t w;
    smki_der_mark open[12];
    int depth;
} dw_t;
void smki_dev_dw_init(dw_t *w);
void smki_dev_dw_free(dw_t *w);
void smki_dev_dw_begin(dw_t *w, uint8_t tag);
void smki_dev_dw_end(dw_t *w);
void smki_dev_dw_raw(dw_t *w, const void *p, size_t n);
void smki_dev_dw_tlv(dw_t *w, uint8_t tag, const void *p, size_t n);
void smki_dev_dw_uint(dw_t *w, uint8_t tag, uint64_t v);
void smki_dev_dw_key_usage(dw_t *w, uint8_t ku); /* BIT STRING of the KeyUsage first octet */
void smki_dev_dw_cell_id(dw_t *w, const smki_ta_cell_id *id);
/* Hand the buffer over (caller frees); fails if any write failed. */
int smki_dev_dw_finish(dw_t *w, uint8_t **out, size_t *len);

/* General Signing / General Ciphering (reference §5) as the device uses them, read by
 * the codec (smki_gbcs_parse). */
typedef struct {
    uint8_t cra;
    uint64_t counter;
    uint8_t originator[8], recipient[8];
    int has_date;
    uint16_t message_code;
    const uint8_t *other_info;
    size_t other_len;
    const uint8_t *content;
    size_t content_len;
    const uint8_t *signed_part;   /* after DF up to the end of content */
    size_t signed_len;
    int has_signature;
    int sig_none;                 /* no signature field at all (a pre-command) */
    const uint8_t *signature;     /* 64 octets raw r||s */
    const uint8_t *apdu;          /* DF .. end of signature */
    size_t apdu_len;
} dev_gs;
typedef struct {
    int wrapped;                  /* 1: DD (MAC present) */
    uint32_t invocation;
    const uint8_t *mac;
    dev_gs gs;
} dev_cmd;
int smki_dev_parse_command(const uint8_t *msg, size_t len, dev_cmd *out);
int smki_dev_parse_gs_bytes(const uint8_t *data, size_t len, dev_gs *g);
/* Build a General Signing APDU; sign with ds (NULL: unsigned 00). */
int smki_dev_build_gs(smki_key *ds, uint8_t cra, uint64_t counter, const uint8_t originator[8], const uint8_t recipient[8],
                 uint16_t message_code, const uint8_t *content, size_t content_len, uint8_t **out, size_t *len);

/* CS02b command, parsed (pointers into the message). */
typedef struct {
    uint8_t mode;
    int has_symmetric_key;
    int time_checks;               /* apply(0) -> 1, disapply(1) -> 0; absent -> 1 */
    int has_auth_cell;
    smki_ta_cell_id auth_cell;
    uint64_t auth_seq;
    int has_new_floor;
    uint64_t new_floor;
    size_t nother;
    struct { uint8_t role; uint64_t floor; } other[16];
    size_t nrepl;
    struct { const uint8_t *cert; size_t len; smki_ta_cell_id target; } repl[SMKI_CS02B_MAX_REPLACEMENTS];
    size_t npath;
    struct { const uint8_t *cert; size_t len; } path[8];
    int has_execution_time;
    time_t execution_time;         /* executionDateTime (GeneralizedTime YYYYMMDDHHMMSSZ) */
} dev_cs02b;
int dev_parse_cs02b(const uint8_t *content, size_t len, dev_cs02b *out);

#endif
