/* Declarations cffi parses (it cannot read the preprocessor). Must match include/ea/frontend.h;
 * the compiler checks that in API mode. */
#define EA_ABI_VERSION 1
#define EA_OK 0
#define EA_EINVAL -1
#define EA_ENOMEM -2
#define EA_ESPACE -3

int ea_abi_version(void);
const char *ea_strerror(int code);
