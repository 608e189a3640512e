/*
 * pbhttp: thin wrappers over evhttp and common/wire for request handlers.
 */
#include "pbhttp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "http.h"
#include "wire.h"
#include "wirejson.h"

const void *pbhttp_body(struct evhttp_request *req, size_t *ret_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);

    *ret_len = evbuffer_get_length(in);
    if (*ret_len == 0)
        return "";
    return evbuffer_pullup(in, -1);
}

void pbhttp_set_error_header(struct evhttp_request *req, const char *message)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char hdr[256] = "";

    /* A header value is printable ASCII: anything else is written as \xNN. */
    for (size_t i = 0, used = 0; message[i] != '\0' && used + 5 < sizeof(hdr); i++) {
        unsigned char ch = (unsigned char)message[i];

        if (ch >= 0x20 && ch < 0x7f)
            hdr[used++] = (char)ch;
        else
            used += (size_t)snprintf(hdr + used, 5, "\\x%02X", ch);
        hdr[used] = '\0';
    }
    if (hdr[0] == '\0')
        snprintf(hdr, sizeof(hdr), "refused");
    evhttp_remove_header(h, "X-Sluice-Error");
    evhttp_add_header(h, "X-Sluice-Error", hdr);
}

void pbhttp_reply_error(struct evhttp_request *req, int status, const char *code,
                        const char *message)
{
    struct wire_error e;
    uint8_t *buf;
    size_t len;

    snprintf(e.code, sizeof(e.code), "%s", code);
    snprintf(e.message, sizeof(e.message), "%s", message);
    pbhttp_set_error_header(req, message);
    buf = wire_error_encode(&e, &len);
    http_reply(req, status, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
}

bool pbhttp_check_content_type(struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    size_t n = strlen(WIRE_CONTENT_TYPE);
    char msg[160];

    if (ct != NULL && strncmp(ct, WIRE_CONTENT_TYPE, n) == 0 && (ct[n] == '\0' || ct[n] == ';'))
        return true;
    snprintf(msg, sizeof(msg), "Content-Type: expected %s, got %.80s", WIRE_CONTENT_TYPE,
             ct != NULL ? ct : "none");
    pbhttp_reply_error(req, 415, "unsupported_media_type", msg);
    return false;
}

int pbhttp_take_body(struct evhttp_request *req, const void **ret_body, size_t *ret_len)
{
    if (!pbhttp_check_content_type(req))
        return 415;
    *ret_body = pbhttp_body(req, ret_len);
    return 0;
}

int pbhttp_decoded(struct evhttp_request *req, int r, const struct wire_error *err)
{
    int status;

    if (r == 0)
        return 0;
    status = r == -EMSGSIZE ? 413 : 400;
    pbhttp_reply_error(req, status, err->code, err->message);
    return status;
}

void pbhttp_reply(struct evhttp_request *req, int status, uint8_t *buf, size_t len)
{
    http_reply(req, status, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
}

void pbhttp_reply_msg(struct evhttp_request *req, int status, enum wire_msg m, uint8_t *buf,
                      size_t len)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    char *json;
    size_t jlen;

    evhttp_add_header(evhttp_request_get_output_headers(req), "Vary", "Accept");
    if (!wirejson_accepted(evhttp_find_header(in, "Accept")) ||
        wirejson_encode(m, buf, len, 0, &json, &jlen) < 0) {
        pbhttp_reply(req, status, buf, len);
        return;
    }
    free(buf);
    http_reply(req, status, "application/json", json, jlen);
    free(json);
}
