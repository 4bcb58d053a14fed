//! The interactive dashboard: the terminal, the one event loop, and the source beside it.

use std::io::{self, Stdout};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::app::{App, Effect, Message};
use crate::editor::commit::{self, CommitError};
use crate::editor::{CommitRequest, CommitTarget, PlanRequest, PlanResult};
use crate::model::{ObjectEvents, Reach, Snapshot, SourceKind};
use crate::source::{SourceEvent, cluster, events, folder};
use crate::ui;
use crate::view::{self, Job};
use k8s_openapi::jiff::Timestamp;
use nauthera_shared::resources::ObjectRef;

/// How often change marks are checked for expiry.
const TICK: Duration = Duration::from_millis(250);

/// What to read, as the command line said.
pub enum Source {
    Folder(PathBuf),
    Cluster {
        context: Option<String>,
        /// `None` with `all_namespaces`: every namespace; else the context's own.
        namespace: Option<String>,
        all_namespaces: bool,
    },
}

/// Keeps a source alive; dropping it stops the source.
enum Running {
    /// The watcher stops following the folder when dropped.
    Folder(#[allow(dead_code)] Option<notify::RecommendedWatcher>),
    Cluster(tokio::task::JoinHandle<()>),
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Self::Cluster(task) = self {
            task.abort();
        }
    }
}

/// Runs the dashboard until the user quits. `namespace` scopes the view from the start.
/// With `readonly`, the editor previews but never commits.
pub async fn run(
    source: Source,
    namespace: Option<String>,
    readonly: bool,
) -> color_eyre::Result<()> {
    let (sender, receiver) = unbounded_channel();
    let (kind, namespace) = match &source {
        Source::Folder(path) => (SourceKind::Folder(path.clone()), namespace),
        Source::Cluster {
            context, namespace, ..
        } => (
            SourceKind::Cluster {
                context: context.clone().unwrap_or_else(|| "(current)".to_owned()),
            },
            namespace.clone(),
        ),
    };
    let mut app = App::new(kind, namespace);
    app.readonly = readonly;
    let mut running = start(&source, &sender, &mut app);
    let mut terminal = enter()?;
    let result = event_loop(
        &mut terminal,
        &mut app,
        &source,
        &sender,
        receiver,
        &mut running,
    )
    .await;
    leave();
    result
}

fn start(source: &Source, sender: &UnboundedSender<SourceEvent>, app: &mut App) -> Running {
    match source {
        Source::Folder(path) => {
            let watcher = match folder::watch(path.clone(), sender.clone()) {
                Ok(watcher) => Some(watcher),
                Err(error) => {
                    app.message = Some(Message {
                        text: format!("not following changes on disk: {error}"),
                        error: true,
                    });
                    None
                }
            };
            let (path, sender) = (path.clone(), sender.clone());
            tokio::task::spawn_blocking(move || {
                let mut snapshot = folder::read(&path);
                snapshot.first = true;
                let _ = sender.send(SourceEvent::read(snapshot));
            });
            Running::Folder(watcher)
        }
        Source::Cluster {
            context,
            namespace,
            all_namespaces,
        } => Running::Cluster(start_cluster(
            context.clone(),
            namespace.clone(),
            *all_namespaces,
            sender.clone(),
        )),
    }
}

fn start_cluster(
    context: Option<String>,
    namespace: Option<String>,
    all_namespaces: bool,
    sender: UnboundedSender<SourceEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match cluster::connect(context.as_deref()).await {
            Ok(connection) => {
                let namespace = if all_namespaces {
                    None
                } else {
                    Some(namespace.unwrap_or_else(|| connection.default_namespace.clone()))
                };
                let _ = sender.send(SourceEvent::Connected {
                    context: connection.context.clone(),
                    default_namespace: namespace.clone().unwrap_or_default(),
                });
                // The watch runs until aborted with this task.
                let _ = cluster::watch(connection.client, namespace, sender).await;
            }
            Err(problem) => {
                let mut snapshot = Snapshot::new(nauthera_shared::Inventory::default(), true);
                snapshot.problems.push(problem);
                snapshot.first = true;
                let _ = sender.send(SourceEvent::read(snapshot));
            }
        }
    })
}

/// What runs beside the UI (the source, the workers, commits) and how to reach it.
struct Background<'a> {
    source: &'a Source,
    context: Option<String>,
    sources: &'a UnboundedSender<SourceEvent>,
    running: &'a mut Running,
    plans: std::sync::mpsc::Sender<PlanRequest>,
    views: std::sync::mpsc::Sender<Job>,
    commits_done: UnboundedSender<Result<String, CommitError>>,
    reaches_done: UnboundedSender<(Result<Reach, String>, Option<CommitRequest>)>,
    /// The client whose Events are watched, and the watch.
    events_for: Option<(ObjectRef, tokio::task::JoinHandle<()>)>,
    events_read: UnboundedSender<ObjectEvents>,
}

impl Background<'_> {
    /// Watches the Events of the client the app wants (the selected one), and only it.
    fn follow_events(&mut self, app: &mut App) {
        let wanted = app.events_wanted();
        if self.events_for.as_ref().map(|(object, _)| object) == wanted.as_ref() {
            return;
        }
        if let Some((_, watch)) = self.events_for.take() {
            watch.abort();
        }
        app.events = None;
        self.events_for = wanted.map(|object| {
            let watch = events::watch(
                self.context.clone(),
                object.clone(),
                self.events_read.clone(),
            );
            (object, watch)
        });
    }

    /// Carries out what the app asked for; returns whether to quit.
    fn carry_out(&mut self, effect: Effect, app: &mut App) -> bool {
        match effect {
            Effect::None => {}
            Effect::Quit => return true,
            Effect::Plan(request) => {
                let _ = self.plans.send(request);
            }
            Effect::Commit(request) => spawn_commit(request, self.commits_done.clone()),
            Effect::ReadReach {
                context,
                hints,
                commit,
            } => {
                let done = self.reaches_done.clone();
                tokio::spawn(async move {
                    let reach = match cluster::connect(Some(&context)).await {
                        Ok(connection) => cluster::read_reach(connection.client, &hints).await,
                        Err(problem) => Err(problem),
                    };
                    let _ = done.send((reach, commit));
                });
            }
            Effect::SwitchContext(new_context) => {
                self.context = Some(new_context.clone());
                if let Some((_, watch)) = self.events_for.take() {
                    watch.abort();
                }
                app.source = SourceKind::Cluster {
                    context: new_context,
                };
                app.world = None;
                *self.running = Running::Cluster(start_cluster(
                    self.context.clone(),
                    app.namespace.clone(),
                    app.namespace.is_none(),
                    self.sources.clone(),
                ));
            }
            Effect::SwitchNamespace(namespace) => {
                if let Source::Cluster { .. } = self.source {
                    *self.running = Running::Cluster(start_cluster(
                        self.context.clone(),
                        namespace.clone(),
                        namespace.is_none(),
                        self.sources.clone(),
                    ));
                }
            }
        }
        false
    }
}

/// A terminal event, as the app sees it; `None` when it changes nothing on screen.
fn terminal_event(app: &mut App, event: &Event) -> Option<Effect> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => Some(app.handle_key(*key)),
        Event::Mouse(mouse) => {
            match mouse.kind {
                MouseEventKind::ScrollDown => app.scroll(true),
                MouseEventKind::ScrollUp => app.scroll(false),
                _ => {}
            }
            Some(Effect::None)
        }
        Event::Resize(..) => Some(Effect::None),
        _ => None,
    }
}

async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    source: &Source,
    sender: &UnboundedSender<SourceEvent>,
    mut receiver: UnboundedReceiver<SourceEvent>,
    running: &mut Running,
) -> color_eyre::Result<()> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut terminate = terminate_signal()?;
    let (plans, mut plans_made) = planner_worker();
    let (views, mut views_prepared) = view::worker();
    let (commits_done, mut commit_results) = unbounded_channel();
    let (reaches_done, mut reaches) = unbounded_channel();
    let (events_read, mut events_received) = unbounded_channel();
    let mut background = Background {
        source,
        context: match source {
            Source::Cluster { context, .. } => context.clone(),
            Source::Folder(_) => None,
        },
        sources: sender,
        running,
        plans,
        views,
        commits_done,
        reaches_done,
        events_for: None,
        events_read,
    };
    let mut redraw = true;
    loop {
        if redraw {
            terminal.draw(|frame| ui::draw(frame, app))?;
            redraw = false;
        }
        let effect = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => terminal_event(app, &event),
                Some(Err(error)) => return Err(error.into()),
                None => Some(Effect::Quit),
            },
            Some(first) = receiver.recv() => {
                // Take everything already waiting, then draw once.
                receive(app, first, &background.views);
                while let Ok(next) = receiver.try_recv() {
                    receive(app, next, &background.views);
                }
                Some(Effect::None)
            },
            Some(prepared) = views_prepared.recv() => {
                let retired = app.take_view(prepared, Instant::now());
                let _ = background.views.send(Job::Retire(retired));
                Some(Effect::None)
            },
            Some(plan) = plans_made.recv() => {
                app.plan_ready(plan);
                Some(Effect::None)
            },
            Some(result) = commit_results.recv() => {
                app.commit_finished(result);
                Some(Effect::None)
            },
            Some((reach, commit)) = reaches.recv() => Some(app.reach_read(reach, commit)),
            Some(read) = events_received.recv() => {
                app.events_read(read);
                Some(Effect::None)
            },
            _ = tick.tick() => {
                let expired = app.expire_marks(Instant::now());
                let ticked = app.set_now(Timestamp::now());
                (expired || ticked).then_some(Effect::None)
            },
            _ = tokio::signal::ctrl_c() => Some(Effect::Quit),
            _ = terminate.recv() => Some(Effect::Quit),
        };
        if let Some(effect) = effect {
            redraw = true;
            if background.carry_out(effect, app) {
                return Ok(());
            }
            background.follow_events(app);
        }
    }
}

/// Plans the editor's text on a thread of its own, always the newest text first: typing
/// never waits, and a burst of keystrokes costs one plan.
fn planner_worker() -> (
    std::sync::mpsc::Sender<PlanRequest>,
    UnboundedReceiver<PlanResult>,
) {
    let (requests, incoming) = std::sync::mpsc::channel::<PlanRequest>();
    let (results, outgoing) = unbounded_channel();
    std::thread::Builder::new()
        .name("planner".to_owned())
        .spawn(move || {
            while let Ok(mut request) = incoming.recv() {
                while let Ok(newer) = incoming.try_recv() {
                    request = newer;
                }
                if results.send(request.plan()).is_err() {
                    return;
                }
            }
        })
        .expect("a thread for the planner");
    (requests, outgoing)
}

fn spawn_commit(request: CommitRequest, done: UnboundedSender<Result<String, CommitError>>) {
    tokio::spawn(async move {
        let result = match &request.target {
            CommitTarget::Folder { .. } => {
                let request = request.clone();
                tokio::task::spawn_blocking(move || commit::to_folder(&request))
                    .await
                    .unwrap_or_else(|error| Err(CommitError::Refused(error.to_string())))
            }
            CommitTarget::Cluster { context, .. } => match cluster::connect(Some(context)).await {
                Ok(connection) => commit::to_cluster(connection.client, &request).await,
                Err(problem) => Err(CommitError::Refused(problem)),
            },
        };
        let _ = done.send(result);
    });
}

/// Takes a source's news; a read goes to the view worker, which prepares it for the screen.
fn receive(app: &mut App, event: SourceEvent, views: &std::sync::mpsc::Sender<Job>) {
    match event {
        SourceEvent::Read(world) => {
            let _ = views.send(Job::Prepare(Box::new(app.view_request(*world))));
        }
        SourceEvent::Connected {
            context,
            default_namespace,
        } => {
            app.source = SourceKind::Cluster { context };
            app.namespace = (!default_namespace.is_empty()).then_some(default_namespace);
        }
    }
}

#[cfg(unix)]
fn terminate_signal() -> io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
}

/// Raw mode, the alternate screen and the mouse; a panic hook that gives the terminal
/// back before the report is printed.
fn enter() -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        report(info);
    }));
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Gives the terminal back as it was. Safe to call twice.
fn leave() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}
