//! TEST-ONLY guest that attacks the sandbox; input `{"attack": "..."}` picks how.
use flowstudio_sdk::http::Request;
use flowstudio_sdk::{export_node, Context, Node, NodeError};
use serde::Deserialize;

#[derive(Deserialize)]
struct Input {
    attack: String,
    #[serde(default)]
    url: String,
}

struct Misbehave;

#[inline(never)]
#[allow(unconditional_recursion)] // the point: exhaust the stack
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(depth % 256) as usize] = depth as u8;
    let mut next = *pad;
    recurse(depth + 1, &mut next) + u64::from(pad[0])
}

impl Node for Misbehave {
    type Input = Input;
    type Output = serde_json::Value;

    fn run(_ctx: &Context, input: Input) -> Result<serde_json::Value, NodeError> {
        match input.attack.as_str() {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recursion" => {
                let mut pad = [0u8; 256];
                Ok(serde_json::json!(recurse(0, &mut pad)))
            }
            "output" => Ok(serde_json::json!("x".repeat(8 << 20))),
            "logs" => {
                for i in 0..100_000 {
                    flowstudio_sdk::log::info(&format!("line {i} {}", "y".repeat(200)));
                }
                Ok(serde_json::json!("logged"))
            }
            "set-authorization" => {
                let resp = Request::get(&input.url).header("authorization", "Bearer stolen").send()?;
                Ok(serde_json::json!({"status": resp.status}))
            }
            "env" => Ok(serde_json::json!(std::env::vars().collect::<Vec<_>>())),
            other => Err(NodeError::InvalidInput(format!("unknown attack `{other}`"))),
        }
    }
}

export_node!(Misbehave);
