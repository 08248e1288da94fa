//! The left4me web panel: the HTTP surface over `left4me-app`.
//!
//! [`launch_with_listener`] runs the panel on a bound listener until a
//! shutdown signal: the application and its background work, the HTTP
//! server, and on shutdown the jobs are wound down (running ones marked
//! interrupted; servers keep running).

mod api;
pub mod auth;
mod charts;
pub mod error;
mod observe;
mod pages;
mod responses;
mod routes;
pub mod state;

pub use left4me_app::ops::access;
pub use left4me_app::{
    Launch, backups, config, domain, job_control, live, open_store, restore, runner, scripts,
};

use std::future::Future;
use std::net::SocketAddr;

use left4me_app::App;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Start(#[from] left4me_app::LaunchError),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("making the setup link: {}", .0.chain())]
    Setup(left4me_app::error::OpError),
    #[error("listening for metrics on {addr} (metrics_listen): {error}")]
    Metrics {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Runs the panel on `listener` until `shutdown` resolves.
pub async fn launch_with_listener(
    config: Config,
    launch: Launch,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let addr = listener.local_addr().map_err(LaunchError::Serve)?;
    let public_url = config.public_url.clone();
    // Bound before anything starts: a taken address stops the panel at
    // once, with nothing begun.
    let metrics_listener = match config.metrics_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .map_err(|error| LaunchError::Metrics { addr: at, error })?,
        ),
        None => None,
    };
    let (app, background) = App::start(config, launch).await?;
    let setup = left4me_app::ops::sessions::setup_token_if_needed(&app)
        .await
        .map_err(LaunchError::Setup)?;
    if let Some(token) = setup {
        // On stdout, so it reaches the journal (and tests) plainly.
        println!(
            "left4me: no users yet. Create the first admin at {}",
            auth::setup_url(public_url.as_ref(), addr, token.expose())
        );
    }
    let stopping = app.shutdown().clone();
    let metrics_listen = app.config().metrics_listen;
    let state = AppState::new(app);
    let metrics = match metrics_listener.zip(metrics_listen) {
        Some((listener, at)) => {
            tracing::info!("metrics on http://{at}/metrics");
            let router = routes::metrics::router(state.clone());
            let stopping = stopping.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopping.cancelled_owned())
                    .await
            }))
        }
        None => None,
    };
    let router = routes::router(state);
    tracing::info!("listening on http://{addr}");
    // Under systemd (Type=notify) the start finishes here, migrations done
    // and the socket bound; without NOTIFY_SOCKET this does nothing.
    if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!("telling systemd the panel is ready: {error}");
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        // Ends the live streams, which would otherwise hold the shutdown.
        stopping.cancel();
    })
    .await
    .map_err(LaunchError::Serve)?;
    // The shutdown above cancelled `stopping`, which ends it too.
    if let Some(metrics) = metrics {
        match metrics.await {
            Ok(Err(e)) => tracing::warn!("serving the metrics: {e}"),
            Err(e) => tracing::warn!("serving the metrics: {e}"),
            Ok(Ok(())) => {}
        }
    }
    background.stop().await;
    Ok(())
}
