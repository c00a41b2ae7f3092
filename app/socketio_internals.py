"""Every internal of python-socketio the server relies on, in one place. Importing this
module checks that the installed python-socketio is the one requirements.txt pins, and
the server does not start on another (tests/test_internals.py holds each use below to
the library's public behaviour: what Server.emit sends, what a client's event reaches).

    Packet          the server's packet class (Server's public `serializer`), whose
                    data_is_binary replaces the stock one that every packet calls
    whole_packets   Server._send_packet replaced: a packet's Engine.IO messages are
                    queued together, and a frame may be written by a lane of its own;
                    Server._send_eio_packet (an emit without a callback) under the same lock
    send_ack        Server._send_packet, for an acknowledgement of an event the server
                    refused before python-socketio parsed it
"""
from __future__ import annotations

import threading
from importlib.metadata import version
from typing import Any, Callable

from socketio import packet

from model_server.pins import check_pinned

check_pinned("python-socketio", version("python-socketio"), "app/socketio_internals.py")

_SCALARS = frozenset((float, int, str, bool, type(None)))  # what most of a packet's data is

# a lane for some packets: lane(eio_sid, pkt) under the send lock, True if it sent pkt
Lane = Callable[[str, "packet.Packet"], bool]


class Packet(packet.Packet):
    """The Socket.IO packet class for our server (its `serializer`). Every packet asks
    whether its data holds binary parts; the stock check builds a list at every level and
    calls itself per item, which for a configure's answer with 2,000 points held the
    interpreter on a socket thread while the trainer waited for it. This one walks the
    data once, scalars first, and stops at the first binary part."""

    @classmethod
    def data_is_binary(cls, data) -> bool:
        stack = [data]
        while stack:
            item = stack.pop()
            if type(item) in _SCALARS:
                continue
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, (bytes, bytearray)):
                return True
        return False


def whole_packets(server, lane: Lane | None = None) -> None:
    """Keep each Socket.IO packet's Engine.IO messages together, and hand binary events
    with an acknowledgement (frames) to lane first.

    A binary event is several messages (a text header, then one per attachment) and
    python-socketio's Server._send_packet queues them one by one with no lock. When another
    thread sends to the same client in between (a status from a handler, an event's
    acknowledgement, a broadcast from the message queue), the client takes that message
    for the attachment and its stream breaks. So the messages of one packet are queued
    under one lock per server (server.packet_lock). The packet is encoded before the
    lock: a large acknowledgement's JSON (a configure's 2,000 points) takes a while, and
    the trainer's frames, sent from its own thread, must not wait for a dozen of them.
    (This is _send_packet's body; RLock: an emit with a callback can re-enter.) An emit
    without a callback (a status) is encoded once and queued through _send_eio_packet:
    it takes the lock too, or it could land between a binary answer's header and
    attachment (an export's weights)."""
    if getattr(server, "packet_lock", None) is not None:
        return
    lock = server.packet_lock = threading.RLock()

    def send_packet(eio_sid: str, pkt) -> None:
        if lane is not None and pkt.id is not None and pkt.packet_type == packet.BINARY_EVENT:
            with lock:
                if lane(eio_sid, pkt):
                    return
        encoded = pkt.encode()
        with lock:
            for message in encoded if isinstance(encoded, list) else [encoded]:
                server.eio.send(eio_sid, message)

    send_eio_packet = server._send_eio_packet

    def send_eio_packet_whole(eio_sid: str, eio_pkt) -> None:
        with lock:
            send_eio_packet(eio_sid, eio_pkt)

    server._send_packet = send_packet
    server._send_eio_packet = send_eio_packet_whole


def send_ack(server, eio_sid: str, namespace: str, ack_id: int, data: list[Any]) -> None:
    """Answer the client's event ack_id with data, as python-socketio answers an event."""
    server._send_packet(eio_sid, server.packet_class(packet.ACK, namespace=namespace, id=ack_id, data=data))
