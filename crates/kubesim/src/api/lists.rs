//! Paginated lists (limit/continue) served from a consistent snapshot: the
//! first page freezes the filtered result, later pages read from it, like
//! etcd serving every page at the first page's revision.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::ApiError;
use crate::store::Obj;

const MAX_SNAPSHOTS: usize = 64;

struct Snapshot {
    id: u64,
    created: Instant,
    items: Arc<Vec<Arc<Obj>>>,
}

pub struct ListSnapshots {
    inner: Mutex<(u64, VecDeque<Snapshot>)>,
    /// How long a continue token stays usable ([`crate::Options::continue_token_lifetime`]).
    lifetime: Duration,
}

/// One page of a list.
pub struct Page {
    pub items: Vec<Arc<Obj>>,
    pub rv: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

impl ListSnapshots {
    pub fn new(lifetime: Duration) -> Self {
        Self { inner: Mutex::default(), lifetime }
    }

    /// First page of `items` (already filtered), consistent at `rv`.
    pub fn first_page(&self, items: Vec<Arc<Obj>>, rv: u64, limit: Option<usize>) -> Page {
        match limit {
            Some(limit) if limit > 0 && items.len() > limit => {
                let items = Arc::new(items);
                let page = items[..limit].to_vec();
                let remaining = items.len() - limit;
                let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                guard.0 += 1;
                let id = guard.0;
                expire(&mut guard.1, self.lifetime);
                guard.1.push_back(Snapshot { id, created: Instant::now(), items });
                Page { items: page, rv, continue_token: Some(make_token(id, limit, rv)), remaining: Some(remaining) }
            }
            _ => Page { items, rv, continue_token: None, remaining: None },
        }
    }

    /// The page a continue token points at.
    pub fn next_page(&self, token: &str, limit: Option<usize>) -> Result<Page, ApiError> {
        let (id, offset, rv) =
            parse_token(token).ok_or_else(|| ApiError::bad_request(format!("continue key is not valid: {token}")))?;
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        expire(&mut guard.1, self.lifetime);
        let Some(snapshot) = guard.1.iter().find(|s| s.id == id) else {
            return Err(ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            ));
        };
        let items = snapshot.items.clone();
        drop(guard);
        let end = match limit {
            Some(l) if l > 0 => (offset + l).min(items.len()),
            _ => items.len(),
        };
        let start = offset.min(items.len());
        let page = items[start..end].to_vec();
        if end < items.len() {
            Ok(Page {
                items: page,
                rv,
                continue_token: Some(make_token(id, end, rv)),
                remaining: Some(items.len() - end),
            })
        } else {
            Ok(Page { items: page, rv, continue_token: None, remaining: None })
        }
    }
}

fn expire(snapshots: &mut VecDeque<Snapshot>, lifetime: Duration) {
    while snapshots.front().is_some_and(|s| s.created.elapsed() > lifetime) || snapshots.len() > MAX_SNAPSHOTS {
        snapshots.pop_front();
    }
}

fn make_token(id: u64, offset: usize, rv: u64) -> String {
    format!("ks1.{id}.{offset}.{rv}")
}

fn parse_token(token: &str) -> Option<(u64, usize, u64)> {
    let mut parts = token.strip_prefix("ks1.")?.split('.');
    let id = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    let rv = parts.next()?.parse().ok()?;
    Some((id, offset, rv))
}
