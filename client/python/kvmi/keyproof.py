"""The introspector's proof of the shared key, sent in the 20-byte
cookie_hash of the handshake answer.

Scheme (defined by the hypervisor side, docs/protocol.md): when a key is
configured the hypervisor puts a fresh random nonce in the otherwise unused
u32 at offset 20 of its 96-byte handshake struct, and the introspector
answers cookie_hash = HMAC-SHA1(key, the exact bytes of that struct).  A
wrong proof makes the hypervisor close the connection before it serves
any command.  Without a key the cookie_hash is all zero (what libkvmi
kvmi-v6 sends) and a keyless hypervisor ignores it.
"""

from __future__ import annotations

import hashlib
import hmac


def key_bytes(key) -> bytes:
    return key if isinstance(key, (bytes, bytearray)) else str(key).encode()


def key_proof(key, hello, raw_hello: bytes) -> bytes:
    """Returns the 20-byte cookie_hash proving `key` for this handshake.

    `raw_hello` is the hypervisor's struct exactly as received."""
    return hmac.new(key_bytes(key), raw_hello, hashlib.sha1).digest()
