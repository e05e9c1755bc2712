//! The board's identity: the default client id, from the MAC address of the
//! interface the board reaches the network through, as Tasmota does. Every stock
//! PYNQ image has the host name `pynq`, so a host-name id is the same on every board
//! of a fleet, and two daemons with one client id take the connection from each
//! other in turn; a MAC is the board's own.
//!
//! The id is `pynq-mqtt-` and the last six hex digits of the MAC (the part the vendor
//! numbers its boards by), e.g. `pynq-mqtt-0a1b2c` for `00:18:3e:0a:1b:2c`. The
//! simulated board has the fixed id [`SIM_CLIENT_ID`]. Tests point
//! [`SYSFS_ENV`] and [`PROCFS_ENV`] at a fake tree to play a board with another MAC
//! (then the simulated board takes that MAC too, to play a fleet on one machine).

use std::path::{Path, PathBuf};

/// The client id of the simulated board (`--board sim`, `pynq-mqtt sim`).
pub const SIM_CLIENT_ID: &str = "pynq-mqtt-sim";
/// Tests: the root of sysfs read for the MAC (default `/sys`).
pub const SYSFS_ENV: &str = "PYNQ_MQTT_TEST_SYSFS_ROOT";
/// Tests: the root of procfs read for the default route (default `/proc`).
pub const PROCFS_ENV: &str = "PYNQ_MQTT_TEST_PROCFS_ROOT";

/// The MAC of the primary interface, lower-case `aa:bb:cc:dd:ee:ff`: the interface
/// of the default route in `<proc>/net/route`, else the first interface (by name)
/// in `<sys>/class/net` that is not loopback and has a MAC.
pub fn primary_mac(sys: &Path, proc: &Path) -> Option<String> {
    let net = sys.join("class/net");
    let mac = |iface: &str| read_mac(&net.join(iface).join("address"));
    if let Some(m) = default_route_iface(proc).as_deref().and_then(mac) {
        return Some(m);
    }
    let mut names: Vec<String> = std::fs::read_dir(&net)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.iter().find_map(|n| mac(n))
}

/// The interface of the first default route (destination 0.0.0.0).
fn default_route_iface(proc: &Path) -> Option<String> {
    let text = std::fs::read_to_string(proc.join("net/route")).ok()?;
    text.lines().skip(1).find_map(|l| {
        let mut f = l.split_whitespace();
        let (iface, dest) = (f.next()?, f.next()?);
        (dest == "00000000").then(|| iface.to_owned())
    })
}

/// A MAC as sysfs writes it; none for loopback's and tunnels' all-zero address.
fn read_mac(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path)
        .ok()?
        .trim()
        .to_ascii_lowercase();
    let hex: Vec<&str> = s.split(':').collect();
    let ok = hex.len() == 6
        && hex
            .iter()
            .all(|h| h.len() == 2 && u8::from_str_radix(h, 16).is_ok());
    (ok && hex.iter().any(|h| *h != "00")).then_some(s)
}

/// `pynq-mqtt-<last 6 hex digits of the MAC>`.
pub fn client_id_from_mac(mac: &str) -> String {
    let hex: String = mac.chars().filter(char::is_ascii_hexdigit).collect();
    format!("pynq-mqtt-{}", &hex[hex.len().saturating_sub(6)..])
}

fn root(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Whether a test plays a board through a fake sysfs tree.
pub fn faked() -> bool {
    std::env::var_os(SYSFS_ENV).is_some()
}

/// The default client id of this machine's board: from its MAC, else (no network
/// interface with a MAC) from the host name as before.
pub fn board_client_id() -> String {
    match primary_mac(&root(SYSFS_ENV, "/sys"), &root(PROCFS_ENV, "/proc")) {
        Some(mac) => client_id_from_mac(&mac),
        None => format!("pynq-mqtt-{}", hostname()),
    }
}

/// The default client id of a board of this kind: the simulated board's fixed one
/// (unless a test plays a board), else the board's own.
pub fn default_client_id(board: crate::board::BoardKind) -> String {
    match board.simulated() && !faked() {
        true => SIM_CLIENT_ID.into(),
        false => board_client_id(),
    }
}

/// This machine's host name, for a board without a MAC.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "board".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs and procfs in a directory of its own, per test.
    fn tree(tag: &str, route: Option<&str>, ifaces: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pynq-mqtt-id-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (name, mac) in ifaces {
            let dir = d.join("sys/class/net").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
        }
        std::fs::create_dir_all(d.join("proc/net")).unwrap();
        if let Some(r) = route {
            std::fs::write(d.join("proc/net/route"), r).unwrap();
        }
        d
    }

    fn mac_of(d: &Path) -> Option<String> {
        let m = primary_mac(&d.join("sys"), &d.join("proc"));
        let _ = std::fs::remove_dir_all(d);
        m
    }

    const HEAD: &str = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n";

    #[test]
    fn the_default_route_names_the_interface() {
        let route = format!(
            "{HEAD}eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
             wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\n"
        );
        let ifaces = [
            ("lo", "00:00:00:00:00:00"),
            ("eth0", "00:18:3E:01:02:03"),
            ("wlan0", "dc:a6:32:0a:1b:2c"),
        ];
        let d = tree("route", Some(&route), &ifaces);
        assert_eq!(mac_of(&d).as_deref(), Some("dc:a6:32:0a:1b:2c"));
        assert_eq!(client_id_from_mac("dc:a6:32:0a:1b:2c"), "pynq-mqtt-0a1b2c");
    }

    #[test]
    fn without_a_default_route_the_first_interface_with_a_mac() {
        let ifaces = [
            ("lo", "00:00:00:00:00:00"),
            ("tun0", "00:00:00:00:00:00"),
            ("eth1", "00:18:3e:00:00:02"),
            ("eth0", "00:18:3e:00:00:01"),
        ];
        let d = tree("first", Some(HEAD), &ifaces);
        assert_eq!(mac_of(&d).as_deref(), Some("00:18:3e:00:00:01"));
        let d = tree("none", None, &ifaces[..2]);
        assert_eq!(
            mac_of(&d),
            None,
            "loopback and all-zero MACs are no identity"
        );
    }
}
