//! The command line: `routewarden run` (the daemon), `routewarden journal …` (the operator's
//! window into the journal) and `routewarden crd` (the CRDs to install). Arguments are parsed
//! once here, with environment fallbacks, into typed structs; [`main`] dispatches and turns every
//! failure into one line on stderr and a documented exit code.

pub mod journal;
pub mod render;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

pub const DEFAULT_JOURNAL_DIR: &str = "/var/lib/routewarden/journal";
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9443";
pub const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9402";

const JOURNAL_AFTER_HELP: &str = "\
Sources:
  --dir DIR    a stopped journal (only one process may open a journal at a time)
  --admin URL  a running daemon's admin endpoint, e.g. http://127.0.0.1:9443
  An explicit --admin or --dir wins; otherwise ROUTEWARDEN_ADMIN_URL, then the directory.

Exit codes:
  0  ok
  1  error (including: no journal in the directory)
  2  usage error (including: --follow without --admin)
  3  journal in use by another process (reach the running daemon with --admin)
  4  journal written by a newer schema than this build supports
  5  admin endpoint unreachable";

/// routewarden: Key Vault TLS certificates and Azure DNS records for Gateway API on AKS.
#[derive(Debug, Parser)]
#[command(name = "routewarden", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the run arguments costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: open the journal and serve the admin endpoint.
    Run(RunArgs),
    /// Inspect the journal, stopped (--dir) or through a running daemon (--admin).
    Journal(JournalArgs),
    /// Print routewarden's CustomResourceDefinitions as multi-document YAML (kubectl apply -f -).
    Crd(CrdArgs),
}

#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Write one file per CRD (<plural>.<group>.yaml) into DIR instead of printing, e.g.
    /// `routewarden crd --write deploy/crds`.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Journal directory (created 0700 if absent).
    #[arg(long, value_name = "DIR", env = "ROUTEWARDEN_JOURNAL_DIR", default_value = DEFAULT_JOURNAL_DIR)]
    pub journal_dir: PathBuf,
    /// Address of the admin endpoint; it has no authentication, so keep it on loopback.
    #[arg(long, value_name = "ADDR", env = "ROUTEWARDEN_ADMIN_ADDR", default_value = DEFAULT_ADMIN_ADDR)]
    pub admin_addr: SocketAddr,
    /// Cluster id stamped into a new journal (a random one when absent).
    #[arg(long, env = "ROUTEWARDEN_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Address serving /metrics, /healthz and /readyz (for Prometheus and kubelet probes).
    #[arg(long, value_name = "ADDR", env = "ROUTEWARDEN_METRICS_ADDR", default_value = DEFAULT_METRICS_ADDR)]
    pub metrics_addr: SocketAddr,
    /// Log format on stderr; the filter comes from RUST_LOG (default info) and can be changed
    /// while running with `PUT /v1/log-level` on the admin endpoint. Traces are exported over
    /// OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set;
    /// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG] and
    /// OTEL_SDK_DISABLED apply as usual.
    #[arg(long, env = "ROUTEWARDEN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub leader: LeaderArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// Leader election: with several replicas, only the one holding the Lease writes.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Leader election")]
pub struct LeaderArgs {
    /// Lead without a Lease (a single replica, or a journal inspected with --no-kubernetes).
    #[arg(long, env = "ROUTEWARDEN_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,
    /// Namespace of the Lease; default: the pod's own namespace, else `default`.
    #[arg(long, value_name = "NAMESPACE", env = "ROUTEWARDEN_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, value_name = "NAME", env = "ROUTEWARDEN_LEADER_ELECTION_LEASE", default_value = "routewarden")]
    pub leader_election_lease: String,
    /// This replica's identity in the Lease; default: the pod name ($HOSTNAME) with a random
    /// suffix.
    #[arg(long, value_name = "ID", env = "ROUTEWARDEN_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
    /// How long a Lease holds without renewal: a follower takes over within this after the
    /// leader dies (the leader renews a third of it before expiry; at least 3s).
    #[arg(long, value_name = "DURATION", env = "ROUTEWARDEN_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_lease_duration)]
    pub leader_election_lease_duration: std::time::Duration,
}

fn parse_lease_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d < std::time::Duration::from_secs(3) || d.subsec_nanos() != 0 {
        return Err(format!("{s:?} must be whole seconds, at least 3s"));
    }
    Ok(d)
}

/// Where the Kubernetes API server is.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubeArgs {
    /// kubeconfig file; without it, the in-cluster configuration, else $KUBECONFIG or
    /// ~/.kube/config.
    #[arg(long, value_name = "FILE", env = "ROUTEWARDEN_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Run without Kubernetes: only the journal and the admin endpoint (for inspecting a journal
    /// copied off a cluster).
    #[arg(long, env = "ROUTEWARDEN_NO_KUBERNETES")]
    pub no_kubernetes: bool,
}

/// What a listener's Secret holds, and how certificates are watched.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// GatewayClasses whose Gateways routewarden manages; repeatable or comma-separated.
    #[arg(
        long = "gateway-class",
        value_name = "NAME",
        env = "ROUTEWARDEN_GATEWAY_CLASSES",
        value_delimiter = ',',
        default_value = "approuting-istio"
    )]
    pub gateway_classes: Vec<String>,
    /// How often each distinct Key Vault certificate is checked for a new version; a Gateway can
    /// override it with the annotation routewarden.io/certificate-poll-interval.
    #[arg(long, value_name = "DURATION", env = "ROUTEWARDEN_CERTIFICATE_POLL_INTERVAL", default_value = "2m", value_parser = parse_duration)]
    pub certificate_poll_interval: std::time::Duration,
    /// A certificate whose names do not cover the listener's hostname: refuse it, or serve it
    /// with a warning.
    #[arg(long, value_enum, env = "ROUTEWARDEN_HOSTNAME_POLICY", default_value_t = HostnamePolicyArg::Refuse)]
    pub hostname_policy: HostnamePolicyArg,
    /// Also put the root CA certificate at the end of tls.crt (left out by default: clients
    /// must already trust it, and sending it only costs bytes).
    #[arg(long, env = "ROUTEWARDEN_TLS_INCLUDE_ROOT")]
    pub tls_include_root: bool,
    /// Encoding of tls.key: PKCS#8, or the traditional PKCS#1 (RSA) / SEC1 (EC).
    #[arg(long, value_enum, env = "ROUTEWARDEN_TLS_KEY_FORMAT", default_value_t = KeyFormatArg::Pkcs8)]
    pub tls_key_format: KeyFormatArg,
    /// Concurrent certificate syncs.
    #[arg(long, value_name = "N", env = "ROUTEWARDEN_WORKERS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
}

/// How DNS records are published, verified and paced.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "DNS")]
pub struct DnsArgs {
    /// sync: a record whose Gateway, route or Ingress is gone is deleted (after the resource's
    /// hold-down when the source still exists); upsert-only: it is kept and reported as stale.
    #[arg(long, value_enum, env = "ROUTEWARDEN_DNS_POLICY", default_value_t = DnsPolicyArg::Sync)]
    pub dns_policy: DnsPolicyArg,
    /// How often each zone is listed once to repair drift in owned record sets and report stale
    /// and foreign ones (at least 10s).
    #[arg(long, value_name = "DURATION", env = "ROUTEWARDEN_DNS_VERIFY_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub dns_verify_interval: std::time::Duration,
    /// Adopt record sets that external-dns created with this TXT-registry owner id (the AKS
    /// operator's is the cluster's UID): routewarden takes them over instead of reporting a
    /// conflict, and deletes their ownership TXT record.
    #[arg(long, value_name = "OWNER_ID", env = "ROUTEWARDEN_DNS_ADOPT_TXT_OWNER_ID")]
    pub dns_adopt_txt_owner_id: Option<String>,
    /// ARM reads (record-set gets and list pages) per subscription and principal, BURST/PERIOD.
    #[arg(long, value_name = "RATE", env = "ROUTEWARDEN_ARM_READ_LIMIT", default_value = "250/10s")]
    pub arm_read_limit: crate::dns::limits::Rate,
    /// ARM writes (record-set PUTs) per subscription and principal.
    #[arg(long, value_name = "RATE", env = "ROUTEWARDEN_ARM_WRITE_LIMIT", default_value = "200/20s")]
    pub arm_write_limit: crate::dns::limits::Rate,
    /// ARM deletes per subscription and principal.
    #[arg(long, value_name = "RATE", env = "ROUTEWARDEN_ARM_DELETE_LIMIT", default_value = "200/20s")]
    pub arm_delete_limit: crate::dns::limits::Rate,
    /// Record-set creates, updates and deletes per public zone.
    #[arg(long, value_name = "RATE", env = "ROUTEWARDEN_PUBLIC_ZONE_WRITE_LIMIT", default_value = "200/1m")]
    pub public_zone_write_limit: crate::dns::limits::Rate,
    /// Record-set list pages per public zone.
    #[arg(long, value_name = "RATE", env = "ROUTEWARDEN_PUBLIC_ZONE_LIST_LIMIT", default_value = "60/1m")]
    pub public_zone_list_limit: crate::dns::limits::Rate,
    /// Record-set creates, updates and deletes per private zone.
    #[arg(long, value_name = "RATE", env = "ROUTEWARDEN_PRIVATE_ZONE_WRITE_LIMIT", default_value = "60/1m")]
    pub private_zone_write_limit: crate::dns::limits::Rate,
    /// Record-set list pages per private zone.
    #[arg(long, value_name = "RATE", env = "ROUTEWARDEN_PRIVATE_ZONE_LIST_LIMIT", default_value = "100/1m")]
    pub private_zone_list_limit: crate::dns::limits::Rate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DnsPolicyArg {
    Sync,
    UpsertOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HostnamePolicyArg {
    Refuse,
    Warn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyFormatArg {
    Pkcs8,
    Traditional,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d < std::time::Duration::from_secs(10) {
        return Err(format!("{s:?} is shorter than 10s"));
    }
    Ok(d)
}

/// Where Azure is and how to reach it.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Azure")]
pub struct AzureArgs {
    /// Azure cloud: AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud, or the path of an ARM
    /// /metadata/endpoints JSON document (Azure Stack, air-gapped clouds).
    #[arg(long, value_name = "CLOUD|FILE", env = "ROUTEWARDEN_AZURE_CLOUD", default_value = "AzurePublicCloud")]
    pub azure_cloud: String,
    /// Entra tenant for identities whose ServiceAccount has no azure.workload.identity/tenant-id.
    #[arg(long, value_name = "UUID", env = "ROUTEWARDEN_TENANT_ID")]
    pub tenant_id: Option<String>,
    /// PEM file of CA certificates trusted for Azure endpoints in addition to the system roots.
    #[arg(long, value_name = "FILE", env = "ROUTEWARDEN_AZURE_EXTRA_CA")]
    pub azure_extra_ca: Option<PathBuf>,
    /// Send Azure calls for HOST (or every name under *.SUFFIX) to IP:PORT; repeatable, or
    /// comma-separated in the environment variable.
    #[arg(
        long = "azure-host-override",
        value_name = "HOST=IP:PORT",
        env = "ROUTEWARDEN_AZURE_HOST_OVERRIDES",
        value_delimiter = ','
    )]
    pub azure_host_overrides: Vec<routewarden_azure::transport::HostOverride>,
    /// Token endpoint of the instance metadata service, where DNS resources with
    /// `identity.type: managedIdentity` get tokens of the node's managed identity (plain http is
    /// allowed here only).
    #[arg(
        long,
        value_name = "URL",
        env = "ROUTEWARDEN_MANAGED_IDENTITY_ENDPOINT",
        default_value = routewarden_azure::imds::DEFAULT_ENDPOINT
    )]
    pub managed_identity_endpoint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
#[command(after_help = JOURNAL_AFTER_HELP)]
pub struct JournalArgs {
    /// Output format (export is always NDJSON).
    #[arg(short, long, global = true, value_name = "FORMAT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Journal directory of a stopped daemon.
    #[arg(long, global = true, env = "ROUTEWARDEN_JOURNAL_DIR", default_value = DEFAULT_JOURNAL_DIR)]
    pub dir: PathBuf,
    /// Admin endpoint of a running daemon.
    #[arg(long, global = true, value_name = "URL", env = "ROUTEWARDEN_ADMIN_URL")]
    pub admin: Option<String>,
    #[command(subcommand)]
    pub command: JournalCommand,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Pending,
    InFlight,
    Done,
    Parked,
}

impl StateArg {
    pub fn as_str(self) -> &'static str {
        match self {
            StateArg::Pending => "pending",
            StateArg::InFlight => "in-flight",
            StateArg::Done => "done",
            StateArg::Parked => "parked",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Schema, size, counts per table and queue state, oldest pending item, event range.
    Summary,
    /// Desired and applied DNS record sets, joined per key, with their sync status.
    Records {
        /// Only this zone (its DNS name or ARM resource id).
        #[arg(long, value_name = "ZONE")]
        zone: Option<String>,
    },
    /// Certificate bindings and the certificate versions seen (metadata only).
    Certs,
    /// Work items.
    Queue {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[arg(long)]
        kind: Option<String>,
    },
    /// The event log, oldest first.
    Events(EventsArgs),
    /// Per-zone verification: headroom, stale and foreign-blocking records.
    Stale,
    /// Everything as NDJSON, one object per line tagged with "table", for support tickets.
    Export,
    /// Apply retention now (events, old done items, excess certificate versions).
    Compact,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events at or after this time: a duration back from now (10m, 2h) or RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    /// Only events with a sequence number above this.
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// At most this many: the newest ones, or the first ones after --after/--since.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Keep printing events as they are appended (needs --admin). Table output becomes one
    /// fixed-width line per event, JSON one object per line, YAML one document per event.
    #[arg(long, short)]
    pub follow: bool,
}

/// Parses the process arguments, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { journal::EXIT_USAGE } else { 0 });
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(journal::EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Run(args) => match crate::daemon::main(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("routewarden: {e:#}");
                let usage = matches!(e, crate::daemon::DaemonError::Config(_));
                if usage { ExitCode::from(journal::EXIT_USAGE) } else { ExitCode::FAILURE }
            }
        },
        Command::Journal(args) => {
            let explicit =
                matches.subcommand_matches("journal").map(journal::ExplicitSource::from_matches).unwrap_or_default();
            journal::main(args, explicit)
        }
        Command::Crd(args) => match crd(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("routewarden: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn crd(CrdArgs { write }: CrdArgs) -> anyhow::Result<()> {
    match write {
        Some(dir) => {
            for path in crate::crd::write_dir(&dir)? {
                eprintln!("wrote {}", path.display());
            }
        }
        None => print!("{}", crate::crd::render_all()?),
    }
    Ok(())
}
