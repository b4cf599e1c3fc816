//! Structured log lines, attributed by the host to the run and node.

use crate::bindings::flowstudio::node::{host, types::LogLevel};

pub fn debug(message: &str) {
    host::log(LogLevel::Debug, message)
}

pub fn info(message: &str) {
    host::log(LogLevel::Info, message)
}

pub fn warn(message: &str) {
    host::log(LogLevel::Warn, message)
}

pub fn error(message: &str) {
    host::log(LogLevel::Error, message)
}
