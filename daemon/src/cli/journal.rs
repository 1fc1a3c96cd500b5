//! `routewarden journal`: reads a view (see [`crate::view`]) from one of two sources and renders
//! it. A [`Source`] is either the journal directory itself, opened through
//! `routewarden_migrations::open` (only possible while no daemon holds it), or a running daemon's
//! admin endpoint, which answers with the same view structs as JSON. Everything after the source
//! is shared, so both print the same thing.

use super::render::{self, Style};
use super::{EventsArgs, JournalArgs, JournalCommand, Output};
use crate::view::{
    self, CertsView, CompactView, EventFilter, EventView, QueueFilter, RecordView, StaleView, SummaryView, WorkItemView,
};
use futures::StreamExt;
use routewarden_azure::error::chain as error_chain;
use routewarden_store::{Journal, Time};
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub const EXIT_ERROR: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_LOCKED: u8 = 3;
pub const EXIT_NEWER_SCHEMA: u8 = 4;
pub const EXIT_UNREACHABLE: u8 = 5;

/// Everything `routewarden journal` can fail at; [`CliError::exit_code`] is the documented code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("no journal at {}: the directory does not exist", dir.display())]
    NoJournal { dir: PathBuf },
    #[error("{} is not a routewarden journal", dir.display())]
    NotAJournal { dir: PathBuf },
    #[error("{}", open_message(dir, source))]
    Open { dir: PathBuf, source: routewarden_migrations::Error },
    #[error("failed to read journal {}: {source}", dir.display())]
    Read { dir: PathBuf, source: routewarden_store::Error },
    #[error("admin endpoint {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("admin endpoint {url} answered {status}: {message}")]
    Remote { url: String, status: u16, message: String },
    #[error("failed to decode the answer of {url}: {detail}")]
    Decode { url: String, detail: String },
    #[error("failed to write output: {0}")]
    Output(std::io::Error),
}

/// The store's errors about a whole journal already name its directory; others get it added.
fn open_message(dir: &Path, e: &routewarden_migrations::Error) -> String {
    use routewarden_store::Error as S;
    match e {
        routewarden_migrations::Error::Store(S::Locked { .. } | S::NewerSchema { .. } | S::NotMigrated { .. }) => {
            e.to_string()
        }
        _ => format!("failed to open journal {}: {e}", dir.display()),
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        use routewarden_store::Error as S;
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Open { source: routewarden_migrations::Error::Store(S::Locked { .. }), .. }
            | CliError::Read { source: S::Locked { .. }, .. } => EXIT_LOCKED,
            CliError::Open { source: routewarden_migrations::Error::Store(S::NewerSchema { .. }), .. }
            | CliError::Read { source: S::NewerSchema { .. }, .. } => EXIT_NEWER_SCHEMA,
            CliError::Unreachable { .. } => EXIT_UNREACHABLE,
            _ => EXIT_ERROR,
        }
    }
}

/// Which source flags were given on the command line itself (not through the environment).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplicitSource {
    pub dir: bool,
    pub admin: bool,
}

impl ExplicitSource {
    pub fn from_matches(m: &clap::ArgMatches) -> Self {
        fn explicit(m: &clap::ArgMatches, id: &str) -> bool {
            let here = m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            here || m.subcommand().is_some_and(|(_, sub)| explicit(sub, id))
        }
        ExplicitSource { dir: explicit(m, "dir"), admin: explicit(m, "admin") }
    }
}

/// Where views come from.
#[derive(Debug)]
pub enum Source {
    Local(Journal),
    Remote(Remote),
}

/// A running daemon's admin endpoint.
#[derive(Debug)]
pub struct Remote {
    base: String,
    client: reqwest::Client,
}

impl Remote {
    pub fn new(url: &str) -> Result<Self, CliError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            CliError::Usage(format!("--admin {url:?} is not a URL: {e} (want e.g. http://127.0.0.1:9443)"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!("--admin {url:?} must be an http:// or https:// URL")));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CliError::Unreachable { url: url.to_owned(), detail: error_chain(&e) })?;
        Ok(Remote { base: url.trim_end_matches('/').to_owned(), client })
    }

    fn url(&self, name: &str) -> String {
        format!("{}/v1/journal/{name}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, CliError> {
        let resp =
            req.send().await.map_err(|e| CliError::Unreachable { url: url.to_owned(), detail: error_chain(&e) })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<crate::admin::ErrorBody>(&body).map(|b| b.error).unwrap_or(body);
        Err(CliError::Remote { url: url.to_owned(), status: status.as_u16(), message })
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder, url: &str) -> Result<T, CliError> {
        let resp = self.send(req.timeout(Duration::from_secs(120)), url).await?;
        let bytes =
            resp.bytes().await.map_err(|e| CliError::Unreachable { url: url.to_owned(), detail: error_chain(&e) })?;
        serde_json::from_slice(&bytes).map_err(|e| CliError::Decode { url: url.to_owned(), detail: e.to_string() })
    }

    async fn get<T: DeserializeOwned>(&self, name: &str, query: &[(&str, String)]) -> Result<T, CliError> {
        let url = self.url(name);
        self.json(self.client.get(&url).query(query), &url).await
    }
}

/// Opens a stopped journal for reading. Never creates one: a missing directory is an error.
pub fn open_local(dir: &Path) -> Result<Journal, CliError> {
    if !dir.is_dir() {
        return Err(CliError::NoJournal { dir: dir.to_path_buf() });
    }
    if !routewarden_store::is_journal(dir) {
        return Err(CliError::NotAJournal { dir: dir.to_path_buf() });
    }
    routewarden_migrations::open(dir, routewarden_migrations::OpenOptions::default(), Time::now())
        .map_err(|source| CliError::Open { dir: dir.to_path_buf(), source })
}

fn event_query(f: &EventFilter) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(a) = f.after {
        q.push(("after", a.to_string()));
    }
    if let Some(s) = f.since {
        q.push(("since", s.to_string()));
    }
    if let Some(l) = f.limit {
        q.push(("limit", l.to_string()));
    }
    q
}

impl Source {
    async fn summary(&self) -> Result<SummaryView, CliError> {
        match self {
            Source::Local(j) => view::summary(j).map_err(|e| read_err(j, e)),
            Source::Remote(r) => r.get("summary", &[]).await,
        }
    }

    async fn records(&self, zone: Option<&str>) -> Result<Vec<RecordView>, CliError> {
        match self {
            Source::Local(j) => view::records(j, zone).map_err(|e| read_err(j, e)),
            Source::Remote(r) => {
                let q: Vec<_> = zone.map(|z| ("zone", z.to_owned())).into_iter().collect();
                r.get("records", &q).await
            }
        }
    }

    async fn certs(&self) -> Result<CertsView, CliError> {
        match self {
            Source::Local(j) => view::certs(j).map_err(|e| read_err(j, e)),
            Source::Remote(r) => r.get("certs", &[]).await,
        }
    }

    async fn queue(&self, f: &QueueFilter) -> Result<Vec<WorkItemView>, CliError> {
        match self {
            Source::Local(j) => view::queue(j, f).map_err(|e| read_err(j, e)),
            Source::Remote(r) => {
                let mut q = Vec::new();
                if let Some(s) = &f.state {
                    q.push(("state", s.clone()));
                }
                if let Some(k) = &f.kind {
                    q.push(("kind", k.clone()));
                }
                r.get("queue", &q).await
            }
        }
    }

    async fn events(&self, f: &EventFilter) -> Result<Vec<EventView>, CliError> {
        match self {
            Source::Local(j) => view::events(j, f).map(|(e, _)| e).map_err(|e| read_err(j, e)),
            Source::Remote(r) => r.get("events", &event_query(f)).await,
        }
    }

    /// The per-zone verification report, as `routewarden journal stale` reads it (public for
    /// tools that show it next to their own output, such as the sandbox's demo).
    pub async fn stale(&self) -> Result<StaleView, CliError> {
        match self {
            Source::Local(j) => view::stale(j).map_err(|e| read_err(j, e)),
            Source::Remote(r) => r.get("stale", &[]).await,
        }
    }

    async fn compact(&self, now: Time) -> Result<CompactView, CliError> {
        match self {
            Source::Local(j) => view::compact(j, now).map_err(|e| read_err(j, e)),
            Source::Remote(r) => {
                let url = r.url("compact");
                r.json(r.client.post(&url), &url).await
            }
        }
    }
}

fn read_err(j: &Journal, source: routewarden_store::Error) -> CliError {
    CliError::Read { dir: j.dir().to_path_buf(), source }
}

/// Output sink that treats a closed pipe (`| head`) as the reader being done, not as a failure.
struct Out<W: Write> {
    w: W,
    closed: bool,
}

impl<W: Write> Out<W> {
    fn write(&mut self, s: &str) -> Result<(), CliError> {
        if self.closed {
            return Ok(());
        }
        match self.w.write_all(s.as_bytes()).and_then(|()| self.w.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(CliError::Output(e)),
        }
    }
}

/// Runs `routewarden journal …` and returns its exit code; errors go to stderr as one line.
pub fn main(args: JournalArgs, explicit: ExplicitSource) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("routewarden journal: failed to start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let mut out = Out { w: std::io::stdout().lock(), closed: false };
    match runtime.block_on(run(args, explicit, &mut out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routewarden journal: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run<W: Write>(args: JournalArgs, explicit: ExplicitSource, out: &mut Out<W>) -> Result<(), CliError> {
    let JournalArgs { output, dir, admin, command } = args;
    let admin = match (explicit.dir, explicit.admin) {
        (true, true) => return Err(CliError::Usage("--dir and --admin are alternatives: give one".into())),
        (true, false) => None,
        _ => admin,
    };
    if let (JournalCommand::Events(EventsArgs { follow: true, .. }), None) = (&command, &admin) {
        return Err(CliError::Usage(format!(
            "--follow needs a running daemon (--admin URL): no other process can be appending to a journal that --dir {} can open",
            dir.display()
        )));
    }
    let source = match &admin {
        Some(url) => Source::Remote(Remote::new(url)?),
        None => Source::Local(open_local(&dir)?),
    };
    let now = Time::now();
    let style = Style::detect(now);
    let result = execute(&source, command, output, &style, out).await;
    if let Source::Local(j) = source {
        let dir = j.dir().to_path_buf();
        j.close().map_err(|source| CliError::Read { dir, source })?;
    }
    result
}

fn structured<T: serde::Serialize>(v: &T, output: Output) -> Option<String> {
    match output {
        Output::Json => Some(render::json(v)),
        Output::Yaml => Some(render::yaml(v)),
        Output::Table => None,
    }
}

async fn execute<W: Write>(
    source: &Source,
    command: JournalCommand,
    output: Output,
    style: &Style,
    out: &mut Out<W>,
) -> Result<(), CliError> {
    let now = style.now;
    let text = match command {
        JournalCommand::Summary => {
            let v = source.summary().await?;
            structured(&v, output).unwrap_or_else(|| render::summary(&v, style))
        }
        JournalCommand::Records { zone } => {
            let v = source.records(zone.as_deref()).await?;
            structured(&v, output).unwrap_or_else(|| render::records(&v, style))
        }
        JournalCommand::Certs => {
            let v = source.certs().await?;
            structured(&v, output).unwrap_or_else(|| render::certs(&v, style))
        }
        JournalCommand::Queue { state, kind } => {
            let f = QueueFilter { state: state.map(|s| s.as_str().to_owned()), kind };
            let v = source.queue(&f).await?;
            structured(&v, output).unwrap_or_else(|| render::queue(&v, style))
        }
        JournalCommand::Events(a) => {
            let since = a
                .since
                .as_deref()
                .map(|s| view::parse_since(s, now.to_timestamp()))
                .transpose()
                .map_err(CliError::Usage)?;
            let filter = EventFilter { after: a.after, since, limit: a.limit };
            if a.follow {
                let Source::Remote(r) = source else {
                    return Err(CliError::Usage("--follow needs --admin".into()));
                };
                return follow(r, &filter, output, style, out).await;
            }
            let v = source.events(&filter).await?;
            structured(&v, output).unwrap_or_else(|| render::events(&v, style))
        }
        JournalCommand::Stale => {
            let v = source.stale().await?;
            structured(&v, output).unwrap_or_else(|| render::stale(&v, style))
        }
        JournalCommand::Compact => {
            let v = source.compact(now).await?;
            structured(&v, output).unwrap_or_else(|| render::compact(&v, style))
        }
        JournalCommand::Export => return export(source, now, out).await,
    };
    out.write(&text)
}

async fn export<W: Write>(source: &Source, now: Time, out: &mut Out<W>) -> Result<(), CliError> {
    match source {
        Source::Local(j) => {
            let mut failed = None;
            view::export(j, now, |line| {
                let mut s = render::json_line(&line);
                s.push('\n');
                match out.write(&s) {
                    Ok(()) => !out.closed,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })
            .map_err(|e| read_err(j, e))?;
            failed.map_or(Ok(()), Err)
        }
        Source::Remote(r) => {
            let url = r.url("export");
            let resp = r.send(r.client.get(&url), &url).await?;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| CliError::Unreachable { url: url.clone(), detail: error_chain(&e) })?;
                out.write(&String::from_utf8_lossy(&chunk))?;
                if out.closed {
                    break;
                }
            }
            Ok(())
        }
    }
}

/// Prints the selected events, then every event appended after, until the daemon closes the
/// stream (it shuts down) or the reader goes away.
async fn follow<W: Write>(
    r: &Remote,
    filter: &EventFilter,
    output: Output,
    style: &Style,
    out: &mut Out<W>,
) -> Result<(), CliError> {
    let url = r.url("events");
    let mut query = event_query(filter);
    query.push(("follow", "true".into()));
    let resp = r.send(r.client.get(&url).query(&query), &url).await?;
    if output == Output::Table {
        out.write(&render::event_header())?;
    }
    let mut body = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Unreachable { url: url.clone(), detail: error_chain(&e) })?;
        pending.extend_from_slice(&chunk);
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let line = &line[..line.len() - 1];
            if line.is_empty() {
                continue;
            }
            let event: EventView = serde_json::from_slice(line)
                .map_err(|e| CliError::Decode { url: url.clone(), detail: e.to_string() })?;
            let text = match output {
                Output::Table => render::event_line(&event, style),
                Output::Json => format!("{}\n", render::json_line(&event)),
                Output::Yaml => format!("---\n{}", render::yaml(&event)),
            };
            out.write(&text)?;
            if out.closed {
                return Ok(());
            }
        }
    }
    Ok(())
}
