//! The FlowStudio node SDK: write a workflow node in a few lines.
//!
//! A node is a WebAssembly component (built for `wasm32-wasip2`) that receives
//! the run's [`Context`] — including the identity it acts as — and a JSON
//! input, and returns JSON output or a [`NodeError`]. The host never hands the
//! node a credential: outbound calls made with [`http`] are intercepted by the
//! host, which checks them against the node's grants and attaches the managed
//! identity's token where a grant asks for it.
//!
//! ```no_run
//! use flowstudio_sdk::{export_node, Context, Node, NodeError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { name: Option<String> }
//!
//! #[derive(Serialize)]
//! struct Output { greeting: String }
//!
//! struct Hello;
//!
//! impl Node for Hello {
//!     type Input = Input;
//!     type Output = Output;
//!     fn run(ctx: &Context, input: Input) -> Result<Output, NodeError> {
//!         let who = input.name.unwrap_or_else(|| ctx.actor().display_name);
//!         flowstudio_sdk::log::info(&format!("greeting {who}"));
//!         Ok(Output { greeting: format!("hello, {who}") })
//!     }
//! }
//!
//! export_node!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and run it with
//! `flowstudio node run target/wasm32-wasip2/release/hello.wasm --input '{}'`.
//!
//! The crate also compiles for the host target so that node logic can be unit
//! tested natively; calls into the host (`actor`, `log`, `http`) only work
//! inside a FlowStudio host.

pub mod http;
pub mod log;
mod node;

pub use node::{Context, IdInfo, Node, NodeError};

/// Raw bindings generated from `wit/` (the one WIT source of the project).
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "node",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "flowstudio_sdk::bindings",
        generate_all,
    });
}

#[doc(hidden)]
pub use node::__run;

/// Export a type implementing [`Node`] as this component's `run` function.
#[macro_export]
macro_rules! export_node {
    ($node:ty) => {
        struct __FlowstudioExport;

        impl $crate::bindings::Guest for __FlowstudioExport {
            fn run(
                ctx: $crate::bindings::flowstudio::node::types::ExecutionContext,
                input: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::flowstudio::node::types::NodeError,
            > {
                $crate::__run::<$node>(ctx, input)
            }
        }

        $crate::bindings::__export_world!(__FlowstudioExport with_types_in $crate::bindings);
    };
}
