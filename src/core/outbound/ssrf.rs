//! SSRF protection for outbound webhook targets.
//!
//! Decides whether a user-supplied webhook target URL may be delivered to:
//! structural checks (absolute `https` URL, ≤ 2048 bytes, a host, no
//! user-info, no fragment) plus refusal of local/internal host names and of
//! IP literals in private, loopback, link-local, reserved or otherwise
//! non-public ranges, in every spelling the WHATWG URL parser accepts
//! (decimal, octal, hex, shortened IPv4, bracketed IPv6, ...).
//!
//! It is NOT a complete SSRF defence on its own: it does no DNS resolution
//! (the Workers runtime has none to offer), so a public name that resolves
//! to a private address is not caught here. [`is_blocked_ip`] exists so the
//! caller can re-check any address it learns about right before delivery.
//! It also does not follow or validate redirects; callers must re-check each
//! redirect target (or disable redirects).
//!
//! Choices made here:
//! * IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
//!   well-known-prefix (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`)
//!   addresses are judged by their embedded IPv4 address, so
//!   `[::ffff:8.8.8.8]` is allowed while `[::ffff:127.0.0.1]` is not.
//! * The local-use NAT64 prefix `64:ff9b:1::/48` is blocked entirely (it is
//!   not globally reachable and its IPv4 position depends on local config).
//! * Any IPv6 address outside global unicast `2000::/3` (and not one of the
//!   IPv4-embedding forms above) is blocked, which covers ULA, link-local,
//!   site-local, multicast, discard and all not-yet-allocated space.
//! * Host names with empty labels (`a..b`, `host..`) are refused as
//!   malformed, and numeric-looking names the URL parser left as domains are
//!   re-parsed the way `inet_aton` would and classified as IPv4.
//! * The raw input must have `//` straight after the scheme, and an `@` in
//!   the raw authority (even with empty user-info) counts as credentials.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Maximum accepted length of a target URL, in bytes of the input string.
const MAX_URL_LEN: usize = 2048;

/// Why a target URL was refused. `Display` gives a short user-facing message
/// like "URL must use https" or "target address 10.0.0.1 is in a private
/// range".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRejection {
    /// Not a valid absolute URL (parse error, whitespace/control characters,
    /// missing `//` after the scheme).
    NotAbsolute,
    /// Longer than 2048 bytes.
    TooLong,
    /// Scheme other than `https` (or `http` when private targets are allowed).
    UnsupportedScheme,
    /// Contains user-info (username and/or password).
    HasCredentials,
    /// Contains a `#fragment` (even an empty one).
    HasFragment,
    /// No host, or an empty authority.
    MissingHost,
    /// The host is written with non-ASCII characters (an internationalised name).
    UnicodeHost,
    /// Host name is local, internal, a cloud metadata name, single-label or
    /// malformed. Holds the normalised host name.
    BlockedName(String),
    /// Host is an IP address in a blocked range. Holds the address as text.
    BlockedAddress(String),
}

impl fmt::Display for TargetRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("URL must be a valid absolute URL"),
            Self::TooLong => write!(f, "URL must be at most {MAX_URL_LEN} bytes long"),
            Self::UnsupportedScheme => f.write_str("URL must use https"),
            Self::HasCredentials => f.write_str("URL must not contain a username or password"),
            Self::HasFragment => f.write_str("URL must not contain a fragment (#...)"),
            Self::MissingHost => f.write_str("URL must have a host"),
            Self::UnicodeHost => f.write_str(
                "URL host must be ASCII: write an internationalised domain name in its xn-- (punycode) form",
            ),
            Self::BlockedName(name) => {
                write!(f, "target host {name} is a local or internal name")
            }
            Self::BlockedAddress(addr) => {
                write!(f, "target address {addr} is in a private or reserved range")
            }
        }
    }
}

impl std::error::Error for TargetRejection {}

/// Parses and checks a webhook target; returns the parsed URL when allowed.
///
/// With `allow_private` (local development only) `http` is accepted too and
/// no host name / address rules are applied; the structural checks remain.
///
/// # Errors
///
/// Returns the first [`TargetRejection`] that applies to `input`.
pub fn check_target_url(input: &str, allow_private: bool) -> Result<Url, TargetRejection> {
    if input.len() > MAX_URL_LEN {
        return Err(TargetRejection::TooLong);
    }
    // The WHATWG parser silently strips leading/trailing C0+space and inner
    // tabs/newlines; refuse such input instead of guessing what was meant.
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TargetRejection::NotAbsolute);
    }

    // Unicode hosts are not mapped here (the bundle leaves out the IDNA tables): ask for
    // the `xn--` form, which every registrar and browser shows.
    if let Some((_, rest)) = input.split_once("://") {
        if !rest.split(['/', '\\', '?', '#']).next().unwrap_or_default().is_ascii() {
            return Err(TargetRejection::UnicodeHost);
        }
    }

    let url = Url::parse(input).map_err(|e| match e {
        url::ParseError::EmptyHost => TargetRejection::MissingHost,
        _ => TargetRejection::NotAbsolute,
    })?;

    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(TargetRejection::UnsupportedScheme),
    }

    // The parser accepts `https:host`, `https:/host`, `https:\\host` and
    // `https:///host`; require the plain `scheme://authority` form.
    let Some((_, after_scheme)) = input.split_once(':') else {
        return Err(TargetRejection::NotAbsolute);
    };
    let Some(authority_and_rest) = after_scheme.strip_prefix("//") else {
        return Err(TargetRejection::NotAbsolute);
    };
    let raw_authority = authority_and_rest
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or("");
    if raw_authority.is_empty() {
        return Err(TargetRejection::MissingHost);
    }

    if !url.username().is_empty() || url.password().is_some() || raw_authority.contains('@') {
        return Err(TargetRejection::HasCredentials);
    }
    if url.fragment().is_some() {
        return Err(TargetRejection::HasFragment);
    }

    let Some(host) = url.host() else {
        return Err(TargetRejection::MissingHost);
    };

    if !allow_private {
        check_host(&host)?;
    }

    Ok(url)
}

/// Classifies one IP address (used again right before each delivery).
///
/// Returns `true` for anything that is not a public unicast address.
#[must_use]
pub fn is_blocked_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_ipv4(v4),
        IpAddr::V6(v6) => is_blocked_ipv6(v6),
    }
}

// ---------------------------------------------------------------------------
// Host checks
// ---------------------------------------------------------------------------

/// Exact names (after lower-casing and removing one trailing dot) refused.
const BLOCKED_NAMES: &[&str] = &[
    "localhost",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.com",
];

/// Suffixes (matched on a label boundary) refused, including the bare name.
const BLOCKED_SUFFIXES: &[&str] = &["localhost", "local", "internal", "localdomain", "home.arpa"];

fn check_host(host: &Host<&str>) -> Result<(), TargetRejection> {
    match host {
        Host::Ipv4(v4) => check_ip(IpAddr::V4(*v4)),
        Host::Ipv6(v6) => check_ip(IpAddr::V6(*v6)),
        Host::Domain(domain) => check_domain(domain),
    }
}

fn check_ip(ip: IpAddr) -> Result<(), TargetRejection> {
    if is_blocked_ip(ip) {
        Err(TargetRejection::BlockedAddress(ip.to_string()))
    } else {
        Ok(())
    }
}

fn check_domain(domain: &str) -> Result<(), TargetRejection> {
    let lower = domain.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let blocked = || Err(TargetRejection::BlockedName(name.to_string()));

    if name.is_empty() || name.split('.').any(str::is_empty) {
        return blocked();
    }
    // A resolver (or a lenient client) might still read this as an address.
    if let Some(v4) = parse_inet_aton(name) {
        return check_ip(IpAddr::V4(v4));
    }
    // Single-label names resolve via search domains to internal hosts.
    if !name.contains('.') {
        return blocked();
    }
    if BLOCKED_NAMES.contains(&name) {
        return blocked();
    }
    for suffix in BLOCKED_SUFFIXES {
        if name == *suffix {
            return blocked();
        }
        if let Some(prefix) = name.strip_suffix(suffix) {
            if prefix.ends_with('.') {
                return blocked();
            }
        }
    }
    Ok(())
}

/// Parses an IPv4 address the way BSD/glibc `inet_aton` does: 1–4 parts
/// separated by dots, each decimal, octal (leading `0`) or hex (`0x`), the
/// last part filling all remaining bytes. Returns `None` if it isn't one.
fn parse_inet_aton(s: &str) -> Option<Ipv4Addr> {
    let mut parts: Vec<u32> = Vec::with_capacity(4);
    for part in s.split('.') {
        if parts.len() == 4 {
            return None;
        }
        parts.push(parse_inet_part(part)?);
    }
    let (last, init) = parts.split_last()?;
    for p in init {
        if *p > 0xff {
            return None;
        }
    }
    let shift = 8 * u32::try_from(init.len()).ok()?;
    let max_last = if shift == 0 {
        u32::MAX
    } else {
        u32::MAX.checked_shr(shift)?
    };
    if *last > max_last {
        return None;
    }
    let mut value: u32 = 0;
    for (i, p) in init.iter().enumerate() {
        let byte_shift = 24u32.checked_sub(8 * u32::try_from(i).ok()?)?;
        value |= p.checked_shl(byte_shift)?;
    }
    Some(Ipv4Addr::from(value | *last))
}

fn parse_inet_part(part: &str) -> Option<u32> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            // WHATWG treats a bare "0x" as 0; be at least as lenient.
            if hex.is_empty() {
                return Some(0);
            }
            (hex, 16)
        } else if let Some(octal) = part.strip_prefix('0') {
            // A lone "0" is the empty octal number: 0 either way.
            (octal, 8)
        } else {
            (part, 10)
        };
    let mut value: u32 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(d)?;
    }
    Some(value)
}

// ---------------------------------------------------------------------------
// Address classification
// ---------------------------------------------------------------------------

/// IPv4 ranges that are not acceptable webhook targets.
const BLOCKED_V4: &[(Ipv4Addr, u32)] = &[
    (Ipv4Addr::UNSPECIFIED, 8),           // "this network" / unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // RFC 1918 private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // CGNAT shared address space
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (cloud metadata)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // RFC 1918 private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // TEST-NET-1 documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // RFC 1918 private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // TEST-NET-2 documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // TEST-NET-3 documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved
    (Ipv4Addr::BROADCAST, 32),            // limited broadcast
];

/// IPv6 ranges blocked outright. Everything outside `2000::/3` is blocked
/// anyway (see [`is_blocked_ipv6`]); the entries outside it are listed for
/// documentation and defence in depth.
const BLOCKED_V6: &[(Ipv6Addr, u32)] = &[
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),     // discard-only
    // IETF protocol assignments (Teredo, benchmarking, ORCHID, ...)
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),      // unique local
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),     // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),     // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),      // multicast
];

fn in_v4_net(ip: Ipv4Addr, net: Ipv4Addr, prefix: u32) -> bool {
    let mask = u32::MAX
        .checked_shl(32u32.saturating_sub(prefix))
        .unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6_net(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX
        .checked_shl(128u32.saturating_sub(prefix))
        .unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn is_blocked_ipv4(ip: Ipv4Addr) -> bool {
    BLOCKED_V4
        .iter()
        .any(|&(net, prefix)| in_v4_net(ip, net, prefix))
}

fn is_blocked_ipv6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);

    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    // ::ffff:0:0/96 IPv4-mapped: judge the embedded IPv4 address.
    if in_v6_net(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96) {
        return is_blocked_ipv4(low32);
    }
    // ::/96 IPv4-compatible (deprecated): judge the embedded IPv4 address.
    if in_v6_net(ip, Ipv6Addr::UNSPECIFIED, 96) {
        return is_blocked_ipv4(low32);
    }
    // 64:ff9b::/96 NAT64 well-known prefix: judge the embedded IPv4 address.
    if in_v6_net(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return is_blocked_ipv4(low32);
    }
    if BLOCKED_V6
        .iter()
        .any(|&(net, prefix)| in_v6_net(ip, net, prefix))
    {
        return true;
    }
    // 2002::/16 6to4: the IPv4 address is in bits 16..48.
    if in_v6_net(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        let embedded = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return is_blocked_ipv4(embedded);
    }
    // Only global unicast 2000::/3 is acceptable.
    !in_v6_net(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected kind of rejection for a corpus row.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Invalid,
        Long,
        Scheme,
        Creds,
        Frag,
        NoHost,
        Unicode,
        Name,
        Addr,
    }

    fn kind_of(r: &TargetRejection) -> Kind {
        match r {
            TargetRejection::NotAbsolute => Kind::Invalid,
            TargetRejection::TooLong => Kind::Long,
            TargetRejection::UnsupportedScheme => Kind::Scheme,
            TargetRejection::HasCredentials => Kind::Creds,
            TargetRejection::HasFragment => Kind::Frag,
            TargetRejection::MissingHost => Kind::NoHost,
            TargetRejection::UnicodeHost => Kind::Unicode,
            TargetRejection::BlockedName(_) => Kind::Name,
            TargetRejection::BlockedAddress(_) => Kind::Addr,
        }
    }

    use Kind::*;

    /// (input, expected rejection, label). Unicode spellings of blocked hosts are refused
    /// before any mapping, as `Unicode` (the bundle has no IDNA tables).
    const BLOCKED: &[(&str, Kind, &str)] = &[
        // --- loopback IPv4, every spelling ---
        ("https://127.0.0.1/", Addr, "loopback dotted"),
        ("https://127.0.0.1:8443/hook", Addr, "loopback with port"),
        ("https://127.255.255.254/", Addr, "loopback end of /8"),
        ("https://2130706433", Addr, "loopback decimal"),
        ("https://017700000001", Addr, "loopback octal 32-bit"),
        ("https://0x7f000001", Addr, "loopback hex 32-bit"),
        ("https://0X7F000001", Addr, "loopback uppercase hex"),
        ("https://0177.0.0.1", Addr, "loopback octal first part"),
        (
            "https://0177.0000.0000.0001",
            Addr,
            "loopback octal all parts",
        ),
        ("https://0x7f.0.0.1", Addr, "loopback hex first part"),
        ("https://0x7f.0.0.01", Addr, "loopback mixed hex/octal"),
        ("https://0x7f.1", Addr, "loopback hex shortened"),
        ("https://127.1", Addr, "loopback shortened 2 parts"),
        ("https://127.0.1", Addr, "loopback shortened 3 parts"),
        ("https://127.0.0.1.", Addr, "loopback trailing dot"),
        (
            "https://0x7f.1.",
            Addr,
            "loopback hex shortened trailing dot",
        ),
        (
            "https://127.0.0.1../",
            Name,
            "loopback double trailing dot (domain)",
        ),
        ("https://127%2e0.0.1", Addr, "loopback percent-encoded dot"),
        (
            "https://%31%32%37.0.0.1",
            Addr,
            "loopback percent-encoded digits",
        ),
        ("https://１２７.０.０.１", Unicode, "loopback fullwidth digits"),
        (
            "https://127。0。0。1", Unicode,
            "loopback ideographic full stops",
        ),
        ("https://①②⑦.0.0.1", Unicode, "loopback circled digits"),
        // --- unspecified / this network ---
        ("https://0", Addr, "zero decimal"),
        ("https://0.0.0.0", Addr, "unspecified dotted"),
        ("https://0x0", Addr, "zero hex"),
        ("https://00", Addr, "zero octal"),
        ("https://0.1.2.3", Addr, "this-network /8"),
        // --- RFC 1918 ---
        ("https://10.0.0.1", Addr, "10/8"),
        ("https://10.1", Addr, "10/8 shortened"),
        ("https://167772161", Addr, "10.0.0.1 decimal"),
        ("https://012.0.0.1", Addr, "10/8 octal"),
        ("https://172.16.0.1", Addr, "172.16/12 start"),
        ("https://172.31.255.255", Addr, "172.16/12 end"),
        ("https://0xac.0x10.0.1", Addr, "172.16/12 hex parts"),
        ("https://192.168.1.1", Addr, "192.168/16"),
        ("https://192.168.1.1.", Addr, "192.168/16 trailing dot"),
        ("https://0xc0a80101", Addr, "192.168.1.1 hex"),
        ("https://3232235777", Addr, "192.168.1.1 decimal"),
        ("https://192.168.257", Addr, "192.168.1.1 3-part"),
        // --- other special IPv4 ---
        ("https://100.64.0.1", Addr, "CGNAT"),
        ("https://100.100.100.200", Addr, "Alibaba metadata (CGNAT)"),
        (
            "https://169.254.169.254/latest/meta-data",
            Addr,
            "AWS metadata",
        ),
        ("https://0xa9fea9fe", Addr, "AWS metadata hex"),
        ("https://2852039166", Addr, "AWS metadata decimal"),
        ("https://169.254.43518", Addr, "AWS metadata 3-part"),
        (
            "https://192.0.0.192",
            Addr,
            "IETF assignments (Oracle metadata)",
        ),
        ("https://192.0.2.5", Addr, "TEST-NET-1"),
        ("https://198.51.100.7", Addr, "TEST-NET-2"),
        ("https://203.0.113.9", Addr, "TEST-NET-3"),
        ("https://192.88.99.1", Addr, "6to4 relay anycast"),
        ("https://198.18.0.1", Addr, "benchmark start"),
        ("https://198.19.255.255", Addr, "benchmark end"),
        ("https://224.0.0.1", Addr, "multicast"),
        ("https://239.255.255.250", Addr, "multicast SSDP"),
        ("https://240.0.0.1", Addr, "reserved"),
        ("https://255.255.255.255", Addr, "broadcast"),
        ("https://0xffffffff", Addr, "broadcast hex"),
        // --- IPv6 ---
        ("https://[::1]/", Addr, "v6 loopback"),
        ("https://[::1]:8443", Addr, "v6 loopback with port"),
        ("https://[0:0:0:0:0:0:0:1]", Addr, "v6 loopback long form"),
        ("https://[::]", Addr, "v6 unspecified"),
        (
            "https://[::ffff:127.0.0.1]",
            Addr,
            "v4-mapped loopback dotted",
        ),
        ("https://[::ffff:7f00:1]", Addr, "v4-mapped loopback hex"),
        (
            "https://[::FFFF:A9FE:A9FE]",
            Addr,
            "v4-mapped metadata uppercase",
        ),
        ("https://[::ffff:10.0.0.1]", Addr, "v4-mapped private"),
        ("https://[::127.0.0.1]", Addr, "v4-compatible loopback"),
        ("https://[::10.0.0.1]", Addr, "v4-compatible private"),
        ("https://[::ffff:0:8.8.8.8]", Addr, "v4-translated (SIIT)"),
        ("https://[64:ff9b::a9fe:a9fe]", Addr, "NAT64 metadata"),
        ("https://[64:ff9b::127.0.0.1]", Addr, "NAT64 loopback"),
        ("https://[64:ff9b:1::808:808]", Addr, "local-use NAT64"),
        ("https://[2002:c0a8:0101::]", Addr, "6to4 of 192.168.1.1"),
        ("https://[2002:7f00:1::1]", Addr, "6to4 of 127.0.0.1"),
        (
            "https://[fe80::1%25eth0]",
            Invalid,
            "zone id (url crate rejects)",
        ),
        ("https://[fe80::1%eth0]", Invalid, "raw zone id"),
        ("https://[fe80::1]", Addr, "link-local"),
        ("https://[febf:ffff::1]", Addr, "link-local end"),
        ("https://[fec0::1]", Addr, "site-local"),
        ("https://[fd00::1]", Addr, "ULA"),
        ("https://[fd00:ec2::254]", Addr, "AWS IMDS v6 (ULA)"),
        ("https://[FC00::1]", Addr, "ULA uppercase"),
        ("https://[ff02::1]", Addr, "multicast"),
        ("https://[100::1]", Addr, "discard-only"),
        ("https://[2001:db8::1]", Addr, "documentation"),
        ("https://[3fff::1]", Addr, "documentation 3fff::/20"),
        ("https://[2001::1]", Addr, "Teredo"),
        ("https://[2001:2::1]", Addr, "benchmark"),
        ("https://[2001:10::1]", Addr, "ORCHID"),
        ("https://[4000::1]", Addr, "unallocated outside 2000::/3"),
        ("https://[5f00::1]", Addr, "SRv6 SIDs (outside 2000::/3)"),
        // --- names ---
        ("https://localhost", Name, "localhost"),
        ("HTTPS://LOCALHOST", Name, "localhost uppercase"),
        ("https://localhost.", Name, "localhost trailing dot"),
        (
            "https://LocalHost.:443/",
            Name,
            "localhost mixed case, dot, port",
        ),
        ("https://a.b.localhost", Name, "*.localhost"),
        ("https://printer.local", Name, "mDNS .local"),
        ("https://x.internal", Name, "*.internal"),
        ("https://db.localdomain", Name, "*.localdomain"),
        ("https://router.home.arpa", Name, "*.home.arpa"),
        ("https://metadata.google.internal", Name, "GCP metadata"),
        (
            "https://metadata.google.internal.",
            Name,
            "GCP metadata trailing dot",
        ),
        ("https://metadata", Name, "bare metadata"),
        ("https://metadata.goog", Name, "GCP metadata.goog"),
        ("https://instance-data", Name, "AWS instance-data"),
        (
            "https://instance-data.ec2.internal",
            Name,
            "AWS instance-data fqdn",
        ),
        ("https://metadata.azure.com", Name, "Azure metadata name"),
        ("https://intranet/", Name, "single label"),
        ("https://intranet./", Name, "single label trailing dot"),
        ("https://a..b.example", Name, "empty label"),
        ("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", Unicode, "circled letters -> localhost"),
        (
            "https://ｌｏｃａｌｈｏｓｔ", Unicode,
            "fullwidth letters -> localhost",
        ),
        ("https://local%68ost", Name, "percent-encoded localhost"),
        (
            "https://loc\u{AD}alhost", Unicode,
            "soft hyphen dropped -> localhost",
        ),
        (
            "https://printer.LOCAL.",
            Name,
            ".local uppercase trailing dot",
        ),
        // --- structure ---
        ("https://user:pass@example.com", Creds, "user and password"),
        ("https://user@example.com", Creds, "user only"),
        ("https://:pass@example.com", Creds, "password only"),
        ("https://@example.com", Creds, "empty user-info"),
        ("https://example.com#frag", Frag, "fragment"),
        ("https://example.com/#", Frag, "empty fragment"),
        ("http://example.com", Scheme, "plain http"),
        ("ftp://example.com/", Scheme, "ftp"),
        ("file:///etc/passwd", Scheme, "file"),
        ("gopher://127.0.0.1:6379/_", Scheme, "gopher"),
        ("javascript:alert(1)", Scheme, "javascript"),
        ("//example.com/hook", Invalid, "scheme-relative"),
        ("/hook", Invalid, "relative path"),
        ("example.com", Invalid, "no scheme"),
        ("", Invalid, "empty"),
        ("https:example.com", Invalid, "missing //"),
        ("https:/example.com", Invalid, "single slash"),
        ("https:\\\\example.com", Invalid, "backslashes"),
        (" https://example.com", Invalid, "leading space"),
        ("https://example.com/ ", Invalid, "trailing space"),
        ("https://exa\tmple.com", Invalid, "inner tab"),
        ("https://example.com/\n", Invalid, "trailing newline"),
        ("https://exa mple.com", Invalid, "inner space"),
        ("https://1.2.3.4.5", Invalid, "five IPv4 parts"),
        ("https://4294967296", Invalid, "IPv4 overflow"),
        ("https://", NoHost, "no host"),
        ("https:///example.com", NoHost, "empty authority"),
    ];

    /// (input, label)
    const ALLOWED: &[(&str, &str)] = &[
        ("https://example.com/hook", "plain"),
        ("https://api.stripe.com", "no path"),
        ("https://example.com:8443/a/b?c=d&e=f", "port, path, query"),
        ("HTTPS://EXAMPLE.COM/Hook", "uppercase scheme and host"),
        ("https://example.com./hook", "trailing dot"),
        ("https://8.8.8.8/x", "public IPv4"),
        ("https://1.1.1.1:8443/path?q=1", "public IPv4 with port"),
        ("https://134744072", "8.8.8.8 decimal"),
        ("https://0x08080808", "8.8.8.8 hex"),
        ("https://[2606:4700:4700::1111]/", "public IPv6"),
        (
            "https://[2001:4860:4860::8888]:443/",
            "public IPv6 2001:4860",
        ),
        (
            "https://[::ffff:8.8.8.8]/",
            "v4-mapped public (embedded judged)",
        ),
        ("https://[64:ff9b::808:808]/", "NAT64 of public"),
        ("https://[2002:808:808::1]/", "6to4 of public"),
        ("https://[2001:200::1]/", "just past 2001::/23"),
        ("https://sub.domain.co.uk", "multi-label"),
        ("https://xn--bcher-kva.example/", "punycode"),
        (
            "https://localhost.example.com",
            "localhost as non-final label",
        ),
        ("https://mylocal.com", "local inside a label"),
        ("https://internal.example.com", "internal as first label"),
        ("https://example.internalx.com", "internal as label prefix"),
        ("https://notlocalhost.com", "localhost as label suffix only"),
        ("https://metadata.example.com", "metadata as first label"),
        ("https://deadbeef.com", "hex-looking label"),
        ("https://0x7f.example.com", "hex-looking first label"),
        ("https://172.32.0.1", "just past 172.16/12"),
        ("https://172.15.255.255", "just before 172.16/12"),
        ("https://100.128.0.1", "just past CGNAT"),
        ("https://100.63.255.255", "just before CGNAT"),
        ("https://169.255.0.1", "just past link-local"),
        ("https://11.0.0.1", "just past 10/8"),
        ("https://192.169.0.1", "just past 192.168/16"),
        ("https://198.20.0.1", "just past benchmark"),
        ("https://223.255.255.255", "just before multicast"),
        ("https://example.com/%23notfrag", "encoded # in path"),
        ("https://example.com/a@b", "@ in path is not user-info"),
        (
            "https://example.com?redirect=http://127.0.0.1",
            "private URL in query",
        ),
    ];

    #[test]
    fn blocked_corpus() {
        assert!(BLOCKED.len() >= 70, "corpus too small: {}", BLOCKED.len());
        let mut failures = Vec::new();
        for &(input, want, label) in BLOCKED {
            match check_target_url(input, false) {
                Ok(url) => failures.push(format!("{label}: {input:?} was ALLOWED as {url}")),
                Err(e) if kind_of(&e) != want => {
                    failures.push(format!("{label}: {input:?} -> {e:?}, wanted {want:?}"))
                }
                Err(_) => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn allowed_corpus() {
        assert!(ALLOWED.len() >= 25, "corpus too small: {}", ALLOWED.len());
        let mut failures = Vec::new();
        for &(input, label) in ALLOWED {
            if let Err(e) = check_target_url(input, false) {
                failures.push(format!("{label}: {input:?} rejected: {e:?} ({e})"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn too_long() {
        let base = "https://example.com/";
        let ok = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert_eq!(ok.len(), MAX_URL_LEN);
        assert!(check_target_url(&ok, false).is_ok());
        let long = format!("{ok}a");
        assert_eq!(
            check_target_url(&long, false),
            Err(TargetRejection::TooLong)
        );
        assert_eq!(check_target_url(&long, true), Err(TargetRejection::TooLong));
    }

    #[test]
    fn returns_normalised_url() {
        let url = check_target_url("https://EXAMPLE.com:443/hook?x=1", false).unwrap();
        assert_eq!(url.as_str(), "https://example.com/hook?x=1");
        let url = check_target_url("https://0x08080808/", false).unwrap();
        assert_eq!(url.host_str(), Some("8.8.8.8"));
    }

    #[test]
    fn allow_private_mode() {
        for input in [
            "http://localhost:8787",
            "http://localhost:8787/hook",
            "https://10.0.0.1",
            "http://127.0.0.1:8787/",
            "https://[::1]:8443/",
            "http://intranet/",
            "https://metadata.google.internal/",
            "http://2130706433/",
        ] {
            assert!(
                check_target_url(input, true).is_ok(),
                "{input} should be allowed"
            );
        }
        let cases = [
            (
                "http://user:pass@localhost:8787",
                TargetRejection::HasCredentials,
            ),
            ("http://@localhost:8787", TargetRejection::HasCredentials),
            ("http://localhost:8787/#frag", TargetRejection::HasFragment),
            ("ftp://localhost/", TargetRejection::UnsupportedScheme),
            ("ws://localhost/", TargetRejection::UnsupportedScheme),
            ("localhost:8787", TargetRejection::UnsupportedScheme),
            ("/hook", TargetRejection::NotAbsolute),
            ("http:localhost", TargetRejection::NotAbsolute),
            (" http://localhost", TargetRejection::NotAbsolute),
            ("http://", TargetRejection::MissingHost),
            ("http://[fe80::1%25lo]/", TargetRejection::NotAbsolute),
            ("https://bücher.example/", TargetRejection::UnicodeHost),
            ("https://user@bücher.example:443/x", TargetRejection::UnicodeHost),
            ("https://例え.テスト/", TargetRejection::UnicodeHost),
        ];
        for (input, want) in cases {
            assert_eq!(check_target_url(input, true), Err(want), "{input}");
        }
    }

    #[test]
    fn unicode_elsewhere_than_the_host_is_fine() {
        let url = check_target_url("https://xn--bcher-kva.example/pfad/ü?q=é", false).unwrap();
        assert_eq!(url.host_str(), Some("xn--bcher-kva.example"));
        assert!(check_target_url("https://bücher.example/", false).unwrap_err().to_string().contains("xn--"));
    }

    #[test]
    fn display_messages() {
        assert_eq!(
            TargetRejection::UnsupportedScheme.to_string(),
            "URL must use https"
        );
        assert_eq!(
            check_target_url("https://10.0.0.1", false)
                .unwrap_err()
                .to_string(),
            "target address 10.0.0.1 is in a private or reserved range"
        );
        assert_eq!(
            check_target_url("https://2130706433", false).unwrap_err(),
            TargetRejection::BlockedAddress("127.0.0.1".into())
        );
        assert_eq!(
            check_target_url("https://[::ffff:7f00:1]", false).unwrap_err(),
            TargetRejection::BlockedAddress("::ffff:127.0.0.1".into())
        );
        assert_eq!(
            check_target_url("HTTPS://LOCALHOST.", false).unwrap_err(),
            TargetRejection::BlockedName("localhost".into())
        );
        assert_eq!(
            TargetRejection::BlockedName("localhost".into()).to_string(),
            "target host localhost is a local or internal name"
        );
        for r in [
            TargetRejection::NotAbsolute,
            TargetRejection::TooLong,
            TargetRejection::HasCredentials,
            TargetRejection::HasFragment,
            TargetRejection::MissingHost,
        ] {
            assert!(!r.to_string().is_empty());
        }
    }

    fn v4(s: &str) -> bool {
        is_blocked_ip(IpAddr::V4(s.parse().unwrap()))
    }

    fn v6(s: &str) -> bool {
        is_blocked_ip(IpAddr::V6(s.parse().unwrap()))
    }

    #[test]
    fn ipv4_range_boundaries() {
        // (before, first, last, after) for each range.
        let ranges = [
            ("9.255.255.255", "10.0.0.0", "10.255.255.255", "11.0.0.0"),
            (
                "172.15.255.255",
                "172.16.0.0",
                "172.31.255.255",
                "172.32.0.0",
            ),
            (
                "192.167.255.255",
                "192.168.0.0",
                "192.168.255.255",
                "192.169.0.0",
            ),
            (
                "100.63.255.255",
                "100.64.0.0",
                "100.127.255.255",
                "100.128.0.0",
            ),
            (
                "126.255.255.255",
                "127.0.0.0",
                "127.255.255.255",
                "128.0.0.0",
            ),
            (
                "169.253.255.255",
                "169.254.0.0",
                "169.254.255.255",
                "169.255.0.0",
            ),
            (
                "198.17.255.255",
                "198.18.0.0",
                "198.19.255.255",
                "198.20.0.0",
            ),
            ("191.255.255.255", "192.0.0.0", "192.0.0.255", "192.0.1.0"),
            ("192.0.1.255", "192.0.2.0", "192.0.2.255", "192.0.3.0"),
            (
                "198.51.99.255",
                "198.51.100.0",
                "198.51.100.255",
                "198.51.101.0",
            ),
            (
                "203.0.112.255",
                "203.0.113.0",
                "203.0.113.255",
                "203.0.114.0",
            ),
            (
                "192.88.98.255",
                "192.88.99.0",
                "192.88.99.255",
                "192.88.100.0",
            ),
            (
                "223.255.255.255",
                "224.0.0.0",
                "239.255.255.255",
                "240.0.0.0",
            ),
        ];
        for (before, first, last, after) in ranges {
            assert!(!v4(before), "{before} should be allowed");
            assert!(v4(first), "{first} should be blocked");
            assert!(v4(last), "{last} should be blocked");
            // `after` may fall into the next blocked range (224/4 -> 240/4).
            if after != "240.0.0.0" {
                assert!(!v4(after), "{after} should be allowed");
            }
        }
        assert!(v4("0.0.0.0"));
        assert!(v4("0.255.255.255"));
        assert!(!v4("1.0.0.0"));
        assert!(v4("240.0.0.0"));
        assert!(v4("255.255.255.254"));
        assert!(v4("255.255.255.255"));
        assert!(!v4("8.8.8.8"));
        assert!(!v4("1.1.1.1"));
    }

    #[test]
    fn ipv6_range_boundaries() {
        // Blocked special ranges.
        for s in [
            "::",
            "::1",
            "::2",
            "::ffff:0.0.0.0",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:255.255.255.255",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::",
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "64:ff9b::1:0:0:0",
            "100::",
            "100::ffff:ffff:ffff:ffff",
            "100:0:0:1::",
            "2001::",
            "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8::",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "2002:a00:1::",
            "2002:c0a8:101::1",
            "2002:a9fe:a9fe::",
            "3fff::",
            "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fc00::",
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::",
            "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fec0::",
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "ff00::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "4000::",
            "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(v6(s), "{s} should be blocked");
        }
        // Public addresses just outside blocked ranges inside 2000::/3.
        for s in [
            "2000::1",
            "2001:200::",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db9::",
            "2002:808:808::",
            "2003::",
            "3fff:1000::",
            "3ffe:ffff::1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!v6(s), "{s} should be allowed");
        }
    }

    #[test]
    fn inet_aton_parser() {
        let cases: &[(&str, Option<[u8; 4]>)] = &[
            ("127.0.0.1", Some([127, 0, 0, 1])),
            ("127.1", Some([127, 0, 0, 1])),
            ("127.0.1", Some([127, 0, 0, 1])),
            ("2130706433", Some([127, 0, 0, 1])),
            ("017700000001", Some([127, 0, 0, 1])),
            ("0x7f000001", Some([127, 0, 0, 1])),
            ("0X7F.0.0.01", Some([127, 0, 0, 1])),
            ("0x", Some([0, 0, 0, 0])),
            ("0", Some([0, 0, 0, 0])),
            ("0xffffffff", Some([255, 255, 255, 255])),
            ("1.0xffffff", Some([1, 255, 255, 255])),
            ("1.0x1000000", None),
            ("256.0.0.1", None),
            ("4294967296", None),
            ("08", None),
            ("1.2.3.4.5", None),
            ("1..2", None),
            ("", None),
            ("example.com", None),
            ("deadbeef", None),
            ("0xdeadbeef", Some([0xde, 0xad, 0xbe, 0xef])),
            ("0x1g", None),
            ("99999999999999999999", None),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_inet_aton(s), want.map(Ipv4Addr::from), "{s}");
        }
    }

    #[test]
    fn defensive_numeric_domain() {
        // Not reachable through the url crate (it turns these into IPv4
        // hosts), but the domain check must still classify them.
        assert_eq!(
            check_domain("0x7f.1"),
            Err(TargetRejection::BlockedAddress("127.0.0.1".into()))
        );
        assert_eq!(
            check_domain("2130706433."),
            Err(TargetRejection::BlockedAddress("127.0.0.1".into()))
        );
        assert!(check_domain("8.8.8.8").is_ok());
        assert!(check_domain("example.com").is_ok());
        assert!(check_domain("").is_err());
        assert!(check_domain(".").is_err());
    }

    /// Tiny deterministic LCG (no extra crates).
    struct Lcg(u64);
    impl Lcg {
        fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 32) as u32
        }
    }

    fn spellings(ip: u32) -> Vec<String> {
        let [a, b, c, d] = ip.to_be_bytes();
        let low24 = ip & 0x00ff_ffff;
        let low16 = ip & 0xffff;
        vec![
            format!("{a}.{b}.{c}.{d}"),
            format!("{ip}"),
            format!("0x{ip:x}"),
            format!("0X{ip:X}"),
            format!("0{ip:o}"),
            format!("0x{a:x}.0{b:o}.{c}.0x{d:02x}"),
            format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
            format!("{a}.{low24}"),
            format!("{a}.{b}.{low16}"),
            format!("0x{a:x}.0x{low24:x}"),
            format!("{a}.{b}.{c}.{d}."),
        ]
    }

    #[test]
    fn property_loopback_spellings_blocked() {
        let mut rng = Lcg(0x5eed);
        for _ in 0..300 {
            let ip = 0x7f00_0000 | (rng.next_u32() & 0x00ff_ffff);
            for s in spellings(ip) {
                let url = format!("https://{s}/hook");
                assert_eq!(
                    check_target_url(&url, false),
                    Err(TargetRejection::BlockedAddress(
                        Ipv4Addr::from(ip).to_string()
                    )),
                    "{url}"
                );
                let trimmed = s.strip_suffix('.').unwrap_or(&s);
                assert_eq!(parse_inet_aton(trimmed), Some(Ipv4Addr::from(ip)), "{s}");
            }
        }
    }

    #[test]
    fn property_spellings_agree_with_url_crate() {
        // For random addresses, every spelling must (a) be parsed by the url
        // crate to the same IPv4, (b) be parsed identically by our inet_aton
        // fallback, and (c) be classified consistently with is_blocked_ip.
        let mut rng = Lcg(42);
        for _ in 0..500 {
            let ip = rng.next_u32();
            let addr = Ipv4Addr::from(ip);
            for s in spellings(ip) {
                let input = format!("https://{s}/");
                let parsed = Url::parse(&input).unwrap();
                assert_eq!(parsed.host(), Some(Host::Ipv4(addr)), "{input}");
                let trimmed = s.strip_suffix('.').unwrap_or(&s);
                assert_eq!(parse_inet_aton(trimmed), Some(addr), "{s}");
                assert_eq!(
                    check_target_url(&input, false).is_err(),
                    is_blocked_ip(IpAddr::V4(addr)),
                    "{input}"
                );
            }
        }
    }

    // Property tests: the parser never panics, and every address of a blocked range is
    // refused in whatever IPv4 spelling (decimal, hex, octal, dotted) a resolver accepts.
    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in "\\PC{0,200}") {
            let _ = check_target_url(&s, false);
            let _ = check_target_url(&s, true);
        }

        #[test]
        fn never_panics_on_url_like_input(host in "[a-zA-Z0-9.:\\[\\]%@_-]{0,60}", path in "[/a-z0-9?#=&]{0,20}") {
            let _ = check_target_url(&format!("https://{host}{path}"), false);
        }

        #[test]
        fn private_ipv4_is_blocked_in_every_spelling(
            net in proptest::sample::select(vec![(10u32 << 24, 8u32), (127 << 24, 8), (0xAC10_0000, 12), (0xC0A8_0000, 16), (0xA9FE_0000, 16), (0x6440_0000, 10), (0, 8)]),
            low in proptest::num::u32::ANY,
        ) {
            let (base, prefix) = net;
            let ip = base | (low >> prefix);
            let o = ip.to_be_bytes();
            for spelling in [
                format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
                format!("{ip}"),
                format!("{ip:#x}"),
                format!("0{ip:o}"),
                format!("{:#x}.{:#x}.{:#x}.{:#x}", o[0], o[1], o[2], o[3]),
                format!("0{:o}.0{:o}.0{:o}.0{:o}", o[0], o[1], o[2], o[3]),
                format!("{}.{}", o[0], ip & 0x00FF_FFFF),
                format!("[::ffff:{}.{}.{}.{}]", o[0], o[1], o[2], o[3]),
            ] {
                let url = format!("https://{spelling}/hook");
                proptest::prop_assert!(check_target_url(&url, false).is_err(), "{} was allowed", url);
            }
        }
    }
}
