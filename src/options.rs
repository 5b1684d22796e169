//! Per-context options: integers set by the host, read when something is started.

use crate::error::Error;
use std::net::IpAddr;
use std::time::Duration;

/// Option numbers, as the C surface names them (`XT_OPT_*`).
pub mod id {
    pub const MAX_MESSAGE_LEN: u32 = 1;
    pub const WRITE_QUEUE_LIMIT: u32 = 2;
    pub const ALLOW_PRIVILEGED_PORTS: u32 = 3;
    pub const LISTEN_BACKLOG: u32 = 4;
    pub const IDLE_TIMEOUT_MS: u32 = 5;
    pub const CONNECT_TIMEOUT_MS: u32 = 6;
    pub const HTTP_MAX_HEADER_BYTES: u32 = 7;
    pub const HTTP_MAX_BODY_BYTES: u32 = 8;
    pub const HTTP_REQUEST_TIMEOUT_MS: u32 = 9;
    pub const PEER_LOOKUP_MS: u32 = 10;
    pub const HTTP_DEFER_TIMEOUT_MS: u32 = 11;
    pub const MULTICAST_REFRESH_MS: u32 = 12;
    pub const NETWORK_THREADS: u32 = 13;
    pub const WS_MAX_MESSAGE_BYTES: u32 = 14;
}

/// Network threads when the host does not say: every core but one (left to the dispatch
/// thread, or to the host), at least one.
pub fn default_network_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Most network threads a host may ask for.
pub const MAX_NETWORK_THREADS: i64 = 256;

const GIB: i64 = 1 << 30;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The option values of one context. Started listeners and connections keep a copy of what
/// they need, so a change applies to what is started after it.
#[derive(Clone, Debug)]
pub struct Options {
    pub max_message_len: usize,
    pub write_queue_limit: usize,
    pub allow_privileged_ports: bool,
    pub listen_backlog: i32,
    /// `None`: connections never time out for idleness.
    pub idle_timeout: Option<Duration>,
    /// `None`: only the system's own connect timeout applies.
    pub connect_timeout: Option<Duration>,
    pub http_max_header_bytes: usize,
    pub http_max_body_bytes: u64,
    pub http_request_timeout: Duration,
    /// How long a deferred HTTP request waits for its answer before it gets 504.
    pub http_defer_timeout: Duration,
    pub peer_lookup: Duration,
    /// Re-send multicast joins this often (None: never).
    pub multicast_refresh: Option<Duration>,
    /// Largest WebSocket message accepted (larger ones close with 1009).
    pub ws_max_message_bytes: usize,
    /// `None`: listeners bind every interface, IPv6 and IPv4.
    pub bind_address: Option<IpAddr>,
    /// Threads doing I/O (None: [`default_network_threads`]); read when the network starts.
    pub network_threads: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_message_len: 1 << 20,
            write_queue_limit: 8 << 20,
            allow_privileged_ports: false,
            listen_backlog: 1024,
            idle_timeout: None,
            connect_timeout: Some(Duration::from_millis(10_000)),
            http_max_header_bytes: 16 << 10,
            http_max_body_bytes: 8 << 20,
            http_request_timeout: Duration::from_millis(10_000),
            http_defer_timeout: Duration::from_millis(30_000),
            ws_max_message_bytes: 16 << 20,
            multicast_refresh: None,
            peer_lookup: Duration::from_millis(250),
            bind_address: None,
            network_threads: None,
        }
    }
}

fn ms_or_none(value: i64) -> Option<Duration> {
    (value > 0).then(|| Duration::from_millis(value as u64))
}

fn check(value: i64, min: i64, max: i64, what: &str) -> Result<i64, Error> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid_argument(format!(
            "{what} must be in {min}..={max}, got {value}"
        )))
    }
}

impl Options {
    /// Sets one option; an unknown option or a value out of range changes nothing.
    pub fn set(&mut self, option: u32, value: i64) -> Result<(), Error> {
        match option {
            id::MAX_MESSAGE_LEN => {
                self.max_message_len = check(value, 1, GIB, "max message length")? as usize
            }
            id::WRITE_QUEUE_LIMIT => {
                self.write_queue_limit = check(value, 1, 4 * GIB, "write queue limit")? as usize
            }
            id::ALLOW_PRIVILEGED_PORTS => {
                self.allow_privileged_ports = check(value, 0, 1, "allow privileged ports")? == 1
            }
            id::LISTEN_BACKLOG => {
                self.listen_backlog = check(value, 1, 65_535, "listen backlog")? as i32
            }
            id::IDLE_TIMEOUT_MS => {
                self.idle_timeout = ms_or_none(check(value, 0, 30 * DAY_MS, "idle timeout")?)
            }
            id::CONNECT_TIMEOUT_MS => {
                self.connect_timeout = ms_or_none(check(value, 0, DAY_MS, "connect timeout")?)
            }
            id::HTTP_MAX_HEADER_BYTES => {
                self.http_max_header_bytes =
                    check(value, 1024, 16 << 20, "HTTP max header bytes")? as usize
            }
            id::HTTP_MAX_BODY_BYTES => {
                self.http_max_body_bytes = check(value, 0, 64 * GIB, "HTTP max body bytes")? as u64
            }
            id::HTTP_REQUEST_TIMEOUT_MS => {
                self.http_request_timeout =
                    Duration::from_millis(check(value, 1, DAY_MS, "HTTP request timeout")? as u64)
            }
            id::PEER_LOOKUP_MS => {
                self.peer_lookup =
                    Duration::from_millis(check(value, 0, 60_000, "peer lookup time")? as u64)
            }
            id::HTTP_DEFER_TIMEOUT_MS => {
                self.http_defer_timeout =
                    Duration::from_millis(check(value, 1, DAY_MS, "HTTP defer timeout")? as u64)
            }
            id::MULTICAST_REFRESH_MS => {
                let ms = check(value, 0, DAY_MS, "multicast refresh")?;
                self.multicast_refresh = (ms > 0).then(|| Duration::from_millis(ms as u64))
            }
            id::WS_MAX_MESSAGE_BYTES => {
                self.ws_max_message_bytes =
                    check(value, 1, 1 << 30, "WebSocket message limit")? as usize
            }
            id::NETWORK_THREADS => {
                self.network_threads =
                    Some(check(value, 1, MAX_NETWORK_THREADS, "network threads")? as usize)
            }
            other => return Err(Error::invalid_argument(format!("unknown option {other}"))),
        }
        Ok(())
    }

    /// The value of one option, `None` for an unknown option.
    pub fn get(&self, option: u32) -> Option<i64> {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis() as i64);
        Some(match option {
            id::MAX_MESSAGE_LEN => self.max_message_len as i64,
            id::WRITE_QUEUE_LIMIT => self.write_queue_limit as i64,
            id::ALLOW_PRIVILEGED_PORTS => self.allow_privileged_ports as i64,
            id::LISTEN_BACKLOG => self.listen_backlog as i64,
            id::IDLE_TIMEOUT_MS => ms(self.idle_timeout),
            id::CONNECT_TIMEOUT_MS => ms(self.connect_timeout),
            id::HTTP_MAX_HEADER_BYTES => self.http_max_header_bytes as i64,
            id::HTTP_MAX_BODY_BYTES => self.http_max_body_bytes as i64,
            id::HTTP_REQUEST_TIMEOUT_MS => self.http_request_timeout.as_millis() as i64,
            id::PEER_LOOKUP_MS => self.peer_lookup.as_millis() as i64,
            id::HTTP_DEFER_TIMEOUT_MS => self.http_defer_timeout.as_millis() as i64,
            id::WS_MAX_MESSAGE_BYTES => self.ws_max_message_bytes as i64,
            id::MULTICAST_REFRESH_MS => ms(self.multicast_refresh),
            id::NETWORK_THREADS => self.network_threads() as i64,
            _ => return None,
        })
    }

    /// How many network threads the runtime has (or will have).
    pub fn network_threads(&self) -> usize {
        self.network_threads.unwrap_or_else(default_network_threads)
    }

    /// Sets the listeners' bind address from text; `""` means every interface.
    pub fn set_bind_address(&mut self, text: &str) -> Result<(), Error> {
        let text = text.trim();
        if text.is_empty() {
            self.bind_address = None;
            return Ok(());
        }
        // Accept "[::1]" as well as "::1".
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        let ip: IpAddr = bare
            .parse()
            .map_err(|_| Error::invalid_argument(format!("not an IP address: {text:?}")))?;
        self.bind_address = Some(ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_round_trips_and_bad_values_change_nothing() {
        let mut o = Options::default();
        for (opt, v) in [
            (1, 5),
            (2, 77),
            (3, 1),
            (4, 16),
            (5, 1500),
            (6, 0),
            (7, 2048),
        ] {
            o.set(opt, v).unwrap();
            assert_eq!(o.get(opt), Some(v));
        }
        for (opt, v) in [(8, 0), (9, 30), (10, 0)] {
            o.set(opt, v).unwrap();
            assert_eq!(o.get(opt), Some(v));
        }
        let before = o.get(1);
        assert_eq!(
            o.set(1, 0).unwrap_err().code,
            crate::error::INVALID_ARGUMENT
        );
        assert_eq!(
            o.set(3, 2).unwrap_err().code,
            crate::error::INVALID_ARGUMENT
        );
        assert_eq!(o.get(1), before);
        assert!(o.set(99, 1).is_err());
        assert_eq!(o.get(99), None);
    }

    #[test]
    fn bind_address_parses_ip_only() {
        let mut o = Options::default();
        o.set_bind_address("127.0.0.1").unwrap();
        assert_eq!(o.bind_address, Some("127.0.0.1".parse().unwrap()));
        o.set_bind_address("[::1]").unwrap();
        assert_eq!(o.bind_address, Some("::1".parse().unwrap()));
        assert!(o.set_bind_address("localhost").is_err());
        assert_eq!(o.bind_address, Some("::1".parse().unwrap()));
        o.set_bind_address("").unwrap();
        assert_eq!(o.bind_address, None);
    }
}
