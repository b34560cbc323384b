/*
 * stub.c: the stand-in entry of a C++ peer built without its system
 * package (see peer-support/src/lib.rs). The descriptor names the peer and
 * fills no slot; the host never loads it because the variant's `requires:`
 * marks the variant skipped with the install hint first.
 *
 * Defines (set by compile_stub): PEER_ENTRY, the entry function the Rust
 * shim forwards to; PEER_NAME and PEER_VERSION, string literals.
 */
#include <annvil.h>

const annvil_descriptor *PEER_ENTRY(void);

static const annvil_descriptor descriptor = {
    .magic = ANNVIL_MAGIC,
    .abi_major = ANNVIL_ABI_MAJOR,
    .abi_minor = ANNVIL_ABI_MINOR,
    .reserved = 0,
    .struct_size = sizeof(annvil_descriptor),
    .name = PEER_NAME,
    .version = PEER_VERSION,
    .flags = 0,
    .construction = NULL,
    .search = NULL,
    .refinement = NULL,
};

const annvil_descriptor *PEER_ENTRY(void) {
    return &descriptor;
}
