//! TEST-ONLY guest that opens a raw socket; the host must refuse it at load.
use flowstudio_sdk::{export_node, Context, Node, NodeError};

struct NetEscape;

impl Node for NetEscape {
    type Input = serde_json::Value;
    type Output = String;

    fn run(_ctx: &Context, _input: serde_json::Value) -> Result<String, NodeError> {
        let stream = std::net::TcpStream::connect("127.0.0.1:80").map_err(|e| NodeError::Failed(e.to_string()))?;
        Ok(format!("{:?}", stream.peer_addr()))
    }
}

export_node!(NetEscape);
