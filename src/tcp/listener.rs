//! TCP listeners: bind (dual stack unless a bind address is set), accept, ask the host.

use super::connection::{attach, Connection, Settings, PENDING};
use super::task::ConnTask;
use crate::context::Shared;
use crate::error::Error;
use crate::events::{Event, LogLevel};
use crate::info::ConnectionInfo;
use crate::ports::{bind_error, check_port, listen_addresses};
use crate::registry::{ListenerKind, ListenerStop, ListenerStopped};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

fn bind_tcp(bind: Option<IpAddr>, port: u16, backlog: i32) -> Result<std::net::TcpListener, Error> {
    let mut last = None;
    for addr in listen_addresses(bind, port) {
        let attempt = (|| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            // Rebinding a port with connections in TIME_WAIT is normal on Unix; another live
            // listener on it still fails with EADDRINUSE (no SO_REUSEPORT: TCP stays exclusive).
            socket.set_reuse_address(true)?;
            if addr.is_ipv6() && bind.is_none() {
                socket.set_only_v6(false)?;
            }
            socket.bind(&addr.into())?;
            socket.listen(backlog)?;
            socket.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(std::net::TcpListener::from(socket))
        })();
        match attempt {
            Ok(l) => return Ok(l),
            // No IPv6 on this machine: fall back to IPv4 only.
            Err(e) if bind.is_none() && addr.is_ipv6() && is_no_ipv6(&e) => {
                last = Some(bind_error("TCP", addr, &e))
            }
            Err(e) => return Err(bind_error("TCP", addr, &e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::invalid_argument("no address to listen on")))
}

fn is_no_ipv6(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == libc::EAFNOSUPPORT || c == libc::EADDRNOTAVAIL || c == libc::EPROTONOSUPPORT)
}

/// Starts a framed TCP listener and returns its id.
pub(crate) fn start_listener(
    shared: &Arc<Shared>,
    port: u16,
    boundary: &[u8],
) -> Result<u32, Error> {
    let settings = Settings::new(shared, boundary)?;
    let (allow_privileged, bind, backlog) = {
        let o = shared.options.lock();
        (o.allow_privileged_ports, o.bind_address, o.listen_backlog)
    };
    check_port(port, allow_privileged)?;
    let std_listener = bind_tcp(bind, port, backlog)?;
    let local_port = std_listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", &e))?
        .port();
    let id = shared.registry.next_listener_id()?;
    let listener = {
        let _runtime = shared.runtime.enter();
        TcpListener::from_std(std_listener)
            .map_err(|e| Error::io("registering the listener", &e))?
    };
    let (stop, stopped) = ListenerStop::new();
    let guard = shared.task_guard();
    let task_shared = shared.clone();
    shared.runtime.spawn(async move {
        let _guard = guard;
        accept_loop(task_shared, id, listener, local_port, settings, stopped).await;
    });
    shared
        .registry
        .add_listener(id, ListenerKind::Tcp, local_port, stop);
    shared.log(
        LogLevel::Info,
        &format!(
            "TCP listener {id} listening on port {local_port} (boundary of {} bytes)",
            boundary.len()
        ),
    );
    if shared.is_closing() {
        let _ = shared.registry.stop_listener(id, ListenerKind::Tcp);
        return Err(Error::invalid_state("the context is being freed"));
    }
    Ok(id)
}

async fn accept_loop(
    shared: Arc<Shared>,
    server_id: u32,
    listener: TcpListener,
    local_port: u16,
    settings: Arc<Settings>,
    mut stopped: ListenerStopped,
) {
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped.stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => spawn_accepted(&shared, server_id, stream, peer, local_port, &settings),
                Err(e) => {
                    // Out of descriptors or memory: say so and back off instead of spinning.
                    let err = Error::io(&format!("accept on port {local_port} failed"), &e);
                    shared.log(LogLevel::Warning, &err.to_string());
                    if matches!(e.raw_os_error(), Some(c) if c == libc::EMFILE || c == libc::ENFILE || c == libc::ENOBUFS || c == libc::ENOMEM) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
    // Close the socket before saying so: the port is free when stop returns.
    drop(listener);
    drop(stopped);
}

fn spawn_accepted(
    shared: &Arc<Shared>,
    server_id: u32,
    stream: TcpStream,
    peer: SocketAddr,
    local_port: u16,
    settings: &Arc<Settings>,
) {
    let id = shared.registry.next_connection_id();
    let conn = Arc::new(Connection::new(
        id,
        server_id,
        shared,
        PENDING,
        settings.clone(),
    ));
    conn.set_info(ConnectionInfo::connected(id, server_id, peer, local_port));
    attach(&conn, stream);
    shared.registry.add_connection(conn.clone());
    // The dispatcher always answers (refusing without asking when it must skip the question).
    let ask = shared.host.wants_new_connection();
    if ask {
        shared
            .queue
            .push(Event::NewConnection { conn: conn.clone() });
    }
    shared
        .drivers
        .spawn(ConnTask::accepted(shared.task_guard(), conn, ask));
}
