//! A linearizability checker for one key's history of puts, deletes and gets: Wing and
//! Gong's search with Lowe's memoization, as Porcupine does it (Lowe, "Testing for
//! linearizability", 2017).
//!
//! Each operation has an invocation time and, if its outcome is known, a response time.
//! One whose outcome is unknown (503 `"outcome":"unknown"`, a timeout, a connection cut)
//! may take effect at any moment after its invocation, or never: it is given a response at
//! infinity, and taking effect last is the same as never taking effect. A history is
//! linearizable when some order of all its operations (the unknown ones included) respects
//! real time (an operation that responded before another was invoked comes first) and
//! agrees with a register: each get returns what the last put before it wrote, or nothing
//! if a delete (or nothing) came last.

use std::collections::HashSet;

/// What an operation did. Values are ids (each put writes a value never written before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put(u64),
    Delete,
    /// A get and what it returned.
    Get(Option<u64>),
}

#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub op: Op,
    /// Nanoseconds since the history began.
    pub call: u64,
    /// `None` when the outcome is unknown.
    pub ret: Option<u64>,
}

/// Finds an order of `history` that a register starting empty explains, or says why there
/// is none.
pub fn check(history: &[Event]) -> Result<(), String> {
    let history = without_unseen_writes(history);
    if search(&history) {
        Ok(())
    } else {
        Err(describe(&history))
    }
}

/// Drops puts of unknown outcome whose value no get returned: one of them taking effect
/// last (so never seen) is always a possible order, so they only make the search longer.
/// Gets of unknown outcome are dropped by the caller; unknown deletes stay, since their
/// effect cannot be told from another delete's.
fn without_unseen_writes(history: &[Event]) -> Vec<Event> {
    let seen: HashSet<u64> = history
        .iter()
        .filter_map(|e| match e.op {
            Op::Get(Some(v)) => Some(v),
            _ => None,
        })
        .collect();
    history
        .iter()
        .filter(|e| !(e.ret.is_none() && matches!(e.op, Op::Put(v) if !seen.contains(&v))))
        .copied()
        .collect()
}

/// The register's step: whether `op` is possible in `state`, and the state after it.
fn step(state: Option<u64>, op: Op) -> Option<Option<u64>> {
    match op {
        Op::Put(v) => Some(Some(v)),
        Op::Delete => Some(None),
        Op::Get(seen) => (seen == state).then_some(state),
    }
}

/// One invocation or response in time order, linked so that linearized operations can be
/// lifted out of the list and put back when the search backtracks.
struct Entry {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

const NONE: usize = usize::MAX;

fn search(history: &[Event]) -> bool {
    let n = history.len();
    // (time, 0 for calls before 1 for returns at the same time, op): touching operations
    // count as concurrent.
    let mut times: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in history.iter().enumerate() {
        times.push((e.call, 0, i));
        times.push((e.ret.unwrap_or(u64::MAX), 1, i));
    }
    times.sort_unstable();
    // Entry 0 is the list's head sentinel.
    let mut list: Vec<Entry> = Vec::with_capacity(2 * n + 1);
    list.push(Entry {
        op: NONE,
        is_call: false,
        prev: NONE,
        next: NONE,
    });
    let mut return_of = vec![0; n];
    let mut call_of = vec![0; n];
    for &(_, kind, op) in &times {
        let at = list.len();
        list[at - 1].next = at;
        list.push(Entry {
            op,
            is_call: kind == 0,
            prev: at - 1,
            next: NONE,
        });
        if kind == 0 {
            call_of[op] = at;
        } else {
            return_of[op] = at;
        }
    }
    let lift = |list: &mut Vec<Entry>, at: usize| {
        let (prev, next) = (list[at].prev, list[at].next);
        list[prev].next = next;
        if next != NONE {
            list[next].prev = prev;
        }
    };
    let unlift = |list: &mut Vec<Entry>, at: usize| {
        let (prev, next) = (list[at].prev, list[at].next);
        list[prev].next = at;
        if next != NONE {
            list[next].prev = at;
        }
    };

    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut cache: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u64>)> = Vec::new();
    let mut state: Option<u64> = None;
    let mut at = list[0].next;
    while list[0].next != NONE {
        if at == NONE {
            // Only possible after backtracking past the last call: nothing left to try.
            return false;
        }
        let entry = &list[at];
        if entry.is_call {
            let op = entry.op;
            let next = entry.next;
            if let Some(after) = step(state, history[op].op) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), after)) {
                    stack.push((op, state));
                    state = after;
                    lift(&mut list, call_of[op]);
                    lift(&mut list, return_of[op]);
                    at = list[0].next;
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            at = next;
        } else {
            // An operation responded before one of the operations still pending could be
            // put before it: undo the last choice and try the next one.
            let Some((op, before)) = stack.pop() else {
                return false;
            };
            state = before;
            linearized[op / 64] &= !(1 << (op % 64));
            unlift(&mut list, return_of[op]);
            unlift(&mut list, call_of[op]);
            at = list[call_of[op]].next;
        }
    }
    true
}

/// A readable account of a history that has no order, for the failure message.
fn describe(history: &[Event]) -> String {
    let mut events: Vec<&Event> = history.iter().collect();
    events.sort_by_key(|e| e.call);
    let ms = |t: u64| format!("{:.3}", t as f64 / 1e6);
    let lines: Vec<String> = events
        .iter()
        .take(400)
        .map(|e| {
            let ret = e.ret.map_or("unknown".to_string(), ms);
            format!("  [{} .. {}] {:?}", ms(e.call), ret, e.op)
        })
        .collect();
    format!(
        "no order of these {} operations (times in ms) is a register's:\n{}",
        history.len(),
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: Op, call: u64, ret: u64) -> Event {
        Event {
            op,
            call,
            ret: Some(ret),
        }
    }

    fn maybe(op: Op, call: u64) -> Event {
        Event {
            op,
            call,
            ret: None,
        }
    }

    use Op::{Delete, Get, Put};

    #[test]
    fn sequential_histories_that_a_register_explains_pass() {
        let h = [
            ev(Get(None), 0, 1),
            ev(Put(1), 2, 3),
            ev(Get(Some(1)), 4, 5),
            ev(Put(2), 6, 7),
            ev(Get(Some(2)), 8, 9),
            ev(Delete, 10, 11),
            ev(Get(None), 12, 13),
        ];
        check(&h).unwrap();
    }

    #[test]
    fn a_stale_read_is_rejected() {
        let h = [ev(Put(1), 0, 1), ev(Put(2), 2, 3), ev(Get(Some(1)), 4, 5)];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_lost_acknowledged_write_is_rejected() {
        let h = [ev(Put(1), 0, 1), ev(Get(None), 2, 3)];
        assert!(check(&h).is_err());
        // ... and so is a deleted key coming back.
        let h = [ev(Put(1), 0, 1), ev(Delete, 2, 3), ev(Get(Some(1)), 4, 5)];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_value_never_written_is_rejected() {
        assert!(check(&[ev(Get(Some(9)), 0, 1)]).is_err());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The put spans both reads: the first sees the old state, the second the new.
        let h = [
            ev(Put(1), 0, 10),
            ev(Get(None), 1, 2),
            ev(Get(Some(1)), 3, 4),
        ];
        check(&h).unwrap();
        // Two overlapping puts; later reads agree on which came last.
        let h = [
            ev(Put(1), 0, 10),
            ev(Put(2), 1, 9),
            ev(Get(Some(1)), 11, 12),
            ev(Get(Some(1)), 13, 14),
        ];
        check(&h).unwrap();
    }

    #[test]
    fn reads_never_go_back_in_time() {
        // Once one read has seen the put, a later read cannot miss it.
        let h = [
            ev(Put(1), 0, 10),
            ev(Get(Some(1)), 1, 2),
            ev(Get(None), 3, 4),
        ];
        assert!(check(&h).is_err());
        // Reads that disagree on the order of two puts.
        let h = [
            ev(Put(1), 0, 10),
            ev(Put(2), 0, 10),
            ev(Get(Some(1)), 11, 12),
            ev(Get(Some(2)), 13, 14),
            ev(Get(Some(1)), 15, 16),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_write_of_unknown_outcome_may_take_effect_late_or_never() {
        // Seen long after its invocation.
        let h = [
            ev(Put(1), 0, 1),
            maybe(Put(2), 2),
            ev(Get(Some(1)), 3, 4),
            ev(Get(Some(2)), 50, 51),
        ];
        check(&h).unwrap();
        // Never seen.
        let h = [
            ev(Put(1), 0, 1),
            maybe(Put(2), 2),
            ev(Get(Some(1)), 100, 101),
        ];
        check(&h).unwrap();
        // But once seen, it has happened: it cannot be undone.
        let h = [
            ev(Put(1), 0, 1),
            maybe(Put(2), 2),
            ev(Get(Some(2)), 3, 4),
            ev(Get(Some(1)), 5, 6),
        ];
        assert!(check(&h).is_err());
        // Nor can it take effect before it was invoked.
        let h = [ev(Get(Some(2)), 0, 1), maybe(Put(2), 2)];
        assert!(check(&h).is_err());
        // An unknown delete may explain a missing key, but only after its invocation.
        let h = [ev(Put(1), 0, 1), maybe(Delete, 5), ev(Get(None), 6, 7)];
        check(&h).unwrap();
        let h = [ev(Put(1), 0, 1), ev(Get(None), 2, 3), maybe(Delete, 5)];
        assert!(check(&h).is_err());
    }

    #[test]
    fn many_concurrent_clients_are_checked_quickly() {
        // Five clients in lock step, each round: every client's put overlaps the others',
        // then all read the value of the put with the largest id (a valid last write).
        let mut h = Vec::new();
        let mut t = 0;
        let mut next = 0;
        for _ in 0..400 {
            let ids: Vec<u64> = (0..5)
                .map(|_| {
                    next += 1;
                    next
                })
                .collect();
            for &id in &ids {
                h.push(ev(Put(id), t, t + 10));
            }
            h.push(maybe(Put(next + 1_000_000), t + 1));
            let last = *ids.last().unwrap();
            for c in 0..5 {
                h.push(ev(Get(Some(last)), t + 11 + c, t + 20));
            }
            t += 30;
        }
        let started = std::time::Instant::now();
        check(&h).unwrap();
        // A bound that catches an exponential search, not a benchmark.
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The same history with one read gone stale is caught.
        let at = h.len() - 3;
        h[at].op = Get(Some(1));
        assert!(check(&h).is_err());
    }
}
