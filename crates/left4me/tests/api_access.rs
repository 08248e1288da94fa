//! Every API route against who may and may not use it. The table names
//! each route of the OpenAPI document with the scope it needs and whose
//! it is; for each route a token of the right user lacking only that
//! scope is refused, a stranger sees nothing, members whose role is too
//! low are refused, and the token with just that scope succeeds. A route
//! the document has and the table lacks fails the test.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::api::*;
use common::panel::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Whose a route is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Whose {
    /// Anyone's, about what is theirs (lists, making things).
    Anyone,
    /// The owner's private overlay, blueprint or job.
    Owners,
    /// A server's: its members from this role up, its owner and admins.
    Viewers,
    Operators,
    Managers,
    /// Admins acting as admins (a token with the admin scope).
    Admins,
    /// A signed-in browser session's: every token is refused.
    Session,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Route {
    method: Method,
    /// As the OpenAPI document writes it.
    template: &'static str,
    path: String,
    body: Body,
    /// The token scopes it needs, as the document says too.
    scopes: &'static [&'static str],
    whose: Whose,
    /// What the one it is for gets.
    ok: StatusCode,
    /// An event stream: only its status is read.
    stream: bool,
}

fn route(
    method: Method,
    template: &'static str,
    path: impl Into<String>,
    scopes: &'static [&'static str],
    whose: Whose,
    ok: StatusCode,
) -> Route {
    Route {
        method,
        template,
        path: path.into(),
        body: Body::None,
        scopes,
        whose,
        ok,
        stream: false,
    }
}

impl Route {
    fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    fn raw(mut self, body: Vec<u8>) -> Self {
        self.body = Body::Raw(body);
        self
    }

    fn stream(mut self) -> Self {
        self.stream = true;
        self
    }
}

/// Who calls: a token, or the owner's browser session (cookie and CSRF).
enum Caller<'a> {
    Token(&'a str),
    Session(&'a Client, &'a str),
}

/// Sends the route's request; the status and the body (`Null` for
/// streams and non-JSON answers).
async fn send(
    http: &reqwest::Client,
    base: &str,
    caller: Caller<'_>,
    r: &Route,
) -> (StatusCode, Value) {
    let url = format!("{base}/api/v1{}", r.path);
    let mut req = match caller {
        Caller::Token(token) => http.request(r.method.clone(), url).bearer_auth(token),
        Caller::Session(client, csrf) => client
            .http
            .request(r.method.clone(), url)
            .header("x-csrf-token", csrf),
    };
    req = match &r.body {
        Body::None => req,
        Body::Json(body) => req.json(body),
        Body::Raw(bytes) => req
            .header("content-type", "application/octet-stream")
            .body(bytes.clone()),
    };
    let res = tokio::time::timeout(Duration::from_secs(60), req.send())
        .await
        .expect("an answer within a minute")
        .unwrap();
    let status = res.status();
    if r.stream && status.is_success() {
        return (status, Value::Null);
    }
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const USER_SCOPES: [&str; 3] = ["read", "operate", "manage"];

/// A user's tokens, made as the table asks for them, one per set of
/// scopes.
struct Tokens<'a> {
    client: &'a Client,
    made: Vec<(Vec<&'static str>, String)>,
}

impl<'a> Tokens<'a> {
    fn of(client: &'a Client) -> Self {
        Self {
            client,
            made: Vec::new(),
        }
    }

    async fn with(&mut self, scopes: &[&'static str]) -> String {
        let mut scopes = scopes.to_vec();
        scopes.sort_unstable();
        if let Some((_, token)) = self.made.iter().find(|(s, _)| *s == scopes) {
            return token.clone();
        }
        let token = make_token(
            self.client,
            &format!("with {}", scopes.join(" ")),
            &scopes,
            &[],
        )
        .await;
        self.made.push((scopes, token.clone()));
        token
    }

    /// Every scope of a user but `scope`.
    async fn all_but(&mut self, scope: &str) -> String {
        let others: Vec<&'static str> = USER_SCOPES.into_iter().filter(|s| *s != scope).collect();
        self.with(&others).await
    }
}

/// The operations the served OpenAPI document lists, `METHOD /path`,
/// each with the token scopes it says it needs.
async fn documented(base: &str) -> BTreeMap<String, Vec<String>> {
    let doc: Value = reqwest::get(format!("{base}/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let mut scopes: Vec<String> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["token"].as_array())
                .flatten()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            scopes.sort_unstable();
            operations.insert(format!("{} {path}", method.to_uppercase()), scopes);
        }
    }
    operations
}

async fn json_id(bot: &Bot, path: &str, body: Value) -> i64 {
    let (status, made) = bot.post(path, body).await;
    assert!(status.is_success(), "{path}: {status} {made}");
    made["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{path}: {made}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_whom_it_must_and_serves_whom_it_is_for() {
    use workshop_sim::{SimItem, WorkshopSim};
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 20_001));
    sim.add_item(SimItem::vpk(2, 20_002));
    let mut app = App::spawn_configured(|config| {
        config.steam_api_url = sim.base_url();
        config.steam_api_retry_ms = 10;
    })
    .await;
    let base = app.url("");
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let owner = add_user(&app, &admin, "olive", "olive-password-1").await;
    let operator = add_user(&app, &admin, "opal", "opal-password-1").await;
    let viewer = add_user(&app, &admin, "vic", "vic-password-1").await;
    let stranger = add_user(&app, &admin, "sam", "sam-password-1").await;
    add_user(&app, &admin, "erin", "erin-password-1").await;
    add_user(&app, &admin, "dan", "dan-password-1").await;

    // The owner's things, made through the API itself.
    let full = Bot::new(&app, &make_token(&owner, "full", &USER_SCOPES, &[]).await);
    let root = Bot::new(
        &app,
        &make_token(&admin, "root", &["read", "manage", "admin"], &[]).await,
    );
    let blueprint = json_id(&full, "/blueprints", json!({"name": "Coop"})).await;
    let doomed_blueprint = json_id(&full, "/blueprints", json!({"name": "Old"})).await;
    let new_server = |name: &str| json!({"name": name, "hostname": name, "blueprint_id": blueprint, "port": free_port()});
    let server = json_id(&full, "/servers", new_server("alpha")).await;
    let doomed = json_id(&full, "/servers", new_server("omega")).await;
    let files = json_id(
        &full,
        "/overlays",
        json!({"name": "Configs", "kind": "files"}),
    )
    .await;
    let doomed_files = json_id(
        &full,
        "/overlays",
        json!({"name": "Scratch", "kind": "files"}),
    )
    .await;
    let workshop = json_id(
        &full,
        "/overlays",
        json!({"name": "Maps", "kind": "workshop"}),
    )
    .await;
    let (status, added) = full
        .post(&format!("/overlays/{workshop}/items"), json!({"ids": "1"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let script = json_id(
        &root,
        "/overlays",
        json!({"name": "Built", "kind": "script"}),
    )
    .await;
    let (_, users) = root.get("/users").await;
    let user_id = |name: &str| {
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (erin, dan) = (user_id("erin"), user_id("dan"));
    for (user, role) in [(user_id("opal"), "operator"), (user_id("vic"), "viewer")] {
        for id in [server, doomed] {
            let (status, _) = full
                .call(
                    Method::PUT,
                    &format!("/servers/{id}/members/{user}"),
                    Some(json!({ "role": role })),
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
    }
    let (status, stopped) = full
        .post(&format!("/servers/{server}/stop"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stopped}");
    let job = stopped["id"].as_i64().unwrap();
    make_token(&owner, "to revoke", &["read"], &[]).await;
    // The id of the first item of one of the owner's account lists that
    // `pick` chooses, read through their browser session.
    let owners_item = async |path: &'static str, pick: &dyn Fn(&Value) -> bool| {
        let csrf = owner.csrf("/account").await;
        let list = route(Method::GET, "", path, &[], Whose::Session, StatusCode::OK);
        let (status, list) = send(&full.http, &base, Caller::Session(&owner, &csrf), &list).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let item = list["items"].as_array().unwrap().iter().find(|i| pick(i));
        item.unwrap_or_else(|| panic!("{path}: {list}"))["id"]
            .as_i64()
            .unwrap()
    };
    let to_revoke = owners_item("/account/tokens", &|t| t["name"] == "to revoke").await;
    // A second session of the owner's, to end.
    let _laptop = app.login("olive", "olive-password-1").await;
    let other_session = owners_item("/account/sessions", &|s| s["current"] == false).await;

    use Whose::*;
    use reqwest::Method as M;
    let (ok, created, accepted, none) = (
        StatusCode::OK,
        StatusCode::CREATED,
        StatusCode::ACCEPTED,
        StatusCode::NO_CONTENT,
    );
    let s = server;
    let schedule_body = |name: &str| {
        json!({"name": name, "timing": "04:00", "time_zone": "Europe/Berlin",
               "plan": {"steps": [{"step": "wait", "seconds": 1}], "players": "ignore"}})
    };
    let schedule = json_id(
        &full,
        &format!("/servers/{s}/schedules"),
        schedule_body("nightly"),
    )
    .await;
    let settings = json!({"name": "alpha", "hostname": "Alpha", "blueprint_id": blueprint});
    let blueprint_body =
        json!({"name": "Coop", "config": "sv_cheats 0", "arguments": "", "overlays": []});
    // In order: what changes things comes after what reads them, and
    // what deletes last.
    let table = vec![
        route(M::GET, "/servers", "/servers", &["read"], Anyone, ok),
        route(M::POST, "/servers", "/servers", &["manage"], Anyone, created).json(new_server("beta")),
        route(M::GET, "/servers/{id}", format!("/servers/{s}"), &["read"], Viewers, ok),
        route(M::PUT, "/servers/{id}", format!("/servers/{s}"), &["manage"], Managers, ok).json(settings),
        route(M::POST, "/servers/{id}/{action}", format!("/servers/{s}/stop"), &["operate"], Operators, accepted),
        route(M::GET, "/servers/{id}/console", format!("/servers/{s}/console"), &["operate"], Operators, ok),
        route(M::POST, "/servers/{id}/console", format!("/servers/{s}/console"), &["operate"], Operators, ok)
            .json(json!({"command": "status"})),
        route(M::GET, "/servers/{id}/log", format!("/servers/{s}/log"), &["read"], Viewers, ok).stream(),
        route(M::GET, "/servers/{id}/files", format!("/servers/{s}/files"), &["read"], Operators, ok),
        // Not running: its tree is not mounted, which it says.
        route(M::GET, "/servers/{id}/file", format!("/servers/{s}/file?path=cfg/server.cfg"), &["read"], Operators, StatusCode::CONFLICT),
        route(M::GET, "/servers/{id}/activity", format!("/servers/{s}/activity"), &["read"], Operators, ok),
        route(M::PUT, "/servers/{id}/members/{user_id}", format!("/servers/{s}/members/{erin}"), &["manage"], Managers, none)
            .json(json!({"role": "viewer"})),
        route(M::DELETE, "/servers/{id}/members/{user_id}", format!("/servers/{s}/members/{erin}"), &["manage"], Managers, none),
        route(M::GET, "/servers/{id}/schedules", format!("/servers/{s}/schedules"), &["read"], Viewers, ok),
        route(M::POST, "/servers/{id}/schedules", format!("/servers/{s}/schedules"), &["manage"], Operators, created)
            .json(schedule_body("hourly")),
        route(M::GET, "/schedules/{id}", format!("/schedules/{schedule}"), &["read"], Viewers, ok),
        route(M::PUT, "/schedules/{id}", format!("/schedules/{schedule}"), &["manage"], Operators, ok)
            .json(schedule_body("nightly")),
        route(M::POST, "/schedules/{id}/run", format!("/schedules/{schedule}/run"), &["manage"], Operators, accepted),
        route(M::GET, "/backups", "/backups", &["read", "admin"], Admins, ok),
        route(M::POST, "/backups", "/backups", &["admin"], Admins, accepted),
        route(M::POST, "/backups/check", "/backups/check", &["admin"], Admins, accepted),
        route(M::POST, "/servers/{id}/restore", format!("/servers/{s}/restore"), &["manage", "admin"], Admins, StatusCode::NOT_FOUND)
            .json(json!({"backup_id": 999_999})),
        route(M::POST, "/overlays/{id}/restore", format!("/overlays/{files}/restore"), &["manage", "admin"], Admins, StatusCode::NOT_FOUND)
            .json(json!({"backup_id": 999_999})),
        route(M::GET, "/schedules", "/schedules", &["read", "admin"], Admins, ok),
        route(M::POST, "/schedules", "/schedules", &["admin"], Admins, created).json(schedule_body("panel")),
        route(M::GET, "/jobs", "/jobs", &["read"], Anyone, ok),
        route(M::GET, "/jobs/{id}", format!("/jobs/{job}"), &["read"], Viewers, ok),
        route(M::GET, "/jobs/{id}/events", format!("/jobs/{job}/events"), &["read"], Viewers, ok).stream(),
        route(M::GET, "/blueprints", "/blueprints", &["read"], Anyone, ok),
        route(M::POST, "/blueprints", "/blueprints", &["manage"], Anyone, created).json(json!({"name": "Versus"})),
        route(M::GET, "/blueprints/{id}", format!("/blueprints/{blueprint}"), &["read"], Owners, ok),
        route(M::PUT, "/blueprints/{id}", format!("/blueprints/{blueprint}"), &["manage"], Owners, ok).json(blueprint_body),
        route(M::POST, "/blueprints/{id}/preview", format!("/blueprints/{blueprint}/preview"), &["read"], Owners, ok)
            .json(json!({"name": "Coop", "config": "sv_cheats 1"})),
        route(M::POST, "/blueprints/{id}/copy", format!("/blueprints/{blueprint}/copy"), &["read", "manage"], Owners, created),
        route(M::PUT, "/blueprints/{id}/shared", format!("/blueprints/{blueprint}/shared"), &["manage"], Owners, none)
            .json(json!({"shared": false})),
        route(M::GET, "/overlays", "/overlays", &["read"], Anyone, ok),
        route(M::POST, "/overlays", "/overlays", &["manage"], Anyone, created).json(json!({"name": "More", "kind": "files"})),
        route(M::GET, "/overlays/{id}", format!("/overlays/{workshop}"), &["read"], Owners, ok),
        route(M::PUT, "/overlays/{id}/shared", format!("/overlays/{files}/shared"), &["manage"], Owners, none)
            .json(json!({"shared": false})),
        route(M::POST, "/overlays/{id}/items", format!("/overlays/{workshop}/items"), &["manage"], Owners, ok)
            .json(json!({"ids": "2"})),
        route(M::DELETE, "/overlays/{id}/items/{item_id}", format!("/overlays/{workshop}/items/1"), &["manage"], Owners, accepted),
        route(M::POST, "/overlays/{id}/refresh", format!("/overlays/{workshop}/refresh"), &["manage"], Owners, accepted),
        route(M::POST, "/overlays/refresh", "/overlays/refresh", &["admin"], Admins, accepted),
        route(M::PUT, "/overlays/{id}/script", format!("/overlays/{script}/script"), &["manage", "admin"], Admins, accepted)
            .json(json!({"script": "echo hello > \"$OUT/hello.txt\""})),
        route(M::POST, "/overlays/{id}/rebuild", format!("/overlays/{script}/rebuild"), &["manage", "admin"], Admins, accepted),
        route(M::POST, "/overlays/examples", "/overlays/examples", &["admin"], Admins, ok),
        route(M::PUT, "/overlays/{id}/file", format!("/overlays/{files}/file?path=a.cfg"), &["manage"], Owners, none)
            .raw(b"sv_cheats 0\n".to_vec()),
        route(M::GET, "/overlays/{id}/file", format!("/overlays/{files}/file?path=a.cfg"), &["read"], Owners, ok),
        route(M::GET, "/overlays/{id}/files", format!("/overlays/{files}/files"), &["read"], Owners, ok),
        route(M::POST, "/overlays/{id}/folders", format!("/overlays/{files}/folders"), &["manage"], Owners, none)
            .json(json!({"name": "maps"})),
        route(M::POST, "/overlays/{id}/move", format!("/overlays/{files}/move"), &["manage"], Owners, none)
            .json(json!({"from": "a.cfg", "to": "maps/b.cfg"})),
        route(M::GET, "/overlays/{id}/archive", format!("/overlays/{files}/archive"), &["read"], Owners, ok),
        route(M::POST, "/overlays/{id}/archive", format!("/overlays/{files}/archive?dir=maps"), &["manage"], Owners, none)
            .raw(zip_of("c.cfg", b"sv_cheats 0\n")),
        route(M::DELETE, "/overlays/{id}/file", format!("/overlays/{files}/file?path=maps/b.cfg"), &["manage"], Owners, none),
        route(M::GET, "/game", "/game", &["read", "admin"], Admins, ok),
        route(M::POST, "/game/{operation}", "/game/check", &["admin"], Admins, accepted),
        route(M::GET, "/activity", "/activity", &["read", "admin"], Admins, ok),
        route(M::GET, "/users", "/users", &["read", "admin"], Admins, ok),
        route(M::POST, "/users", "/users", &["admin"], Admins, created)
            .json(json!({"username": "fay", "password": "fay-password-1"})),
        route(M::PUT, "/users/{id}/active", format!("/users/{erin}/active"), &["admin"], Admins, none)
            .json(json!({"active": true})),
        route(M::GET, "/account/tokens", "/account/tokens", &[], Session, ok),
        route(M::POST, "/account/tokens", "/account/tokens", &[], Session, created)
            .json(json!({"name": "made here", "scopes": ["read"]})),
        route(M::GET, "/account/sessions", "/account/sessions", &[], Session, ok),
        route(M::DELETE, "/account/sessions/{id}", format!("/account/sessions/{other_session}"), &[], Session, none),
        route(M::DELETE, "/users/{id}/sessions", format!("/users/{erin}/sessions"), &["admin"], Admins, none),
        route(M::DELETE, "/users/{id}/second-factor", format!("/users/{erin}/second-factor"), &["admin"], Admins, none),
        route(M::GET, "/settings/second-factor", "/settings/second-factor", &["read", "admin"], Admins, ok),
        route(M::PUT, "/settings/second-factor", "/settings/second-factor", &["admin"], Admins, none)
            .json(json!({"required_of": "nobody"})),
        route(M::POST, "/account/confirm", "/account/confirm", &[], Session, none)
            .json(json!({"password": "olive-password-1"})),
        route(M::PUT, "/account/password", "/account/password", &[], Session, none).json(json!({
            "current": "olive-password-1", "password": "olive-password-2", "confirm": "olive-password-2"
        })),
        route(M::DELETE, "/account/tokens/{id}", format!("/account/tokens/{to_revoke}"), &[], Session, none),
        route(M::DELETE, "/schedules/{id}", format!("/schedules/{schedule}"), &["manage"], Operators, none),
        route(M::DELETE, "/servers/{id}", format!("/servers/{doomed}"), &["manage"], Managers, accepted),
        route(M::POST, "/jobs/{id}/cancel", format!("/jobs/{job}/cancel"), &["operate"], Operators, StatusCode::CONFLICT),
        route(M::DELETE, "/blueprints/{id}", format!("/blueprints/{doomed_blueprint}"), &["manage"], Owners, none),
        route(M::DELETE, "/overlays/{id}", format!("/overlays/{doomed_files}"), &["manage"], Owners, none),
        route(M::DELETE, "/users/{id}", format!("/users/{dan}"), &["admin"], Admins, none),
    ];

    let listed: BTreeMap<String, Vec<String>> = table
        .iter()
        .map(|r| {
            let mut scopes: Vec<String> = r.scopes.iter().map(|s| (*s).to_owned()).collect();
            scopes.sort_unstable();
            (format!("{} {}", r.method, r.template), scopes)
        })
        .collect();
    assert_eq!(
        listed,
        documented(&base).await,
        "the table and the OpenAPI document name the same routes and scopes"
    );

    let mut owners = Tokens::of(&owner);
    let mut members = [
        (Tokens::of(&operator), Operators, "an operator"),
        (Tokens::of(&viewer), Viewers, "a viewer"),
    ];
    let stranger = make_token(&stranger, "everything", &USER_SCOPES, &[]).await;
    let mut admins = Tokens::of(&admin);
    let csrf = owner.csrf("/account").await;
    let http = reqwest::Client::new();
    for r in &table {
        let at = format!("{} {}", r.method, r.path);
        let call = async |token: &str| send(&http, &base, Caller::Token(token), r).await;
        if r.whose == Session {
            for token in [
                owners.with(&USER_SCOPES).await,
                admins.with(&["admin"]).await,
            ] {
                let (status, problem) = call(&token).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{at} with a token: {problem}"
                );
            }
            let (status, body) = send(&http, &base, Caller::Session(&owner, &csrf), r).await;
            assert_eq!(status, r.ok, "{at} from the owner's session: {body}");
            continue;
        }
        if r.whose == Admins {
            // An admin's token without the admin scope is a user's; a
            // user's never has it.
            let not_admins = [
                admins.with(&USER_SCOPES).await,
                owners.with(&USER_SCOPES).await,
                stranger.clone(),
            ];
            for token in not_admins {
                let (status, problem) = call(&token).await;
                assert!(
                    matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                    "{at} for a token that is no admin's: {status} {problem}"
                );
            }
            for scope in r.scopes.iter().filter(|s| **s != "admin") {
                let mut others: Vec<&'static str> =
                    ["admin"].into_iter().chain(USER_SCOPES).collect();
                others.retain(|s| s != scope);
                let (status, problem) = call(&admins.with(&others).await).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{at} without {scope:?}: {problem}"
                );
            }
            let (status, body) = call(&admins.with(r.scopes).await).await;
            assert_eq!(status, r.ok, "{at} with {:?}: {body}", r.scopes);
            continue;
        }
        for scope in r.scopes {
            let (status, problem) = call(&owners.all_but(scope).await).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{at} without {scope:?}: {problem}"
            );
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(scope),
                "{at}: the refusal names the scope: {problem}"
            );
        }
        if r.whose != Anyone {
            let (status, problem) = call(&stranger).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{at} for a stranger: {problem}"
            );
        }
        for (tokens, role, who) in &mut members {
            if r.whose > Owners && r.whose > *role {
                let (status, problem) = call(&tokens.with(r.scopes).await).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{at} for {who}: {problem}");
            }
        }
        let (status, body) = call(&owners.with(r.scopes).await).await;
        assert_eq!(
            status, r.ok,
            "{at} for the owner with {:?}: {body}",
            r.scopes
        );
    }
    app.stop().await;
}

/// A zip archive of one file.
fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap();
    out.into_inner()
}
