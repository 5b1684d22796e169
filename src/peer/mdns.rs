//! A peer's Bonjour name by multicast DNS: a PTR question for its address's reverse name
//! (`4.3.2.1.in-addr.arpa`, `…ip6.arpa`) sent to 224.0.0.251 / ff02::fb port 5353 on the peer's
//! link, asking for a unicast answer (RFC 6762 §5.4). The question goes from a port of our own,
//! so responders answer it directly to that port (§6.7, as `dig -p 5353 @224.0.0.251` does):
//! nothing has to share port 5353 with a system responder.

use crate::sys::route::Route;
use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, PacketFlag, Question, CLASS, TYPE};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// The mDNS port and groups.
const PORT: u16 = 5353;
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

/// When the question is asked again without an answer, and when we give up. Responders answer
/// a unique record at once; the repeat covers a lost packet or a device waking from sleep.
const REPEAT_AFTER: Duration = Duration::from_millis(250);
const GIVE_UP_AFTER: Duration = Duration::from_millis(750);

/// The reverse-lookup name of an address.
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// The question, with a random id that the answer must echo.
fn question(reverse: &str, id: u16) -> Option<Vec<u8>> {
    let mut packet = Packet::new_query(id);
    packet.questions.push(Question::new(
        Name::new(reverse).ok()?,
        TYPE::PTR.into(),
        CLASS::IN.into(),
        true,
    ));
    packet.build_bytes_vec().ok()
}

/// The name a reply gives for `reverse`, if it is an answer to question `id`.
pub(crate) fn answer(reply: &[u8], reverse: &str, id: u16) -> Option<String> {
    let packet = Packet::parse(reply).ok()?;
    if !packet.has_flags(PacketFlag::RESPONSE) || packet.id() != id {
        return None;
    }
    packet
        .answers
        .iter()
        .chain(&packet.additional_records)
        .find_map(|record| match &record.rdata {
            RData::PTR(target) if record.name.to_string().eq_ignore_ascii_case(reverse) => {
                let name = target.0.to_string();
                let name = name.trim_end_matches('.');
                // A name the host can print: no control characters, DNS length.
                (!name.is_empty() && name.len() <= 255 && !name.chars().any(char::is_control))
                    .then(|| name.to_owned())
            }
            _ => None,
        })
}

/// A socket that sends multicast out of the peer's link.
fn socket_for(ip: IpAddr, route: &Route) -> std::io::Result<(UdpSocket, SocketAddr)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (socket, group) = match ip {
        IpAddr::V4(_) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
            match route.source {
                Some(IpAddr::V4(source)) => s.set_multicast_if_v4(&source)?,
                _ => s.set_multicast_if_v4(&Ipv4Addr::UNSPECIFIED)?,
            }
            s.set_multicast_ttl_v4(255)?;
            (s, SocketAddr::from((GROUP_V4, PORT)))
        }
        IpAddr::V6(_) => {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_only_v6(true)?;
            s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
            s.set_multicast_if_v6(route.ifindex)?;
            s.set_multicast_hops_v6(255)?;
            let group = SocketAddrV6::new(GROUP_V6, PORT, 0, route.ifindex);
            (s, SocketAddr::V6(group))
        }
    };
    socket.set_nonblocking(true)?;
    Ok((UdpSocket::from_std(socket.into())?, group))
}

/// The peer's name from whoever answers for its address on its link; None when nobody does
/// within [`GIVE_UP_AFTER`].
pub(crate) async fn reverse_lookup(ip: IpAddr, route: &Route) -> Option<String> {
    let reverse = reverse_name(ip);
    let id = std::collections::hash_map::RandomState::new().hash_one(&reverse) as u16;
    let query = question(&reverse, id)?;
    let (socket, group) = socket_for(ip, route).ok()?;
    let start = Instant::now();
    socket.send_to(&query, group).await.ok()?;
    let mut repeated = false;
    let mut buf = vec![0u8; 9000];
    loop {
        let next = if repeated {
            start + GIVE_UP_AFTER
        } else {
            start + REPEAT_AFTER
        };
        match tokio::time::timeout_at(next, socket.recv_from(&mut buf)).await {
            Ok(Ok((n, _from))) => {
                if let Some(name) = answer(&buf[..n], &reverse, id) {
                    return Some(name);
                }
            }
            Ok(Err(_)) => return None,
            Err(_) if !repeated => {
                repeated = true;
                let _ = socket.send_to(&query, group).await;
            }
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::rdata::PTR;
    use simple_dns::ResourceRecord;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("10.77.1.2".parse().unwrap()),
            "2.1.77.10.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("fd00:9::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.0.0.0.0.0.d.f.ip6.arpa"
        );
    }

    fn reply(id: u16, owner: &str, target: &str) -> Vec<u8> {
        let mut packet = Packet::new_reply(id);
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked(owner),
            CLASS::IN,
            10,
            RData::PTR(PTR(Name::new_unchecked(target))),
        ));
        packet.build_bytes_vec().unwrap()
    }

    #[test]
    fn answers_are_matched_to_the_question() {
        let q = question("2.1.77.10.in-addr.arpa", 7).unwrap();
        assert!(Packet::parse(&q).unwrap().questions[0].unicast_response);
        let r = "2.1.77.10.in-addr.arpa";
        assert_eq!(
            answer(&reply(7, r, "kitchen.local"), r, 7).as_deref(),
            Some("kitchen.local")
        );
        assert_eq!(
            answer(&reply(7, "2.1.77.10.IN-ADDR.ARPA", "a.local"), r, 7).as_deref(),
            Some("a.local"),
            "names compare without case"
        );
        assert_eq!(answer(&reply(8, r, "x.local"), r, 7), None, "other id");
        assert_eq!(
            answer(&reply(7, "3.1.77.10.in-addr.arpa", "x.local"), r, 7),
            None,
            "other address"
        );
        assert_eq!(answer(&q, r, 7), None, "a question is no answer");
        assert_eq!(answer(b"\x00\x07garbage", r, 7), None);
    }
}
