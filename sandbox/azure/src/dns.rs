//! Azure DNS data: zones and record sets, their JSON shapes, and Azure DNS's validation rules.
//!
//! One model serves both providers; only the wire shape differs. Public zones
//! (`Microsoft.Network/dnszones`) write `TTL`, `ARecords`, `CNAMERecord`…; private zones
//! (`Microsoft.Network/privateDnsZones`) write `ttl`, `aRecords`, `cnameRecord`… Incoming bodies
//! are read with case-insensitive property names, as ARM's deserialiser does, so either casing is
//! accepted on either provider. Everything here is pure: [`parse_record_set`] turns a PUT/PATCH
//! body into a [`RecordSet`] (or Azure's 400), [`RecordSet::to_json`] and [`Zone::to_json`] render.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::scenario::{DnsLimits, ZoneKind};

/// An Azure-shaped failure: status, `error.code`, `error.message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error.code`.
    pub code: &'static str,
    /// `error.message`.
    pub message: String,
}

fn bad(message: impl Into<String>) -> DnsError {
    DnsError { status: StatusCode::BAD_REQUEST, code: "BadRequest", message: message.into() }
}

/// The record types the sandbox serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Text.
    Txt,
    /// Start of authority (read-only).
    Soa,
    /// Name servers (read-only).
    Ns,
}

impl RecordType {
    /// Parses a path segment (`A`, `aaaa`, …).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => Self::A,
            "AAAA" => Self::Aaaa,
            "CNAME" => Self::Cname,
            "TXT" => Self::Txt,
            "SOA" => Self::Soa,
            "NS" => Self::Ns,
            _ => return None,
        })
    }

    /// The type as Azure writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Txt => "TXT",
            Self::Soa => "SOA",
            Self::Ns => "NS",
        }
    }

    /// Whether clients may create, change or delete sets of this type.
    pub fn writable(self) -> bool {
        !matches!(self, Self::Soa | Self::Ns)
    }

    /// The records property, per provider casing.
    fn property(self, kind: ZoneKind) -> &'static str {
        match (self, kind) {
            (Self::A, ZoneKind::Public) => "ARecords",
            (Self::A, ZoneKind::Private) => "aRecords",
            (Self::Aaaa, ZoneKind::Public) => "AAAARecords",
            (Self::Aaaa, ZoneKind::Private) => "aaaaRecords",
            (Self::Cname, ZoneKind::Public) => "CNAMERecord",
            (Self::Cname, ZoneKind::Private) => "cnameRecord",
            (Self::Txt, ZoneKind::Public) => "TXTRecords",
            (Self::Txt, ZoneKind::Private) => "txtRecords",
            (Self::Soa, ZoneKind::Public) => "SOARecord",
            (Self::Soa, ZoneKind::Private) => "soaRecord",
            (Self::Ns, ZoneKind::Public) => "NSRecords",
            (Self::Ns, ZoneKind::Private) => "nsRecords",
        }
    }
}

/// SOA fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// Primary name server.
    pub host: String,
    /// Responsible mailbox.
    pub email: String,
    /// Serial.
    pub serial_number: i64,
    /// Refresh.
    pub refresh_time: i64,
    /// Retry.
    pub retry_time: i64,
    /// Expire.
    pub expire_time: i64,
    /// Negative-caching TTL.
    pub minimum_ttl: i64,
}

/// The records of one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// IPv4 addresses.
    A(Vec<String>),
    /// IPv6 addresses.
    Aaaa(Vec<String>),
    /// The target, if set.
    Cname(Option<String>),
    /// TXT records, each a list of strings.
    Txt(Vec<Vec<String>>),
    /// SOA.
    Soa(Soa),
    /// Name servers.
    Ns(Vec<String>),
}

impl RecordData {
    /// The type of these records.
    pub fn record_type(&self) -> RecordType {
        match self {
            Self::A(_) => RecordType::A,
            Self::Aaaa(_) => RecordType::Aaaa,
            Self::Cname(_) => RecordType::Cname,
            Self::Txt(_) => RecordType::Txt,
            Self::Soa(_) => RecordType::Soa,
            Self::Ns(_) => RecordType::Ns,
        }
    }

    fn empty(t: RecordType) -> Self {
        match t {
            RecordType::A => Self::A(vec![]),
            RecordType::Aaaa => Self::Aaaa(vec![]),
            RecordType::Cname => Self::Cname(None),
            RecordType::Txt => Self::Txt(vec![]),
            RecordType::Ns => Self::Ns(vec![]),
            RecordType::Soa => Self::Soa(Soa {
                host: String::new(),
                email: String::new(),
                serial_number: 1,
                refresh_time: 3600,
                retry_time: 300,
                expire_time: 2_419_200,
                minimum_ttl: 300,
            }),
        }
    }

    fn count(&self) -> usize {
        match self {
            Self::A(v) | Self::Aaaa(v) | Self::Ns(v) => v.len(),
            Self::Txt(v) => v.len(),
            Self::Cname(c) => usize::from(c.is_some()),
            Self::Soa(_) => 1,
        }
    }

    /// The records as plain values: addresses, the CNAME target, name servers, or each TXT
    /// record's strings concatenated; none for SOA.
    pub fn values(&self) -> Vec<String> {
        match self {
            Self::A(v) | Self::Aaaa(v) | Self::Ns(v) => v.clone(),
            Self::Txt(v) => v.iter().map(|t| t.concat()).collect(),
            Self::Cname(c) => c.iter().cloned().collect(),
            Self::Soa(_) => Vec::new(),
        }
    }
}

/// One record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// Relative name as created (`@` for the apex).
    pub name: String,
    /// TTL seconds.
    pub ttl: i64,
    /// `metadata` (string map); `None` when never set.
    pub metadata: Option<Map<String, Value>>,
    /// Current ETag (unquoted).
    pub etag: String,
    /// The records.
    pub data: RecordData,
}

/// A zone and its record sets, keyed by (lower-case name, type).
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Public or private.
    pub kind: ZoneKind,
    /// Subscription id.
    pub subscription: String,
    /// Resource group name as declared.
    pub resource_group: String,
    /// Zone name.
    pub name: String,
    /// Zone ETag.
    pub etag: String,
    /// Record sets.
    pub record_sets: BTreeMap<(String, RecordType), RecordSet>,
}

/// The lookup key of a record-set name: lower case, apex as `@`.
pub fn name_key(name: &str) -> String {
    if name.is_empty() || name == "@" { "@".to_string() } else { name.to_ascii_lowercase() }
}

/// Checks a relative record-set name the way Azure DNS does.
pub fn validate_name(name: &str, zone: &str) -> Result<(), DnsError> {
    if name == "@" {
        return Ok(());
    }
    let invalid = || {
        bad(format!(
            "The record set name '{name}' is invalid. A record set name must be a relative domain name (labels of 1-63 letters, digits, hyphens or underscores; '*' only as the first label) or '@'."
        ))
    };
    if name.is_empty() || name.ends_with('.') || name.len() + zone.len() + 1 > 253 {
        return Err(invalid());
    }
    for (i, label) in name.split('.').enumerate() {
        let ok = (label == "*" && i == 0)
            || (!label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        if !ok {
            return Err(invalid());
        }
    }
    Ok(())
}

impl Zone {
    /// The zone's ARM resource id.
    pub fn resource_id(&self) -> String {
        match self.kind {
            ZoneKind::Public => format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnszones/{}",
                self.subscription, self.resource_group, self.name
            ),
            ZoneKind::Private => format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/privateDnsZones/{}",
                self.subscription, self.resource_group, self.name
            ),
        }
    }

    /// The resource provider type (`Microsoft.Network/dnszones` or `…/privateDnsZones`).
    pub fn resource_type(&self) -> &'static str {
        match self.kind {
            ZoneKind::Public => "Microsoft.Network/dnszones",
            ZoneKind::Private => "Microsoft.Network/privateDnsZones",
        }
    }

    /// The action namespace RBAC checks (`Microsoft.Network/dnsZones` or `…/privateDnsZones`).
    pub fn action_prefix(&self) -> &'static str {
        match self.kind {
            ZoneKind::Public => "Microsoft.Network/dnsZones",
            ZoneKind::Private => "Microsoft.Network/privateDnsZones",
        }
    }

    /// Name servers Azure would assign.
    pub fn name_servers(&self) -> Vec<String> {
        vec![
            "ns1-01.azure-dns.com.".into(),
            "ns2-01.azure-dns.net.".into(),
            "ns3-01.azure-dns.org.".into(),
            "ns4-01.azure-dns.info.".into(),
        ]
    }

    /// A new zone with its SOA (and NS, when public) record sets.
    pub fn new(kind: ZoneKind, subscription: &str, resource_group: &str, name: &str) -> Self {
        let mut zone = Self {
            kind,
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            name: name.into(),
            etag: uuid::Uuid::new_v4().to_string(),
            record_sets: BTreeMap::new(),
        };
        let soa = Soa {
            host: match kind {
                ZoneKind::Public => "ns1-01.azure-dns.com.".into(),
                ZoneKind::Private => "azureprivatedns.net".into(),
            },
            email: "azuredns-hostmaster.microsoft.com".into(),
            serial_number: 1,
            refresh_time: 3600,
            retry_time: 300,
            expire_time: 2_419_200,
            minimum_ttl: 300,
        };
        zone.insert(RecordSet {
            name: "@".into(),
            ttl: 3600,
            metadata: None,
            etag: uuid::Uuid::new_v4().to_string(),
            data: RecordData::Soa(soa),
        });
        if kind == ZoneKind::Public {
            zone.insert(RecordSet {
                name: "@".into(),
                ttl: 172_800,
                metadata: None,
                etag: uuid::Uuid::new_v4().to_string(),
                data: RecordData::Ns(zone.name_servers()),
            });
        }
        zone
    }

    /// Inserts or replaces a record set.
    pub fn insert(&mut self, set: RecordSet) {
        self.record_sets.insert((name_key(&set.name), set.data.record_type()), set);
    }

    /// The record-set limit for this zone's kind.
    pub fn max_record_sets(&self, limits: &DnsLimits) -> usize {
        match self.kind {
            ZoneKind::Public => limits.public_record_sets_per_zone,
            ZoneKind::Private => limits.private_record_sets_per_zone,
        }
    }

    /// The zone as ARM returns it.
    pub fn to_json(&self, limits: &DnsLimits) -> Value {
        let properties = match self.kind {
            ZoneKind::Public => json!({
                "maxNumberOfRecordSets": limits.public_record_sets_per_zone,
                "maxNumberOfRecordsPerRecordSet": limits.records_per_record_set,
                "numberOfRecordSets": self.record_sets.len(),
                "nameServers": self.name_servers(),
                "zoneType": "Public",
            }),
            ZoneKind::Private => json!({
                "maxNumberOfRecordSets": limits.private_record_sets_per_zone,
                "numberOfRecordSets": self.record_sets.len(),
                "maxNumberOfVirtualNetworkLinks": 1000,
                "numberOfVirtualNetworkLinks": 0,
                "maxNumberOfVirtualNetworkLinksWithRegistration": 100,
                "numberOfVirtualNetworkLinksWithRegistration": 0,
                "provisioningState": "Succeeded",
                "internalId": format!("Sandbox;{}", self.name),
            }),
        };
        json!({
            "id": self.resource_id(),
            "name": self.name,
            "type": self.resource_type(),
            "etag": self.etag,
            "location": "global",
            "tags": {},
            "properties": properties,
        })
    }

    /// Whether a set of another type than `t` exists at `name`.
    pub fn other_types_at(&self, name: &str, t: RecordType) -> Vec<RecordType> {
        let key = name_key(name);
        self.record_sets.keys().filter(|(n, rt)| *n == key && *rt != t).map(|(_, rt)| *rt).collect()
    }
}

impl RecordSet {
    /// The set as ARM returns it for `zone`.
    pub fn to_json(&self, zone: &Zone) -> Value {
        let t = self.data.record_type();
        let kind = zone.kind;
        let fqdn = if name_key(&self.name) == "@" {
            format!("{}.", zone.name)
        } else {
            format!("{}.{}.", self.name, zone.name)
        };
        let mut props = Map::new();
        props.insert("metadata".into(), self.metadata.clone().map(Value::Object).unwrap_or(Value::Null));
        props.insert(if kind == ZoneKind::Public { "TTL" } else { "ttl" }.into(), json!(self.ttl));
        props.insert("fqdn".into(), json!(fqdn));
        match kind {
            ZoneKind::Public => {
                props.insert("provisioningState".into(), json!("Succeeded"));
                props.insert("targetResource".into(), json!({}));
            }
            ZoneKind::Private => {
                props.insert("isAutoRegistered".into(), json!(false));
            }
        }
        let records = match &self.data {
            RecordData::A(v) => json!(v.iter().map(|a| json!({"ipv4Address": a})).collect::<Vec<_>>()),
            RecordData::Aaaa(v) => json!(v.iter().map(|a| json!({"ipv6Address": a})).collect::<Vec<_>>()),
            RecordData::Cname(c) => c.as_ref().map(|c| json!({"cname": c})).unwrap_or(Value::Null),
            RecordData::Txt(v) => json!(v.iter().map(|t| json!({"value": t})).collect::<Vec<_>>()),
            RecordData::Ns(v) => json!(v.iter().map(|n| json!({"nsdname": n})).collect::<Vec<_>>()),
            RecordData::Soa(s) => {
                let min = if kind == ZoneKind::Public { "minimumTTL" } else { "minimumTtl" };
                json!({"host": s.host, "email": s.email, "serialNumber": s.serial_number, "refreshTime": s.refresh_time, "retryTime": s.retry_time, "expireTime": s.expire_time, min: s.minimum_ttl})
            }
        };
        if !records.is_null() {
            props.insert(t.property(kind).into(), records);
        }
        json!({
            "id": format!("{}/{}/{}", zone.resource_id(), t.as_str(), self.name),
            "name": self.name,
            "type": format!("{}/{}", zone.resource_type(), t.as_str()),
            "etag": self.etag,
            "properties": Value::Object(props),
        })
    }
}

/// A property by case-insensitive name.
fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn string_field(item: &Value, field: &str, what: &str) -> Result<String, DnsError> {
    item.as_object()
        .and_then(|o| get_ci(o, field))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad(format!("Each {what} record must have a '{field}' string.")))
}

/// Builds the record set a PUT (`existing = None` or replaced wholesale) or PATCH (`patch`,
/// merged over `existing`) asks for. Checks types, addresses, TTL and the per-set record limit.
pub fn parse_record_set(
    body: &Value,
    t: RecordType,
    name: &str,
    existing: Option<&RecordSet>,
    patch: bool,
    limits: &DnsLimits,
) -> Result<RecordSet, DnsError> {
    let root = body.as_object().ok_or_else(|| DnsError {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidRequestFormat",
        message: "Cannot parse the request.".into(),
    })?;
    let empty = Map::new();
    let props = match get_ci(root, "properties") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(DnsError {
                status: StatusCode::BAD_REQUEST,
                code: "InvalidRequestFormat",
                message: "Cannot parse the request: 'properties' must be an object.".into(),
            });
        }
    };
    let base = if patch { existing.cloned() } else { None };
    let mut set = base.unwrap_or_else(|| RecordSet {
        name: name.to_string(),
        ttl: 3600,
        metadata: None,
        etag: String::new(),
        data: RecordData::empty(t),
    });
    if let Some(ttl) = get_ci(props, "ttl") {
        let ttl = ttl
            .as_i64()
            .filter(|v| (0..=2_147_483_647).contains(v))
            .ok_or_else(|| bad("The TTL must be an integer between 0 and 2147483647."))?;
        set.ttl = ttl;
    }
    if let Some(md) = get_ci(props, "metadata") {
        set.metadata = match md {
            Value::Null => None,
            Value::Object(m) => {
                if m.values().any(|v| !v.is_string()) {
                    return Err(bad("Metadata values must be strings."));
                }
                Some(m.clone())
            }
            _ => return Err(bad("Metadata must be an object of strings.")),
        };
    }
    let field = |plain: &str| get_ci(props, plain);
    let data = match t {
        RecordType::A => field("ARecords").map(|v| {
            let items = v.as_array().ok_or_else(|| bad("ARecords must be an array."))?;
            items
                .iter()
                .map(|i| {
                    let a = string_field(i, "ipv4Address", "A")?;
                    a.parse::<Ipv4Addr>().map_err(|_| bad(format!("The IPv4 address '{a}' is not valid.")))?;
                    Ok(a)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(RecordData::A)
        }),
        RecordType::Aaaa => field("AAAARecords").map(|v| {
            let items = v.as_array().ok_or_else(|| bad("AAAARecords must be an array."))?;
            items
                .iter()
                .map(|i| {
                    let a = string_field(i, "ipv6Address", "AAAA")?;
                    a.parse::<Ipv6Addr>().map_err(|_| bad(format!("The IPv6 address '{a}' is not valid.")))?;
                    Ok(a)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(RecordData::Aaaa)
        }),
        RecordType::Cname => field("CNAMERecord").map(|v| {
            if v.is_null() {
                return Ok(RecordData::Cname(None));
            }
            let c = string_field(v, "cname", "CNAME")?;
            if c.is_empty() {
                return Err(bad("The CNAME record must have a non-empty 'cname'."));
            }
            Ok(RecordData::Cname(Some(c)))
        }),
        RecordType::Txt => field("TXTRecords").map(|v| {
            let items = v.as_array().ok_or_else(|| bad("TXTRecords must be an array."))?;
            items
                .iter()
                .map(|i| {
                    let values = i
                        .as_object()
                        .and_then(|o| get_ci(o, "value"))
                        .and_then(Value::as_array)
                        .ok_or_else(|| bad("Each TXT record must have a 'value' array of strings."))?;
                    let strings = values
                        .iter()
                        .map(|s| s.as_str().map(str::to_string).ok_or_else(|| bad("TXT values must be strings.")))
                        .collect::<Result<Vec<_>, _>>()?;
                    if strings.iter().map(String::len).sum::<usize>() > 4096 {
                        return Err(bad("A TXT record may hold at most 4096 characters."));
                    }
                    Ok(strings)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(RecordData::Txt)
        }),
        RecordType::Soa | RecordType::Ns => None,
    };
    match data {
        Some(Ok(d)) => set.data = d,
        Some(Err(e)) => return Err(e),
        // A PUT without records empties the set (Azure keeps an empty set); a PATCH keeps them.
        None if !patch => set.data = RecordData::empty(t),
        None => {}
    }
    if set.data.count() > limits.records_per_record_set {
        return Err(bad(format!(
            "The number of records in the record set ({}) exceeds the maximum of {} records per record set.",
            set.data.count(),
            limits.records_per_record_set
        )));
    }
    set.etag = uuid::Uuid::new_v4().to_string();
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(kind: ZoneKind) -> Zone {
        Zone::new(kind, "s", "rg", "example.com")
    }

    #[test]
    fn new_zones_hold_soa_and_ns_when_public() {
        assert_eq!(zone(ZoneKind::Public).record_sets.len(), 2);
        assert_eq!(zone(ZoneKind::Private).record_sets.len(), 1);
    }

    #[test]
    fn public_and_private_sets_render_with_their_casing() {
        let limits = DnsLimits::default();
        let body = json!({"properties": {"TTL": 300, "ARecords": [{"ipv4Address": "10.0.0.1"}]}});
        let set = parse_record_set(&body, RecordType::A, "www", None, false, &limits).expect("valid");
        let public = set.to_json(&zone(ZoneKind::Public));
        assert_eq!(public["properties"]["TTL"], 300);
        assert_eq!(public["properties"]["ARecords"][0]["ipv4Address"], "10.0.0.1");
        assert_eq!(public["type"], "Microsoft.Network/dnszones/A");
        assert_eq!(public["properties"]["fqdn"], "www.example.com.");
        let private = set.to_json(&zone(ZoneKind::Private));
        assert_eq!(private["properties"]["ttl"], 300);
        assert_eq!(private["properties"]["aRecords"][0]["ipv4Address"], "10.0.0.1");
        assert_eq!(private["properties"]["isAutoRegistered"], false);
    }

    #[test]
    fn bodies_are_read_case_insensitively() {
        let limits = DnsLimits::default();
        let body = json!({"properties": {"ttl": 60, "aRecords": [{"ipv4Address": "10.0.0.2"}]}});
        let set = parse_record_set(&body, RecordType::A, "www", None, false, &limits).expect("valid");
        assert_eq!(set.ttl, 60);
        assert_eq!(set.data, RecordData::A(vec!["10.0.0.2".into()]));
    }

    #[test]
    fn rejects_bad_addresses_too_many_records_and_bad_names() {
        let limits = DnsLimits::default();
        let bad_ip = json!({"properties": {"TTL": 1, "ARecords": [{"ipv4Address": "10.0.0.300"}]}});
        assert_eq!(
            parse_record_set(&bad_ip, RecordType::A, "x", None, false, &limits).expect_err("bad").status,
            StatusCode::BAD_REQUEST
        );
        let many: Vec<Value> = (0..21).map(|i| json!({"ipv4Address": format!("10.0.0.{i}")})).collect();
        let too_many = json!({"properties": {"TTL": 1, "ARecords": many}});
        assert!(parse_record_set(&too_many, RecordType::A, "x", None, false, &limits).is_err());
        assert!(validate_name("www", "example.com").is_ok());
        assert!(validate_name("*.apps", "example.com").is_ok());
        assert!(validate_name("a..b", "example.com").is_err());
        assert!(validate_name("bad name", "example.com").is_err());
        assert!(validate_name("apps.*", "example.com").is_err());
    }

    #[test]
    fn patch_keeps_what_the_body_leaves_out() {
        let limits = DnsLimits::default();
        let put =
            json!({"properties": {"TTL": 300, "metadata": {"owner": "rw"}, "ARecords": [{"ipv4Address": "10.0.0.1"}]}});
        let set = parse_record_set(&put, RecordType::A, "www", None, false, &limits).expect("valid");
        let patched =
            parse_record_set(&json!({"properties": {"TTL": 60}}), RecordType::A, "www", Some(&set), true, &limits)
                .expect("valid");
        assert_eq!(patched.ttl, 60);
        assert_eq!(patched.data, set.data);
        assert_eq!(patched.metadata, set.metadata);
        assert_ne!(patched.etag, set.etag);
    }
}
