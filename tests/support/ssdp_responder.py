"""A minimal UPnP device's SSDP side: answers M-SEARCH on 239.255.255.250:1900 by unicast, as
routers and media servers do. For tests/c_examples_lan.rs."""
import socket
import struct
import sys

address = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 1900))
mreq = struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton(address))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
print("ready", flush=True)
s.settimeout(20)
answer = (
    "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n"
    f"LOCATION: http://{address}:49152/desc.xml\r\nSERVER: Linux/6 UPnP/1.1 xt-test/1\r\n"
    "ST: upnp:rootdevice\r\nUSN: uuid:xt-test-device::upnp:rootdevice\r\n\r\n"
).encode()
try:
    while True:
        data, peer = s.recvfrom(2048)
        if data.startswith(b"M-SEARCH"):
            s.sendto(answer, peer)
            print("answered", peer[0], flush=True)
except socket.timeout:
    pass
