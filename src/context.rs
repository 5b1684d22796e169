//! The facade: one `XtContext` — its runtime and dispatcher thread, and every call a host
//! makes — and the orderly way it ends. This is the only place that starts and stops the
//! protocols; they reach the context through `shared.rs`, below them.

use crate::dispatch;
pub use crate::dispatch::Dispatch;
use crate::error::Error;
use crate::events::{Host, LogLevel};
use crate::info::MessageKind;
use crate::lifecycle;
use crate::queue::EventQueue;
use crate::registry::ListenerKind;
use crate::shared::Shared;
use crate::tcp::{self, CloseReason, Connection, Drivers};
use crate::udp;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Counter numbers for [`Context::stat`], as the C surface names them (`XT_STAT_*`).
pub mod stats {
    /// Connections open now (accepted, pending a decision, outgoing, connecting).
    pub const CONNECTIONS: u32 = 1;
    /// Listeners running now.
    pub const LISTENERS: u32 = 2;
    /// Bytes read and not yet delivered to the host's callbacks (back-pressure at work).
    pub const BACKLOG_BYTES: u32 = 3;
    /// Peer addresses whose name and MAC are cached.
    pub const PEER_CACHE_ENTRIES: u32 = 4;
    /// Peer lookups started since the context was made.
    pub const PEER_LOOKUPS: u32 = 5;
    /// Accepts that failed on any listener since the context was made.
    pub const ACCEPT_ERRORS: u32 = 6;
}

/// See [`crate::tcp::BACKLOG_LIMIT`]: undelivered bytes of a context before every reader pauses.
pub use crate::tcp::BACKLOG_LIMIT;

static NEXT_CONTEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How `Context::set_framing` splits a stream (`XT_FRAME_*`).
pub enum Framing<'a> {
    Raw,
    Boundary(&'a [u8]),
    Length(usize),
}

/// A context: owns the network (its runtime, started by the first listener or connection) and
/// the dispatcher thread. Dropping it shuts it down.
pub struct Context {
    shared: Arc<Shared>,
    network: OnceLock<Network>,
    /// Held while the network starts (and while `XT_OPT_NETWORK_THREADS` is set).
    starting: Mutex<()>,
    dispatcher: Option<JoinHandle<()>>,
}

/// The network threads and what runs on them for good.
struct Network {
    runtime: tokio::runtime::Runtime,
    /// The tasks of TCP connections (one shard per network thread).
    drivers: Arc<Drivers>,
    /// Inline dispatch's watch (`inline.rs`), ended with the callbacks.
    watch: Option<JoinHandle<()>>,
}

impl Context {
    /// A context whose events go to `host`, dispatched as `dispatch` says.
    pub fn new(host: Arc<dyn Host>, dispatch: Dispatch) -> Result<Context, Error> {
        crate::panics::install_hook();
        let queue = EventQueue::new(dispatch == Dispatch::Poll)
            .map_err(|e| Error::io("creating the wakeup descriptor", &e))?;
        let shared = Shared::new(
            NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed),
            dispatch,
            queue,
            host,
        );
        let dispatcher = match dispatch {
            Dispatch::Poll | Dispatch::Inline => None,
            Dispatch::Thread => {
                let shared = shared.clone();
                let thread = std::thread::Builder::new()
                    .name("xtnet-dispatch".into())
                    .spawn(move || {
                        let mut batch = VecDeque::new();
                        while shared.run_events(None, &mut batch).is_some() {}
                    })
                    .map_err(|e| Error::io("starting the dispatch thread", &e))?;
                Some(thread)
            }
        };
        Ok(Context {
            shared,
            network: OnceLock::new(),
            starting: Mutex::new(()),
            dispatcher,
        })
    }

    /// The network, started now if it was not: `XT_OPT_NETWORK_THREADS` threads, a shard of
    /// connection tasks on each, and the interface watch (ends with the runtime).
    fn network(&self) -> Result<&Network, Error> {
        if let Some(network) = self.network.get() {
            return Ok(network);
        }
        let _starting = self.starting.lock();
        if let Some(network) = self.network.get() {
            return Ok(network);
        }
        self.shared.check_open()?;
        let threads = self.shared.options.lock().network_threads();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("xtnet-io")
            .on_thread_start(|| {
                dispatch::mark_network_thread();
                crate::sys::signals::block_sigpipe_on_this_thread();
            })
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the network runtime", &e))?;
        // The one step that can fail comes before anything knows of the runtime.
        let watch = if self.shared.dispatch == Dispatch::Inline {
            let watch = self.shared.inline.watch(runtime.handle().clone());
            Some(watch.map_err(|e| Error::io("starting the inline dispatch watch", &e))?)
        } else {
            None
        };
        let drivers = Arc::new(Drivers::start(runtime.handle(), threads));
        self.shared.set_runtime(runtime.handle().clone());
        // Interfaces that change: the host is told, memberships follow.
        runtime.spawn(udp::watch(self.shared.clone()));
        Ok(self.network.get_or_init(|| Network {
            runtime,
            drivers,
            watch,
        }))
    }

    fn drivers(&self) -> Result<&Arc<Drivers>, Error> {
        Ok(&self.network()?.drivers)
    }

    /// A number that identifies this context within the process.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    pub fn set_option(&self, option: u32, value: i64) -> Result<(), Error> {
        if option == crate::options::id::NETWORK_THREADS {
            let _starting = self.starting.lock();
            if self.network.get().is_some() {
                return Err(Error::invalid_state(
                    "XT_OPT_NETWORK_THREADS is set before the first listener or connection",
                ));
            }
            return self.shared.options.lock().set(option, value);
        }
        self.shared.options.lock().set(option, value)
    }

    pub fn get_option(&self, option: u32) -> Option<i64> {
        self.shared.options.lock().get(option)
    }

    pub fn set_bind_address(&self, address: &str) -> Result<(), Error> {
        self.shared.options.lock().set_bind_address(address)
    }

    /// Starts a framed TCP listener; returns its id.
    pub fn start_tcp_listener(&self, port: u16, boundary: &[u8]) -> Result<u32, Error> {
        self.shared.check_open()?;
        tcp::start_listener(&self.shared, self.drivers()?, port, boundary, None)
    }

    /// Starts a framed TCP listener over TLS, presenting `tls`'s certificate (or one made for
    /// this host); returns its id.
    pub fn start_tls_listener(
        &self,
        port: u16,
        boundary: &[u8],
        tls: &crate::tls::TlsServer,
    ) -> Result<u32, Error> {
        self.shared.check_open()?;
        tcp::start_listener(&self.shared, self.drivers()?, port, boundary, Some(tls))
    }

    /// The fingerprint of the certificate a TLS listener presents.
    pub fn listener_fingerprint(&self, server_id: u32) -> Result<Arc<std::ffi::CString>, Error> {
        self.shared.registry.listener_fingerprint(server_id)
    }

    /// Stops a TCP listener: its socket is closed when this returns; its connections end (102).
    pub fn stop_tcp_listener(&self, server_id: u32) -> Result<(), Error> {
        lifecycle::stop(&self.shared, server_id, ListenerKind::Tcp)
    }

    /// Starts an HTTP ("HTML") listener; returns its id.
    pub fn start_html_listener(&self, port: u16) -> Result<u32, Error> {
        self.shared.check_open()?;
        self.network()?;
        crate::http::start_listener(&self.shared, port, None)
    }

    /// Starts an HTTPS listener (an HTML listener over TLS); returns its id. Stopped as an
    /// HTML listener.
    pub fn start_https_listener(
        &self,
        port: u16,
        tls: &crate::tls::TlsServer,
    ) -> Result<u32, Error> {
        self.shared.check_open()?;
        self.network()?;
        crate::http::start_listener(&self.shared, port, Some(tls))
    }

    /// Stops an HTTP listener: its socket and connections are closed and none of its callbacks
    /// runs when this returns (a call from its own callback lets that callback finish).
    pub fn stop_html_listener(&self, server_id: u32) -> Result<(), Error> {
        crate::http::stop_listener(&self.shared, server_id)
    }

    /// Answers HTTP request `request_id`, deferred in `page_request` (any thread, once).
    pub fn http_reply(
        &self,
        request_id: u64,
        status: u16,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(), Error> {
        let listener = self
            .shared
            .registry
            .http_listeners()
            .into_iter()
            .find(|l| l.deferred.has(request_id))
            .ok_or_else(|| {
                Error::invalid_state(format!(
                    "HTTP request {request_id} is not waiting for an answer (answered, timed out, or its client left)"
                ))
            })?;
        listener
            .deferred
            .reply(request_id, status, content_type, body)
    }

    /// Starts a UDP listener; returns its id.
    pub fn start_udp_listener(&self, port: u16) -> Result<u32, Error> {
        self.shared.check_open()?;
        self.network()?;
        udp::start_listener(&self.shared, port)
    }

    /// Stops a UDP listener: its sockets are closed and none of its callbacks runs when this
    /// returns (a call from its own callback lets that callback finish).
    pub fn stop_udp_listener(&self, server_id: u32) -> Result<(), Error> {
        udp::stop_listener(&self.shared, server_id)
    }

    /// Sends a datagram from UDP listener `server_id` out of `interface` (name or address).
    pub fn send_datagram_on(
        &self,
        server_id: u32,
        interface: &str,
        address: &str,
        port: u16,
        data: &[u8],
    ) -> Result<(), Error> {
        let listener = self.shared.registry.udp_listener(server_id)?;
        listener.send_on(interface, udp::Destination::parse(address, port)?, data)
    }

    /// Which of this host's addresses `remote` reaches it on (the routing table's answer).
    pub fn local_address_for(&self, remote: &str) -> Result<std::net::IpAddr, Error> {
        udp::local_address_for(remote)
    }

    /// Sends the Wake-on-LAN magic packet for `mac` out of every interface, or `interface`.
    pub fn send_wake_on_lan(&self, mac: &str, interface: Option<&str>) -> Result<usize, Error> {
        let sent = udp::send_wake_on_lan(mac, interface)?;
        self.shared.log(
            LogLevel::Info,
            &format!(
                "Wake-on-LAN for {} sent out of {sent} interface(s)",
                mac.trim()
            ),
        );
        Ok(sent)
    }

    /// Sends a datagram from UDP listener `server_id` to `address` (text) and `port`.
    pub fn send_datagram(
        &self,
        server_id: u32,
        address: &str,
        port: u16,
        data: &[u8],
    ) -> Result<(), Error> {
        let listener = self.shared.registry.udp_listener(server_id)?;
        listener.send(udp::Destination::parse(address, port)?, data)
    }

    /// Joins (`join`) a multicast group on `interface` (name or address), or on every up,
    /// multicast-capable interface; or leaves it there, or everywhere it was joined.
    pub fn multicast_membership(
        &self,
        server_id: u32,
        group: &str,
        interface: Option<&str>,
        join: bool,
    ) -> Result<(), Error> {
        let listener = self.shared.registry.udp_listener(server_id)?;
        let group = udp::parse_group(group)?;
        let interface = interface.map(udp::interfaces::find).transpose()?;
        if join {
            listener.join(group, interface)
        } else {
            listener.leave(group, interface)
        }
    }

    /// The interface a UDP listener sends multicast from (None: every suitable interface).
    pub fn set_multicast_interface(
        &self,
        server_id: u32,
        interface: Option<&str>,
    ) -> Result<(), Error> {
        let listener = self.shared.registry.udp_listener(server_id)?;
        listener.set_multicast_interface(interface.map(udp::interfaces::find).transpose()?)
    }

    /// Multicast time to live (IPv4) and hop limit (IPv6) of a UDP listener.
    pub fn set_multicast_ttl(&self, server_id: u32, ttl: u32) -> Result<(), Error> {
        self.shared
            .registry
            .udp_listener(server_id)?
            .set_multicast_ttl(ttl)
    }

    /// Whether multicast a UDP listener sends loops back to this host's listeners.
    pub fn set_multicast_loop(&self, server_id: u32, on: bool) -> Result<(), Error> {
        self.shared
            .registry
            .udp_listener(server_id)?
            .set_multicast_loop(on)
    }

    /// Datagrams a UDP listener dropped because the host's callbacks were behind.
    pub fn udp_dropped(&self, server_id: u32) -> Result<u64, Error> {
        Ok(self.shared.registry.udp_listener(server_id)?.dropped())
    }

    /// Datagrams sent from a UDP listener's callbacks that the system refused.
    pub fn udp_send_failures(&self, server_id: u32) -> Result<u64, Error> {
        Ok(self
            .shared
            .registry
            .udp_listener(server_id)?
            .send_failures())
    }

    /// The bound port of any listener.
    pub fn listener_port(&self, server_id: u32) -> Result<u16, Error> {
        self.shared.registry.listener_port(server_id)
    }

    /// Opens an outgoing connection; `connected` or a final `socket_error` follows.
    pub fn open_tcp_connection(
        &self,
        host: &str,
        port: u16,
        boundary: &[u8],
    ) -> Result<u64, Error> {
        self.shared.check_open()?;
        tcp::open_connection(&self.shared, self.drivers()?, host, port, boundary, None)
    }

    /// Opens an outgoing TLS connection; `connected` (after the handshake) or a final
    /// `socket_error` (1011 untrusted, 1010 other handshake failures, ...) follows.
    pub fn open_tls_connection(
        &self,
        host: &str,
        port: u16,
        boundary: &[u8],
        tls: &crate::tls::TlsClient,
    ) -> Result<u64, Error> {
        self.shared.check_open()?;
        tcp::open_connection(
            &self.shared,
            self.drivers()?,
            host,
            port,
            boundary,
            Some(tls),
        )
    }

    /// Opens a WebSocket to a `ws://` or `wss://` URL (wss trusting as `tls` says, by default
    /// the system's roots); returns its id at once, `connected` follows the handshake.
    pub fn open_websocket(
        &self,
        url: &str,
        tls: Option<&crate::tls::TlsClient>,
    ) -> Result<u64, Error> {
        self.shared.check_open()?;
        tcp::open_websocket(&self.shared, self.drivers()?, url, tls)
    }

    /// Queues one WebSocket message of `kind` (copied; never blocks).
    pub fn send_websocket(
        &self,
        connection_id: u64,
        data: &[u8],
        kind: MessageKind,
    ) -> Result<(), Error> {
        let current = dispatch::with_current(self.shared.id, |conn: &Connection, this| {
            (conn.id == connection_id)
                .then(|| conn.send_message(data, kind, || this.clone(), Some(true)))
        });
        if let Some(result) = current {
            return result;
        }
        let conn = self.shared.registry.connection(connection_id)?;
        conn.send_message(data, kind, || conn.clone(), None)
    }

    /// Queues bytes on a connection (copied; never blocks).
    pub fn send_data(&self, connection_id: u64, data: &[u8]) -> Result<(), Error> {
        // Answering the connection a callback is about needs no registry lookup.
        let current = dispatch::with_current(self.shared.id, |conn: &Connection, this| {
            (conn.id == connection_id).then(|| conn.send(data, || this.clone(), Some(true)))
        });
        if let Some(result) = current {
            return result;
        }
        let conn = self.shared.registry.connection(connection_id)?;
        conn.send(data, || conn.clone(), None)
    }

    /// Tests only: makes the task of connection `connection_id` panic at its next step.
    pub fn debug_panic_connection(&self, connection_id: u64) -> Result<(), Error> {
        self.shared
            .registry
            .connection(connection_id)?
            .debug_panic();
        Ok(())
    }

    /// Changes how a connection's stream is split into messages, from the next byte not yet
    /// delivered: `boundary` (non-empty), `length` bytes each, or raw chunks; with `timeout`,
    /// bytes that wait that long without completing a message are delivered as one.
    pub fn set_framing(
        &self,
        connection_id: u64,
        framing: Framing,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let conn = self.shared.registry.connection(connection_id)?;
        let mode = match framing {
            Framing::Raw => crate::framing::Mode::Raw,
            Framing::Boundary(b) => {
                if b.is_empty() || b.len() > tcp::MAX_BOUNDARY_LEN {
                    return Err(Error::invalid_argument(format!(
                        "a boundary is 1 to {} bytes, got {}",
                        tcp::MAX_BOUNDARY_LEN,
                        b.len()
                    )));
                }
                crate::framing::Mode::Boundary(Arc::new(crate::framing::Boundary::new(b)))
            }
            Framing::Length(n) => {
                let max = conn.max_message_len();
                if n == 0 || n > max {
                    return Err(Error::invalid_argument(format!(
                        "a message length is 1 to XT_OPT_MAX_MESSAGE_LEN ({max}), got {n}"
                    )));
                }
                crate::framing::Mode::Length(n)
            }
        };
        conn.set_framing(tcp::FramingSpec { mode, timeout })
    }

    /// Writes out what was queued, then closes; the final `socket_error` (102) follows.
    pub fn disconnect(&self, connection_id: u64) -> Result<(), Error> {
        let conn = self.shared.registry.connection(connection_id)?;
        if conn.close_requested() {
            return Err(Error::invalid_state(format!(
                "connection {connection_id} is already closing"
            )));
        }
        conn.request_close(CloseReason::Disconnect);
        Ok(())
    }

    /// Poll mode: runs the callbacks waiting now (waiting up to `timeout` for one; None: forever).
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize, Error> {
        if self.shared.dispatch != Dispatch::Poll {
            return Err(Error::invalid_state(
                "xt_poll is for contexts created with XT_DISPATCH_POLL",
            ));
        }
        if self.in_callback() {
            return Err(Error::invalid_state(
                "xt_poll called from inside a callback",
            ));
        }
        if self.shared.polling.swap(true, Ordering::Acquire) {
            return Err(Error::invalid_state("another thread is in xt_poll"));
        }
        let mut batch = VecDeque::new();
        let handled = self.shared.run_events(timeout, &mut batch).unwrap_or(0);
        self.shared.polling.store(false, Ordering::Release);
        Ok(handled)
    }

    /// Poll mode: a descriptor readable exactly while callbacks wait.
    pub fn wakeup_fd(&self) -> Option<i32> {
        self.shared.queue.wake_fd()
    }

    /// A counter (`stats::*`): live connections, listeners, undelivered bytes, peer cache.
    pub fn stat(&self, stat: u32) -> Option<i64> {
        let r = &self.shared.registry;
        Some(match stat {
            stats::CONNECTIONS => r.connection_count() as i64,
            stats::LISTENERS => r.listener_count() as i64,
            stats::BACKLOG_BYTES => self.shared.backlog.bytes() as i64,
            stats::PEER_CACHE_ENTRIES => self.shared.peers.entries() as i64,
            stats::PEER_LOOKUPS => self.shared.peers.lookups_started() as i64,
            stats::ACCEPT_ERRORS => self.shared.accept_errors.load(Ordering::Relaxed) as i64,
            _ => return None,
        })
    }

    /// Whether this thread is running one of this context's callbacks now.
    pub fn in_callback(&self) -> bool {
        dispatch::dispatching_context() == self.shared.id
    }

    /// Ends everything: listeners stop, every connection gets its final event (102, "context
    /// freed"), waiting callbacks run, the dispatcher ends and the runtime stops. When this
    /// returns no callback runs or will run. Refused from inside one of this context's callbacks.
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if self.in_callback() {
            return Err(Error::invalid_state(
                "xt_context_free cannot be called from inside a callback of that context",
            ));
        }
        if self.shared.is_closing() {
            return Ok(());
        }
        let shared = self.shared.clone();
        shared.set_closing();
        lifecycle::stop_all(&shared);
        for conn in shared.registry.connections(None) {
            conn.request_close(CloseReason::ContextFreed);
        }
        // Wait for every task to push its final event. In poll mode nobody else runs callbacks
        // (and a task may wait for a new_connection answer), so run them here meanwhile.
        let mut batch = VecDeque::new();
        loop {
            if shared.dispatch == Dispatch::Poll {
                while shared
                    .run_events(Some(Duration::ZERO), &mut batch)
                    .is_some()
                {}
            }
            if shared.wait_tasks_idle(Duration::from_millis(5)) {
                break;
            }
            // Connections that appeared while we were closing (accepted just before the
            // listener stopped) are told too.
            for conn in shared.registry.connections(None) {
                conn.request_close(CloseReason::ContextFreed);
            }
        }
        shared.queue.close();
        if let Some(thread) = self.dispatcher.take() {
            let _ = thread.join();
        } else if shared.dispatch == Dispatch::Inline {
            shared.end_inline();
        } else {
            while shared
                .run_events(Some(Duration::ZERO), &mut batch)
                .is_some()
            {}
        }
        // Taken under the start lock: a start racing with this sees the context closing.
        let network = {
            let _starting = self.starting.lock();
            self.network.take()
        };
        if let Some(network) = network {
            if let Some(watch) = network.watch {
                let _ = watch.join(); // ends within a tick once the callbacks are over
            }
            network.runtime.shutdown_timeout(Duration::from_secs(2));
        }
        Ok(())
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
