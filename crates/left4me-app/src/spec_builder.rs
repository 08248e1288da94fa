//! From a blueprint and a server to the host's spec, and the `server.cfg`
//! preview users see while editing a blueprint.

use left4me_host::layer::OverlayPath;
use left4me_host::name::InstanceName;
use left4me_host::spec::{Alias, OverlayRef, Port, Spec};
use left4me_store::{Blueprint, BlueprintOverlay, Server};

/// The instance behind a server. Stable across renames.
pub fn instance_name(server_id: i64) -> InstanceName {
    InstanceName::parse(&format!("server-{server_id}"))
        .expect("server-<id> is a valid instance name")
}

/// Asks the host about the servers `ids` (as their instances) on a
/// blocking thread: the supervisor may run `systemctl`. The one way the
/// panel puts questions to the host from async code.
pub async fn ask_host<T: Send + 'static>(
    host: &std::sync::Arc<left4me_host::lifecycle::Host>,
    ids: &[i64],
    ask: impl FnOnce(&left4me_host::lifecycle::Host, &[InstanceName]) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let host = std::sync::Arc::clone(host);
    let names: Vec<InstanceName> = ids.iter().map(|id| instance_name(*id)).collect();
    tokio::task::spawn_blocking(move || ask(&host, &names)).await
}

/// The overlay directory name below `overlays/`.
pub fn overlay_path(overlay_id: i64) -> OverlayPath {
    OverlayPath::parse(&overlay_id.to_string()).expect("a number is a valid overlay path")
}

fn alias(overlay_id: i64) -> Alias {
    Alias::parse(&format!("overlay_{overlay_id}")).expect("overlay_<id> is a valid alias")
}

/// The `exec` lines for exposed overlays, lowest overlay first so the
/// overlay listed first (which wins for files) also has the last word on
/// cvars.
pub fn exec_lines(overlays: &[BlueprintOverlay]) -> Vec<String> {
    overlays
        .iter()
        .rev()
        .filter(|o| o.expose_server_cfg)
        .map(|o| format!("exec server_overlay_{}", o.overlay_id))
        .collect()
}

/// Every line of the `server.cfg` a server gets: exec lines, the
/// blueprint's config, then the server's hostname and RCON password last.
pub fn server_cfg_lines(
    config: &str,
    overlays: &[BlueprintOverlay],
    hostname: &str,
    rcon_password: &str,
) -> Vec<String> {
    let mut lines = exec_lines(overlays);
    lines.extend(config.lines().map(|l| l.trim_end().to_owned()));
    lines.push(format!("hostname \"{hostname}\""));
    lines.push(format!("rcon_password \"{rcon_password}\""));
    lines
}

/// The spec a server runs with.
pub fn build_spec(
    server: &Server,
    blueprint: &Blueprint,
    overlays: &[BlueprintOverlay],
) -> Result<Spec, String> {
    let port = u16::try_from(server.port)
        .map_err(|_| format!("port {} is out of range", server.port))
        .and_then(Port::new)?;
    let arguments = crate::domain::parse_arguments(&blueprint.arguments)
        .map_err(|e| format!("the blueprint's launch arguments: {e}"))?;
    let config = server_cfg_lines(
        &blueprint.config,
        overlays,
        &server.hostname,
        server.rcon_password.expose(),
    );
    let overlays = overlays
        .iter()
        .map(|o| OverlayRef {
            path: overlay_path(o.overlay_id),
            alias: o.expose_server_cfg.then(|| alias(o.overlay_id)),
        })
        .collect();
    Spec::new(port, arguments, config, overlays).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bo(id: i64, expose: bool) -> BlueprintOverlay {
        BlueprintOverlay {
            overlay_id: id,
            name: format!("o{id}"),
            position: id,
            expose_server_cfg: expose,
        }
    }

    #[test]
    fn preview_orders_exec_lines_lowest_first_and_secrets_last() {
        let lines = server_cfg_lines(
            "sv_cheats 0\nmp_gamemode coop",
            &[bo(3, true), bo(5, false), bo(7, true)],
            "Friends",
            "pw",
        );
        assert_eq!(
            lines,
            [
                "exec server_overlay_7",
                "exec server_overlay_3",
                "sv_cheats 0",
                "mp_gamemode coop",
                "hostname \"Friends\"",
                "rcon_password \"pw\"",
            ]
        );
    }
}
