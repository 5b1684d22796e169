//! One rtnetlink request and its answers (Linux): what the route lookup and the neighbour table
//! ask the kernel, for the network namespace of the calling thread. The kernel builds the
//! answer inside the system call; nothing waits on the network.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;
use std::time::Duration;

pub(crate) fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// Sends one request and collects the answers (every part of a dump).
pub(crate) fn request(
    payload: RouteNetlinkMessage,
    dump: bool,
) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    // The kernel answers inside the system call; the timeout only guards against surprises.
    socket2::SockRef::from(&socket).set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(payload));
    message.finalize();
    let mut out = vec![0; message.header.length as usize];
    message.serialize(&mut out);
    socket.send(&out, 0)?;
    let mut answers = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let size = socket.recv(&mut &mut buf[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..size])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(answers),
                NetlinkPayload::Error(e) => {
                    return Err(e.code.map_or_else(
                        || io::Error::other("netlink error"),
                        |c| io::Error::from_raw_os_error(-c.get()),
                    ))
                }
                NetlinkPayload::InnerMessage(m) => answers.push(m),
                _ => {}
            }
            if !dump && !answers.is_empty() {
                return Ok(answers);
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}
