"""Python introspector for the KVMI v6 protocol (standard library only).

    from kvmi import Listener
    with Listener(port=4444) as lst, lst.accept() as dom:
        print(dom.get_version(), dom.get_guest_info())

See docs/client.md.  kvmi.wire holds the byte layouts, kvmi.client the
connection, kvmi.cli the kvmictl command line; kvmi.btf, kvmi.kimage and
kvmi.linux read a Linux guest from outside (its BTF, its kallsyms, a page
walk, the version banner and the task list).
"""

from . import wire
from .client import (Batch, ConnectionClosed, Domain, KvmiError, Listener, ProtocolError,
                     connect, handshake)
from .wire import Event, Regs, SRegs

__all__ = ["wire", "Batch", "ConnectionClosed", "Domain", "KvmiError", "Listener",
           "ProtocolError", "connect", "handshake", "Event", "Regs", "SRegs"]
