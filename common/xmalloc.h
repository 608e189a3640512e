/*
 * xmalloc: allocation that cannot fail. Running out of memory for our own
 * bookkeeping is fatal (logged, exit 1); sizes that come from the network are
 * capped by the caller before anything is allocated, so an allocation failure
 * here is a bug or a machine in real trouble, not a peer's doing.
 */
#ifndef SLUICE_XMALLOC_H
#define SLUICE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
/* Checks nmemb * size for overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Formats into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
