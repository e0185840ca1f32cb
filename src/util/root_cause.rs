//! Connection errors arrive as a chain of wrappers (`Error in the hyper legacy client: client
//! error (Connect): tcp connect error: Connection refused (os error 111)`); the part a person
//! acts on is at the end. This puts a plain reading of it first.

/// Known root causes: a piece of the chain (lower case), and how to say it first.
const CAUSES: [(&str, &str); 7] = [
    (
        "connection refused",
        "connection refused (no engine or registry listens there?)",
    ),
    ("failed to lookup address", "host name not found (DNS)"),
    ("name or service not known", "host name not found (DNS)"),
    ("no route to host", "no route to host (network or firewall)"),
    ("network is unreachable", "network unreachable"),
    ("connection reset", "connection reset by the other end"),
    (
        "timed out",
        "timed out (host down, or a firewall drops the packets?)",
    ),
];

/// The chain with its root cause read first: `connection refused (no engine ...): <chain>`.
/// A chain with no known cause comes back unchanged.
pub fn lead_with_root_cause(chain: &str) -> String {
    lead_with_root_cause_at(chain, None)
}

/// [`lead_with_root_cause`] naming the endpoint that was tried when it is known
/// (`unix:///var/run/docker.sock`, `tcp://host:2376`): `connection refused at
/// tcp://127.0.0.1:2375 (no engine ...): <chain>`. The chain alone names only an OS error.
pub fn lead_with_root_cause_at(chain: &str, endpoint: Option<&str>) -> String {
    let lower = chain.to_lowercase();
    match CAUSES.iter().find(|(needle, _)| lower.contains(needle)) {
        Some((needle, plain)) => match endpoint.filter(|e| !e.is_empty()) {
            // "connection refused (...)" -> "connection refused at X (...)".
            Some(at) => match plain.strip_prefix(needle) {
                Some(rest) => format!("{needle} at {at}{rest}: {chain}"),
                None => format!("{plain} at {at}: {chain}"),
            },
            None => format!("{plain}: {chain}"),
        },
        None => chain.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_cause_reads_first() {
        let chain = "Error in the hyper legacy client: client error (Connect): tcp connect error: Connection refused (os error 111)";
        let s = lead_with_root_cause(chain);
        assert!(s.starts_with("connection refused (no engine"), "{s}");
        assert!(s.ends_with(chain));
        assert!(lead_with_root_cause(
            "error sending request: dns error: failed to lookup address information"
        )
        .starts_with("host name not found"));
        assert_eq!(lead_with_root_cause("something else"), "something else");
    }

    #[test]
    fn the_endpoint_tried_is_named() {
        let chain = "error trying to connect: Connection refused (os error 111)";
        let s = lead_with_root_cause_at(chain, Some("unix:///run/a/docker.sock"));
        assert!(
            s.starts_with("connection refused at unix:///run/a/docker.sock (no engine"),
            "{s}"
        );
        let s = lead_with_root_cause_at(chain, Some("tcp://127.0.0.1:2375"));
        assert!(
            s.starts_with("connection refused at tcp://127.0.0.1:2375 ("),
            "{s}"
        );
        let s = lead_with_root_cause_at(
            "dns error: failed to lookup address",
            Some("tcp://nohost:2376"),
        );
        assert!(
            s.starts_with("host name not found (DNS) at tcp://nohost:2376: "),
            "{s}"
        );
        assert_eq!(
            lead_with_root_cause_at(chain, None),
            lead_with_root_cause(chain)
        );
        assert_eq!(lead_with_root_cause_at("other", Some("tcp://h:1")), "other");
    }
}
