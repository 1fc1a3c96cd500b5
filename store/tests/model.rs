//! Model-based test: random operations run against the journal and against a plain `BTreeMap`
//! model side by side, with random close-and-reopen steps. After every step, every observable —
//! return values and the full contents of every table — must agree. The model is the
//! specification of the queue's semantics in a few dozen lines.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;
use proptest::prelude::*;
use routewarden_store::*;
use std::collections::BTreeMap;
use std::time::Duration;

const LEASE_MS: i64 = 1_000;
const MAX_ATTEMPTS: u32 = 3;

#[derive(Clone, Debug)]
enum Op {
    PutDesired(u8, u8),
    DeleteDesired(u8),
    /// Enqueue key, payload, due this many ms from now.
    Enqueue(u8, u8, u16),
    Claim(u8),
    Complete(u8),
    Retry(u8, u16),
    Park(u8),
    /// Complete an item, record its applied state and append an event, in one commit.
    ApplyAndComplete(u8),
    AppendEvent(u8),
    Forget(u8),
    Advance(u16),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6u8, 0..4u8).prop_map(|(k, v)| Op::PutDesired(k, v)),
        1 => (0..6u8).prop_map(Op::DeleteDesired),
        4 => (0..6u8, 0..3u8, prop_oneof![Just(0u16), 0..3000u16]).prop_map(|(k, v, d)| Op::Enqueue(k, v, d)),
        3 => (1..4u8).prop_map(Op::Claim),
        2 => any::<u8>().prop_map(Op::Complete),
        2 => (any::<u8>(), 0..3000u16).prop_map(|(l, d)| Op::Retry(l, d)),
        1 => any::<u8>().prop_map(Op::Park),
        2 => any::<u8>().prop_map(Op::ApplyAndComplete),
        1 => any::<u8>().prop_map(Op::AppendEvent),
        1 => (0..6u8).prop_map(Op::Forget),
        2 => (0..2500u16).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct MItem {
    id: u64,
    payload: Vec<u8>,
    state: ItemState,
    attempts: u32,
    next_at: i64,
    token: u64,
    rerun: bool,
}

#[derive(Default, Debug)]
struct Model {
    now: i64,
    desired: BTreeMap<String, String>,
    applied: BTreeMap<String, String>,
    items: BTreeMap<String, MItem>,
    events: Vec<(u64, String, String)>,
    next_id: u64,
    next_seq: u64,
}

fn key_name(k: u8) -> String {
    format!("k{k}")
}

impl Model {
    fn event(&mut self, action: &str, subject: String) {
        self.next_seq += 1;
        self.events.push((self.next_seq, action.into(), subject));
    }

    fn schedule(item: &mut MItem, state: ItemState, at: i64) {
        item.state = state;
        item.next_at = at;
    }

    fn park(&mut self, key: &str) {
        let item = self.items.get_mut(key).unwrap();
        item.rerun = false;
        let now = self.now;
        Self::schedule(item, ItemState::Parked, now);
        self.event("item.parked", format!("test/{key}"));
    }

    fn enqueue(&mut self, key: &str, payload: Vec<u8>, due: i64) -> Enqueued {
        match self.items.get_mut(key) {
            None => {
                self.next_id += 1;
                let id = self.next_id;
                self.items.insert(
                    key.into(),
                    MItem { id, payload, state: ItemState::Pending, attempts: 0, next_at: due, token: 0, rerun: false },
                );
                Enqueued::Created(id)
            }
            Some(i) if i.payload == payload => Enqueued::Unchanged(i.id),
            Some(i) => {
                i.payload = payload;
                if i.state == ItemState::InFlight {
                    i.rerun = true;
                } else {
                    i.attempts = 0;
                    Self::schedule(i, ItemState::Pending, due);
                }
                Enqueued::Updated(i.id)
            }
        }
    }

    fn claim(&mut self, max: usize) -> Vec<(String, Lease)> {
        let now = self.now;
        let mut due: Vec<(i64, u64, String)> = self
            .items
            .iter()
            .filter(|(_, i)| matches!(i.state, ItemState::Pending | ItemState::InFlight) && i.next_at <= now)
            .map(|(k, i)| (i.next_at, i.id, k.clone()))
            .collect();
        due.sort();
        let mut out = Vec::new();
        for (_, _, key) in due.into_iter().take(max) {
            let item = self.items.get_mut(&key).unwrap();
            if item.state == ItemState::InFlight {
                item.attempts += 1;
                if item.attempts >= MAX_ATTEMPTS {
                    self.park(&key);
                    continue;
                }
            }
            let item = self.items.get_mut(&key).unwrap();
            item.token += 1;
            Self::schedule(item, ItemState::InFlight, now + LEASE_MS);
            out.push((key, Lease { id: item.id, token: item.token }));
        }
        out
    }

    /// Returns the key if the lease is still held.
    fn leased(&self, lease: Lease) -> Option<String> {
        self.items
            .iter()
            .find(|(_, i)| i.id == lease.id && i.state == ItemState::InFlight && i.token == lease.token)
            .map(|(k, _)| k.clone())
    }

    fn complete(&mut self, key: &str) -> ItemState {
        let now = self.now;
        let item = self.items.get_mut(key).unwrap();
        if item.rerun {
            item.rerun = false;
            item.attempts = 0;
            Self::schedule(item, ItemState::Pending, now);
        } else {
            Self::schedule(item, ItemState::Done, now);
        }
        item.state
    }

    fn retry(&mut self, key: &str, at: i64) -> Retried {
        let now = self.now;
        let item = self.items.get_mut(key).unwrap();
        item.attempts += 1;
        if item.rerun {
            item.rerun = false;
            item.attempts = 0;
            Self::schedule(item, ItemState::Pending, now);
            return Retried::Scheduled(t(now));
        }
        if item.attempts >= MAX_ATTEMPTS {
            self.park(key);
            return Retried::Parked;
        }
        Self::schedule(item, ItemState::Pending, at);
        Retried::Scheduled(t(at))
    }
}

fn options() -> Options {
    Options { max_attempts: MAX_ATTEMPTS, event_max_entries: 1_000_000, ..Options::default() }
}

fn check(j: &Journal, m: &Model) -> Result<(), TestCaseError> {
    let desired: BTreeMap<String, String> =
        j.desired_records(None).unwrap().into_iter().map(|(k, v)| (k.name, v.targets[0].clone())).collect();
    prop_assert_eq!(&desired, &m.desired);
    let applied: BTreeMap<String, String> =
        j.applied_records(None).unwrap().into_iter().map(|(k, v)| (k.name, v.targets[0].clone())).collect();
    prop_assert_eq!(&applied, &m.applied);
    let items: BTreeMap<String, MItem> = j
        .work_items()
        .unwrap()
        .into_iter()
        .map(|i| {
            let m = MItem {
                id: i.id,
                payload: i.payload,
                state: i.state,
                attempts: i.attempts,
                next_at: i.next_attempt_at.as_millis(),
                token: i.lease_token,
                rerun: i.rerun,
            };
            (i.key, m)
        })
        .collect();
    prop_assert_eq!(&items, &m.items);
    let events: Vec<(u64, String, String)> =
        j.events_after(0, usize::MAX).unwrap().into_iter().map(|e| (e.seq, e.action, e.subject)).collect();
    prop_assert_eq!(&events, &m.events);
    // The due index agrees with the items: the soonest due item is the model's.
    let soonest = m
        .items
        .values()
        .filter(|i| matches!(i.state, ItemState::Pending | ItemState::InFlight))
        .min_by_key(|i| (i.next_at, i.id))
        .map(|i| i.id);
    prop_assert_eq!(j.next_due().unwrap().map(|i| i.id), soonest);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Some(open_with(dir.path(), options()));
    let mut m = Model::default();
    let mut leases: Vec<Lease> = Vec::new();
    let pick = |leases: &Vec<Lease>, i: u8| (!leases.is_empty()).then(|| leases[i as usize % leases.len()]);
    for op in ops {
        let jj = j.as_ref().unwrap();
        let now = t(m.now);
        match op {
            Op::PutDesired(k, v) => {
                let (name, ip) = (key_name(k), format!("10.0.0.{v}"));
                jj.commit(|tx| tx.put_desired_record(&rs("z", &name), &desired(&ip))).unwrap();
                m.desired.insert(name, ip);
            }
            Op::DeleteDesired(k) => {
                let existed = jj.commit(|tx| tx.delete_desired_record(&rs("z", &key_name(k)))).unwrap();
                prop_assert_eq!(existed, m.desired.remove(&key_name(k)).is_some());
            }
            Op::Enqueue(k, v, d) => {
                let due = m.now + i64::from(d);
                let got = jj.commit(|tx| tx.enqueue_at("test", &key_name(k), &[v], t(due), now)).unwrap();
                prop_assert_eq!(got, m.enqueue(&key_name(k), vec![v], due));
            }
            Op::Claim(n) => {
                let got: Vec<(String, Lease)> = jj
                    .claim(now, n as usize, Duration::from_millis(LEASE_MS as u64))
                    .unwrap()
                    .into_iter()
                    .map(|c| (c.item.key, c.lease))
                    .collect();
                prop_assert_eq!(&got, &m.claim(n as usize));
                leases.extend(got.into_iter().map(|(_, l)| l));
            }
            Op::Complete(i) | Op::Park(i) | Op::Retry(i, _) | Op::ApplyAndComplete(i) => {
                let Some(lease) = pick(&leases, i) else { continue };
                let held = m.leased(lease);
                let result: Result<String, Error> = match &op {
                    Op::Complete(_) => jj.commit(|tx| tx.complete(lease, now)).map(|s| s.to_string()),
                    Op::Park(_) => jj.commit(|tx| tx.park(lease, "terminal", now)).map(|()| "parked".into()),
                    Op::Retry(_, d) => jj
                        .commit(|tx| tx.retry(lease, t(m.now + i64::from(*d)), "transient", now))
                        .map(|r| format!("{r:?}")),
                    _ => jj.commit(|tx| {
                        let state = tx.complete(lease, now)?;
                        let item = tx.work_item(lease.id)?.unwrap();
                        let applied = AppliedRecordSet {
                            etag: "e".into(),
                            owner: "o".into(),
                            ttl: 300,
                            targets: vec![format!("p{}", item.payload[0])],
                            applied_at: now,
                        };
                        tx.put_applied_record(&rs("z", &item.key), &applied)?;
                        tx.append_event(NewEvent::new(now, "record.applied", item.key.clone(), "ok"))?;
                        Ok(state.to_string())
                    }),
                };
                match held {
                    None => prop_assert!(
                        matches!(result, Err(Error::LeaseLost { .. } | Error::ItemNotFound { .. })),
                        "{result:?}"
                    ),
                    Some(key) => {
                        let expected = match &op {
                            Op::Complete(_) => m.complete(&key).to_string(),
                            Op::Park(_) => {
                                m.items.get_mut(&key).unwrap().attempts += 1;
                                m.park(&key);
                                "parked".into()
                            }
                            Op::Retry(_, d) => format!("{:?}", m.retry(&key, m.now + i64::from(*d))),
                            _ => {
                                let payload = m.items[&key].payload[0];
                                let s = m.complete(&key).to_string();
                                m.applied.insert(key.clone(), format!("p{payload}"));
                                m.event("record.applied", key.clone());
                                s
                            }
                        };
                        prop_assert_eq!(result.unwrap(), expected);
                    }
                }
            }
            Op::AppendEvent(v) => {
                let seq = jj.commit(|tx| tx.append_event(NewEvent::new(now, "note", format!("s{v}"), "m"))).unwrap();
                m.event("note", format!("s{v}"));
                prop_assert_eq!(seq, m.next_seq);
            }
            Op::Forget(k) => {
                let got = jj.commit(|tx| tx.forget("test", &key_name(k))).unwrap();
                prop_assert_eq!(got, m.items.remove(&key_name(k)).is_some());
            }
            Op::Advance(ms) => m.now += i64::from(ms),
            Op::Reopen => {
                j.take().unwrap().close().unwrap();
                j = Some(open_with(dir.path(), options()));
            }
        }
        check(j.as_ref().unwrap(), &m)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_journal_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
