//! Wiring: the AuthClient controller, the watches that re-reconcile exactly the clients a
//! changed server, policy or namespace governs, and the HTTP endpoints beside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::ListParams;
use kube::runtime::reflector::{self, ObjectRef as StoreRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer, ObjectRef};

use crate::context::Context;
use crate::reconcile::{error_policy, reconcile};
use crate::secrets::MANAGED_BY;
use crate::summaries::{Summaries, reconcile_policy, reconcile_server, summary_error};

/// Runs the operator until a signal says stop.
pub async fn run(
    client: Client,
    operator_namespace: String,
    listen: SocketAddr,
) -> color_eyre::Result<()> {
    check_crds(&client).await?;
    let (servers, servers_writer) = reflector::store();
    let (policies, policies_writer) = reflector::store();
    let (namespaces, namespaces_writer) = reflector::store::<Namespace>();
    let config = watcher::Config::default();
    let servers_changes = watcher(Api::<AuthServer>::all(client.clone()), config.clone())
        .default_backoff()
        .reflect(servers_writer)
        .touched_objects();
    let policies_changes = watcher(Api::<AuthPolicy>::all(client.clone()), config.clone())
        .default_backoff()
        .reflect(policies_writer)
        .touched_objects();
    let namespaces_changes = watcher(Api::<Namespace>::all(client.clone()), config.clone())
        .default_backoff()
        .reflect(namespaces_writer)
        .touched_objects();

    let ctx = Arc::new(Context::new(
        client.clone(),
        servers.clone(),
        policies.clone(),
        namespaces.clone(),
        operator_namespace,
    ));
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(serve(listen, Arc::clone(&ctx), Arc::clone(&ready)));

    let controller = Controller::new(Api::<AuthClient>::all(client.clone()), config.clone());
    let clients = controller.store();
    let owned = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let (for_servers, for_policies, for_namespaces) =
        (clients.clone(), clients.clone(), clients.clone());
    let mapper_ctx = Arc::clone(&ctx);
    let stores_ready = {
        let (servers, policies, namespaces, ready) = (
            servers.clone(),
            policies.clone(),
            namespaces.clone(),
            Arc::clone(&ready),
        );
        async move {
            let _ = servers.wait_until_ready().await;
            let _ = policies.wait_until_ready().await;
            let _ = namespaces.wait_until_ready().await;
            ready.store(true, Ordering::Release);
            tracing::info!("stores ready: reconciling");
        }
    };
    tokio::spawn(stores_ready);
    let summaries = Arc::new(Summaries {
        ctx: Arc::clone(&ctx),
        clients: clients.clone(),
    });
    let clients_run = controller
        .owns(Api::<Secret>::all(client.clone()), owned)
        .watches_stream(servers_changes, move |server| {
            clients_of_server(&for_servers, &ObjectRef::of(&server))
        })
        .watches_stream(policies_changes, move |policy| {
            clients_of_policy(&for_policies, &mapper_ctx, &ObjectRef::of(&policy))
        })
        .watches_stream(namespaces_changes, move |namespace| {
            let name = namespace.metadata.name.clone().unwrap_or_default();
            clients_in_namespace(&for_namespaces, &name)
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(log_result);
    // Server and policy status follow their clients: a client's change re-summarises its
    // server and the policies recorded in its status.
    let servers_run = Controller::new(Api::<AuthServer>::all(client.clone()), config.clone())
        .watches(
            Api::<AuthClient>::all(client.clone()),
            config.clone(),
            |client| {
                let server = server_of(&client);
                Some(StoreRef::<AuthServer>::new(&server.name).within(&server.namespace))
            },
        )
        .shutdown_on_signal()
        .run(reconcile_server, summary_error, Arc::clone(&summaries))
        .for_each(log_result);
    let policies_run = Controller::new(Api::<AuthPolicy>::all(client.clone()), config.clone())
        .watches(Api::<AuthClient>::all(client), config, |client| {
            client
                .status
                .map(|status| status.applied_policies)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|policy| {
                    let (namespace, name) = policy.split_once('/')?;
                    Some(StoreRef::<AuthPolicy>::new(name).within(namespace))
                })
        })
        .shutdown_on_signal()
        .run(reconcile_policy, summary_error, summaries)
        .for_each(log_result);
    futures::join!(clients_run, servers_run, policies_run);
    Ok(())
}

async fn log_result<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(error) = result {
        tracing::debug!(%error, "controller");
    }
}

/// Says plainly when the CRDs are missing, instead of retrying a 404 forever.
async fn check_crds(client: &Client) -> color_eyre::Result<()> {
    let api: Api<AuthClient> = Api::all(client.clone());
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 404 => Err(color_eyre::eyre::eyre!(
            "the Nauthera CRDs are not installed in this cluster: kubectl apply --server-side -f crds/"
        )),
        Err(error) => Err(color_eyre::eyre::eyre!("cannot list AuthClients: {error}")),
    }
}

fn store_ref(client: &AuthClient) -> StoreRef<AuthClient> {
    StoreRef::from_obj(client)
}

fn server_of(client: &AuthClient) -> ObjectRef {
    let reference = &client.spec.auth_server_ref;
    let namespace = reference
        .namespace
        .clone()
        .or_else(|| client.meta().namespace.clone())
        .unwrap_or_default();
    ObjectRef::new(namespace, reference.name.clone())
}

/// The clients that name `server`.
pub fn clients_of_server(
    clients: &Store<AuthClient>,
    server: &ObjectRef,
) -> Vec<StoreRef<AuthClient>> {
    clients
        .state()
        .iter()
        .filter(|client| &server_of(client) == server)
        .map(|client| store_ref(client))
        .collect()
}

/// The clients a policy may now govern (their server selects it) and those it governed
/// (recorded in their status): a narrowed selector must release clients too.
pub fn clients_of_policy(
    clients: &Store<AuthClient>,
    ctx: &Context,
    policy: &ObjectRef,
) -> Vec<StoreRef<AuthClient>> {
    let evaluator = ctx.evaluator();
    let servers: Vec<ObjectRef> = evaluator.servers_selecting(policy).cloned().collect();
    let name = policy.to_string();
    clients
        .state()
        .iter()
        .filter(|client| {
            servers.contains(&server_of(client))
                || client
                    .status
                    .as_ref()
                    .is_some_and(|status| status.applied_policies.contains(&name))
        })
        .map(|client| store_ref(client))
        .collect()
}

/// The clients of a namespace whose labels changed: trust and selectors may differ now.
pub fn clients_in_namespace(
    clients: &Store<AuthClient>,
    namespace: &str,
) -> Vec<StoreRef<AuthClient>> {
    clients
        .state()
        .iter()
        .filter(|client| client.meta().namespace.as_deref() == Some(namespace))
        .map(|client| store_ref(client))
        .collect()
}

#[derive(Clone)]
struct Shared {
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
}

/// `/metrics` (Prometheus text), `/healthz` (alive), `/readyz` (stores synced).
async fn serve(listen: SocketAddr, ctx: Arc<Context>, ready: Arc<AtomicBool>) {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(shared): State<Shared>| async move { shared.ctx.metrics.render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(shared): State<Shared>| async move {
                if shared.ready.load(Ordering::Acquire) {
                    (StatusCode::OK, "ready")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "syncing servers, policies and namespaces",
                    )
                }
            }),
        )
        .with_state(Shared { ctx, ready });
    match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => {
            tracing::info!(%listen, "serving /metrics, /healthz, /readyz");
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the HTTP server stopped");
            }
        }
        Err(error) => tracing::error!(%listen, %error, "cannot listen for /metrics and health"),
    }
}
