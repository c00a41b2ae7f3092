"""Frames to websocket clients, written at once from the trainer's thread (FrameLane).

A frame is a Socket.IO binary event with an acknowledgement, sent with the public
emit (its acknowledgement id is python-socketio's own); python-socketio hands the packet
to our _send_packet (app/socketio_internals.py's whole_packets), which offers it to this
lane first. On the wire it is a text header ('451-<id>["frame",{"_placeholder":true,
"num":0}]') and one binary attachment, two WebSocket messages. python-socketio would
encode the packet and queue two Engine.IO packets, and the client's writer thread would
wake, frame each with wsproto and write each. Here both are framed at once (uncompressed:
what the client receives is what it always did) and written in one non-blocking write
when nothing else waits for that client; else (or for the part a full socket did not
take) they are queued as one item for its writer. At a hundred clients, a writer woken
per frame handed the interpreter back and forth with the trainer thousands of times a
second, and the trainer's step took several times its CPU time in wall time. A client on
another transport (long-polling, or Flask-SocketIO's test client) gets the frame the
ordinary way.
"""
from __future__ import annotations

import struct
from typing import Callable

from engineio import packet as eio_packet

FRAME = "frame"  # the event's name


class Wire(bytes):
    """One or more WebSocket messages framed already: written to the socket as they are."""


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A whole, unmasked WebSocket message (a server's): FIN, opcode, length, payload."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class Framed:
    """An Engine.IO queue item that is WebSocket messages framed already."""
    __slots__ = ("data",)
    packet_type = eio_packet.MESSAGE

    def __init__(self, wire: Wire):
        self.data = wire

    def encode(self) -> Wire:
        return self.data


class FrameLane:
    """lane(eio_sid, pkt) -> bool: write a frame event (["frame", bytes], with an
    acknowledgement id, default namespace) to an upgraded websocket client now, or queue
    it framed for its writer; False: not a frame for this lane (it goes the usual way).
    Called under the server's send lock: never between another packet's header and
    attachment. admit(eio_sid, size): whether the client's backlog may take it."""

    def __init__(self, server, admit: Callable[[str, int], bool]):
        self.server, self.admit = server, admit

    def __call__(self, eio_sid: str, pkt) -> bool:
        data = pkt.data
        if len(data) != 2 or data[0] != FRAME or pkt.namespace not in (None, "/"):
            return False
        sock = self.server.eio.sockets.get(eio_sid)
        if sock is None or getattr(sock, "transport", None) is None or not sock.upgraded or sock.upgrading:
            return False
        # Engine.IO's message '4', then Socket.IO's binary event '5' with one attachment
        head = b'451-%d["frame",{"_placeholder":true,"num":0}]' % pkt.id
        wire = Wire(ws_frame(0x1, head) + ws_frame(0x2, data[1]))
        if self.admit(eio_sid, len(wire)) and not sock.transport.write_now(wire):
            sock.send(Framed(wire))
        return True
