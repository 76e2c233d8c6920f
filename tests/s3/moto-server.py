"""Runs moto's S3-compatible server on 127.0.0.1 for the blob store tests.

Binds a free port, prints `S3_URL=http://127.0.0.1:<port>` once it accepts connections,
and exits when its stdin reaches EOF, so a test process that dies leaves nothing behind.
"""
import logging
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    # Werkzeug logs every request to stderr; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the socket is bound and listening
    host, port = server.get_host_and_port()
    print(f"S3_URL=http://{host}:{port}", flush=True)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
