//! A minimal MCP client over stdio for the round trip `orchestr8 bench` and the criterion
//! benches time: raw JSON-RPC lines, so what is timed is the server and the pipe, not a client
//! library.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BenchError, io, peak_rss_of};

/// A 100k library takes the server a few seconds to open; a call answers in milliseconds.
const MCP_OPEN_TIMEOUT: Duration = Duration::from_secs(300);
const MCP_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A minimal MCP client over stdio: raw JSON-RPC lines, so what is timed is the server and the
/// pipe, not a client library.
pub struct McpClient {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next_id: u64,
}

impl McpClient {
    /// Starts `binary serve --dir library --no-semantic` with its index in `index_dir` (so it
    /// reopens the index the bench built instead of building its own) and completes the
    /// handshake. BM25 alone, as the bench's own engine ranks: with the embedding model the
    /// server would first embed every definition the bench's index lacks vectors for, and the
    /// round trip would time another ranking than the query classes.
    pub fn spawn(binary: &Path, library: &Path, index_dir: &Path) -> Result<McpClient, BenchError> {
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--no-semantic")
            .arg("--dir")
            .arg(library)
            .env("ORCHESTR8_INDEX_DIR", index_dir)
            .env_remove("ORCHESTR8_DIRS")
            .env("ORCHESTR8_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io(format!("start {} serve", binary.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Mcp("the server's stdio was not piped".into()));
        };
        // A reader thread, so a server that stops answering is a timeout, not a hang.
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut client = McpClient {
            child,
            stdin,
            lines,
            next_id: 0,
        };
        client.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "orchestr8-bench", "version": env!("CARGO_PKG_VERSION") }
            }),
            MCP_OPEN_TIMEOUT,
        )?;
        client.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))?;
        Ok(client)
    }

    /// One `discover_agents` call; returns the time from writing the request to reading its
    /// answer.
    pub fn discover(&mut self, query: &str) -> Result<Duration, BenchError> {
        let started = Instant::now();
        self.request(
            "tools/call",
            json!({ "name": "discover_agents", "arguments": { "query": query } }),
            MCP_CALL_TIMEOUT,
        )?;
        Ok(started.elapsed())
    }

    /// The server process's peak resident set (VmHWM), Linux only.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        peak_rss_of(&self.child.id().to_string())
    }

    fn send(&mut self, message: &Value) -> Result<(), BenchError> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|_| self.stdin.flush())
            .map_err(io("write to the MCP server"))
    }

    fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BenchError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).map_err(|e| {
                BenchError::Mcp(match e {
                    mpsc::RecvTimeoutError::Timeout => {
                        format!("no answer to `{method}` within {} s", timeout.as_secs())
                    }
                    mpsc::RecvTimeoutError::Disconnected => {
                        format!("the server exited before answering `{method}`")
                    }
                })
            })?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // a notification or a request from the server
            }
            if let Some(error) = message.get("error") {
                return Err(BenchError::Mcp(format!("`{method}` failed: {error}")));
            }
            return Ok(message.get("result").cloned().unwrap_or(Value::Null));
        }
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
