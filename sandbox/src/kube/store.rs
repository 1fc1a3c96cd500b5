//! The object store: every object of every kind as JSON, a global monotonic resourceVersion, and
//! the event log that watches replay from. All writes go through one mutex, so each write is
//! atomic: it validates, stamps metadata (uid, resourceVersion, generation, creationTimestamp,
//! managedFields), stores the object, appends an event to the bounded log (older events are
//! compacted, which is what makes a watch from an old version 410) and broadcasts it to live
//! watches. Deletions honour finalizers and then wake the garbage collector, which the server runs
//! shortly after on its own task, as the real controllers do: ownerReferences (background,
//! foreground, orphan) and namespace cascading.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::apply;
use super::error::{ApiError, Cause};
use super::registry::{self, Registry, ResourceInfo};
use super::selectors::{FieldSelector, LabelSelector};
use super::validation;

/// A started watch: the events to send first, the live feed, and the version it starts at.
pub type Subscription = (Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>, u64);

/// One change, as watches deliver it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// Storage key of the kind (`group/plural`).
    pub key: String,
    /// Namespace of the object (`""` when cluster-scoped).
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub type_: &'static str,
    /// The object after the change (for DELETED, the last state with the new resourceVersion).
    pub object: Value,
    /// For MODIFIED, the labels before the change: a watch with a label selector turns a change
    /// into ADDED or DELETED when the object enters or leaves the selection, as the real server does.
    pub previous_labels: Option<Value>,
}

/// How a write is attributed and what it may touch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOptions {
    /// `fieldManager`, or one derived from the User-Agent.
    pub field_manager: String,
    /// `Some("status")` for writes to the status subresource.
    pub subresource: Option<String>,
    /// `dryRun=All`: validate and return the result without storing it.
    pub dry_run: bool,
    /// Set by server-side apply, which records managedFields itself.
    pub apply: bool,
    /// `fieldValidation`: `Strict` turns pruned unknown fields into a 400.
    pub field_validation: Option<String>,
}

/// DeleteOptions that matter here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The query parameters of a list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0 = no limit).
    pub limit: usize,
    /// `continue` token from a previous page.
    pub continue_token: Option<String>,
}

type Objects = BTreeMap<(String, String), Value>;

#[derive(Debug)]
struct State {
    registry: Registry,
    rv: u64,
    objects: HashMap<String, Objects>,
    uids: HashSet<String>,
    log: VecDeque<Arc<WatchEvent>>,
    compacted_rv: u64,
    window: usize,
    terminating_since: HashMap<String, tokio::time::Instant>,
    namespace_delay: std::time::Duration,
}

/// The store, shared by every request handler.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    gc_needed: tokio::sync::Notify,
}

/// The current time as the API server formats it (RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `metadata.name` or `""`.
pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("just made an object");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("just made an object")
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|o| o.get("uid").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default()
}

fn uid_of(obj: &Value) -> String {
    obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// The object without metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

const DNS1123_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const DNS1123_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

fn validate_name(info: &ResourceInfo, name: &str) -> Option<Cause> {
    if info.kind == "Namespace" {
        static LABEL: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let re = LABEL.get_or_init(|| regex::Regex::new(DNS1123_LABEL).expect("constant regex"));
        if !re.is_match(name) || name.len() > 63 {
            return Some(Cause::invalid(
                "metadata.name",
                &json!(name),
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ));
        }
        return None;
    }
    // RBAC names are path segments, not DNS names: the real server only forbids '/' and '%'.
    if info.group == "rbac.authorization.k8s.io" {
        return (name.contains('/') || name.contains('%') || name == "." || name == "..")
            .then(|| Cause::invalid("metadata.name", &json!(name), "may not contain '/' or '%'"));
    }
    static SUBDOMAIN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = SUBDOMAIN.get_or_init(|| regex::Regex::new(DNS1123_SUBDOMAIN).expect("constant regex"));
    if !re.is_match(name) || name.len() > 253 {
        return Some(Cause::invalid(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    None
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes.iter().take(5).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

impl State {
    fn objects(&mut self, key: &str) -> &mut Objects {
        self.objects.entry(key.to_string()).or_default()
    }

    fn emit(
        &mut self,
        tx: &broadcast::Sender<Arc<WatchEvent>>,
        info: &ResourceInfo,
        type_: &'static str,
        object: &Value,
        previous_labels: Option<Value>,
    ) {
        let event = Arc::new(WatchEvent {
            rv: self.rv,
            key: info.key(),
            namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string(),
            type_,
            object: object.clone(),
            previous_labels,
        });
        self.log.push_back(event.clone());
        while self.log.len() > self.window {
            if let Some(old) = self.log.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = tx.send(event);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `obj` (already stamped) as a new version and emits the event.
    fn put(
        &mut self,
        tx: &broadcast::Sender<Arc<WatchEvent>>,
        info: &ResourceInfo,
        ns: &str,
        mut obj: Value,
        type_: &'static str,
    ) -> Value {
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.uids.insert(uid_of(&obj));
        let previous = self.objects(&info.key()).insert((ns.to_string(), name_of(&obj).to_string()), obj.clone());
        let previous_labels = previous.map(|p| p.pointer("/metadata/labels").cloned().unwrap_or(Value::Null));
        self.emit(tx, info, type_, &obj, previous_labels);
        obj
    }

    /// Removes an object for good and emits DELETED.
    fn remove(
        &mut self,
        tx: &broadcast::Sender<Arc<WatchEvent>>,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Option<Value> {
        let mut obj = self.objects(&info.key()).remove(&(ns.to_string(), name.to_string()))?;
        self.uids.remove(&uid_of(&obj));
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.emit(tx, info, "DELETED", &obj, None);
        if info.kind == "CustomResourceDefinition"
            && info.group == "apiextensions.k8s.io"
            && let Ok(crd_info) = registry::from_crd(&obj)
        {
            let key = crd_info.key();
            let names: Vec<(String, String)> = self.objects(&key).keys().cloned().collect();
            for (ns, name) in names {
                self.remove(tx, &crd_info, &ns, &name);
            }
            self.registry.remove(&crd_info.group, &crd_info.plural);
        }
        Some(obj)
    }

    /// Deletes like a DELETE request would, without preconditions: finalizers turn it into a
    /// deletionTimestamp; namespaces always go through Terminating first.
    fn delete_object(
        &mut self,
        tx: &broadcast::Sender<Arc<WatchEvent>>,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        propagation: &str,
    ) -> Option<Value> {
        let existing = self.objects(&info.key()).get(&(ns.to_string(), name.to_string()))?.clone();
        if propagation == "Orphan" {
            self.orphan_dependents(tx, &uid_of(&existing));
        }
        let mut finals = finalizers(&existing);
        if propagation == "Foreground" && !finals.iter().any(|f| f == "foregroundDeletion") {
            finals.push("foregroundDeletion".into());
        }
        let namespace_kind = info.kind == "Namespace" && info.group.is_empty();
        if is_deleting(&existing) && !(propagation == "Foreground" && finals.len() != finalizers(&existing).len()) {
            return Some(existing);
        }
        if finals.is_empty() && !namespace_kind {
            return self.remove(tx, info, ns, name);
        }
        let mut obj = existing;
        let meta = meta_mut(&mut obj);
        if !meta.contains_key("deletionTimestamp") {
            meta.insert("deletionTimestamp".into(), json!(now()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        if !finals.is_empty() {
            meta.insert("finalizers".into(), json!(finals));
        }
        if namespace_kind {
            obj["status"] = json!({"phase": "Terminating"});
            self.terminating_since.entry(name.to_string()).or_insert_with(tokio::time::Instant::now);
        }
        Some(self.put(tx, info, ns, obj, "MODIFIED"))
    }

    fn orphan_dependents(&mut self, tx: &broadcast::Sender<Arc<WatchEvent>>, owner_uid: &str) {
        let mut changes = Vec::new();
        for (key, objects) in &self.objects {
            for ((ns, _), obj) in objects {
                if owner_uids(obj).iter().any(|u| u == owner_uid) {
                    let mut obj = obj.clone();
                    if let Some(refs) = obj.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                    }
                    changes.push((key.clone(), ns.clone(), obj));
                }
            }
        }
        for (key, ns, obj) in changes {
            if let Some(info) = self.registry.by_key(&key) {
                self.put(tx, &info, &ns, obj, "MODIFIED");
            }
        }
    }

    /// Runs the garbage collector and namespace controller until nothing changes.
    fn collect_garbage(&mut self, tx: &broadcast::Sender<Arc<WatchEvent>>) {
        for _round in 0..1000 {
            let mut actions: Vec<(String, String, String, &'static str)> = Vec::new();
            let mut dependents_of: HashMap<String, usize> = HashMap::new();
            for objects in self.objects.values() {
                for obj in objects.values() {
                    for uid in owner_uids(obj) {
                        *dependents_of.entry(uid).or_default() += 1;
                    }
                }
            }
            // The namespace controller starts on a namespace a moment after its deletion, as on a
            // real cluster (`kubectl delete -f` of a namespace and its contents relies on it).
            let now = tokio::time::Instant::now();
            let delay = self.namespace_delay;
            let terminating: HashSet<String> = self
                .objects
                .get("/namespaces")
                .map(|nss| {
                    nss.values()
                        .filter(|n| is_deleting(n))
                        .map(|n| name_of(n).to_string())
                        .filter(|n| self.terminating_since.get(n).is_none_or(|since| *since + delay <= now))
                        .collect()
                })
                .unwrap_or_default();
            let foreground: HashSet<String> = self
                .objects
                .values()
                .flat_map(|o| o.values())
                .filter(|o| is_deleting(o) && finalizers(o).iter().any(|f| f == "foregroundDeletion"))
                .map(uid_of)
                .collect();
            for (key, objects) in &self.objects {
                for ((ns, name), obj) in objects {
                    let owners = owner_uids(obj);
                    if !is_deleting(obj) {
                        let orphaned = !owners.is_empty() && owners.iter().all(|u| !self.uids.contains(u));
                        let owner_foreground = owners.iter().any(|u| foreground.contains(u));
                        if orphaned || owner_foreground || (!ns.is_empty() && terminating.contains(ns)) {
                            actions.push((key.clone(), ns.clone(), name.clone(), "delete"));
                        }
                    }
                    if is_deleting(obj)
                        && finalizers(obj).iter().any(|f| f == "foregroundDeletion")
                        && dependents_of.get(&uid_of(obj)).copied().unwrap_or(0) == 0
                    {
                        actions.push((key.clone(), ns.clone(), name.clone(), "release-foreground"));
                    }
                    if key == "/namespaces"
                        && is_deleting(obj)
                        && finalizers(obj).is_empty()
                        && terminating.contains(name)
                    {
                        let empty = self.objects.iter().all(|(_, objs)| objs.keys().all(|(o_ns, _)| o_ns != name));
                        if empty {
                            actions.push((key.clone(), ns.clone(), name.clone(), "remove"));
                        }
                    }
                }
            }
            if actions.is_empty() {
                return;
            }
            for (key, ns, name, action) in actions {
                let Some(info) = self.registry.by_key(&key) else { continue };
                match action {
                    "delete" => {
                        self.delete_object(tx, &info, &ns, &name, "Background");
                    }
                    "release-foreground" => {
                        let Some(mut obj) = self.objects(&key).get(&(ns.clone(), name.clone())).cloned() else {
                            continue;
                        };
                        let rest: Vec<String> =
                            finalizers(&obj).into_iter().filter(|f| f != "foregroundDeletion").collect();
                        if rest.is_empty() {
                            self.remove(tx, &info, &ns, &name);
                        } else {
                            meta_mut(&mut obj).insert("finalizers".into(), json!(rest));
                            self.put(tx, &info, &ns, obj, "MODIFIED");
                        }
                    }
                    _ => {
                        self.remove(tx, &info, &ns, &name);
                    }
                }
            }
        }
    }
}

impl Store {
    /// An empty store keeping `window` events for watches to resume from.
    pub fn new(window: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        let state = State {
            registry: Registry::new(),
            rv: 0,
            objects: HashMap::new(),
            uids: HashSet::new(),
            log: VecDeque::new(),
            compacted_rv: 0,
            window: window.max(1),
            terminating_since: HashMap::new(),
            namespace_delay: std::time::Duration::ZERO,
        };
        Self { state: Mutex::new(state), tx, gc_needed: tokio::sync::Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half-written state (writes are single
        // inserts), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every object and the current resourceVersion, for persistence.
    pub fn snapshot(&self) -> Value {
        let state = self.lock();
        let mut kinds = Map::new();
        for (key, objects) in &state.objects {
            if !objects.is_empty() {
                kinds.insert(key.clone(), Value::Array(objects.values().cloned().collect()));
            }
        }
        json!({"resourceVersion": state.rv, "objects": kinds})
    }

    /// Replaces the contents with a [`Self::snapshot`]: CRDs are registered first, then every
    /// object is put back as it was, with its resourceVersion. The event log starts empty, so
    /// watches from before the restart get 410 and re-list, as after an etcd compaction.
    pub fn restore(&self, snapshot: &Value) -> Result<(), String> {
        let mut state = self.lock();
        let objects = snapshot.get("objects").and_then(Value::as_object).ok_or("the state file has no objects")?;
        if let Some(crds) = objects.get("apiextensions.k8s.io/customresourcedefinitions").and_then(Value::as_array) {
            for crd in crds {
                state.registry.upsert(registry::from_crd(crd)?);
            }
        }
        for (key, items) in objects {
            for obj in items.as_array().cloned().unwrap_or_default() {
                let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
                state.uids.insert(uid_of(&obj));
                state.objects(key).insert((ns, name_of(&obj).to_string()), obj);
            }
        }
        let rv = snapshot.get("resourceVersion").and_then(Value::as_u64).unwrap_or(0);
        state.rv = rv;
        state.compacted_rv = rv;
        state.log.clear();
        Ok(())
    }

    /// A live feed of every change (for in-process controllers).
    pub fn events(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }

    /// Runs the garbage collector and namespace controller once, to completion.
    pub fn collect_garbage(&self) {
        let mut state = self.lock();
        state.collect_garbage(&self.tx);
    }

    /// Sets how long after its deletion a namespace's contents start being deleted.
    pub fn set_namespace_delay(&self, delay: std::time::Duration) {
        self.lock().namespace_delay = delay;
    }

    /// Whether some namespace is terminating (the collector then keeps running).
    pub fn namespaces_terminating(&self) -> bool {
        let mut state = self.lock();
        let names: Vec<String> =
            state.objects("/namespaces").values().filter(|n| is_deleting(n)).map(|n| name_of(n).to_string()).collect();
        state.terminating_since.retain(|n, _| names.contains(n));
        !names.is_empty()
    }

    /// Resolves when a deletion may have left garbage (dependents, namespace contents).
    pub async fn garbage_pending(&self) {
        self.gc_needed.notified().await;
    }

    /// A snapshot of the registry.
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// The newest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Forgets every event up to now, so any watch from an older version gets 410.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.compacted_rv = state.rv;
        state.log.clear();
    }

    /// Reads one object.
    pub fn get(&self, info: &ResourceInfo, ns: &str, name: &str) -> Result<Value, ApiError> {
        let mut state = self.lock();
        state
            .objects(&info.key())
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.plural, &info.group, name))
    }

    /// Lists objects (all namespaces when `ns` is None) as a `{Kind}List`.
    /// The (namespace, name) of every object of a resource, without copying the objects: for
    /// controllers that only need to know what exists (a Secret's data can be large).
    pub fn keys(&self, info: &ResourceInfo) -> Vec<(String, String)> {
        let mut state = self.lock();
        state.objects(&info.key()).keys().cloned().collect()
    }

    pub fn list(&self, info: &ResourceInfo, ns: Option<&str>, query: &ListQuery) -> Result<Value, ApiError> {
        let start_after = match &query.continue_token {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let mut state = self.lock();
        let rv = state.rv;
        let objects = state.objects(&info.key());
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0usize;
        for ((o_ns, o_name), obj) in objects.iter() {
            if let Some(ns) = ns
                && o_ns != ns
            {
                continue;
            }
            if let Some((a_ns, a_name)) = &start_after
                && (o_ns, o_name) <= (a_ns, a_name)
            {
                continue;
            }
            if !query.labels.matches(obj) || !query.fields.matches(obj) {
                continue;
            }
            if query.limit > 0 && items.len() == query.limit {
                remaining += 1;
                continue;
            }
            if query.limit > 0 && items.len() + 1 == query.limit {
                next = Some((o_ns.clone(), o_name.clone()));
            }
            items.push(obj.clone());
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if remaining > 0
            && let Some((n_ns, n_name)) = next
        {
            metadata["continue"] = json!(encode_continue(&n_ns, &n_name, rv));
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(
            json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": metadata, "items": items}),
        )
    }

    /// Creates an object.
    pub fn create(&self, info: &ResourceInfo, ns: &str, obj: Value, opts: &WriteOptions) -> Result<Value, ApiError> {
        let mut state = self.lock();
        self.create_locked(&mut state, info, ns, obj, opts)
    }

    fn create_locked(
        &self,
        state: &mut State,
        info: &ResourceInfo,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the object provided is not a JSON object"));
        }
        obj["apiVersion"] = json!(info.api_version());
        obj["kind"] = json!(info.kind);
        let meta = meta_mut(&mut obj);
        let mut name = meta.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if name.is_empty()
            && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
        {
            name = format!("{prefix}{}", random_suffix());
            meta.insert("name".into(), json!(name));
        }
        if name.is_empty() {
            return Err(ApiError::invalid(
                &info.kind,
                &info.group,
                "",
                vec![Cause::required("metadata.name", "name or generateName is required")],
            ));
        }
        if let Some(cause) = validate_name(info, &name) {
            return Err(ApiError::invalid(&info.kind, &info.group, &name, vec![cause]));
        }
        if info.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
            let namespace = state.objects("/namespaces").get(&(String::new(), ns.to_string())).cloned();
            match namespace {
                None => return Err(ApiError::not_found("namespaces", "", ns)),
                Some(n) if is_deleting(&n) => {
                    return Err(ApiError::forbidden(
                        &info.plural,
                        &info.group,
                        &name,
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            super::error::qualified(&info.plural, &info.group)
                        ),
                    ));
                }
                Some(_) => {}
            }
        } else {
            meta.remove("namespace");
        }
        if state.objects(&info.key()).contains_key(&(ns.to_string(), name.clone())) {
            return Err(ApiError::already_exists(&info.plural, &info.group, &name));
        }
        let meta = meta_mut(&mut obj);
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("resourceVersion");
        meta.remove("selfLink");
        if info.has_generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if info.status_subresource
            && !(info.kind == "Namespace" && info.group.is_empty())
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        defaults_for_builtin(info, &mut obj);
        validate(info, &mut obj, None, opts)?;
        if !opts.apply {
            apply::record_update(None, &mut obj, &opts.field_manager, opts.subresource.as_deref(), &info.api_version());
        }
        if info.group == "apiextensions.k8s.io" && info.kind == "CustomResourceDefinition" {
            establish_crd(state, &mut obj)?;
        }
        if opts.dry_run {
            return Ok(obj);
        }
        Ok(state.put(&self.tx, info, ns, obj, "ADDED"))
    }

    /// Read-modify-write of one object under the store lock: `f` gets the current object (None if
    /// absent) and returns the desired object; a desired object for an absent one creates it only
    /// when `create_if_missing`. Handles status-subresource separation, resourceVersion conflicts,
    /// generation, no-op detection, managedFields and finalizer-driven deletion.
    pub fn write<F>(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &WriteOptions,
        create_if_missing: bool,
        f: F,
    ) -> Result<(Value, bool), ApiError>
    where
        F: FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    {
        let mut state = self.lock();
        let existing = state.objects(&info.key()).get(&(ns.to_string(), name.to_string())).cloned();
        let Some(old) = existing else {
            let desired = f(None)?;
            if !create_if_missing {
                return Err(ApiError::not_found(&info.plural, &info.group, name));
            }
            let created = self.create_locked(&mut state, info, ns, desired, opts)?;
            return Ok((created, true));
        };
        let mut new = f(Some(&old))?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the object provided is not a JSON object"));
        }
        let body_name = name_of(&new).to_string();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if info.namespaced
            && let Some(body_ns) = new.pointer("/metadata/namespace").and_then(Value::as_str)
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let requested_rv = new.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let current_rv = old.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
        if !requested_rv.is_empty() && requested_rv != current_rv {
            return Err(ApiError::conflict(&info.plural, &info.group, name));
        }
        let status_write = opts.subresource.as_deref() == Some("status");
        if status_write {
            // Only status (and metadata labels/annotations... kept from old) changes on /status.
            let status = new.get("status").cloned();
            let managed = new.pointer("/metadata/managedFields").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            if let Some(managed) = managed {
                meta_mut(&mut new).insert("managedFields".into(), managed);
            }
        } else if info.status_subresource {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        new["apiVersion"] = json!(info.api_version());
        new["kind"] = json!(info.kind);
        {
            let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
            let meta = meta_mut(&mut new);
            for field in
                ["name", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"]
            {
                match old_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            if info.namespaced {
                meta.insert("namespace".into(), json!(ns));
            }
            meta.insert("resourceVersion".into(), json!(current_rv));
        }
        if is_deleting(&old) {
            let old_finals: HashSet<String> = finalizers(&old).into_iter().collect();
            if let Some(added) = finalizers(&new).into_iter().find(|f| !old_finals.contains(f)) {
                return Err(ApiError::invalid(
                    &info.kind,
                    &info.group,
                    name,
                    vec![Cause {
                        reason: "FieldValueForbidden",
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{added}\"}}"
                        ),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        if !status_write {
            defaults_for_builtin(info, &mut new);
        }
        validate(info, &mut new, Some(&old), opts)?;
        if info.has_generation && spec_part(&new) != spec_part(&old) {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if !opts.apply {
            apply::record_update(
                Some(&old),
                &mut new,
                &opts.field_manager,
                opts.subresource.as_deref(),
                &info.api_version(),
            );
        }
        if info.group == "apiextensions.k8s.io" && info.kind == "CustomResourceDefinition" && !status_write {
            establish_crd(&mut state, &mut new)?;
        }
        if without_time_of_managed(&new) == without_time_of_managed(&old) {
            return Ok((old, false));
        }
        if opts.dry_run {
            return Ok((new, false));
        }
        if is_deleting(&new) && finalizers(&new).is_empty() && !(info.kind == "Namespace" && info.group.is_empty()) {
            state.objects(&info.key()).insert((ns.to_string(), name.to_string()), new);
            let removed = state.remove(&self.tx, info, ns, name);
            self.gc_needed.notify_one();
            return removed.map(|r| (r, false)).ok_or_else(|| ApiError::not_found(&info.plural, &info.group, name));
        }
        let stored = state.put(&self.tx, info, ns, new, "MODIFIED");
        if is_deleting(&stored) {
            self.gc_needed.notify_one();
        }
        Ok((stored, false))
    }

    /// Deletes one object (DELETE on an item).
    pub fn delete(&self, info: &ResourceInfo, ns: &str, name: &str, opts: &DeleteOptions) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let existing = state
            .objects(&info.key())
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.plural, &info.group, name))?;
        if let Some(uid) = &opts.uid
            && *uid != uid_of(&existing)
        {
            return Err(ApiError {
                code: 409,
                reason: "Conflict",
                message: format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    super::error::qualified(&info.plural, &info.group),
                    uid_of(&existing)
                ),
                details: Some(json!({"name": name, "group": info.group, "kind": info.plural})),
            });
        }
        if let Some(rv) = &opts.resource_version
            && Some(rv.as_str()) != existing.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        {
            return Err(ApiError::conflict(&info.plural, &info.group, name));
        }
        if opts.dry_run {
            return Ok(existing);
        }
        let propagation = opts.propagation.clone().unwrap_or_else(|| "Background".into());
        let result = state
            .delete_object(&self.tx, info, ns, name, &propagation)
            .ok_or_else(|| ApiError::not_found(&info.plural, &info.group, name))?;
        self.gc_needed.notify_one();
        Ok(result)
    }

    /// Deletes every object matching the query in `ns` (DELETE on a collection).
    pub fn delete_collection(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        query: &ListQuery,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let list = self.list(info, ns, &ListQuery { limit: 0, continue_token: None, ..query.clone() })?;
        let mut deleted = Vec::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let item_ns = item.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
            if let Ok(obj) = self.delete(info, item_ns, name_of(&item), opts) {
                deleted.push(obj);
            }
        }
        Ok(
            json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": {"resourceVersion": self.current_rv().to_string()}, "items": deleted}),
        )
    }

    /// Starts a watch: the events to send first, a receiver for live events, and the version
    /// the stream starts at. `from` None/0 sends the current objects as ADDED first.
    pub fn subscribe(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> Result<Subscription, ApiError> {
        let mut state = self.lock();
        let rx = self.tx.subscribe();
        let key = info.key();
        let in_scope = |obj_ns: &str| ns.is_none_or(|n| n == obj_ns);
        let start = state.rv;
        let initial = match from {
            None | Some(0) => state
                .objects(&key)
                .iter()
                .filter(|((o_ns, _), _)| in_scope(o_ns))
                .map(|((o_ns, _), obj)| {
                    let rv = obj
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(start);
                    Arc::new(WatchEvent {
                        rv,
                        key: key.clone(),
                        namespace: o_ns.clone(),
                        type_: "ADDED",
                        object: obj.clone(),
                        previous_labels: None,
                    })
                })
                .collect(),
            Some(rv) if rv < state.compacted_rv => return Err(ApiError::expired(rv, state.compacted_rv + 1)),
            Some(rv) => {
                state.log.iter().filter(|e| e.rv > rv && e.key == key && in_scope(&e.namespace)).cloned().collect()
            }
        };
        Ok((initial, rx, start))
    }

    /// Creates or replaces an object as the server itself (CRDs given at start, which must follow
    /// their source on every start).
    pub fn install_or_update(&self, api_version: &str, kind: &str, obj: Value) -> Result<Value, ApiError> {
        let info = self.registry().by_kind(api_version, kind).ok_or_else(ApiError::no_route)?;
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let name = name_of(&obj).to_string();
        let opts = WriteOptions { field_manager: "routewarden-sandbox".into(), ..WriteOptions::default() };
        self.write(&info, &ns, &name, &opts, true, move |_| Ok(obj)).map(|(v, _)| v)
    }

    /// Installs an object as the server itself unless it exists: used at start for the default
    /// namespaces, CRDs, the GatewayClass and the IngressClass.
    pub fn install(&self, api_version: &str, kind: &str, obj: Value) -> Result<Value, ApiError> {
        let info = self.registry().by_kind(api_version, kind).ok_or_else(ApiError::no_route)?;
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let name = name_of(&obj).to_string();
        // A restored sandbox keeps what users did to the objects it installs.
        if let Ok(existing) = self.get(&info, &ns, &name) {
            return Ok(existing);
        }
        let opts = WriteOptions { field_manager: "routewarden-sandbox".into(), ..WriteOptions::default() };
        self.write(&info, &ns, &name, &opts, true, move |_| Ok(obj)).map(|(v, _)| v)
    }
}

/// managedFields carry a timestamp that changes on every write; a no-op write must not count.
fn without_time_of_managed(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(managed) = v.pointer_mut("/metadata/managedFields").and_then(Value::as_array_mut) {
        for entry in managed {
            if let Some(m) = entry.as_object_mut() {
                m.remove("time");
            }
        }
    }
    v
}

fn defaults_for_builtin(info: &ResourceInfo, obj: &mut Value) {
    match (info.group.as_str(), info.kind.as_str()) {
        ("", "Namespace") => {
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
            let name = name_of(obj).to_string();
            let meta = meta_mut(obj);
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if labels.is_object() {
                labels["kubernetes.io/metadata.name"] = json!(name);
            }
        }
        ("", "Service") if obj.get("spec").is_some_and(Value::is_object) && obj.pointer("/spec/type").is_none() => {
            obj["spec"]["type"] = json!("ClusterIP");
        }
        ("", "Secret") => {
            if obj.get("type").is_none() {
                obj["type"] = json!("Opaque");
            }
            // stringData is write-only: the API server folds it into data, where it wins over a
            // key of the same name, and never stores it.
            if let Some(Value::Object(string_data)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
                let data = obj.as_object_mut().map(|m| m.entry("data").or_insert_with(|| json!({})));
                if let Some(Value::Object(data)) = data {
                    for (key, value) in string_data {
                        let text = value.as_str().unwrap_or_default();
                        data.insert(key, json!(base64::engine::general_purpose::STANDARD.encode(text)));
                    }
                }
            }
        }
        ("apps", "Deployment")
            if obj.pointer("/spec/replicas").is_none() && obj.get("spec").is_some_and(Value::is_object) =>
        {
            obj["spec"]["replicas"] = json!(1);
        }
        _ => {}
    }
}

fn validate(info: &ResourceInfo, obj: &mut Value, old: Option<&Value>, opts: &WriteOptions) -> Result<(), ApiError> {
    if let Some(schema) = &info.schema {
        let (causes, pruned) = validation::validate_and_prune(schema, obj, old);
        if !pruned.is_empty() && opts.field_validation.as_deref() == Some("Strict") {
            let fields: Vec<String> = pruned.iter().map(|p| format!("unknown field \"{p}\"")).collect();
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                fields.join(", "),
                kind = info.kind,
                version = info.version
            )));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(&info.kind, &info.group, name_of(obj), causes));
        }
    }
    Ok(())
}

/// Marks a CRD Established and registers (or re-registers) its kind.
fn establish_crd(state: &mut State, crd: &mut Value) -> Result<(), ApiError> {
    let info = registry::from_crd(crd).map_err(|e| {
        let (field, detail) = e.split_once(": ").unwrap_or(("spec", e.as_str()));
        ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            name_of(crd),
            vec![Cause { reason: "FieldValueInvalid", message: detail.to_string(), field: field.to_string() }],
        )
    })?;
    let expected = format!("{}.{}", info.plural, info.group);
    if name_of(crd) != expected {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            name_of(crd),
            vec![Cause::invalid("metadata.name", &json!(name_of(crd)), "must be spec.names.plural+\".\"+spec.group")],
        ));
    }
    let when = now();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": [info.version.clone()],
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": when},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": when},
        ],
    });
    state.registry.upsert(info);
    Ok(())
}

fn encode_continue(ns: &str, name: &str, rv: u64) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}")}).to_string();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}
