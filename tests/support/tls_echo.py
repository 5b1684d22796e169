"""A TLS line-echo server on Python's ssl module, for the TLS tests: a real, independent TLS
peer. Prints "port N" once listening; echoes every line it gets; serves until killed.

    python3 tls_echo.py CERT KEY [--max-version 1.2]
"""

import socket
import ssl
import sys
import threading


def serve(conn):
    with conn:
        f = conn.makefile("rwb", buffering=0)
        try:
            for line in f:
                f.write(line)
        except (OSError, ssl.SSLError):
            pass


def main():
    cert, key = sys.argv[1], sys.argv[2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if "--max-version" in sys.argv and sys.argv[sys.argv.index("--max-version") + 1] == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    listener = socket.create_server(("127.0.0.1", 0))
    print("port", listener.getsockname()[1], flush=True)
    while True:
        raw, _ = listener.accept()
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
