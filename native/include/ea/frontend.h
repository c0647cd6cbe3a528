/*
 * edge-assistant audio front end: the C contract.
 *
 * Plain C11, no Python.h. Driven from Python through cffi (API mode), usable from C on its own.
 *
 * Conventions (hold for every function below unless its comment says otherwise):
 *  - Handles are opaque. The caller creates one with ea_*_create() and frees it with ea_*_destroy();
 *    destroy(NULL) is a no-op. A handle is NOT thread-safe: use one handle per thread/stream.
 *  - Buffers are owned by the caller. The library never keeps a pointer to a caller buffer after
 *    the call returns. Input and output buffers must not overlap.
 *  - Lengths are counts of elements (samples or values), never bytes. Rates are in Hz.
 *  - Functions return EA_OK (0) or a negative EA_E* code; they never abort or print.
 *  - No allocation happens in the per-chunk path: all memory is allocated in create().
 */
#ifndef EA_FRONTEND_H
#define EA_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a declaration in this header changes; Python refuses a stale build. */
#define EA_ABI_VERSION 1

/* Error codes. */
#define EA_OK 0
#define EA_EINVAL (-1)   /* an argument is out of range or NULL */
#define EA_ENOMEM (-2)   /* allocation failed in create() */
#define EA_ESPACE (-3)   /* the caller's output buffer is too small */

/* The ABI version the library was compiled with (EA_ABI_VERSION). */
int ea_abi_version(void);

/* A static, NUL-terminated English description of an EA_* code. */
const char *ea_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif /* EA_FRONTEND_H */
