//! Baseline (b): tonic gRPC unary `micro.bench.v1.Echo/Echo` on loopback.
//!
//! One HTTP/2 `Channel` shared by all callers (each caller clones the client), as a real gRPC
//! client would do.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

use super::{Caller, Transport};

/// Generated from `tests/proto/bench_echo.proto` by `tests/build.rs`.
#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("micro.bench.v1");
}

use pb::echo_client::EchoClient;
use pb::echo_server::{Echo, EchoServer};
use pb::{EchoReply, EchoRequest};

/// Largest gRPC message either side accepts.
pub const MAX_MESSAGE: usize = 16 << 20;

struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let payload = request.into_inner().payload;
        Ok(Response::new(EchoReply { payload }))
    }
}

/// tonic server on `127.0.0.1:0` and a connected client; the server stops when dropped.
pub struct TonicEcho {
    client: EchoClient<Channel>,
    server: JoinHandle<()>,
}

impl TonicEcho {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the gRPC echo server")?;
        let addr = listener.local_addr()?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let service = EchoServer::new(EchoService)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let server = tokio::spawn(async move {
            if let Err(e) = Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
            {
                tracing::warn!("gRPC echo server: {e}");
            }
        });
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .context("connecting to the gRPC echo server")?;
        let client = EchoClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Self { client, server })
    }
}

impl Drop for TonicEcho {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Transport for TonicEcho {
    type Caller = TonicCaller;

    fn name(&self) -> String {
        "tonic".to_owned()
    }

    async fn caller(&self) -> Result<TonicCaller> {
        Ok(TonicCaller(self.client.clone()))
    }
}

/// A clone of the shared client: calls are multiplexed on the one channel.
pub struct TonicCaller(EchoClient<Channel>);

impl Caller for TonicCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize> {
        let reply = self.0.echo(EchoRequest { payload }).await?;
        Ok(reply.into_inner().payload.len())
    }
}
