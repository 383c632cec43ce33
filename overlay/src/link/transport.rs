//! [`Shaped`]: a raw transport whose connections go through a [`LinkShaper`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::{AsyncRead, AsyncWrite, Future};
use libp2p::Multiaddr;
use libp2p::core::transport::{DialOpts, ListenerId, Transport, TransportError, TransportEvent};
use tracing::debug;

use super::{LinkShaper, ShapedStream};

/// Why a [`Shaped`] transport failed a connection.
#[derive(Debug, thiserror::Error)]
pub enum LinkError<E> {
    /// The shaper's drop rate refused the connection (dialled: before it was attempted;
    /// accepted: the incoming connection was closed before any handshake).
    #[error("the link shaper dropped the connection (drop rate {drop_rate})")]
    Dropped {
        /// The drop rate in force when it was refused.
        drop_rate: f64,
    },
    /// The transport underneath failed.
    #[error(transparent)]
    Transport(E),
}

/// A raw transport (one whose output is a byte stream: TCP, in-memory) whose every
/// connection, dialled or accepted, is refused with the shaper's drop rate or else wrapped in
/// a [`ShapedStream`]. Goes *below* the security and multiplexing upgrades:
/// `Shaped::new(tcp, shaper).upgrade(..).authenticate(noise).multiplex(yamux)`.
///
/// Addresses the inner transport does not support are passed over untouched (and never
/// counted as drops), so `Shaped` composes with other transports.
#[derive(Debug)]
pub struct Shaped<T> {
    inner: T,
    shaper: LinkShaper,
}

impl<T> Shaped<T> {
    /// Shapes `inner`'s connections with `shaper`.
    pub fn new(inner: T, shaper: LinkShaper) -> Self {
        Self { inner, shaper }
    }
}

impl<T> Transport for Shaped<T>
where
    T: Transport + Unpin,
    T::Output: AsyncRead + AsyncWrite + Unpin,
    T::Error: 'static,
{
    type Output = ShapedStream<T::Output>;
    type Error = LinkError<T::Error>;
    type ListenerUpgrade = ShapedConnect<T::ListenerUpgrade>;
    type Dial = ShapedConnect<T::Dial>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner
            .listen_on(id, addr)
            .map_err(|e| e.map(LinkError::Transport))
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        // Ask the inner transport first: an address it cannot dial is not ours to drop.
        let dial = self
            .inner
            .dial(addr.clone(), opts)
            .map_err(|e| e.map(LinkError::Transport))?;
        if let Some(drop_rate) = self.shaper.should_drop() {
            debug!(%addr, drop_rate, "link shaper dropped an outgoing connection");
            return Err(TransportError::Other(LinkError::Dropped { drop_rate }));
        }
        Ok(ShapedConnect::new(dial, self.shaper.clone()))
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        let event = ready!(Pin::new(&mut this.inner).poll(cx));
        let shaper = &this.shaper;
        let event = event.map_upgrade(|upgrade| match shaper.should_drop() {
            Some(drop_rate) => {
                debug!(drop_rate, "link shaper dropped an incoming connection");
                ShapedConnect::dropped(drop_rate)
            }
            None => ShapedConnect::new(upgrade, shaper.clone()),
        });
        Poll::Ready(event.map_err(LinkError::Transport))
    }
}

/// A connection of a [`Shaped`] transport being opened (dialled or accepted): resolves to a
/// [`ShapedStream`], or to [`LinkError::Dropped`] if the drop rate refused it.
pub struct ShapedConnect<F> {
    state: Connect<F>,
}

enum Connect<F> {
    Opening {
        inner: Pin<Box<F>>,
        shaper: LinkShaper,
    },
    Dropped {
        drop_rate: f64,
    },
    Done,
}

impl<F> ShapedConnect<F> {
    fn new(inner: F, shaper: LinkShaper) -> Self {
        Self {
            state: Connect::Opening {
                inner: Box::pin(inner),
                shaper,
            },
        }
    }

    /// A refused connection. The inner upgrade is dropped here, which closes its socket: the
    /// remote sees the connection end during its handshake.
    fn dropped(drop_rate: f64) -> Self {
        Self {
            state: Connect::Dropped { drop_rate },
        }
    }
}

impl<F> std::fmt::Debug for ShapedConnect<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            Connect::Opening { .. } => "opening",
            Connect::Dropped { .. } => "dropped",
            Connect::Done => "done",
        };
        f.debug_struct("ShapedConnect")
            .field("state", &state)
            .finish()
    }
}

impl<F, O, E> Future for ShapedConnect<F>
where
    F: Future<Output = Result<O, E>>,
{
    type Output = Result<ShapedStream<O>, LinkError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `ShapedConnect` is `Unpin`: the inner future is boxed.
        let this = self.get_mut();
        match &mut this.state {
            Connect::Opening { inner, shaper } => {
                let result = ready!(inner.as_mut().poll(cx));
                let shaper = shaper.clone();
                this.state = Connect::Done;
                Poll::Ready(
                    result
                        .map(|stream| ShapedStream::new(stream, shaper))
                        .map_err(LinkError::Transport),
                )
            }
            Connect::Dropped { drop_rate } => {
                let drop_rate = *drop_rate;
                this.state = Connect::Done;
                Poll::Ready(Err(LinkError::Dropped { drop_rate }))
            }
            Connect::Done => panic!("ShapedConnect polled after it completed"),
        }
    }
}
