//! API callers: tokens made on the account page as a user would, and a
//! bot that calls `/api/v1` with one.

use reqwest::StatusCode;
use serde_json::Value;

use super::panel::{App, Client};

/// Makes a token on the account page as a user would; returns it as
/// shown there (once).
pub async fn make_token(client: &Client, name: &str, scopes: &[&str], servers: &[i64]) -> String {
    let csrf = client.csrf("/account").await;
    let mut fields = vec![("csrf", csrf), ("name", name.to_owned())];
    fields.extend(scopes.iter().map(|s| ("scopes", (*s).to_owned())));
    fields.extend(servers.iter().map(|s| ("servers", s.to_string())));
    let res = client
        .http
        .post(format!("{}/account/tokens", client.base))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let start = page
        .find("<code id=\"new-token\">")
        .expect("the token is shown")
        + 21;
    let token = page[start..].split('<').next().unwrap().to_owned();
    assert!(token.starts_with("l4m_") && token.len() > 60, "{token}");
    token
}

/// A bot: no cookies, only its token.
pub struct Bot {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Bot {
    pub fn new(app: &App, token: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.url(""),
            token: token.to_owned(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                res.headers()["content-type"],
                "application/problem+json",
                "{path}: errors are problems"
            );
        }
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}
