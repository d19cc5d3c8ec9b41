//! A private network for a cluster test: each node in its own network namespace with its own address,
//! joined by a bridge in a namespace of its own; the clients run in the test's namespace.
//!
//! ```text
//!   test process (clients) 10.A.B.254 ── veth ── ns fer<pid>sw: bridge br0 ─┬── veth ── ns fer<pid>n1: 10.A.B.1
//!                                                                          ├── veth ── ns fer<pid>n2: 10.A.B.2
//!                                                                          └── veth ── ns fer<pid>n3: 10.A.B.3
//! ```
//! The bridge lives in a namespace of its own, so the host's firewall (Docker's FORWARD DROP with
//! br_netfilter, for one) never sees the bridged traffic, and nothing of the host's configuration changes.
//! A partition between nodes is a pair of blackhole routes in their namespaces: their packets to each other
//! are dropped, while both still reach (and are reached by) the clients at 10.A.B.254. Everything is
//! removed on drop. Needs root and `ip` (iproute2), as these test machines have.

use std::process::Command;

pub struct Network {
    /// The namespace holding the bridge.
    switch: String,
    prefix: String,
    namespaces: Vec<String>,
    /// Blackholed (from, to) node pairs.
    cut: Vec<(i32, i32)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Network {
    /// Namespaces for nodes 1..=n and the bridge joining them, on a /24 chosen from this process's id.
    pub fn create(n: usize) -> Result<Network, String> {
        let pid = std::process::id();
        let prefix = format!("10.{}.{}", 200 + (pid / 250) % 50, pid % 250);
        let switch = format!("fer{pid}sw");
        let mut network = Network {
            switch: switch.clone(),
            prefix,
            namespaces: vec![],
            cut: vec![],
        };
        ip(&["netns", "add", &switch])?;
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        ip(&["-n", &switch, "link", "set", "lo", "up"])?;
        // The clients' end, in the test's own namespace.
        let (client, port) = (format!("fv{pid}c"), format!("fv{pid}s"));
        ip(&[
            "link", "add", &client, "type", "veth", "peer", "name", &port,
        ])?;
        ip(&["link", "set", &port, "netns", &switch])?;
        ip(&["-n", &switch, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &switch, "link", "set", &port, "up"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", network.prefix),
            "dev",
            &client,
        ])?;
        ip(&["link", "set", &client, "up"])?;
        for id in 1..=n as i32 {
            let ns = format!("fer{pid}n{id}");
            ip(&["netns", "add", &ns])?;
            network.namespaces.push(ns.clone());
            let (outside, inside) = (format!("fv{pid}o{id}"), format!("fv{pid}i{id}"));
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ])?;
            ip(&["link", "set", &outside, "netns", &switch])?;
            ip(&["-n", &switch, "link", "set", &outside, "master", "br0"])?;
            ip(&["-n", &switch, "link", "set", &outside, "up"])?;
            ip(&["link", "set", &inside, "netns", &ns])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", network.node_ip(id)),
                "dev",
                &inside,
            ])?;
            ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    pub fn node_ip(&self, id: i32) -> String {
        format!("{}.{id}", self.prefix)
    }

    pub fn namespace(&self, id: i32) -> &str {
        &self.namespaces[(id - 1) as usize]
    }

    /// Drops every packet between the nodes of `a` and those of `b`, both ways.
    pub fn partition(&mut self, a: &[i32], b: &[i32]) -> Result<(), String> {
        for &x in a {
            for &y in b {
                for (from, to) in [(x, y), (y, x)] {
                    if from == to || self.cut.contains(&(from, to)) {
                        continue;
                    }
                    let route = format!("{}/32", self.node_ip(to));
                    ip(&[
                        "-n",
                        self.namespace(from),
                        "route",
                        "add",
                        "blackhole",
                        &route,
                    ])?;
                    self.cut.push((from, to));
                }
            }
        }
        Ok(())
    }

    /// Removes every partition.
    pub fn heal(&mut self) -> Result<(), String> {
        for (from, to) in std::mem::take(&mut self.cut) {
            let route = format!("{}/32", self.node_ip(to));
            ip(&[
                "-n",
                self.namespace(from),
                "route",
                "del",
                "blackhole",
                &route,
            ])?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veths in it, and with them their peers.
        for ns in self.namespaces.iter().chain(std::iter::once(&self.switch)) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
