"""Announces a test service with python-zeroconf (a real mDNS responder this project did not
write), on one interface address, for tests/c_examples_lan.rs."""
import socket
import sys
import time

from zeroconf import IPVersion, ServiceInfo, Zeroconf

address, seconds = sys.argv[1], float(sys.argv[2])
zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
info = ServiceInfo(
    "_xtnettest._tcp.local.",
    "Porch Light._xtnettest._tcp.local.",
    addresses=[socket.inet_aton(address)],
    port=8123,
    properties={"model": "xt-1"},
    server="porch-light.local.",
)
zc.register_service(info)
print("registered", flush=True)
time.sleep(seconds)
zc.unregister_service(info)
zc.close()
