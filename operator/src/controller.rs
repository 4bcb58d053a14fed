//! Wiring, in the order a start-up must happen: the CRDs are there; every watch fills
//! its store; the operator's namespace exists; the admission webhook serves (on every
//! replica); this instance leads (the lease renewed in a task of its own from then on);
//! the journal is settled; then the AuthClient controller, the status summaries and the
//! webhook's configuration run — until a signal (in-flight reconciles given
//! a few seconds, the journal settled, the lease released) or a lost lease (exit at once,
//! a successor takes over).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use color_eyre::eyre::{Result, bail, eyre};
use futures::StreamExt;
use kube::api::ListParams;
use kube::runtime::Controller;
use kube::runtime::controller::Config;
use kube::runtime::reflector::ObjectRef as StoreRef;
use kube::{Api, Client};
use nauthera_shared::resources::AuthClient;
use tokio::sync::watch;

use crate::context::{Context, Settings};
use crate::leader::{Elector, Held, LeaseSettings, Lost};
use crate::reconcile::{error_policy, reconcile};
use crate::watch::Watches;
use crate::webhook::WebhookSettings;

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub settings: Settings,
    pub listen: SocketAddr,
    /// How many clients are reconciled at once.
    pub concurrency: u16,
    /// How long in-flight reconciles get to finish after a signal.
    pub grace: Duration,
    /// The leader lease; `None` runs without election (one instance only).
    pub lease: Option<LeaseSettings>,
    /// The admission webhook; `None`: not served.
    pub webhook: Option<WebhookSettings>,
}

/// Runs the operator until a signal says stop.
pub async fn run(client: Client, options: Options) -> Result<()> {
    let shutdown = Shutdown::listen();
    check_crds(&client).await?;
    let webhook = bind_webhook(options.webhook.clone()).await?;
    let Watches { stores, triggers } = crate::watch::start(&client);
    let ctx = Arc::new(Context::new(
        client.clone(),
        stores,
        options.settings.clone(),
    )?);
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(serve(options.listen, Arc::clone(&ctx), Arc::clone(&ready)));

    tokio::select! {
        () = wait_for_stores(&ctx) => {}
        () = shutdown.requested() => return Ok(()),
    }
    let namespace = &options.settings.operator_namespace;
    if !ctx.can_record() {
        bail!(
            "the operator's namespace {namespace:?} does not exist (or is being deleted): registration records are kept there. Create it (kubectl apply -f deploy/operator.yaml creates nauthera-system), or pass --namespace NAME"
        );
    }
    ready.store(true, Ordering::Release);
    tracing::info!("stores ready");
    // Every replica serves the webhook from its warm stores; the leader also writes its
    // configuration.
    let (leading, leading_seen) = watch::channel(false);
    if let Some((webhook, tcp)) = webhook {
        tokio::spawn(crate::webhook::run(
            Arc::clone(&ctx),
            webhook,
            tcp,
            leading_seen,
        ));
    }

    let elector = options
        .lease
        .clone()
        .map(|lease| Arc::new(Elector::new(client.clone(), lease)));
    let held = match &elector {
        None => None,
        Some(elector) => tokio::select! {
            held = elector.acquire() => Some(held),
            () = shutdown.requested() => return Ok(()),
        },
    };
    // Renewed from now on, in a task of its own: whatever the rest is waiting for, a
    // lease not renewed in time ends leading before anyone else may take over.
    let mut renewing = Renewing::start(elector.as_ref(), held);
    ctx.metrics.leader.set(1);
    leading.send_replace(true);
    // Settling the journal can take a while (provider calls, retried): it runs under the
    // lease, and a signal stops it (what is left stays journalled, for the next start).
    let recovered = tokio::select! {
        () = crate::register::recover_journal(&ctx) => None,
        () = shutdown.requested() => Some(Ending::Signal),
        lost = renewing.lost() => Some(Ending::Lost(lost)),
    };
    let ending = if let Some(ending) = recovered {
        ending
    } else {
        let (ending, controller) = lead(&ctx, &options, triggers, &shutdown, &mut renewing).await;
        wind_down(ending, controller, options.grace, &mut renewing).await
    };
    let ending = match ending {
        // The pod's journal goes with it: what reconciles left in it is settled now,
        // still under the lease, within bounds.
        Ending::Signal => tokio::select! {
            settled = tokio::time::timeout(SETTLE_WITHIN, crate::register::recover_journal(&ctx)) => {
                if settled.is_err() {
                    tracing::warn!(within = ?SETTLE_WITHIN, "could not settle the journal in time; what is left stays in it");
                }
                Ending::Signal
            }
            lost = renewing.lost() => Ending::Lost(lost),
        },
        other => other,
    };
    renewing.stop();
    ctx.metrics.leader.set(0);
    leading.send_replace(false);
    match ending {
        Ending::Signal => {
            if let Some(elector) = &elector {
                elector.release().await;
            }
            tracing::info!("stopped");
            Ok(())
        }
        Ending::Lost(lost) => Err(eyre!("stopped leading: {lost}")),
        Ending::ControllerStopped => Err(eyre!("the AuthClient controller stopped unexpectedly")),
    }
}

/// The webhook's address, bound first: one that cannot be served fails the start, not a
/// task later.
async fn bind_webhook(
    webhook: Option<WebhookSettings>,
) -> Result<Option<(WebhookSettings, tokio::net::TcpListener)>> {
    let Some(webhook) = webhook else {
        return Ok(None);
    };
    match crate::webhook::bind(&webhook).await {
        Ok(tcp) => Ok(Some((webhook, tcp))),
        Err(error) => Err(eyre!(
            "cannot serve the admission webhook on --webhook-listen {}: {error}",
            webhook.listen
        )),
    }
}

/// How long settling the journal may take on shutdown, after `--grace`: within the
/// pod's termination grace period (30 s in deploy/operator.yaml) with the rest.
const SETTLE_WITHIN: Duration = Duration::from_secs(10);

/// The AuthClient controller and the status summaries, until a signal, a lost lease or
/// the controller's end; then the controller is told to stop (returned with its task, to
/// be given the grace) and the rest is stopped.
async fn lead(
    ctx: &Arc<Context>,
    options: &Options,
    triggers: crate::watch::Triggers,
    shutdown: &Shutdown,
    renewing: &mut Renewing,
) -> (Ending, (Stop, tokio::task::JoinHandle<()>)) {
    tracing::info!(concurrency = options.concurrency, resync = ?options.settings.resync, "leading: reconciling every AuthClient");
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let (queue, queued) = futures::channel::mpsc::unbounded();
    triggers.connect(queue.clone());
    // Leading starts with every client; changes follow through the triggers.
    for client in ctx.stores.clients.state() {
        let _ = queue.unbounded_send(client);
    }
    let controller = Controller::for_shared_stream(queued, ctx.stores.clients.clone())
        .with_config(Config::default().concurrency(options.concurrency))
        .graceful_shutdown_on(async {
            let _ = stopped.await;
        })
        .run(reconcile, error_policy, Arc::clone(ctx))
        .for_each(log_result);
    let mut controller = tokio::spawn(controller);
    let nudges = Arc::clone(&ctx.stores.summaries);
    let summaries = tokio::spawn(crate::summaries::run(Arc::clone(ctx), nudges));
    let ending = tokio::select! {
        () = shutdown.requested() => Ending::Signal,
        lost = renewing.lost() => Ending::Lost(lost),
        _ = &mut controller => Ending::ControllerStopped,
    };
    triggers.disconnect();
    summaries.abort();
    (ending, (stop, controller))
}

/// Tells the controller to stop and gives in-flight reconciles `grace` after a signal,
/// a second after a lost lease (another instance may lead at any moment); then abandons
/// them. A lease lost meanwhile ends it at once.
async fn wind_down(
    ending: Ending,
    (stop, mut controller): (Stop, tokio::task::JoinHandle<()>),
    grace: Duration,
    renewing: &mut Renewing,
) -> Ending {
    let _ = stop.send(());
    let grace = match ending {
        Ending::Signal => grace,
        Ending::Lost(_) | Ending::ControllerStopped => Duration::from_secs(1),
    };
    let abandon = controller.abort_handle();
    let finished = async {
        if tokio::time::timeout(grace, &mut controller).await.is_err() {
            tracing::warn!(
                ?grace,
                "in-flight reconciles did not finish in time; abandoning them (each resumes from its record on the next start)"
            );
        }
    };
    let ending = match ending {
        Ending::Signal => tokio::select! {
            () = finished => Ending::Signal,
            lost = renewing.lost() => Ending::Lost(lost),
        },
        Ending::Lost(lost) => {
            finished.await;
            Ending::Lost(lost)
        }
        // Its task has ended already.
        Ending::ControllerStopped => Ending::ControllerStopped,
    };
    abandon.abort();
    ending
}

type Stop = futures::channel::oneshot::Sender<()>;

/// The lease, renewed in its own task until lost; without election, never lost.
struct Renewing(Option<tokio::task::JoinHandle<Lost>>);

impl Renewing {
    fn start(elector: Option<&Arc<Elector>>, held: Option<Held>) -> Self {
        Self(elector.zip(held).map(|(elector, held)| {
            let elector = Arc::clone(elector);
            tokio::spawn(async move { elector.hold(held).await })
        }))
    }

    /// Resolves when the lease is lost. Not to be awaited again once it resolved.
    async fn lost(&mut self) -> Lost {
        match &mut self.0 {
            Some(task) => match task.await {
                Ok(lost) => lost,
                Err(error) => Lost::Stopped(error.to_string()),
            },
            None => std::future::pending().await,
        }
    }

    /// Stops renewing (the lease is released, or expires on its own).
    fn stop(self) {
        if let Some(task) = self.0 {
            task.abort();
        }
    }
}

/// Why the operator stopped leading.
enum Ending {
    Signal,
    Lost(crate::leader::Lost),
    ControllerStopped,
}

/// Waits for every store, saying which ones it is still waiting for.
async fn wait_for_stores(ctx: &Context) {
    let waiting = async {
        let mut interval = tokio::time::interval(Duration::from_secs(10));
        interval.tick().await;
        loop {
            interval.tick().await;
            tracing::info!(pending = ?ctx.stores.pending(), "waiting for the first listing of every kind (see earlier warnings for why)");
        }
    };
    tokio::select! {
        () = ctx.stores.ready() => {}
        () = waiting => {}
    }
}

/// SIGTERM or Ctrl-C: the first asks for a graceful stop; a second exits at once.
#[derive(Clone)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn listen() -> Self {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                signal().await;
                count += 1;
                if count == 1 {
                    tracing::info!("signal received: stopping (a second signal exits at once)");
                    let _ = sender.send(true);
                } else {
                    tracing::warn!("second signal: exiting now");
                    std::process::exit(130);
                }
            }
        });
        Self(receiver)
    }

    async fn requested(&self) {
        let mut receiver = self.0.clone();
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn log_result<E: std::fmt::Display>(
    result: Result<(StoreRef<AuthClient>, kube::runtime::controller::Action), E>,
) {
    if let Err(error) = result {
        tracing::debug!(%error, "controller");
    }
}

/// Says plainly when the CRDs are missing, instead of retrying a 404 forever.
async fn check_crds(client: &Client) -> Result<()> {
    let api: Api<AuthClient> = Api::all(client.clone());
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 404 => Err(eyre!(
            "the Nauthera CRDs are not installed in this cluster: kubectl apply --server-side -f crds/"
        )),
        Err(error) => Err(eyre!("cannot list AuthClients: {error}")),
    }
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
                    (StatusCode::OK, "ready".to_owned())
                } else {
                    let pending = shared.ctx.stores.pending().join(", ");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("waiting for the first listing of: {pending}"),
                    )
                }
            }),
        )
        .with_state(Shared { ctx, ready });
    match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => {
            let address = listener.local_addr().map_or(listen, |a| a);
            tracing::info!(listen = %address, "serving /metrics, /healthz, /readyz");
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the HTTP server stopped");
            }
        }
        Err(error) => tracing::error!(%listen, %error, "cannot listen for /metrics and health"),
    }
}
