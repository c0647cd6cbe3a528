#include "ea/frontend.h"

int ea_abi_version(void) { return EA_ABI_VERSION; }

const char *ea_strerror(int code)
{
    switch (code) {
    case EA_OK: return "ok";
    case EA_EINVAL: return "invalid argument";
    case EA_ENOMEM: return "out of memory";
    case EA_ESPACE: return "output buffer too small";
    default: return "unknown error";
    }
}
