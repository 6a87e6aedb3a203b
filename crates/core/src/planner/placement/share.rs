//! The threshold relative to the call graph (`cost-share`): which pairs are
//! an application's top talkers, the fewest that together make up a share of
//! its potential cross-node cost.
//!
//! Why relative: a pair's absolute cost (ms of tail latency per second)
//! grows with the application's traffic, but what it adds to a request's
//! end-to-end latency is its share of all the latency the requests pay. With
//! an absolute threshold a quiet application never has a pair worth moving,
//! a busy one has every pair, and a pair crosses the line twice a day with
//! the load. The shares do not move with the load, and a pair's potential
//! (its cost were every call to cross nodes) does not move with placement,
//! so the set is stable under both: what hysteresis needs.
//!
//! An application is a connected part of the call graph (workloads linked
//! by calls either way): two applications sharing a cluster are each judged
//! against their own traffic, so a busy one does not crowd a quiet one out.

use std::collections::{BTreeMap, BTreeSet};

/// A co-location pair of the graph and its potential cost in ms per second.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct GraphPair {
    pub subject: String,
    pub client: String,
    pub server: String,
    pub potential: f64,
}

/// The subjects of the costliest pairs that together make up `share` of
/// their application's potential cost (the pair that crosses the line
/// included). Empty for a share of 0.
pub(super) fn top_pairs(graph: &[GraphPair], share: f64) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if share <= 0.0 {
        return out;
    }
    for app in applications(graph) {
        let total: f64 = app.iter().map(|p| p.potential.max(0.0)).sum();
        let mut ranked: Vec<&GraphPair> = app.into_iter().filter(|p| p.potential > 0.0).collect();
        ranked.sort_by(|a, b| b.potential.total_cmp(&a.potential).then_with(|| a.subject.cmp(&b.subject)));
        let mut covered = 0.0;
        for p in ranked {
            if covered >= share * total {
                break;
            }
            covered += p.potential;
            out.insert(p.subject.clone());
        }
    }
    out
}

/// The pairs grouped by connected part of the graph.
fn applications(graph: &[GraphPair]) -> Vec<Vec<&GraphPair>> {
    // Union-find over the workloads' names.
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    fn root<'a>(parent: &mut BTreeMap<&'a str, &'a str>, w: &'a str) -> &'a str {
        let mut r = w;
        while let Some(&up) = parent.get(r).filter(|&&up| up != r) {
            r = up;
        }
        parent.insert(w, r);
        r
    }
    for p in graph {
        let (a, b) = (root(&mut parent, &p.client), root(&mut parent, &p.server));
        if a != b {
            parent.insert(a.max(b), a.min(b));
        }
    }
    let mut by: BTreeMap<&str, Vec<&GraphPair>> = BTreeMap::new();
    for p in graph {
        let r = root(&mut parent, &p.client);
        by.entry(r).or_default().push(p);
    }
    by.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(costs: &[(&str, f64)]) -> Vec<GraphPair> {
        costs
            .iter()
            .map(|(s, c)| GraphPair {
                subject: (*s).to_string(),
                client: format!("{s}-client"),
                server: "server".to_string(),
                potential: *c,
            })
            .collect()
    }

    fn names(s: &BTreeSet<String>) -> Vec<String> {
        s.iter().cloned().collect()
    }

    #[test]
    fn the_fewest_costliest_pairs_covering_the_share() {
        let g = graph(&[("a", 50.0), ("b", 30.0), ("c", 15.0), ("d", 5.0)]);
        assert_eq!(names(&top_pairs(&g, 0.8)), ["a", "b"]);
        // The pair that crosses the line belongs: 50 + 30 < 81.
        assert_eq!(names(&top_pairs(&g, 0.81)), ["a", "b", "c"]);
        assert!(top_pairs(&g, 0.0).is_empty());
        assert_eq!(top_pairs(&g, 1.0).len(), 4);
        // Scaling the traffic scales every cost alike: the same set.
        let busier: Vec<GraphPair> =
            g.iter().map(|p| GraphPair { potential: p.potential * 7.0, ..p.clone() }).collect();
        assert_eq!(top_pairs(&busier, 0.8), top_pairs(&g, 0.8));
        assert!(top_pairs(&graph(&[("a", 0.0)]), 0.8).is_empty());
    }

    #[test]
    fn each_application_is_judged_against_its_own_traffic() {
        let pair = |subject: &str, client: &str, server: &str, potential| GraphPair {
            subject: subject.to_string(),
            client: client.to_string(),
            server: server.to_string(),
            potential,
        };
        // A busy shop (front → cart → db) and a quiet blog (web → posts) that
        // share no workload: the blog's one pair is all of its own cost.
        let g = vec![
            pair("front-cart", "front", "cart", 9000.0),
            pair("cart-db", "cart", "db", 1000.0),
            pair("web-posts", "web", "posts", 40.0),
        ];
        assert_eq!(names(&top_pairs(&g, 0.8)), ["front-cart", "web-posts"]);
        // Linked by one call (the blog calls the shop's cart), they are one graph.
        let mut linked = g.clone();
        linked.push(pair("posts-cart", "posts", "cart", 1.0));
        assert_eq!(names(&top_pairs(&linked, 0.8)), ["front-cart"]);
    }
}
