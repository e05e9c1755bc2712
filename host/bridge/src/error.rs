//! Why a connection attempt failed, and why a connection ended: one line each that
//! names the cause, typed so that callers (the retry loop, `doctor`) can tell them
//! apart without reading text.

use std::time::Duration;

use crate::transport::TransportError;
use crate::wire::WireError;

/// A CONNACK return code other than success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the broker does not speak MQTT 3.1.1 (CONNACK 1)")]
    Protocol,
    #[error("the broker refused the client id (CONNACK 2)")]
    ClientId,
    #[error("the broker is unavailable (CONNACK 3)")]
    Unavailable,
    #[error("the broker refused the user name or password (CONNACK 4)")]
    BadLogin,
    #[error("the broker refused us: not authorized (CONNACK 5; credentials or ACL)")]
    NotAuthorized,
    /// MQTT 5: a reason code none of the above says.
    #[error("the broker refused the connection: {} (CONNACK reason code {:#04x})", crate::wire::reason_name(*.0), .0)]
    Mqtt5(u8),
}

impl Refusal {
    /// A login the broker refused (as opposed to a broker that cannot serve us).
    pub fn is_login(self) -> bool {
        matches!(
            self,
            Self::BadLogin | Self::NotAuthorized | Self::Mqtt5(0x86 | 0x87 | 0x8C)
        )
    }

    /// The broker cannot serve us now but may later: busy, over a quota or a rate
    /// (MQTT 5's codes for those).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Unavailable | Self::Mqtt5(0x80 | 0x83 | 0x88 | 0x89 | 0x8B | 0x97 | 0x9F)
        )
    }
}

/// Why a connection attempt (TCP, TLS, CONNECT, CONNACK) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Refused(Refusal),
    /// rumqttd answers bad credentials this way, without a CONNACK code.
    #[error("the broker closed the connection before CONNACK{}", if *.login { " (user name or password refused?)" } else { "" })]
    ClosedBeforeConnack { login: bool },
    #[error("no CONNACK within {0:?}")]
    Timeout(Duration),
    /// Named by type and size only: a peer that echoes bytes sends back our CONNECT,
    /// password and all.
    #[error("expected CONNACK, got a {kind} of {bytes} bytes")]
    Unexpected { kind: &'static str, bytes: usize },
    #[error("not an MQTT answer: {0}")]
    Decode(WireError),
    #[error("cannot encode CONNECT: {0}")]
    Encode(WireError),
    #[error("stopping: no time left to connect")]
    Stopping,
}

impl ConnectError {
    /// Retrying will not help: credentials refused, certificate untrusted, a CONNECT
    /// that cannot be written. A busy broker (CONNACK 3) is worth retrying.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Refused(r) => !r.is_transient(),
            Self::Transport(t) => t.is_tls(),
            Self::Encode(_) => true,
            _ => false,
        }
    }
}

/// Why a live connection ended.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error("the broker closed the connection")]
    Closed,
    #[error("the connection takes no more data")]
    WriteZero,
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the broker sent DISCONNECT")]
    BrokerDisconnect,
    /// MQTT 5's DISCONNECT, with its reason code and (shortened) reason string.
    #[error("the broker sent DISCONNECT: {} (reason code {code:#04x}){}", crate::wire::reason_name(*.code),
        .reason.as_deref().map(|r| format!(", \"{}\"", crate::shown::text(r))).unwrap_or_default())]
    BrokerSaid { code: u8, reason: Option<String> },
    /// MQTT 5: an event refused for the broker's quota, which is not ours to drop:
    /// a new connection (where the broker counts afresh) sends it again.
    #[error("the broker refused an event: {} (reason code {code:#04x}); it goes again on a new connection", crate::wire::reason_name(*.code))]
    OverQuota { code: u8 },
    #[error("no answer from the broker within {0:?}")]
    NoAnswer(Duration),
    #[error("the broker has taken no data for {0:?}")]
    Stalled(Duration),
    #[error("no acknowledgement from the broker within {0:?} while events wait for one")]
    NoAck(Duration),
    #[error("the broker announced a control packet of {0} bytes (only a PUBLISH may be large)")]
    Oversized(usize),
    #[error(transparent)]
    Wire(#[from] WireError),
}
