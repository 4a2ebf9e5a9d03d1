//! The executor's bookkeeping, apart from any I/O: which changes are ready, which wait and
//! for how many dependencies, which serialization key is held, and the cascade of skips
//! after a failure.
//!
//! Changes are numbered once (by id order) and everything after that works on those
//! numbers: a count of unfinished dependencies per change, the list of its dependents, one
//! ready queue per provider and one waiting queue per serialization key. Finishing a
//! change touches only its dependents and its key, so scheduling costs O(1) amortized per
//! change plus O(1) per dependency edge, however many changes there are. [`Schedule::ops`]
//! counts that work so a test can hold it to a linear bound.

use std::collections::{BTreeMap, HashMap, VecDeque};

use wid_core::{Change, ChangeKind, ResourceId};

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Some dependency has not finished.
    Waiting,
    /// In its provider's ready queue or its key's queue.
    Queued,
    /// Started.
    Running,
    /// Applied.
    Done,
    /// Failed, or skipped because a dependency did not happen.
    Bad,
}

#[derive(Debug, Default)]
struct Key {
    /// The change that holds the key (running, or queued to run next).
    holder: Option<usize>,
    /// Changes that became ready while the key was held, in that order.
    waiting: VecDeque<usize>,
}

/// The dependency graph of the actionable changes and the state of each.
#[derive(Debug)]
pub(super) struct Schedule<'a> {
    changes: Vec<&'a Change>,
    /// Each change's provider, as an index into [`Self::providers`].
    provider: Vec<usize>,
    providers: Vec<String>,
    /// Each change's serialization key, as an index into `keys`.
    key: Vec<Option<usize>>,
    keys: Vec<Key>,
    /// Unfinished dependencies per change.
    waits: Vec<u32>,
    dependents: Vec<Vec<usize>>,
    state: Vec<State>,
    ready: Vec<VecDeque<usize>>,
    index: HashMap<&'a ResourceId, usize>,
    finished: usize,
    ops: u64,
}

impl<'a> Schedule<'a> {
    /// The schedule of every create, update and delete in `changes` (no-ops and conflicts
    /// are not run). Creates and updates wait for the creates and updates of what they
    /// depend on; a delete waits for the deletes of everything that depends on it (the
    /// reverse order).
    pub(super) fn new(changes: &'a [Change]) -> Self {
        let mut actionable: Vec<&Change> = changes
            .iter()
            .filter(|c| {
                matches!(
                    c.kind,
                    ChangeKind::Create | ChangeKind::Update | ChangeKind::Delete
                )
            })
            .collect();
        actionable.sort_by(|a, b| a.id.cmp(&b.id));
        actionable.dedup_by(|a, b| a.id == b.id);
        let n = actionable.len();
        let index: HashMap<&ResourceId, usize> = actionable
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.id, i))
            .collect();
        let mut providers: Vec<String> = Vec::new();
        let mut provider_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut key_index: HashMap<&str, usize> = HashMap::new();
        let mut provider = Vec::with_capacity(n);
        let mut key = Vec::with_capacity(n);
        for c in &actionable {
            let p = *provider_index.entry(c.id.provider()).or_insert_with(|| {
                providers.push(c.id.provider().to_owned());
                providers.len() - 1
            });
            provider.push(p);
            let k = c.serialize_key().map(|k| {
                let next = key_index.len();
                *key_index.entry(k).or_insert(next)
            });
            key.push(k);
        }
        let mut waits = vec![0u32; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut ops = 0;
        for (i, c) in actionable.iter().enumerate() {
            for dep in c.depends_on() {
                ops += 1;
                let Some(&d) = index.get(dep) else { continue };
                let deleting = (
                    c.kind == ChangeKind::Delete,
                    actionable[d].kind == ChangeKind::Delete,
                );
                let (first, then) = match deleting {
                    // `i` depends on `d`: apply `d` first.
                    (false, false) => (d, i),
                    // `i` depends on `d` and both go: delete `i` first.
                    (true, true) => (i, d),
                    _ => continue,
                };
                waits[then] += 1;
                dependents[first].push(then);
            }
        }
        let mut schedule = Self {
            provider,
            key,
            keys: (0..key_index.len()).map(|_| Key::default()).collect(),
            waits,
            dependents,
            state: vec![State::Waiting; n],
            ready: vec![VecDeque::new(); providers.len()],
            providers,
            index,
            changes: actionable,
            finished: 0,
            ops,
        };
        for i in 0..n {
            if schedule.waits[i] == 0 {
                schedule.enqueue(i);
            }
        }
        schedule
    }

    /// How many actionable changes there are.
    pub(super) fn len(&self) -> usize {
        self.changes.len()
    }

    /// How many have finished (done, failed or skipped).
    #[cfg(test)]
    pub(super) fn finished(&self) -> usize {
        self.finished
    }

    /// The providers that have changes, by index.
    pub(super) fn providers(&self) -> &[String] {
        &self.providers
    }

    /// Change `i`.
    pub(super) fn change(&self, i: usize) -> &'a Change {
        self.changes[i]
    }

    /// The number of the change with this id, if it is actionable.
    pub(super) fn index_of(&self, id: &ResourceId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Where change `i` stands.
    #[cfg(test)]
    pub(super) fn state(&self, i: usize) -> State {
        self.state[i]
    }

    /// Units of scheduling work done so far: one per dependency edge read, queue push or
    /// pop, and dependent visited.
    #[cfg(test)]
    pub(super) fn ops(&self) -> u64 {
        self.ops
    }

    /// Whether provider `p` has a change ready to start.
    pub(super) fn has_ready(&self, p: usize) -> bool {
        !self.ready[p].is_empty()
    }

    fn enqueue(&mut self, i: usize) {
        self.ops += 1;
        self.state[i] = State::Queued;
        self.ready[self.provider[i]].push_back(i);
    }

    /// The next change of provider `p` to start, now marked running: the first ready one
    /// whose serialization key is free (changes whose key is held wait in the key's
    /// queue).
    pub(super) fn start(&mut self, p: usize) -> Option<usize> {
        while let Some(i) = self.ready[p].pop_front() {
            self.ops += 1;
            if let Some(k) = self.key[i] {
                match self.keys[k].holder {
                    None => self.keys[k].holder = Some(i),
                    Some(h) if h == i => {}
                    Some(_) => {
                        self.keys[k].waiting.push_back(i);
                        continue;
                    }
                }
            }
            self.state[i] = State::Running;
            return Some(i);
        }
        None
    }

    /// Records that running change `i` ended: on success its dependents whose last
    /// dependency it was become ready; on failure every change that (transitively) waits
    /// on it is skipped. Returns the skips as (change, the dependency that did not
    /// happen), in the order they cascade.
    pub(super) fn finish(&mut self, i: usize, ok: bool) -> Vec<(usize, usize)> {
        self.state[i] = if ok { State::Done } else { State::Bad };
        self.finished += 1;
        if let Some(k) = self.key[i] {
            self.keys[k].holder = None;
            if let Some(next) = self.keys[k].waiting.pop_front() {
                self.ops += 1;
                self.keys[k].holder = Some(next);
                self.ready[self.provider[next]].push_front(next);
            }
        }
        let mut skipped = Vec::new();
        if ok {
            for j in 0..self.dependents[i].len() {
                let d = self.dependents[i][j];
                self.ops += 1;
                self.waits[d] -= 1;
                if self.waits[d] == 0 && self.state[d] == State::Waiting {
                    self.enqueue(d);
                }
            }
            return skipped;
        }
        let mut stack = vec![i];
        while let Some(bad) = stack.pop() {
            for j in 0..self.dependents[bad].len() {
                let d = self.dependents[bad][j];
                self.ops += 1;
                if self.state[d] == State::Waiting {
                    self.state[d] = State::Bad;
                    self.finished += 1;
                    skipped.push((d, bad));
                    stack.push(d);
                }
            }
        }
        skipped
    }

    /// The changes that never started, and those that were running, when the run stops.
    pub(super) fn unfinished(&self) -> (Vec<usize>, Vec<usize>) {
        let mut never = Vec::new();
        let mut running = Vec::new();
        for (i, s) in self.state.iter().enumerate() {
            match s {
                State::Waiting | State::Queued => never.push(i),
                State::Running => running.push(i),
                State::Done | State::Bad => {}
            }
        }
        (never, running)
    }
}
