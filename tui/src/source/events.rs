//! The Kubernetes Events about the selected client, as `kubectl describe` shows them: a
//! watch narrowed to that one object, started once the selection rests on it, so moving
//! through the tree costs nothing.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use nauthera_shared::resources::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::cluster;
use crate::model::{ObjectEvent, ObjectEvents};

/// How long the selection must rest on a client before its Events are watched.
const SETTLE: Duration = Duration::from_millis(150);
/// How many of the most recent Events are kept.
pub const RECENT: usize = 10;

/// Watches the Events of the client `object` on the cluster of `context` (the current one
/// when `None`), once the selection has rested on it; sends them on every change.
pub fn watch(
    context: Option<String>,
    object: ObjectRef,
    sender: UnboundedSender<ObjectEvents>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        match cluster::connect(context.as_deref()).await {
            Ok(connection) => follow(connection.client, object, sender).await,
            Err(problem) => {
                let _ = sender.send(ObjectEvents {
                    object,
                    events: Err(problem),
                });
            }
        }
    })
}

/// Follows the Events whose object is the AuthClient `object` (core/v1 Events, which also
/// carry those published through events.k8s.io/v1), until the receiver is gone.
pub async fn follow(client: Client, object: ObjectRef, sender: UnboundedSender<ObjectEvents>) {
    let api: Api<Event> = Api::namespaced(client, &object.namespace);
    let fields = format!(
        "involvedObject.kind=AuthClient,involvedObject.name={}",
        object.name
    );
    let (store, writer) = reflector::store();
    let mut events = watcher(api, watcher::Config::default().fields(&fields))
        .default_backoff()
        .reflect(writer)
        .boxed();
    let mut last_problem = None;
    while let Some(event) = events.next().await {
        let events = match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
            Ok(_) => {
                last_problem = None;
                Ok(recent(&store))
            }
            Err(error) => {
                let problem = cluster::describe("events", &error);
                if last_problem.as_ref() == Some(&problem) {
                    continue;
                }
                last_problem = Some(problem.clone());
                Err(problem)
            }
        };
        let update = ObjectEvents {
            object: object.clone(),
            events,
        };
        if sender.send(update).is_err() {
            return;
        }
    }
}

/// The most recent Events, oldest first.
fn recent(store: &Store<Event>) -> Vec<ObjectEvent> {
    let mut events: Vec<ObjectEvent> = store.state().iter().map(|e| of(e)).collect();
    events.sort_by_key(|event| event.last.or(event.first));
    let skip = events.len().saturating_sub(RECENT);
    events.split_off(skip)
}

fn of(event: &Event) -> ObjectEvent {
    let series = event.series.as_ref();
    let last = series
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let first: Option<Timestamp> = event
        .first_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or(last);
    ObjectEvent {
        type_: event.type_.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        from: event
            .reporting_component
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| event.source.as_ref().and_then(|s| s.component.clone()))
            .unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        count: series
            .and_then(|s| s.count)
            .or(event.count)
            .unwrap_or(1)
            .max(1),
        first,
        last,
    }
}
