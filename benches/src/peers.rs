//! The peers: one row each, the only place that says what a peer is, how it is started
//! and what it is compared with. benches/README.md describes each one at length.

use serde::Serialize;

/// Where the broker, the publisher and the subscriber run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// Nothing pinned, both cores.
    Spread,
    /// Everything under `taskset -c 0`: the board's situation.
    Shared,
}

impl Place {
    pub const ALL: [Place; 2] = [Place::Spread, Place::Shared];

    pub fn name(self) -> &'static str {
        match self {
            Place::Spread => "spread",
            Place::Shared => "shared",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Place::Spread => "no pinning, both cores",
            Place::Shared => "broker, publisher and subscriber on one core, `taskset -c 0`",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Place> {
        Place::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| anyhow::anyhow!("placement {s:?}: expected spread or shared"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum PeerId {
    Raw,
    Rumqttc,
    PahoSeed,
    MosquittoPub,
    Bridge,
    EndToEnd,
    RawQos1,
    BridgeQos1,
    BridgeV5,
    EndToEndLoaded,
}

/// How a peer is started.
#[derive(Clone, Copy, Debug)]
pub enum Launch {
    /// This program with these role arguments (then `--port`, `--n`).
    Role(&'static [&'static str]),
    /// The seed's loop, `benches/paho_seed.py`, under the checkout's venv.
    PahoSeed,
    /// `mosquitto_pub -l`, fed one line per message.
    MosquittoPub,
    /// The `pub-e2e` role with the end-to-end settings and the generator's rate.
    EndToEnd,
    /// The same, while a CPU-bound loop at normal priority (the `burn` role, in the
    /// same placement) keeps a core busy: a board whose CPU also runs a notebook.
    /// Its loss is expected to be counted, not zero (see [`Accounting`]).
    EndToEndLoaded,
}

/// Messages per run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Size {
    Fast,
    /// The seed's Python loop, too slow for the fast peers' N.
    Slow,
}

pub struct Peer {
    pub id: PeerId,
    /// Its label in the tables and results.json, `(a)` to `(h)`.
    pub key: &'static str,
    pub name: &'static str,
    pub launch: Launch,
    pub size: Size,
    /// Run in every placement against the broker (each is, against [`BASELINE`]).
    pub placements: &'static [Place],
    /// Also run into the discard sink (against [`SINK_BASELINE`]).
    pub in_sink: bool,
    /// A second comparison, its own line under the placement's table.
    pub compared_with: Option<PeerId>,
}

/// Every ratio in a placement's table is against this peer, same rep.
pub const BASELINE: PeerId = PeerId::Raw;
/// The discard sink's ratios are against this peer.
pub const SINK_BASELINE: PeerId = PeerId::Rumqttc;

/// In the order of a rep: the baseline first, since the end-to-end run's rate is set
/// from it.
pub const PEERS: [Peer; 10] = [
    Peer {
        id: PeerId::Raw,
        key: "a",
        name: "raw QoS0 PUBLISH, 64 KiB writes (ceiling)",
        launch: Launch::Role(&["pub-raw"]),
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: true,
        compared_with: None,
    },
    Peer {
        id: PeerId::Rumqttc,
        key: "b",
        name: "rumqttc 0.25, publish().await each",
        launch: Launch::Role(&["pub-rumqttc"]),
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: true,
        compared_with: None,
    },
    Peer {
        id: PeerId::PahoSeed,
        key: "c",
        name: "seed's paho-mqtt loop (CONNACK read)",
        launch: Launch::PahoSeed,
        size: Size::Slow,
        placements: &Place::ALL,
        in_sink: false,
        compared_with: None,
    },
    Peer {
        id: PeerId::MosquittoPub,
        key: "d",
        name: "mosquitto_pub -l",
        launch: Launch::MosquittoPub,
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: false,
        compared_with: None,
    },
    Peer {
        id: PeerId::Bridge,
        key: "e",
        name: "pynq-mqtt publisher (channel)",
        launch: Launch::Role(&["pub-bridge"]),
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: true,
        compared_with: None,
    },
    Peer {
        id: PeerId::EndToEnd,
        key: "f",
        name: "pynq-mqtt end to end (sim generator)",
        launch: Launch::EndToEnd,
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: false,
        compared_with: None,
    },
    Peer {
        id: PeerId::RawQos1,
        key: "g",
        name: "raw QoS1, pipelined (window 1024)",
        launch: Launch::Role(&["pub-raw-qos1"]),
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: false,
        compared_with: None,
    },
    Peer {
        id: PeerId::BridgeQos1,
        key: "h",
        name: "pynq-mqtt publisher QoS1",
        launch: Launch::Role(&["pub-bridge", "--qos", "1"]),
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: false,
        compared_with: Some(PeerId::RawQos1),
    },
    Peer {
        id: PeerId::BridgeV5,
        key: "i",
        name: "pynq-mqtt publisher, MQTT 5 (topic aliases)",
        launch: Launch::Role(&["pub-bridge", "--protocol", "5"]),
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: false,
        compared_with: None,
    },
    Peer {
        id: PeerId::EndToEndLoaded,
        key: "j",
        name: "(f) with a CPU-bound loop beside it",
        launch: Launch::EndToEndLoaded,
        size: Size::Fast,
        placements: &Place::ALL,
        in_sink: false,
        compared_with: None,
    },
];

/// Where the events an end-to-end run did not deliver went, from the run's own
/// counters (the `pub-e2e` line) and the subscriber's: each loss is counted by the
/// stage that made it, and what no stage counted is `unaccounted`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Dropped by the hardware FIFO (overflow while the drain was held off).
    pub hardware: u64,
    /// Dropped between the FIFO and the socket (channel full, the bridge's own drops).
    pub host: u64,
    /// Counted as dropped by the broker while the subscriber ran.
    pub broker: u64,
    /// Generated but not delivered, and counted by nobody.
    pub unaccounted: u64,
}

impl Accounting {
    /// `n` generated, `received` delivered; `publisher` is the `pub-e2e` line and
    /// `broker_dropped` the broker's count (unknown counts as 0).
    pub fn of(
        n: u64,
        received: u64,
        publisher: &serde_json::Value,
        broker_dropped: Option<u64>,
    ) -> Self {
        let g = |k: &str| {
            publisher
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        let hardware = g("hw_dropped").max(g("seq_lost"));
        let host = g("channel_full") + g("lost");
        let broker = broker_dropped.unwrap_or(0);
        let missing = n.saturating_sub(received);
        Self {
            hardware,
            host,
            broker,
            unaccounted: missing.saturating_sub(hardware + host + broker),
        }
    }
}

pub fn peer(id: PeerId) -> &'static Peer {
    PEERS
        .iter()
        .find(|p| p.id == id)
        .expect("every PeerId has a row in PEERS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_once_with_its_own_key() {
        for p in &PEERS {
            assert_eq!(peer(p.id).key, p.key);
            assert_eq!(PEERS.iter().filter(|q| q.key == p.key).count(), 1);
        }
        assert_eq!(PEERS[0].id, BASELINE, "the baseline runs first in a rep");
        assert!(peer(SINK_BASELINE).in_sink);
    }
}
