/* block_fix.c: the checkpoint's pass over written blocks, registered into the span_io addon. */
#ifndef IMAPFS_BLOCK_FIX_H
#define IMAPFS_BLOCK_FIX_H

#include <node_api.h>

/* Adds blockFix to the addon's exports; false with a pending exception on failure. */
int register_block_fix(napi_env env, napi_value exports);

#endif
