/* The General Signing APDU as the gateway reads it (reference §5), from the codec's parse
 * (gbcs.h): of a pre-command, a General Ciphering command (the APDU inside is taken), a
 * response or an alert. Shared by the check (gateway.c) and the quarantine's release
 * (quarantine.c), which otherwise would read each other. */
#include <string.h>

#include "gateway_private.h"

int smki_gw_apdu_parse(const uint8_t *msg, size_t len, gw_apdu *out)
{
    memset(out, 0, sizeof *out);
    smki_gbcs_msg m;
    GUARD(smki_gbcs_parse(msg, len, &m));
    /* A General Ciphering command is taken for the General Signing APDU inside: its MAC is
     * not ours to trust; a passing message gets a fresh one. */
    ENSURE(m.kind == SMKI_GBCS_SIGNING || m.kind == SMKI_GBCS_CIPHERING, SMKI_E_INPUT,
           "a %s message is not a signed pre-command (General Block Transfer is not supported)",
           smki_gbcs_kind_name(m.kind));
    const smki_gbcs_signing *g = &m.gsa;
    out->msg = msg;
    out->msg_len = len;
    out->apdu = msg + g->offset;
    out->apdu_len = g->len;
    out->signed_part = msg + g->signed_offset;
    out->signed_len = g->signed_len;
    out->sig = g->sig_state == SMKI_GBCS_SIG_PRESENT ? g->signature : NULL;
    out->cra = g->cra;
    out->counter = g->counter;
    memcpy(out->originator.b, g->originator, 8);
    memcpy(out->target.b, g->recipient, 8);
    out->code = g->message_code;
    out->date_time = g->date_time;
    out->content = g->content;
    out->content_len = g->content_len;
    return 0;
}
