/*
 * fuzz_uri: the string validators every decoder leans on, on the input as
 * one string: wire_check_uri, wire_check_segment_id, wire_check_column and
 * wire_uri_has_dot_component. Oracles: what a validator accepts has the
 * shape its contract names, and wire_uri_has_dot_component agrees with a
 * plain reimplementation that splits the path with strtok.
 */
#include "fuzz.h"

#include "wire.h"

/* Reference: the part after the first "://" (or all of it), split on '/'. */
static bool ref_has_dot_component(const char *uri)
{
    const char *p = strstr(uri, "://");
    char *copy = strdup(p != NULL ? p + 3 : uri), *save = NULL, *tok;
    bool found = false;

    for (tok = strtok_r(copy, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save))
        if (strcmp(tok, ".") == 0 || strcmp(tok, "..") == 0)
            found = true;
    free(copy);
    return found;
}

static bool id_char(unsigned char c, bool dot_dash)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || (dot_dash && (c == '.' || c == '-'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    size_t n = strlen(s);
    struct wire_error err;

    if (wire_check_uri("uri", s, &err) == 0) {
        FUZZ_CHECK(n > 8 && n <= WIRE_URI_MAX && strncmp(s, "file:///", 8) == 0);
        FUZZ_CHECK(strchr(s, '%') == NULL && s[n - 1] != '/');
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
    } else {
        FUZZ_CHECK(strcmp(err.code, "invalid_field") == 0);
    }
    if (wire_check_segment_id("segment_id", s, &err) == 0) {
        FUZZ_CHECK(n >= 1 && n <= WIRE_ID_MAX && s[0] != '.' && s[0] != '-');
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(id_char((unsigned char)s[i], true));
    }
    if (wire_check_column("column", s, &err) == 0) {
        FUZZ_CHECK(n >= 1 && n <= WIRE_COLUMN_MAX);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(id_char((unsigned char)s[i], false));
    }
    FUZZ_CHECK(wire_uri_has_dot_component(s) == ref_has_dot_component(s));
    free(s);
    return 0;
}
