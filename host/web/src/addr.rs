//! `--http`: `PORT` (loopback), `HOST:PORT` or `[V6]:PORT`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// Where the page is served. A bare port means loopback: serving beyond this machine
/// is something to ask for by naming the address (`0.0.0.0:8080`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpAddr(pub SocketAddr);

impl FromStr for HttpAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(port) = s.parse::<u16>() {
            return Ok(HttpAddr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port,
            )));
        }
        if let Some(port) = s.strip_prefix("localhost:") {
            if let Ok(port) = port.parse::<u16>() {
                return Ok(HttpAddr(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port,
                )));
            }
        }
        s.parse::<SocketAddr>().map(HttpAddr).map_err(|_| {
            format!("{s:?}: expected PORT (on 127.0.0.1), HOST:PORT with a numeric address (0.0.0.0:8080 for every interface) or [V6]:PORT")
        })
    }
}

impl std::fmt::Display for HttpAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for HttpAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for HttpAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // a TOML integer is a port too
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Port(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Port(p) => Ok(HttpAddr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                p,
            ))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_is_loopback_and_an_address_is_kept() {
        let a: HttpAddr = "8080".parse().unwrap();
        assert_eq!(a.0, "127.0.0.1:8080".parse().unwrap());
        let a: HttpAddr = "localhost:9".parse().unwrap();
        assert_eq!(a.0, "127.0.0.1:9".parse().unwrap());
        let a: HttpAddr = "0.0.0.0:80".parse().unwrap();
        assert!(!a.0.ip().is_loopback());
        let a: HttpAddr = "[::1]:80".parse().unwrap();
        assert!(a.0.ip().is_loopback());
        let e = "example.org:80".parse::<HttpAddr>().unwrap_err();
        assert!(e.contains("HOST:PORT"), "{e}");
        assert!("70000".parse::<HttpAddr>().is_err());
    }
}
