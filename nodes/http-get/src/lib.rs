//! Fetches a URL through the host's egress pipeline.
//! Input `{"url": "...", "headers"?: {...}}` → `{"status": N, "body": "...", "json"?: ...}`.
use flowstudio_sdk::http::Request;
use flowstudio_sdk::{export_node, Context, Node, NodeError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Input {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Output {
    status: u16,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<serde_json::Value>,
}

struct HttpGet;

impl Node for HttpGet {
    type Input = Input;
    type Output = Output;

    fn run(_ctx: &Context, input: Input) -> Result<Output, NodeError> {
        let mut request = Request::get(&input.url);
        for (name, value) in &input.headers {
            request = request.header(name, value);
        }
        let response = request.send()?;
        let json = response.json().ok();
        Ok(Output { status: response.status, body: response.text(), json })
    }
}

export_node!(HttpGet);
