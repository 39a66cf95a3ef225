"""A TCP proxy on loopback that a test can cut and restore, to take a dependency away from a
running server for real (its connections break, new ones fail) and give it back.

- `forward()`: every connection is relayed to the target (the normal state);
- `refuse()`: the listening socket is closed and every relayed connection with it, so a new
  connection is refused by the kernel, as when the server is down;
- `hang()`: relayed connections are closed, and new ones are accepted and never answered,
  as when the server's host is overloaded or a firewall drops packets.

Counts the connections it accepts, so that a test can tell whether a client tried at all.
Imports neither Django nor pytest.
"""

import contextlib
import socket
import threading
from typing import Self

BUFFER = 64 * 1024


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.mode = "forward"
        self.accepted = 0  # connections accepted, in any mode
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()  # open client and target sides
        self._listener: socket.socket | None = None
        self._listen()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the switches -------------------------------------------------------------------

    def forward(self) -> None:
        with self._lock:
            self.mode = "forward"
        self._close_connections()
        if self._listener is None:
            self._listen()

    def refuse(self) -> None:
        with self._lock:
            self.mode = "refuse"
            listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._close_connections()

    def hang(self) -> None:
        with self._lock:
            self.mode = "hang"
        self._close_connections()
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self.refuse()

    # --- the machinery ------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The same port again after refuse(): the server under test was given this one.
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by refuse()
            with self._lock:
                self.accepted += 1
                mode = self.mode
                self._sockets.add(client)
            if mode == "forward":
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()
            # In "hang" mode the connection stays open, unread, until the next switch.

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            self._discard(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.add(upstream)
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._discard(source)
            self._discard(sink)

    def _discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _close_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
