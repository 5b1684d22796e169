//! The meeting point of the network and the host: the [`Host`] the events go to, the [`Event`]s
//! the protocols queue, and running one batch of them (`run_batch`).
//!
//! This module names the protocols' types (a connection, a UDP or HTTP listener), the way
//! smoltcp's `enum Socket` does; those types import nothing from here, so the dependency runs
//! one way. The queue itself is `queue.rs`, the dispatching thread's state `dispatch.rs`, flow
//! control `tcp/flow.rs`. No lock is held while the host runs.

use crate::dispatch::{self, BatchScope, Writer};
use crate::http::{Answer, HttpListener, HttpRequest, HttpResponse, Later, RequestParts};
use crate::info::{c_text, canonical_ip, ConnectionInfo, MessageKind, UNKNOWN_MAC, UNKNOWN_NAME};
use crate::tcp::{Backlog, Connection, Credits};
use crate::udp::{describe, Datagram, DatagramInfo, UdpListener};
use bytes::Bytes;
use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Severity of a `log` event, as the C surface numbers it (`XT_LOG_*`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warning = 2,
    Info = 3,
    Debug = 4,
}

/// The host's callbacks, by name: which ones a host has (`Host::implements`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    NewConnection,
    Connected,
    DataAvailable,
    SocketError,
    ReceivedDatagram,
    PageRequest,
    Log,
    InterfaceChanged,
}

/// Where events go: the host application. The C surface implements this over `XtCallbacks`;
/// Rust tests implement it directly. Every method runs on the dispatching thread, one at a time.
pub trait Host: Send + Sync {
    /// Whether the host has this callback. Without `new_connection` every connection is
    /// accepted; without `page_request` every request gets 404; the others are not called.
    /// Only callbacks the host has are counted as run (`xt_poll`'s result).
    fn implements(&self, _callback: Callback) -> bool {
        true
    }
    /// A connection came in on a listener; true accepts it.
    fn new_connection(&self, _id: u64, _info: &ConnectionInfo) -> bool {
        true
    }
    /// An outgoing connection is established.
    fn connected(&self, _id: u64, _info: &ConnectionInfo) {}
    /// Data arrived: one framed message, a raw chunk when the connection has no boundary, or
    /// one whole WebSocket message (`kind` says which).
    fn data_available(&self, _id: u64, _data: &[u8], _info: &ConnectionInfo, _kind: MessageKind) {}
    /// The final event of a connection: it is closed, with why.
    fn socket_error(&self, _id: u64, _info: &ConnectionInfo, _code: i32, _message: &CStr) {}
    /// An HTTP request arrived on listener `server_id`: fill `response` before returning.
    fn page_request(&self, _server_id: u32, _request: &HttpRequest, response: &mut HttpResponse) {
        *response = HttpResponse::with_status(404);
    }
    /// A datagram arrived on UDP listener `server_id`.
    fn received_datagram(&self, _server_id: u32, _data: &[u8], _info: &DatagramInfo) {}
    /// A message from the library.
    fn log(&self, _level: LogLevel, _message: &CStr) {}
    /// An interface came up or went down, or gained or lost `address` ("" for a link without
    /// addresses); `up`: usable now.
    fn interface_changed(&self, _name: &CStr, _address: &CStr, _up: bool) {}
}

/// One thing the host is told about.
pub(crate) enum Event {
    NewConnection {
        conn: Arc<Connection>,
    },
    Connected {
        conn: Arc<Connection>,
    },
    /// Every message one read produced, in order (one event, so one hand-off, per read).
    Data {
        conn: Arc<Connection>,
        messages: Vec<Bytes>,
        kind: MessageKind,
        /// The framing epoch they were framed in: what is not delivered once the host changed
        /// the framing goes back to the connection, to be framed the new way.
        epoch: u32,
    },
    SocketError {
        conn: Arc<Connection>,
        code: i32,
        message: CString,
    },
    /// An HTTP request; the host's answer goes back through `reply`.
    PageRequest {
        listener: Arc<HttpListener>,
        request: Box<RequestParts>,
        reply: oneshot::Sender<Answer>,
    },
    /// Every datagram one receive call gave.
    Datagrams {
        listener: Arc<UdpListener>,
        datagrams: Vec<Datagram>,
    },
    Log {
        level: LogLevel,
        message: CString,
    },
    InterfaceChanged {
        name: CString,
        address: CString,
        up: bool,
    },
}

impl Event {
    pub(crate) fn log(level: LogLevel, message: &str) -> Event {
        Event::Log {
            level,
            message: c_text(message),
        }
    }

    fn connection(&self) -> Option<&Arc<Connection>> {
        match self {
            Event::NewConnection { conn }
            | Event::Connected { conn }
            | Event::Data { conn, .. }
            | Event::SocketError { conn, .. } => Some(conn),
            Event::Datagrams { .. }
            | Event::PageRequest { .. }
            | Event::Log { .. }
            | Event::InterfaceChanged { .. } => None,
        }
    }

    /// Runs the callbacks of this event; returns how many host callbacks ran.
    fn deliver(
        self,
        host: &dyn Host,
        closing: bool,
        credits: Option<&mut Credits<Connection>>,
    ) -> usize {
        let ran = |callback| usize::from(host.implements(callback));
        match self {
            Event::NewConnection { conn } => {
                // A connection whose listener was stopped (or whose context is going away)
                // before the host was asked is refused without asking: it never existed for it.
                let info = conn.info();
                let ask = !closing && !conn.close_requested();
                let accept = ask && host.new_connection(info.id, info);
                conn.decide(accept);
                if ask {
                    ran(Callback::NewConnection)
                } else {
                    0
                }
            }
            Event::Connected { conn } => {
                host.connected(conn.id, conn.info());
                ran(Callback::Connected)
            }
            Event::Data {
                conn,
                messages,
                kind,
                epoch,
            } => {
                let bytes = messages.iter().map(Bytes::len).sum();
                let mut delivered = 0;
                for (i, data) in messages.iter().enumerate() {
                    // The host changed the framing (in the last callback, or from another
                    // thread): the rest is framed again, the new way, by the connection's task.
                    if kind == MessageKind::Stream && conn.framing_epoch() != epoch {
                        conn.give_back(conn.applied_mode().unframe(&messages[i..]));
                        break;
                    }
                    host.data_available(conn.id, data, conn.info(), kind);
                    delivered += 1;
                }
                if let Some(credits) = credits {
                    credits.add(&conn, bytes, messages.len());
                }
                delivered * ran(Callback::DataAvailable)
            }
            Event::SocketError {
                conn,
                code,
                message,
            } => {
                host.socket_error(conn.id, conn.info(), code, &message);
                ran(Callback::SocketError)
            }
            Event::Datagrams {
                listener,
                datagrams,
            } => deliver_datagrams(host, &listener, datagrams) * ran(Callback::ReceivedDatagram),
            Event::PageRequest {
                listener,
                request,
                reply,
            } => {
                // Dropping `reply` (a stopped listener) answers 503.
                match deliver_page_request(host, &listener, *request) {
                    Some(response) => {
                        let _ = reply.send(response);
                        ran(Callback::PageRequest)
                    }
                    None => 0,
                }
            }
            Event::Log { level, message } => {
                host.log(level, &message);
                ran(Callback::Log)
            }
            Event::InterfaceChanged { name, address, up } => {
                host.interface_changed(&name, &address, up);
                ran(Callback::InterfaceChanged)
            }
        }
    }
}

/// Runs the host's callback for each datagram of one receive call; stops once the listener is
/// stopped. Returns how many ran.
fn deliver_datagrams(host: &dyn Host, listener: &UdpListener, datagrams: Vec<Datagram>) -> usize {
    let mut ran = 0;
    // Texts made once per run of one sender / one destination (a batch is usually one or two).
    let mut text: Option<(IpAddr, CString)> = None;
    let mut local: Option<(Option<IpAddr>, CString)> = None;
    for d in &datagrams {
        let Some(_pass) = listener.gate.enter() else {
            break;
        };
        let ip = canonical_ip(d.from.ip());
        if text.as_ref().is_none_or(|(t, _)| *t != ip) {
            text = Some((ip, c_text(&ip.to_string())));
        }
        let (destination, interface, kind) = describe(&listener.interface_names, &d.arrival);
        if local.as_ref().is_none_or(|(l, _)| *l != destination) {
            let shown = destination.map(|a| a.to_string()).unwrap_or_default();
            local = Some((destination, c_text(&shown)));
        }
        let info = DatagramInfo {
            remote_address: &text.as_ref().expect("set above").1,
            remote_port: d.from.port(),
            local_port: listener.port,
            name: d.identity.as_ref().map_or(UNKNOWN_NAME, |i| &i.name),
            mac_address: d.identity.as_ref().map_or(UNKNOWN_MAC, |i| &i.mac_address),
            local_address: &local.as_ref().expect("set above").1,
            interface_name: interface.as_ref().map_or(c"", |i| &i.name),
            interface_index: interface.as_ref().map_or(0, |_| d.arrival.interface_index),
            kind,
        };
        host.received_datagram(listener.id, &d.data, &info);
        ran += 1;
    }
    listener.delivered(&datagrams);
    ran
}

/// Runs the host's callback for one request: its answer now, or where it will arrive (the
/// host deferred it); None once the listener is stopped.
fn deliver_page_request(
    host: &dyn Host,
    listener: &HttpListener,
    mut request: RequestParts,
) -> Option<Answer> {
    let _pass = listener.gate.enter()?;
    let websocket = request.upgrade.take();
    let request = HttpRequest::new(request);
    let mut response = HttpResponse {
        later: Some(Later {
            id: request.id,
            replies: listener.deferred.clone(),
        }),
        websocket,
        ..HttpResponse::default()
    };
    host.page_request(listener.id, &request, &mut response);
    response.later = None;
    Some(match response.deferred.take() {
        Some(later) => Answer::Later(later),
        None => Answer::Now(response),
    })
}

/// Runs a batch of events on this thread for context `ctx_id`; returns how many host callbacks
/// ran. `counted`: their data was counted for flow control when queued (and is credited back
/// now); inline dispatch runs data at once without counting it.
pub(crate) fn run_batch(
    ctx_id: u64,
    host: &dyn Host,
    closing: &dyn Fn() -> bool,
    backlog: &Backlog,
    batch: &mut dyn Iterator<Item = Event>,
    counted: bool,
) -> usize {
    let scope = BatchScope::begin(ctx_id);
    let mut log = |line: String| host.log(LogLevel::Warning, &c_text(&line));
    let mut credits = Credits::new(backlog);
    let mut handled = 0;
    for event in batch {
        let closing = closing();
        dispatch::set_current(event.connection().map(|c| c.clone() as Arc<dyn Writer>));
        // A panic here is a bug in xtnet (host callbacks are C and cannot unwind): contain it
        // to this one event so the others are still delivered, and tell the host.
        match catch_unwind(AssertUnwindSafe(|| {
            event.deliver(host, closing, counted.then_some(&mut credits))
        })) {
            Ok(ran) => handled += ran,
            Err(payload) => host.log(
                LogLevel::Error,
                &c_text(&format!(
                    "internal error while delivering an event (it was dropped): {}",
                    crate::panics::message(&*payload)
                )),
            ),
        }
        scope.between(&mut log);
    }
    credits.apply();
    scope.end(&mut log);
    handled
}
