//! The wire protocol through kube-rs: lists with selectors and pagination,
//! watches, every patch type, optimistic concurrency and Status errors.

mod common;

use std::collections::BTreeSet;

use common::{WAIT, nodes, start, status_of};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kubesim::PodTemplate;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_label_and_field_and_paginate_consistently() {
    let (sim, client) = start(nodes(2, "8", "16Gi")).await;
    for i in 0..5 {
        let app = if i % 2 == 0 { "a" } else { "b" };
        sim.create(
            &PodTemplate::new("c").label("app", app).label("idx", &i.to_string()).pod("default", &format!("p{i}")),
        )
        .unwrap();
    }
    sim.create(&PodTemplate::new("c").label("app", "c").pod("kube-system", "sys")).unwrap();
    sim.wait_for("pods running", WAIT, |s| s.ready_pods(None) == 6).await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let names = |list: &[Pod]| list.iter().map(|p| p.metadata.name.clone().unwrap()).collect::<BTreeSet<_>>();

    let a = pods.list(&ListParams::default().labels("app=a")).await.unwrap();
    assert_eq!(names(&a.items), ["p0", "p2", "p4"].map(String::from).into());
    let not_a = pods.list(&ListParams::default().labels("app!=a,idx in (1,3,4)")).await.unwrap();
    assert_eq!(names(&not_a.items), ["p1", "p3"].map(String::from).into());
    let exists = pods.list(&ListParams::default().labels("!idx")).await.unwrap();
    assert!(exists.items.is_empty());

    let node0 = sim.get::<Pod>(Some("default"), "p0").unwrap().spec.unwrap().node_name.unwrap();
    let on_node =
        pods.list(&ListParams::default().fields(&format!("spec.nodeName={node0},status.phase=Running"))).await.unwrap();
    assert!(on_node.items.iter().all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(&node0)));
    assert!(!on_node.items.is_empty());
    let bad = pods.list(&ListParams::default().fields("spec.nonsense=x")).await;
    assert_eq!(status_of(bad).code, 400);

    // Pages of 2 across all namespaces, consistent with the first page even if objects change meanwhile.
    let all: Api<Pod> = Api::all(client.clone());
    let first = all.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let first_rv = first.metadata.resource_version.clone().unwrap();
    sim.create(&PodTemplate::new("c").pod("default", "late")).unwrap();
    let mut seen = names(&first.items);
    let mut token = first.metadata.continue_.clone();
    while let Some(t) = token.filter(|t| !t.is_empty()) {
        let page = all.list(&ListParams::default().limit(2).continue_token(&t)).await.unwrap();
        assert_eq!(page.metadata.resource_version.as_deref(), Some(first_rv.as_str()));
        seen.extend(names(&page.items));
        token = page.metadata.continue_;
    }
    assert_eq!(seen.len(), 6, "the pod created between pages is not part of the snapshot: {seen:?}");
    assert!(!seen.contains("late"));

    let bogus = all.list(&ListParams::default().limit(2).continue_token("ks1.999999.2.1")).await;
    let status = status_of(bogus);
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));

    let nodes_api: Api<Node> = Api::all(client);
    assert_eq!(nodes_api.list(&ListParams::default()).await.unwrap().items.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_status_objects_and_updates_are_optimistic() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    let nodes_api: Api<Node> = Api::all(client.clone());
    let missing = status_of(nodes_api.get("nope").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "nodes \"nope\" not found");
    assert_eq!(missing.details.as_ref().unwrap().kind, "nodes");

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod = PodTemplate::new("c").requests("100m", "64Mi").pod("default", "p");
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    assert!(created.metadata.creation_timestamp.is_some());
    let again = status_of(pods.create(&PostParams::default(), &pod).await);
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));

    // generateName
    let mut generated = PodTemplate::new("c").pod("default", "");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = pods.create(&PostParams::default(), &generated).await.unwrap();
    assert!(g.metadata.name.unwrap().starts_with("gen-"));

    // A stale resourceVersion is a 409 Conflict; the fresh one wins.
    let mut node = nodes_api.get("node-0").await.unwrap();
    let stale = node.clone();
    node.metadata.labels.get_or_insert_default().insert("tier".into(), "one".into());
    nodes_api.replace("node-0", &PostParams::default(), &node).await.unwrap();
    let mut stale_change = stale.clone();
    stale_change.metadata.labels.get_or_insert_default().insert("tier".into(), "two".into());
    let conflict = status_of(nodes_api.replace("node-0", &PostParams::default(), &stale_change).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(conflict.message.contains("the object has been modified"), "{}", conflict.message);
    assert_eq!(sim.get::<Node>(None, "node-0").unwrap().metadata.labels.unwrap()["tier"], "one");

    // A pod's spec is immutable except for a few fields: resources change only via resize.
    let resized = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "200m"}}}]}});
    let invalid = status_of(pods.patch("p", &PatchParams::default(), &Patch::Strategic(resized)).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));

    // Delete preconditions.
    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid: Some("other".into()), resource_version: None }),
        ..Default::default()
    };
    let precondition = status_of(pods.delete("p", &wrong_uid).await);
    assert_eq!(precondition.code, 409);
    assert_eq!(sim.get::<Pod>(Some("default"), "p").unwrap().metadata.uid.unwrap(), uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patch_type_applies_with_its_own_semantics() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    let nodes_api: Api<Node> = Api::all(client.clone());
    let pp = PatchParams::default();

    // JSON merge patch: maps merge, null deletes.
    nodes_api.patch("node-0", &pp, &Patch::Merge(json!({"metadata": {"labels": {"a": "1", "b": "2"}}}))).await.unwrap();
    let n = nodes_api.patch("node-0", &pp, &Patch::Merge(json!({"metadata": {"labels": {"b": null}}}))).await.unwrap();
    let labels = n.metadata.labels.unwrap();
    assert_eq!(labels.get("a").map(String::as_str), Some("1"));
    assert!(!labels.contains_key("b"));

    // JSON patch, including a failing test operation.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/spec/taints", "value": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
        {"op": "replace", "path": "/metadata/labels/a", "value": "3"}
    ]))
    .unwrap();
    let n = nodes_api.patch("node-0", &pp, &Patch::Json::<()>(ops)).await.unwrap();
    assert_eq!(n.spec.unwrap().taints.unwrap()[0].key, "k");
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/metadata/labels/a", "value": "nope"}])).unwrap();
    assert_eq!(status_of(nodes_api.patch("node-0", &pp, &Patch::Json::<()>(failing)).await).code, 422);
    let remove: json_patch::Patch = serde_json::from_value(json!([{"op": "remove", "path": "/spec/taints"}])).unwrap();
    let n = nodes_api.patch("node-0", &pp, &Patch::Json::<()>(remove)).await.unwrap();
    assert!(n.spec.unwrap().taints.is_none());

    // Strategic merge: conditions merge by type; a main-resource patch cannot touch status.
    let status_attempt = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let n = nodes_api.patch("node-0", &pp, &Patch::Strategic(status_attempt.clone())).await.unwrap();
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(ready(&n), "True", "status is ignored on the main resource");
    let n = nodes_api.patch_status("node-0", &pp, &Patch::Strategic(status_attempt)).await.unwrap();
    assert_eq!(ready(&n), "False");
    assert_eq!(n.status.unwrap().conditions.unwrap().len(), 4, "merged by type, not replaced");
    sim.set_node_ready("node-0", true).unwrap();
    let n = sim.get::<Node>(None, "node-0").unwrap();
    assert_eq!(ready(&n), "True");

    // Strategic merge on pods: containers by name, $deleteFromPrimitiveList.
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let mut pod = PodTemplate::new("app").pod("default", "p");
    pod.metadata.finalizers = Some(vec!["x/a".into(), "x/b".into()]);
    let spec = pod.spec.as_mut().unwrap();
    let mut side = spec.containers[0].clone();
    side.name = "side".into();
    spec.containers.push(side);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let patch = json!({
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["x/a"]},
        "spec": {"containers": [{"name": "app", "image": "app:2"}]}
    });
    let p = pods.patch("p", &pp, &Patch::Strategic(patch)).await.unwrap();
    let containers = p.spec.unwrap().containers;
    assert_eq!(containers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["app", "side"]);
    assert_eq!(containers[0].image.as_deref(), Some("app:2"));
    assert_eq!(containers[1].image, pod.spec.as_ref().unwrap().containers[1].image);
    assert_eq!(p.metadata.finalizers.unwrap(), ["x/b"]);
    // Reordering containers is a spec change a pod does not allow...
    let reorder = json!({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                                  "containers": [{"name": "app", "image": "app:3"}]}});
    assert_eq!(status_of(pods.patch("p", &pp, &Patch::Strategic(reorder.clone())).await).code, 422);
    // ...but a pod template does: $setElementOrder under spec.template.spec.
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let mut multi = PodTemplate::new("app").label("app", "multi").deployment("default", "multi", 0);
    let tpl = multi.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    tpl.containers.push(pod.spec.as_ref().unwrap().containers[1].clone());
    deployments.create(&PostParams::default(), &multi).await.unwrap();
    let d = deployments.patch("multi", &pp, &Patch::Strategic(json!({"spec": {"template": reorder}}))).await.unwrap();
    let names: Vec<String> = d.spec.unwrap().template.spec.unwrap().containers.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["side", "app"]);

    // Server-side apply (minimal: merges, creates when absent, needs a field manager).
    let apply = PatchParams::apply("kubesim-test");
    let d = PodTemplate::new("c").label("app", "web").deployment("default", "web", 1);
    let created = deployments.patch("web", &apply, &Patch::Apply(&d)).await.unwrap();
    assert_eq!(created.spec.unwrap().replicas, Some(1));
    let scaled = deployments
        .patch(
            "web",
            &apply,
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(2));
    let no_manager = deployments.patch("web", &PatchParams::default(), &Patch::Apply(json!({"spec": {}}))).await;
    assert_eq!(status_of(no_manager).code, 400);
    sim.wait_for("deployment scaled", common::WAIT, |s| s.ready_pods(Some("default")) == 3).await.unwrap();

    // Finalizers hold a deleted object until they are removed.
    let del = pods.delete("p", &DeleteParams::default()).await.unwrap();
    assert!(del.left().is_some());
    let held = sim.get::<Pod>(Some("default"), "p").unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    sim.wait_for("containers stopped", common::WAIT, |s| {
        s.get::<Pod>(Some("default"), "p").is_some_and(|p| p.status.unwrap().phase.as_deref() == Some("Succeeded"))
    })
    .await
    .unwrap();
    pods.patch("p", &pp, &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    sim.wait_for("pod gone", common::WAIT, |s| s.get::<Pod>(Some("default"), "p").is_none()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_deliver_changes_in_order_with_selector_transitions_and_bookmarks() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = pods.watch(&WatchParams::default().labels("tier=web").timeout(30), &rv).await.unwrap().boxed();

    sim.create(&PodTemplate::new("c").label("tier", "web").grace_period(1).pod("default", "w")).unwrap();
    sim.create(&PodTemplate::new("c").label("tier", "db").pod("default", "ignored")).unwrap();
    let mut kinds = Vec::new();
    let mut last_rv = 0u64;
    let mut bookmarks = 0;
    // ADDED, then MODIFIED (bound, running); relabelling makes it leave the selector: DELETED.
    while let Some(event) = stream.try_next().await.unwrap() {
        let (kind, obj) = match event {
            WatchEvent::Added(p) => ("ADDED", Some(p)),
            WatchEvent::Modified(p) => ("MODIFIED", Some(p)),
            WatchEvent::Deleted(p) => ("DELETED", Some(p)),
            WatchEvent::Bookmark(_) => {
                bookmarks += 1;
                ("BOOKMARK", None)
            }
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        if let Some(p) = obj {
            assert_eq!(p.metadata.name.as_deref(), Some("w"));
            let this_rv: u64 = p.metadata.resource_version.unwrap().parse().unwrap();
            assert!(this_rv > last_rv, "resourceVersions increase");
            last_rv = this_rv;
            kinds.push(kind);
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running && kind == "MODIFIED" && !kinds.contains(&"relabelled") {
                kinds.push("relabelled");
                pods.patch(
                    "w",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {"tier": "old"}}})),
                )
                .await
                .unwrap();
            }
            if kind == "DELETED" {
                break;
            }
        }
    }
    assert_eq!(kinds.first(), Some(&"ADDED"));
    assert_eq!(kinds.last(), Some(&"DELETED"));
    assert!(kinds.contains(&"MODIFIED"));

    // Bookmarks arrive on an idle watch that asks for them.
    let list = pods.list(&ListParams::default()).await.unwrap();
    let mut idle = pods
        .watch(&WatchParams::default().labels("none=here").timeout(30), &list.metadata.resource_version.unwrap())
        .await
        .unwrap()
        .boxed();
    while bookmarks == 0 {
        if let Some(WatchEvent::Bookmark(b)) = idle.try_next().await.unwrap() {
            assert!(!b.metadata.resource_version.is_empty());
            bookmarks += 1;
        }
    }

    // A resourceVersion older than the retained history: an ERROR event with 410 Expired.
    sim.compact_watch_history();
    let mut old = pods.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    match old.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}
