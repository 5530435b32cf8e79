/* repo/xml: a strict, bounded reader for the DCC tool's requests, a root of elements
 * of text. Not a general XML parser on purpose: no DTD, no entities, no comments, so
 * nothing in a request can make it expand, fetch or recurse. */
#include <string.h>

#include "repo.h"

static int is_ws(uint8_t ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }
static int is_name(uint8_t ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '-' || ch == '.' || ch == ':';
}

static void skip_ws(smki_cursor_t *c)
{
    while (c->left && is_ws(c->p[0])) smki_cur_skip(c, 1);
}

static int starts(const smki_cursor_t *c, const char *s)
{
    size_t n = strlen(s);
    return c->left >= n && memcmp(c->p, s, n) == 0;
}

/* A name (qualified as written) into full; its local part (after any prefix) into local. */
static int read_name(smki_cursor_t *c, char full[SMKI_REPO_XML_NAME_MAX], char local[SMKI_REPO_XML_NAME_MAX])
{
    size_t n = 0;
    while (n < c->left && is_name(c->p[n])) n++;
    ENSURE(n > 0, SMKI_E_INPUT, "XML: an element name was expected");
    ENSURE(n < SMKI_REPO_XML_NAME_MAX, SMKI_E_INPUT, "XML: an element name of %zu characters (at most %d)", n,
           SMKI_REPO_XML_NAME_MAX - 1);
    memcpy(full, c->p, n);
    full[n] = '\0';
    const char *colon = strrchr(full, ':');
    const char *l = colon ? colon + 1 : full;
    ENSURE(*l, SMKI_E_INPUT, "XML: the element name '%s' has no local part", full);
    memmove(local, l, strlen(l) + 1);
    return smki_cur_skip(c, n);
}

/* After the name of a start tag: attributes (checked, ignored) up to '>' or '/>'.
 * *empty is set for '/>'. */
static int read_attrs(smki_cursor_t *c, int *empty)
{
    char full[SMKI_REPO_XML_NAME_MAX], local[SMKI_REPO_XML_NAME_MAX];
    for (;;) {
        int had_ws = c->left && is_ws(c->p[0]);
        skip_ws(c);
        ENSURE(c->left, SMKI_E_INPUT, "XML: a start tag is not closed");
        if (c->p[0] == '>') {
            *empty = 0;
            return smki_cur_skip(c, 1);
        }
        if (starts(c, "/>")) {
            *empty = 1;
            return smki_cur_skip(c, 2);
        }
        ENSURE(had_ws, SMKI_E_INPUT, "XML: an attribute must follow white space");
        GUARD(read_name(c, full, local));
        skip_ws(c);
        ENSURE(c->left && c->p[0] == '=', SMKI_E_INPUT, "XML: attribute '%s' has no '='", full);
        smki_cur_skip(c, 1);
        skip_ws(c);
        ENSURE(c->left && (c->p[0] == '"' || c->p[0] == '\''), SMKI_E_INPUT, "XML: attribute '%s' is not quoted",
               full);
        uint8_t q = c->p[0];
        smki_cur_skip(c, 1);
        for (;;) {
            ENSURE(c->left, SMKI_E_INPUT, "XML: attribute '%s' is not closed", full);
            uint8_t ch = c->p[0];
            smki_cur_skip(c, 1);
            if (ch == q) break;
            ENSURE(ch != '<', SMKI_E_INPUT, "XML: '<' in attribute '%s'", full);
            ENSURE(ch != '&', SMKI_E_INPUT, "XML: entity references are not accepted (in attribute '%s')", full);
        }
    }
}

/* '</name>' with optional white space before '>'. */
static int read_end(smki_cursor_t *c, const char *full)
{
    ENSURE(starts(c, "</"), SMKI_E_INPUT, "XML: </%s> was expected", full);
    smki_cur_skip(c, 2);
    size_t n = strlen(full);
    ENSURE(c->left >= n && memcmp(c->p, full, n) == 0 && (c->left == n || !is_name(c->p[n])), SMKI_E_INPUT,
           "XML: the end tag does not match <%s>", full);
    smki_cur_skip(c, n);
    skip_ws(c);
    ENSURE(c->left && c->p[0] == '>', SMKI_E_INPUT, "XML: the end tag </%s> is not closed", full);
    return smki_cur_skip(c, 1);
}

/* Markup this reader never accepts, named. */
static int refuse_bang(const smki_cursor_t *c)
{
    if (starts(c, "<!DOCTYPE") || starts(c, "<!doctype"))
        return SMKI_FAIL(SMKI_E_INPUT, "XML: a document type declaration (<!DOCTYPE>) is not accepted");
    if (starts(c, "<!--")) return SMKI_FAIL(SMKI_E_INPUT, "XML: comments are not accepted");
    if (starts(c, "<![CDATA[")) return SMKI_FAIL(SMKI_E_INPUT, "XML: CDATA sections are not accepted");
    if (starts(c, "<!")) return SMKI_FAIL(SMKI_E_INPUT, "XML: markup declarations are not accepted");
    if (starts(c, "<?")) return SMKI_FAIL(SMKI_E_INPUT, "XML: processing instructions are not accepted here");
    return 0;
}

static int read_child(smki_cursor_t *c, smki_repo_xml *out)
{
    char full[SMKI_REPO_XML_NAME_MAX];
    ENSURE(out->n < SMKI_REPO_XML_CHILDREN, SMKI_E_INPUT, "XML: more than %d elements in <%s>",
           SMKI_REPO_XML_CHILDREN, out->root);
    GUARD(refuse_bang(c));
    smki_cur_skip(c, 1); /* '<' */
    GUARD(read_name(c, full, out->child[out->n].name));
    int empty = 0;
    GUARD(read_attrs(c, &empty));
    char *text = out->child[out->n].text;
    size_t n = 0;
    if (!empty) {
        /* Text only: '<' ends it, and it must be our end tag (no third level). */
        size_t i = 0;
        while (i < c->left && c->p[i] != '<') {
            ENSURE(c->p[i] != '&', SMKI_E_INPUT, "XML: entity references are not accepted (in <%s>)", full);
            ENSURE(c->p[i] >= 0x20 || is_ws(c->p[i]), SMKI_E_INPUT, "XML: control character 0x%02x in <%s>",
                   c->p[i], full);
            i++;
        }
        const uint8_t *t = c->p;
        size_t tl = i;
        while (tl && is_ws(t[0])) t++, tl--;
        while (tl && is_ws(t[tl - 1])) tl--;
        ENSURE(tl < SMKI_REPO_XML_TEXT_MAX, SMKI_E_INPUT, "XML: the text of <%s> is %zu characters (at most %d)", full,
               tl, SMKI_REPO_XML_TEXT_MAX - 1);
        memcpy(text, t, tl);
        n = tl;
        smki_cur_skip(c, i);
        ENSURE(c->left, SMKI_E_INPUT, "XML: <%s> is not closed", full);
        ENSURE(!starts(c, "<") || starts(c, "</"), SMKI_E_INPUT,
               "XML: <%s> holds an element: only text is expected there", full);
        GUARD(read_end(c, full));
    }
    text[n] = '\0';
    out->n++;
    return 0;
}

int smki_repo_xml_parse(const uint8_t *data, size_t len, smki_repo_xml *out)
{
    ENSURE(data || len == 0, SMKI_E_INTERNAL, "smki_repo_xml_parse: no data");
    memset(out, 0, sizeof *out);
    ENSURE(len <= SMKI_REPO_XML_MAX, SMKI_E_INPUT, "XML: %zu octets (at most %d)", len, SMKI_REPO_XML_MAX);
    smki_cursor_t c = smki_cursor(data, len);
    if (starts(&c, "\xEF\xBB\xBF")) smki_cur_skip(&c, 3);
    if (starts(&c, "<?xml") && c.left > 5 && is_ws(c.p[5])) {
        /* The prolog: its pseudo-attributes are not needed; it must close. */
        size_t i = 5;
        while (i + 1 < c.left && !(c.p[i] == '?' && c.p[i + 1] == '>')) {
            ENSURE(c.p[i] != '<' && c.p[i] != '&', SMKI_E_INPUT, "XML: a malformed <?xml ...?> prolog");
            i++;
        }
        ENSURE(i + 1 < c.left, SMKI_E_INPUT, "XML: the <?xml prolog is not closed");
        smki_cur_skip(&c, i + 2);
    }
    skip_ws(&c);
    ENSURE(c.left, SMKI_E_INPUT, "XML: no element");
    GUARD(refuse_bang(&c));
    ENSURE(c.p[0] == '<', SMKI_E_INPUT, "XML: the document must start with an element");
    smki_cur_skip(&c, 1);
    char full[SMKI_REPO_XML_NAME_MAX];
    GUARD(read_name(&c, full, out->root));
    int empty = 0;
    GUARD(read_attrs(&c, &empty));
    if (!empty) {
        for (;;) {
            skip_ws(&c);
            ENSURE(c.left, SMKI_E_INPUT, "XML: <%s> is not closed", full);
            if (starts(&c, "</")) break;
            ENSURE(c.p[0] == '<', SMKI_E_INPUT, "XML: text directly in <%s>: only elements are expected there",
                   full);
            GUARD(read_child(&c, out));
        }
        GUARD(read_end(&c, full));
    }
    skip_ws(&c);
    ENSURE(c.left == 0, SMKI_E_INPUT, "XML: %zu octets after the end of <%s>", c.left, full);
    return 0;
}

const char *smki_repo_xml_child(const smki_repo_xml *x, const char *name, int *dup)
{
    const char *found = NULL;
    *dup = 0;
    for (size_t i = 0; i < x->n; i++) {
        if (strcmp(x->child[i].name, name) != 0) continue;
        if (found) *dup = 1;
        found = x->child[i].text;
    }
    return found;
}
