/* duis/xml.c: the hardened DUIS reader (libxml2 with no DTD, no entity, no network,
 * UTF-8 only, bounded) and the header facts every other part works from: the kind,
 * sr:RequestID / sr:ResponseID, the Service Reference Variant, the execution time. */
#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/uri.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "duis_private.h"

/* ---- The parser ----------------------------------------------------------------------- */
typedef struct {
    int doctype; /* a DOCTYPE was met: the parse was stopped there */
    int entity;  /* an entity declaration or reference was met */
} parse_guard;

/* SAX hooks that stop the parser at the first DOCTYPE, before any entity declaration
 * in it is read: XXE and entity expansion ("billion laughs") never start. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)name, (void)ext, (void)sys;
    xmlParserCtxtPtr c = ctx;
    ((parse_guard *)c->_private)->doctype = 1;
    xmlStopParser(c);
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pub, const xmlChar *sys,
                           xmlChar *content)
{
    (void)name, (void)type, (void)pub, (void)sys, (void)content;
    xmlParserCtxtPtr c = ctx;
    ((parse_guard *)c->_private)->entity = 1;
    xmlStopParser(c);
}

static xmlEntityPtr on_get_entity(void *ctx, const xmlChar *name)
{
    (void)name;
    xmlParserCtxtPtr c = ctx;
    ((parse_guard *)c->_private)->entity = 1;
    xmlStopParser(c);
    return NULL;
}

static int check_bytes(const uint8_t *xml, size_t len)
{
    ENSURE(len > 0, SMKI_E_INPUT, "empty document: give a DUIS Service Request or Response (XML)");
    ENSURE(len <= SMKI_DUIS_MAX_XML, SMKI_E_INPUT, "document of %zu octets is over the limit of %u: refused unread",
           len, SMKI_DUIS_MAX_XML);
    ENSURE(!(len >= 2 && ((xml[0] == 0xFE && xml[1] == 0xFF) || (xml[0] == 0xFF && xml[1] == 0xFE))),
           SMKI_E_INPUT, "document is UTF-16 (byte order mark): DUIS is UTF-8 only");
    ENSURE(memchr(xml, 0, len) == NULL, SMKI_E_INPUT,
           "document holds a NUL octet (at %zu): not UTF-8 text (DUIS is UTF-8 only)",
           (size_t)((const uint8_t *)memchr(xml, 0, len) - xml));
    return 0;
}

/* Canonical XML refuses relative namespace URIs (C14N 1.0 section 2.3; libxml2's C14N
 * fails on them), so the reader refuses them first, by name. */
static int check_namespaces(xmlNodePtr n, unsigned depth)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        for (xmlNsPtr ns = n->nsDef; ns; ns = ns->next) {
            if (!ns->href || !ns->href[0]) continue;
            xmlURIPtr u = xmlParseURI((const char *)ns->href);
            int absolute = u && u->scheme;
            xmlFreeURI(u);
            ENSURE(absolute, SMKI_E_INPUT, "namespace '%.80s' is not an absolute URI (canonical XML refuses it)",
                   (const char *)ns->href);
        }
        if (depth < 512) GUARD(check_namespaces(n->children, depth + 1));
    }
    return 0;
}

int smki_duis_parse(const uint8_t *xml, size_t len, xmlDocPtr *doc)
{
    *doc = NULL;
    GUARD(smki_duis_init());
    GUARD(check_bytes(xml, len));
    xmlParserCtxtPtr c = xmlNewParserCtxt();
    ENSURE(c, SMKI_E_NOMEM, "out of memory (XML parser)");
    parse_guard g = {0, 0};
    c->_private = &g;
    c->sax->internalSubset = on_doctype;
    c->sax->externalSubset = on_doctype;
    c->sax->entityDecl = on_entity_decl;
    c->sax->getEntity = on_get_entity;
    c->sax->getParameterEntity = on_get_entity;
    /* No XML_PARSE_NOENT, DTDLOAD, DTDATTR, DTDVALID, XINCLUDE or HUGE: nothing is
     * substituted or fetched, libxml2's own depth and size limits apply. */
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOXINCNODE | XML_PARSE_COMPACT;
    xmlDocPtr d = xmlCtxtReadMemory(c, (const char *)xml, (int)len, "duis.xml", NULL, opts);
    int rc = 0;
    if (g.doctype) {
        rc = SMKI_FAIL(SMKI_E_INPUT, "document has a DOCTYPE: DUIS allows no DTD (XXE and entity expansion refused)");
    } else if (g.entity) {
        rc = SMKI_FAIL(SMKI_E_INPUT, "document refers to an entity: DUIS allows none (entity expansion refused)");
    } else if (!d || !c->wellFormed) {
        const xmlError *e = xmlCtxtGetLastError(c);
        char msg[200];
        snprintf(msg, sizeof msg, "%s", e && e->message ? e->message : "parse failed");
        msg[strcspn(msg, "\r\n")] = 0;
        rc = SMKI_FAIL(SMKI_E_INPUT, "document is not well-formed XML (line %d): %s", e ? e->line : 0, msg);
    } else if (d->encoding && strcasecmp((const char *)d->encoding, "UTF-8") != 0) {
        rc = SMKI_FAIL(SMKI_E_INPUT, "document declares encoding '%s': DUIS is UTF-8 only", (const char *)d->encoding);
    } else if (d->intSubset || d->extSubset) {
        rc = SMKI_FAIL(SMKI_E_INPUT, "document has a DOCTYPE: DUIS allows no DTD");
    } else {
        rc = check_namespaces(xmlDocGetRootElement(d), 0);
    }
    if (rc < 0) {
        xmlFreeDoc(d);
    } else {
        *doc = d;
    }
    xmlFreeParserCtxt(c);
    return rc;
}

/* ---- Nodes ------------------------------------------------------------------------------ */
int smki_duis_is_el(const xmlNode *node, const char *ns, const char *name)
{
    /* The local name first: it tells most elements apart at its first character. */
    return node && node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0 && node->ns &&
           node->ns->href && strcmp((const char *)node->ns->href, ns) == 0;
}

xmlNodePtr smki_duis_next_el(xmlNodePtr node, int self)
{
    for (xmlNodePtr n = self ? node : node ? node->next : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE) return n;
    return NULL;
}

static void count_sigs(xmlNodePtr n, size_t *count, xmlNodePtr *first, unsigned depth)
{
    /* libxml2 refuses nesting deeper than 256 without XML_PARSE_HUGE: bounded. */
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (smki_duis_is_el(n, DUIS_DSIG_NS, "Signature")) {
            if (*count == 0 && first) *first = n;
            (*count)++;
        }
        if (depth < 512) count_sigs(n->children, count, first, depth + 1);
    }
}

size_t smki_duis_count_signatures(xmlNodePtr root, xmlNodePtr *first)
{
    size_t n = 0;
    if (first) *first = NULL;
    count_sigs(root, &n, first, 0);
    return n;
}

/* The element's text, trimmed of XML white space, into out. */
static int el_text(xmlNodePtr el, const char *what, char *out, size_t cap)
{
    xmlChar *s = xmlNodeGetContent(el);
    ENSURE(s, SMKI_E_NOMEM, "out of memory");
    const char *p = (const char *)s;
    size_t n = strlen(p);
    while (n && strchr(" \t\r\n", *p)) p++, n--;
    while (n && strchr(" \t\r\n", p[n - 1])) n--;
    int rc = 0;
    if (n >= cap)
        rc = SMKI_FAIL(SMKI_E_INPUT, "%s is %zu characters long (at most %zu)", what, n, cap - 1);
    else {
        memcpy(out, p, n);
        out[n] = 0;
    }
    xmlFree(s);
    return rc;
}

static xmlNodePtr child_el(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = smki_duis_next_el(parent ? parent->children : NULL, 1); n; n = smki_duis_next_el(n, 0))
        if (smki_duis_is_el(n, SMKI_DUIS_NS, name)) return n;
    return NULL;
}

static xmlNodePtr find_el(xmlNodePtr n, const char *name, unsigned depth)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (smki_duis_is_el(n, SMKI_DUIS_NS, name)) return n;
        if (depth < 512) {
            xmlNodePtr f = find_el(n->children, name, depth + 1);
            if (f) return f;
        }
    }
    return NULL;
}

/* ---- Header facts ------------------------------------------------------------------------ */
int smki_duis_id_parse(const char *text, smki_duis_id *out)
{
    memset(out, 0, sizeof *out);
    char buf[80];
    size_t n = strlen(text);
    ENSURE(n > 0 && n < sizeof buf, SMKI_E_INPUT, "DUIS id '%.80s' is not originator:target:counter", text);
    memcpy(buf, text, n + 1);
    char *a = buf, *b = strchr(a, ':'), *c = b ? strchr(b + 1, ':') : NULL;
    ENSURE(b && c && !strchr(c + 1, ':'), SMKI_E_INPUT,
           "DUIS id '%s' is not originator:target:counter (two EUI-64s and a decimal counter)", text);
    *b++ = 0;
    *c++ = 0;
    if (smki_eui64_parse(a, &out->originator) < 0 || smki_eui64_parse(b, &out->target) < 0)
        return SMKI_FAIL(SMKI_E_INPUT, "DUIS id '%s': an EUI-64 is malformed (90-B3-D5-1F-30-01-00-00 form)", text);
    ENSURE(*c && strlen(c) <= 20 && strspn(c, "0123456789") == strlen(c), SMKI_E_INPUT,
           "DUIS id '%s': the counter '%s' is not a decimal number", text, c);
    errno = 0;
    char *end;
    unsigned long long v = strtoull(c, &end, 10);
    ENSURE(errno == 0 && *end == 0, SMKI_E_INPUT, "DUIS id '%s': the counter is over 64 bits", text);
    out->counter = v;
    return 0;
}

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* xs:dateTime as DUIS writes it: 2030-01-15T09:00:00.00Z (fraction and zone optional,
 * a zone may be Z or +hh:mm / -hh:mm; without one, UTC). */
static int parse_datetime(const char *s, time_t *out)
{
    int Y, M, D, h, m, sec;
    size_t n = strlen(s);
    ENSURE(n >= 19 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
               digits(s, 4, &Y) == 0 && digits(s + 5, 2, &M) == 0 && digits(s + 8, 2, &D) == 0 &&
               digits(s + 11, 2, &h) == 0 && digits(s + 14, 2, &m) == 0 && digits(s + 17, 2, &sec) == 0,
           SMKI_E_INPUT, "sr:ExecutionDateTime '%s' is not an xs:dateTime (2030-01-15T09:00:00Z)", s);
    ENSURE(M >= 1 && M <= 12 && D >= 1 && D <= 31 && h <= 23 && m <= 59 && sec <= 59, SMKI_E_INPUT,
           "sr:ExecutionDateTime '%s' is out of range", s);
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        ENSURE(*p >= '0' && *p <= '9', SMKI_E_INPUT, "sr:ExecutionDateTime '%s': a fraction needs digits", s);
        while (*p >= '0' && *p <= '9') p++;
    }
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        ENSURE(strlen(p) == 6 && p[3] == ':' && digits(p + 1, 2, &oh) == 0 && digits(p + 4, 2, &om) == 0 &&
                   oh <= 14 && om <= 59,
               SMKI_E_INPUT, "sr:ExecutionDateTime '%s': the zone is not +hh:mm", s);
        off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    }
    ENSURE(*p == 0, SMKI_E_INPUT, "sr:ExecutionDateTime '%s' has trailing characters", s);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = timegm(&tm) - off;
    return 0;
}

static int read_id(xmlNodePtr header, const char *name, smki_duis_id *out)
{
    xmlNodePtr el = child_el(header, name);
    ENSURE(el, SMKI_E_INPUT, "sr:Header has no sr:%s", name);
    char text[80];
    GUARD(el_text(el, name, text, sizeof text));
    int rc = smki_duis_id_parse(text, out);
    if (rc < 0) smki_error_wrap("sr:%s", name);
    return rc;
}

static int read_variant(xmlNodePtr parent, smki_duis_info *out)
{
    xmlNodePtr r = child_el(parent, "ServiceReference");
    xmlNodePtr v = child_el(parent, "ServiceReferenceVariant");
    if (r) GUARD(el_text(r, "sr:ServiceReference", out->service_reference, sizeof out->service_reference));
    if (v) GUARD(el_text(v, "sr:ServiceReferenceVariant", out->variant, sizeof out->variant));
    return 0;
}

int smki_duis_info_read(xmlDocPtr doc, smki_duis_info *out)
{
    memset(out, 0, sizeof *out);
    xmlNodePtr root = xmlDocGetRootElement(doc);
    ENSURE(root, SMKI_E_INPUT, "document has no root element");
    if (smki_duis_is_el(root, SMKI_DUIS_NS, "Request"))
        out->kind = SMKI_DUIS_REQUEST;
    else if (smki_duis_is_el(root, SMKI_DUIS_NS, "Response"))
        out->kind = SMKI_DUIS_RESPONSE;
    else
        return SMKI_FAIL(SMKI_E_INPUT, "root element '%s' is not sr:Request or sr:Response in namespace %s",
                         (const char *)root->name, SMKI_DUIS_NS);
    xmlNodePtr header = child_el(root, "Header");
    ENSURE(header, SMKI_E_INPUT, "no sr:Header under the root");
    GUARD(read_id(header, "RequestID", &out->request_id));
    xmlNodePtr body = child_el(root, "Body");
    ENSURE(body, SMKI_E_INPUT, "no sr:Body under the root");
    if (out->kind == SMKI_DUIS_RESPONSE) {
        GUARD(read_id(header, "ResponseID", &out->response_id));
        out->has_response_id = 1;
        GUARD(read_variant(child_el(body, "ResponseMessage"), out));
    } else {
        GUARD(read_variant(header, out));
        ENSURE(out->variant[0], SMKI_E_INPUT, "sr:Header has no sr:ServiceReferenceVariant");
    }
    xmlNodePtr ex = find_el(body->children, "ExecutionDateTime", 0);
    if (ex) {
        char text[64];
        GUARD(el_text(ex, "sr:ExecutionDateTime", text, sizeof text));
        GUARD(parse_datetime(text, &out->execution_time));
        out->has_execution_time = 1;
    }
    out->has_signature = smki_duis_count_signatures(root, NULL) > 0;
    return 0;
}

int smki_duis_read(const uint8_t *xml, size_t len, smki_duis_info *out)
{
    memset(out, 0, sizeof *out);
    xmlDocPtr doc = NULL;
    GUARD(smki_duis_parse(xml, len, &doc));
    int rc = smki_duis_info_read(doc, out);
    xmlFreeDoc(doc);
    return rc;
}

uint8_t smki_duis_signer_role(smki_duis_kind kind)
{
    return kind == SMKI_DUIS_RESPONSE ? SMKI_ROLE_DSP_XML_SIGN : SMKI_ROLE_XML_SIGN;
}
