//! A small raw HTTP/1.1 client for tests that need control over every byte on the wire.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads one response (a body only if it has Content-Length, or for `head == false` until
/// close when it has neither).
pub fn read_response(s: &mut TcpStream, head: bool) -> Option<Response> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status < 200 || status == 204 || status == 304 {
        return Some(response);
    }
    match response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => {
            response.body = vec![0; n];
            s.read_exact(&mut response.body).ok()?;
        }
        None => {
            let _ = s.read_to_end(&mut response.body);
        }
    }
    Some(response)
}

/// Sends `request` on a new connection and reads one response.
pub fn request(port: u16, request: &[u8]) -> Response {
    let mut s = connect(port);
    s.write_all(request).unwrap();
    read_response(&mut s, request.starts_with(b"HEAD")).expect("a response")
}

/// Whether the server closed the connection (reads EOF or a reset within the timeout).
pub fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}
