//! Baseline (a): raw tokio TCP echo on loopback.
//!
//! Frames are a `u32` big-endian length followed by that many bytes. The server answers every
//! frame with the same frame; each caller has its own connection.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::{Caller, Transport};

/// Largest frame body either side accepts.
pub const MAX_FRAME: usize = 16 << 20;
/// Connections the server serves at once; further ones are closed on accept.
const MAX_CONNS: usize = 1024;
/// Read buffer per connection, each side.
const READ_BUF: usize = 64 << 10;

/// Echo server on `127.0.0.1:0`; stopped (with all its connections) when dropped.
pub struct TcpEcho {
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl TcpEcho {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the TCP echo server")?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(serve(listener));
        Ok(Self { addr, server })
    }
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Accept loop; the connection tasks live in a `JoinSet` so aborting this task ends them.
async fn serve(listener: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if conns.len() < MAX_CONNS => {
                    conns.spawn(echo_conn(stream));
                }
                Ok(_) => {} // over the limit: dropping the stream closes it
                Err(e) => {
                    tracing::warn!("tcp echo accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Answers each frame with the same frame until the peer closes or sends an oversized frame.
async fn echo_conn(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut stream = BufReader::with_capacity(READ_BUF, stream);
    let mut frame = Vec::new();
    loop {
        let len = match stream.read_u32().await {
            Ok(len) => len as usize,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes"),
            ));
        }
        frame.clear();
        frame.extend_from_slice(&(len as u32).to_be_bytes());
        frame.resize(4 + len, 0);
        stream.read_exact(&mut frame[4..]).await?;
        stream.get_mut().write_all(&frame).await?;
    }
}

impl Transport for TcpEcho {
    type Caller = TcpCaller;

    fn name(&self) -> String {
        "tcp".to_owned()
    }

    async fn caller(&self) -> Result<TcpCaller> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(TcpCaller {
            stream: BufReader::with_capacity(READ_BUF, stream),
            frame: Vec::new(),
        })
    }
}

/// One connection to [`TcpEcho`].
pub struct TcpCaller {
    stream: BufReader<TcpStream>,
    frame: Vec<u8>,
}

impl Caller for TcpCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize> {
        ensure!(payload.len() <= MAX_FRAME, "payload over {MAX_FRAME} bytes");
        self.frame.clear();
        self.frame
            .extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.frame.extend_from_slice(&payload);
        self.stream.get_mut().write_all(&self.frame).await?;

        let len = self.stream.read_u32().await? as usize;
        ensure!(len <= MAX_FRAME, "reply frame of {len} bytes");
        self.frame.resize(len, 0);
        self.stream.read_exact(&mut self.frame).await?;
        Ok(len)
    }
}
