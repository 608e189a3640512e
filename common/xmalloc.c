/*
 * xmalloc: thin wrappers that turn allocation failure into a fatal error, so
 * callers never carry an out-of-memory path for small bookkeeping objects.
 */
#include "xmalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void *xmalloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);

    if (p == NULL)
        fatal("out_of_memory", "size=%zu", size);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);

    if (p == NULL)
        fatal("out_of_memory", "nmemb=%zu size=%zu", nmemb, size);
    return p;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
    void *p;

    if (size != 0 && nmemb > SIZE_MAX / size)
        fatal("out_of_memory", "overflow nmemb=%zu size=%zu", nmemb, size);
    p = realloc(ptr, nmemb * size == 0 ? 1 : nmemb * size);
    if (p == NULL)
        fatal("out_of_memory", "nmemb=%zu size=%zu", nmemb, size);
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        fatal("out_of_memory", "strdup");
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);

    if (p == NULL)
        fatal("out_of_memory", "strndup");
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (r < 0)
        fatal("out_of_memory", "asprintf");
    return p;
}
