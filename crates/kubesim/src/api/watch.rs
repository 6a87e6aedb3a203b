//! Watch streams: initial events, resumption from a resourceVersion (410 Gone
//! when it is older than the retained history), selector transitions
//! (an object leaving a selector is DELETED for that watcher), bookmarks,
//! timeouts, and abrupt drops for fault injection.
//!
//! A watcher holds only a cursor into its kind's change history; one change
//! costs each watcher a filter check, never a scan of all objects.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream;
use http::{Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, Interval};

use super::Body;
use super::handlers::{Filter, render_object};
use super::request::{Query, Repr};
use super::table::Include;
use crate::error::ApiError;
use crate::resources::ApiResource;
use crate::sim::Sim;
use crate::store::{Change, EventType, Obj};

/// Events written per chunk; keeps chunks large under load and small when idle.
const CHUNK_EVENTS: usize = 512;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct WatchState {
    sim: Arc<Sim>,
    resource: &'static ApiResource,
    filter: Filter,
    repr: Repr,
    include: Include,
    initial: VecDeque<Arc<Obj>>,
    /// Send the initial-events-end bookmark once `initial` is drained.
    end_bookmark: bool,
    cursor: u64,
    notify: watch::Receiver<u64>,
    drops: watch::Receiver<u64>,
    bookmarks: Option<Interval>,
    deadline: Instant,
    table_columns_sent: bool,
    done: bool,
}

pub fn serve(
    sim: Arc<Sim>,
    resource: &'static ApiResource,
    filter: Filter,
    q: &Query,
    repr: Repr,
    include: Include,
) -> Result<Response<Body>, ApiError> {
    let kind = resource.bucket;
    let rv_param = q.get("resourceVersion").unwrap_or("");
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    let allow_bookmarks = q.flag("allowWatchBookmarks");
    if send_initial == Some(true) && (!allow_bookmarks || q.get("resourceVersionMatch") != Some("NotOlderThan")) {
        return Err(ApiError::invalid(
            crate::resources::Kind::Pod,
            "",
            &[crate::error::Cause {
                reason: "FieldValueForbidden",
                message: "Forbidden: sendInitialEvents requires setting allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
                field: "sendInitialEvents",
            }],
        ));
    }
    let timeout =
        q.int("timeoutSeconds")?.filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64)).unwrap_or(DEFAULT_TIMEOUT);
    // Subscribe before reading state so no change can slip between the two.
    let notify = sim.store.subscribe(kind);
    let drops = sim.faults.watch_drops();
    let mut initial = VecDeque::new();
    let requested: Option<u64> = match rv_param {
        "" | "0" => None,
        rv => Some(rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version \"{rv}\"")))?),
    };
    let cursor = match (requested, send_initial) {
        (_, Some(true)) | (None, None) => {
            let (items, rv) = sim.store.list(kind, filter.namespace.as_deref());
            initial = items.into_iter().filter(|o| filter.matches(o)).collect();
            rv
        }
        (None, Some(false)) => sim.store.current_rv(),
        (Some(rv), _) => rv,
    };
    let bookmarks = allow_bookmarks.then(|| {
        let period = sim.options.bookmark_interval.max(Duration::from_millis(10));
        tokio::time::interval_at(Instant::now() + period, period)
    });
    let state = WatchState {
        sim,
        resource,
        filter,
        repr,
        include,
        initial,
        end_bookmark: send_initial == Some(true),
        cursor,
        notify,
        drops,
        bookmarks,
        deadline: Instant::now() + timeout,
        table_columns_sent: false,
        done: false,
    };
    let frames = stream::unfold(state, |mut state| async move {
        let chunk = state.next_chunk().await?;
        Some((chunk.map(Frame::data), state))
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    Ok(response)
}

impl WatchState {
    /// The next chunk of events, `Err` to break the connection, `None` at the end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        self.drops.borrow_and_update();
        loop {
            let mut out = BytesMut::new();
            if !self.initial.is_empty() {
                for _ in 0..CHUNK_EVENTS {
                    let Some(obj) = self.initial.pop_front() else { break };
                    self.write_event(&mut out, EventType::Added, &obj);
                }
                if self.initial.is_empty() && self.end_bookmark {
                    self.end_bookmark = false;
                    self.write_bookmark(&mut out, true);
                }
                return Some(Ok(out.freeze()));
            }
            if self.end_bookmark {
                self.end_bookmark = false;
                self.write_bookmark(&mut out, true);
                return Some(Ok(out.freeze()));
            }
            self.notify.borrow_and_update();
            match self.sim.store.changes_since(self.resource.bucket, self.cursor, CHUNK_EVENTS) {
                Ok((changes, seen)) => {
                    self.cursor = seen;
                    for change in &changes {
                        self.write_change(&mut out, change);
                    }
                    if !out.is_empty() {
                        return Some(Ok(out.freeze()));
                    }
                }
                Err(expired) => {
                    self.done = true;
                    let status = ApiError::expired(format!(
                        "too old resource version: {} ({})",
                        expired.requested, expired.oldest
                    ))
                    .to_status();
                    write_frame(&mut out, "ERROR", &serde_json::to_vec(&status).unwrap_or_default());
                    return Some(Ok(out.freeze()));
                }
            }
            let bookmark_tick = async {
                match &mut self.bookmarks {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                changed = self.notify.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = bookmark_tick => {
                    let mut out = BytesMut::new();
                    self.write_bookmark(&mut out, false);
                    return Some(Ok(out.freeze()));
                }
                _ = self.drops.changed() => {
                    self.done = true;
                    return Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "kubesim: watch dropped")));
                }
                _ = tokio::time::sleep_until(self.deadline) => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    fn write_change(&mut self, out: &mut BytesMut, change: &Change) {
        let now_matches = self.filter.matches(&change.obj);
        let was_matching = change.prev.as_ref().is_some_and(|p| self.filter.matches(p));
        let event = match change.event {
            EventType::Added if now_matches => EventType::Added,
            EventType::Modified => match (was_matching, now_matches) {
                (true, true) => EventType::Modified,
                (false, true) => EventType::Added,
                (true, false) => EventType::Deleted,
                (false, false) => return,
            },
            EventType::Deleted if now_matches || was_matching => EventType::Deleted,
            _ => return,
        };
        self.write_event(out, event, &change.obj);
    }

    fn write_event(&mut self, out: &mut BytesMut, event: EventType, obj: &Obj) {
        let body = match self.repr {
            Repr::Table(version) => {
                let mut table = crate::api::table::table(
                    self.resource,
                    version,
                    &[&obj.value()],
                    json!({"resourceVersion": obj.rv.to_string()}),
                    self.include,
                );
                // Like the API server, send column definitions once per watch.
                if self.table_columns_sent {
                    table["columnDefinitions"] = json!([]);
                }
                self.table_columns_sent = true;
                Bytes::from(serde_json::to_vec(&table).unwrap_or_default())
            }
            repr => render_object(self.resource, repr, self.include, obj),
        };
        write_frame(out, event.as_str(), &body);
    }

    fn write_bookmark(&mut self, out: &mut BytesMut, initial_events_end: bool) {
        let mut object = json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": {"resourceVersion": self.cursor.to_string(), "creationTimestamp": Value::Null},
        });
        if initial_events_end {
            object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        write_frame(out, "BOOKMARK", &serde_json::to_vec(&object).unwrap_or_default());
    }
}

fn write_frame(out: &mut BytesMut, event_type: &str, object: &[u8]) {
    out.put_slice(b"{\"type\":\"");
    out.put_slice(event_type.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
}
