//! The MCP face: an rmcp server over one [`Engine`]. Four discovery tools, every definition as
//! a resource (with templates), workflows as prompts, completions for names, roles and
//! capabilities, and a compact roster in the server instructions. Nothing here is written to
//! stdout but JSON-RPC; logs go to stderr through tracing.

pub(crate) mod prompts;
pub(crate) mod resources;
pub(crate) mod tools;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams, Prompt,
    PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Reference, Resource, ResourceContents, ResourceTemplate, Role,
    ServerCapabilities, ServerConfig, SubscriptionFilter,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt, tool_handler};
use serde_json::json;

use crate::engine::{Engine, EngineError};
use crate::library::Kind;
use crate::live::Library;
use resources::Target;

/// Resources per `resources/list` page.
const PAGE: usize = 500;

#[derive(Clone)]
pub struct Server {
    library: Arc<Library>,
    instructions: Arc<str>,
    tool_router: ToolRouter<Server>,
}

impl Server {
    pub fn new(library: Arc<Library>) -> Server {
        let instructions = roster(&library.snapshot()).into();
        Server {
            library,
            instructions,
            tool_router: Self::tool_router(),
        }
    }

    /// The snapshot one request works on, from start to end.
    fn engine(&self) -> Arc<Engine> {
        self.library.snapshot()
    }

    /// Runs one request's work and logs its latency.
    fn timed<T>(&self, what: &str, work: impl FnOnce() -> T) -> T {
        let span = tracing::info_span!("request", method = what);
        let _entered = span.enter();
        let started = Instant::now();
        let out = work();
        tracing::info!(elapsed_us = started.elapsed().as_micros() as u64, "done");
        out
    }
}

/// Serves MCP on stdin/stdout until the client disconnects, following changes to the library:
/// each refresh that changed something is announced with `notifications/resources/list_changed`
/// and `notifications/prompts/list_changed` (the tool list never changes).
pub async fn serve_stdio(library: Arc<Library>) -> Result<(), std::io::Error> {
    let _watching = library.watch().map_err(std::io::Error::other)?;
    let mut changes = library.subscribe();
    let service = Server::new(library)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    let peer = service.peer().clone();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let sent = peer
                .notify_resource_list_changed()
                .await
                .and(peer.notify_prompt_list_changed().await);
            if let Err(error) = sent {
                tracing::debug!(%error, "could not announce a library change");
            }
        }
    });
    service.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// Serves MCP over Streamable HTTP at `http://ADDR/mcp` until interrupted. rmcp's
/// DNS-rebinding protection stays on: requests must name a loopback host, so a web page the user
/// visits cannot drive the server through their browser.
pub async fn serve_http(
    library: Arc<Library>,
    addr: std::net::SocketAddr,
) -> Result<(), std::io::Error> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let _watching = library.watch().map_err(std::io::Error::other)?;
    let service = StreamableHttpService::new(
        move || Ok(Server::new(Arc::clone(&library))),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::warn!(url = %format!("http://{bound}/mcp"), "serving MCP over HTTP");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// The server instructions: what can be delegated, in about 300 tokens, without any
/// definition's text.
fn roster(engine: &Engine) -> String {
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut categories: BTreeMap<String, usize> = BTreeMap::new();
    let mut workflows = Vec::new();
    for d in engine.summaries() {
        *kinds.entry(d.kind).or_default() += 1;
        if let Some(c) = d.category {
            *categories.entry(c.to_string()).or_default() += 1;
        }
        if d.kind == Kind::Workflow {
            workflows.push(d.name.to_string());
        }
    }
    let count = |k| kinds.get(&k).copied().unwrap_or(0);
    let mut text = format!(
        "orchestr8 finds the right specialist for a task among {} agents, {} skills and {} workflows. \
         Call discover_agents with the task in plain words, then get_agent_definition for the one you pick \
         and pass its text as the prompt of a general-purpose subagent. discover_agents_by_role gives a role's \
         agent and its fallbacks in order.\n",
        count(Kind::Agent),
        count(Kind::Skill),
        count(Kind::Workflow)
    );
    let mut by_size: Vec<(String, usize)> = categories.into_iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    text.push_str(&list_line(
        "Categories",
        by_size.iter().map(|(c, n)| format!("{c} ({n})")).collect(),
        30,
    ));
    let roles: Vec<String> = engine.roles().into_iter().map(|r| r.role).collect();
    text.push_str(&list_line("Roles", roles, 80));
    workflows.sort();
    text.push_str(&list_line("Workflows (also prompts)", workflows, 20));
    text
}

fn list_line(label: &str, mut items: Vec<String>, max: usize) -> String {
    if items.is_empty() {
        return String::new();
    }
    let more = items.len().saturating_sub(max);
    items.truncate(max);
    let tail = if more > 0 {
        format!(", and {more} more (resource orchestr8://catalog)")
    } else {
        String::new()
    };
    format!("{label}: {}{tail}.\n", items.join(", "))
}

fn not_found(e: EngineError) -> McpError {
    match e {
        EngineError::Unknown { .. } | EngineError::BadName(_) => {
            McpError::resource_not_found(e.to_string(), None)
        }
        other => McpError::internal_error(other.to_string(), None),
    }
}

impl Server {
    fn read(&self, uri: &str) -> Result<ResourceContents, McpError> {
        let engine = self.engine();
        match resources::parse(uri).map_err(|e| McpError::invalid_params(e, None))? {
            Target::Catalog => {
                let entries: Vec<_> = engine
                    .definitions()
                    .map(|d| json!({ "name": d.name, "kind": d.kind, "category": d.category, "role": d.role, "description": d.summary(100) }))
                    .collect();
                Ok(
                    ResourceContents::text(json!({ "definitions": entries }).to_string(), uri)
                        .with_mime_type("application/json"),
                )
            }
            Target::Definition(kind, name) => {
                let loaded = engine.load(name).map_err(not_found)?;
                if loaded.definition.kind != kind {
                    let actual = resources::uri(loaded.definition.kind, name);
                    return Err(McpError::resource_not_found(
                        format!("`{name}` is a {}: read {actual}", loaded.definition.kind),
                        None,
                    ));
                }
                Ok(ResourceContents::text(loaded.text.to_string(), uri)
                    .with_mime_type("text/markdown"))
            }
            Target::SkillFile(name, path) => {
                let text = engine.read_skill_file(name, path).map_err(not_found)?;
                let mime = if path.ends_with(".md") {
                    "text/markdown"
                } else {
                    "text/plain"
                };
                Ok(ResourceContents::text(text, uri).with_mime_type(mime))
            }
            Target::Role(role) => {
                let resolved = engine.resolve_role(role, 20).map_err(not_found)?;
                Ok(ResourceContents::text(
                    serde_json::to_string(&resolved).unwrap_or_default(),
                    uri,
                )
                .with_mime_type("application/json"))
            }
            Target::Capability(capability) => {
                let names: Vec<String> = engine
                    .with_capability(capability)
                    .map_err(not_found)?
                    .into_iter()
                    .map(|d| d.name)
                    .collect();
                Ok(ResourceContents::text(
                    json!({ "capability": capability, "agents": names }).to_string(),
                    uri,
                )
                .with_mime_type("application/json"))
            }
        }
    }

    /// Every resource: the catalog, each definition, each skill's supporting files.
    fn all_resources(&self) -> Vec<Resource> {
        let engine = self.engine();
        let mut out = vec![
            Resource::new(resources::CATALOG, "catalog")
                .with_description(
                    "Every definition: name, kind, category, role, one-line description.",
                )
                .with_mime_type("application/json"),
        ];
        for d in engine.definitions() {
            out.push(
                Resource::new(resources::uri(d.kind, &d.name), d.name.clone())
                    .with_description(d.summary(120))
                    .with_mime_type("text/markdown"),
            );
            if d.kind == Kind::Skill {
                for file in engine.skill_files(&d) {
                    out.push(Resource::new(
                        format!("{}/{file}", resources::uri(d.kind, &d.name)),
                        format!("{}/{file}", d.name),
                    ));
                }
            }
        }
        out
    }

    fn completions(&self, request: &CompleteRequestParams) -> Vec<String> {
        let engine = self.engine();
        let candidates: Vec<String> = match &request.r#ref {
            Reference::Resource(r) => match (r.uri.as_str(), request.argument.name.as_str()) {
                ("orchestr8://roles/{role}", "role") => {
                    engine.roles().into_iter().map(|r| r.role).collect()
                }
                ("orchestr8://capabilities/{capability}", "capability") => {
                    engine.capabilities().into_iter().map(|(c, _)| c).collect()
                }
                (template, "name") => {
                    let kind = match template {
                        "orchestr8://agents/{name}" => Some(Kind::Agent),
                        "orchestr8://workflows/{name}" => Some(Kind::Workflow),
                        t if t.starts_with("orchestr8://skills/") => Some(Kind::Skill),
                        _ => None,
                    };
                    engine
                        .summaries()
                        .filter(|d| Some(d.kind) == kind)
                        .map(|d| d.name.to_string())
                        .collect()
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let typed = request.argument.value.to_lowercase();
        let mut starts: Vec<String> = candidates
            .iter()
            .filter(|c| c.to_lowercase().starts_with(&typed))
            .cloned()
            .collect();
        let contains = candidates
            .iter()
            .filter(|c| !c.to_lowercase().starts_with(&typed) && c.to_lowercase().contains(&typed))
            .cloned();
        starts.sort();
        starts.extend(contains);
        starts
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_completions()
                .build(),
        )
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(self.instructions.to_string())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    /// Stateless-era clients (`subscriptions/listen`) hear about library changes here.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.library.subscribe();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let sink = context.sink();
                    let sent = sink.notify_resource_list_changed().await.and(sink.notify_prompt_list_changed().await);
                    if let Err(error) = sent {
                        tracing::debug!(%error, "could not announce a library change");
                    }
                }
            }
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.timed("resources/list", || {
            let start = match request.and_then(|r| r.cursor) {
                None => 0,
                Some(c) => c
                    .parse::<usize>()
                    .map_err(|_| McpError::invalid_params(format!("bad cursor `{c}`"), None))?,
            };
            let all = self.all_resources();
            let end = (start + PAGE).min(all.len());
            let page = all
                .get(start..end)
                .map(<[Resource]>::to_vec)
                .unwrap_or_default();
            let mut result = ListResourcesResult::with_all_items(page);
            if end < all.len() {
                result.next_cursor = Some(end.to_string());
            }
            Ok(result)
        })
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let templates = resources::templates()
            .into_iter()
            .map(|(uri, name, description, mime)| {
                ResourceTemplate::new(uri, name)
                    .with_description(description)
                    .with_mime_type(mime)
            })
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.timed("resources/read", || {
            Ok(ReadResourceResult::new(vec![self.read(&request.uri)?]).into())
        })
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let prompts = self
            .engine()
            .definitions()
            .filter(|d| d.kind == Kind::Workflow)
            .map(|d| {
                let arguments = prompts::arguments(d.argument_hint.as_deref())
                    .into_iter()
                    .map(|(name, hint)| {
                        PromptArgument::new(name)
                            .with_description(hint)
                            .with_required(false)
                    })
                    .collect();
                Prompt::new(d.name.clone(), Some(d.summary(200)), Some(arguments))
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.timed("prompts/get", || {
            let engine = self.engine();
            let loaded = engine
                .load(&request.name)
                .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
            if loaded.definition.kind != Kind::Workflow {
                return Err(McpError::invalid_params(
                    format!(
                        "`{}` is a {}, not a workflow",
                        request.name, loaded.definition.kind
                    ),
                    None,
                ));
            }
            let declared = prompts::arguments(loaded.definition.argument_hint.as_deref());
            let mut given = BTreeMap::new();
            for (name, value) in request.arguments.unwrap_or_default() {
                if !declared.iter().any(|(n, _)| *n == name) {
                    let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(McpError::invalid_params(
                        format!(
                            "unknown argument `{name}`; this prompt takes {}",
                            names.join(", ")
                        ),
                        None,
                    ));
                }
                let text = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                given.insert(name, text);
            }
            let text = prompts::render(prompts::body(&loaded.text), &declared, &given);
            Ok(
                GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                    .with_description(loaded.definition.summary(200))
                    .into(),
            )
        })
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let mut values = self.completions(&request);
        let total = values.len();
        values.truncate(CompletionInfo::MAX_VALUES);
        let info = CompletionInfo::with_pagination(
            values,
            Some(total as u32),
            total > CompletionInfo::MAX_VALUES,
        )
        .map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }
}
