//! VPA objects from a real watch into the objects heatscaler handles.

use futures::StreamExt;
use heatscaler_core::model::UpdateMode;
use heatscaler_daemon::vpa::api::{self, VerticalPodAutoscaler};
use heatscaler_daemon::vpa::client::VpaObjects;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use super::{WAIT, create_vpa, start};

async fn until(
    events: &mut (impl futures::Stream<Item = Result<watcher::Event<VerticalPodAutoscaler>, watcher::Error>> + Unpin),
    objects: &mut VpaObjects,
    what: &str,
    done: impl Fn(&VpaObjects) -> bool,
) {
    tokio::time::timeout(WAIT, async {
        while !done(objects) {
            let event = events.next().await.expect("watch stream ends only when dropped").expect("watch event");
            objects.apply(event);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_become_the_planner_model() {
    let (sim, client) = start(vec![]).await;
    let vpas: Api<VerticalPodAutoscaler> = Api::default_namespaced(client.clone());
    let mut events = Box::pin(watcher(Api::<VerticalPodAutoscaler>::all(client.clone()), watcher::Config::default()));
    let mut objects = VpaObjects::default();

    create_vpa(&client, "ours", api::UpdateMode::InPlaceOrRecreate).await;
    let unnamed = VerticalPodAutoscaler::new(
        "default",
        "theirs",
        api::VerticalPodAutoscalerSpec {
            target_ref: Some(k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "StatefulSet".into(),
                name: "db".into(),
            }),
            ..Default::default()
        },
    );
    vpas.create(&PostParams::default(), &unnamed).await.unwrap();
    until(&mut events, &mut objects, "both objects", |o| o.len() == 2).await;
    let handled = objects.handled("heatscaler", false, |_| Some(3));
    assert_eq!(handled.len(), 1);
    let model = handled[0].model.as_ref().unwrap();
    assert_eq!((model.workload.kind.as_str(), model.workload.name.as_str()), ("Deployment", "ours"));
    assert_eq!((model.update_mode, model.replicas), (UpdateMode::InPlaceOrRecreate, Some(3)));

    vpas.patch(
        "ours",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updatePolicy": {"updateMode": "Off"}}})),
    )
    .await
    .unwrap();
    until(&mut events, &mut objects, "the new mode", |o| {
        o.handled("heatscaler", false, |_| None)[0].model.as_ref().is_ok_and(|m| m.update_mode == UpdateMode::Off)
    })
    .await;

    // Deleted while the watch is broken: the relist drops it.
    sim.drop_watches();
    vpas.delete("theirs", &DeleteParams::default()).await.unwrap();
    until(&mut events, &mut objects, "the deletion", |o| o.get("default", "theirs").is_none()).await;
    assert!(objects.get("default", "ours").is_some());
}
