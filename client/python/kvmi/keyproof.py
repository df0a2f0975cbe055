"""The introspector's proof of the shared key, sent in the 20-byte
cookie_hash of the handshake answer.

The scheme belongs to the hypervisor side and is documented in
docs/protocol.md; this module follows it.  Without a key the cookie_hash
is all zero (what libkvmi kvmi-v6 sends).
"""

from __future__ import annotations


def key_proof(key, hello, raw_hello: bytes) -> bytes:
    """Returns the 20-byte cookie_hash proving `key` for this handshake."""
    raise NotImplementedError(
        "the hypervisor's key scheme is not defined yet (docs/protocol.md)")
