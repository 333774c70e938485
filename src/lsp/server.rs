//! The protocol loop and the open documents.

use super::analysis::Analysis;
use super::navigate::{self, Target};
use super::position::LineIndex;
use super::{completion, uri};
use crate::diagnostic::Level;
use crate::kinds::Category;
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types as lsp;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

struct Document {
    text: String,
    version: i32,
    path: PathBuf,
    analysis: Analysis,
    /// The latest analysis whose text parsed, for completion inside an unfinished edit.
    parsed: Option<Analysis>,
}

pub struct Server {
    documents: HashMap<String, Document>,
    stdlib_dir: Option<PathBuf>,
}

/// Runs the server on stdin and stdout until the client says `exit`.
pub fn serve() -> u8 {
    let (connection, threads) = Connection::stdio();
    let capabilities = json!({
        "textDocumentSync": { "openClose": true, "change": 1 },
        "hoverProvider": true,
        "completionProvider": { "triggerCharacters": [".", "\"", "=", "{", "[", " "] },
        "definitionProvider": true,
        "documentSymbolProvider": true,
        "documentFormattingProvider": true,
    });
    let info = json!({ "capabilities": capabilities, "serverInfo": { "name": "lthlang", "version": env!("CARGO_PKG_VERSION") } });
    let started = connection.initialize_start().and_then(|(id, _)| connection.initialize_finish(id, info));
    if let Err(e) = started {
        eprintln!("lthlang lsp: {e}");
        return 1;
    }
    let mut server = Server::new();
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection.handle_shutdown(&request).unwrap_or(true) {
                    break;
                }
                let id = request.id.clone();
                let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.request(request))).unwrap_or_else(|_| {
                    Response::new_err(id, lsp_server::ErrorCode::InternalError as i32, "lthlang lsp failed on this request".into())
                });
                let _ = connection.sender.send(Message::Response(response));
            }
            Message::Notification(notification) => {
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.notify(notification))).unwrap_or_default();
                for n in out {
                    let _ = connection.sender.send(Message::Notification(n));
                }
            }
            Message::Response(_) => {}
        }
    }
    drop(connection);
    let _ = threads.join();
    0
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    pub fn new() -> Server {
        Server { documents: HashMap::new(), stdlib_dir: None }
    }

    /// Handles a notification; returns the notifications to send back (diagnostics).
    pub fn notify(&mut self, n: Notification) -> Vec<Notification> {
        match n.method.as_str() {
            "textDocument/didOpen" => {
                let Ok(params) = serde_json::from_value::<lsp::DidOpenTextDocumentParams>(n.params) else { return Vec::new() };
                let item = params.text_document;
                self.open(item.uri.as_str(), item.text, item.version)
            }
            "textDocument/didChange" => {
                let Ok(params) = serde_json::from_value::<lsp::DidChangeTextDocumentParams>(n.params) else { return Vec::new() };
                let key = params.text_document.uri.as_str().to_owned();
                let Some(document) = self.documents.get(&key) else { return Vec::new() };
                let mut text = document.text.clone();
                for change in params.content_changes {
                    match change.range {
                        Some(range) => {
                            let index = LineIndex::new(&text);
                            let (start, end) = (index.offset(range.start), index.offset(range.end));
                            if start <= end {
                                text.replace_range(start..end, &change.text);
                            }
                        }
                        None => text = change.text,
                    }
                }
                self.open(&key, text, params.text_document.version)
            }
            "textDocument/didClose" => {
                let Ok(params) = serde_json::from_value::<lsp::DidCloseTextDocumentParams>(n.params) else { return Vec::new() };
                self.documents.remove(params.text_document.uri.as_str());
                vec![publish(params.text_document.uri.as_str(), Vec::new(), None)]
            }
            _ => Vec::new(),
        }
    }

    fn open(&mut self, key: &str, text: String, version: i32) -> Vec<Notification> {
        let path = uri::to_path(key).unwrap_or_else(|| std::env::current_dir().unwrap_or_default().join("untitled.lth"));
        let analysis = Analysis::new(&path, &text);
        let previous = self.documents.remove(key);
        let parsed = if analysis.module.is_some() {
            None
        } else {
            previous.and_then(|d| if d.analysis.module.is_some() { Some(d.analysis) } else { d.parsed })
        };
        let diagnostics = self.diagnostics_of(&analysis, key);
        self.documents.insert(key.to_owned(), Document { text, version, path, analysis, parsed });
        vec![publish(key, diagnostics, Some(version))]
    }

    fn diagnostics_of(&mut self, analysis: &Analysis, key: &str) -> Vec<Value> {
        let stdlib = self.stdlib_dir().map(Path::to_path_buf);
        convert(analysis, key, stdlib.as_deref())
    }

    /// The stdlib written out as read-only files, so editors can open a preset's definition.
    fn stdlib_dir(&mut self) -> Option<&Path> {
        if self.stdlib_dir.is_none() {
            let hash = blake3::hash(crate::stdlib::MODULES.iter().map(|(_, t)| *t).collect::<String>().as_bytes()).to_hex();
            let dir = std::env::temp_dir().join(format!("lthlang-stdlib-{}", &hash[..16]));
            for (name, text) in crate::stdlib::MODULES {
                let path = dir.join(format!("{name}.lth"));
                if std::fs::read_to_string(&path).is_ok_and(|t| t == *text) {
                    continue;
                }
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::remove_file(&path);
                if std::fs::write(&path, text).is_ok() {
                    if let Ok(meta) = std::fs::metadata(&path) {
                        let mut permissions = meta.permissions();
                        permissions.set_readonly(true);
                        let _ = std::fs::set_permissions(&path, permissions);
                    }
                }
            }
            self.stdlib_dir = Some(dir);
        }
        self.stdlib_dir.as_deref()
    }

    pub fn request(&mut self, request: Request) -> Response {
        let id = request.id.clone();
        let result = match request.method.as_str() {
            "textDocument/hover" => self.hover(request.params),
            "textDocument/completion" => self.completion(request.params),
            "textDocument/definition" => self.definition(request.params),
            "textDocument/documentSymbol" => self.symbols(request.params),
            "textDocument/formatting" => self.formatting(request.params),
            _ => return Response::new_err(id, lsp_server::ErrorCode::MethodNotFound as i32, format!("unknown method {}", request.method)),
        };
        Response::new_ok(id, result)
    }

    fn at(&self, params: &Value) -> Option<(&Document, usize)> {
        let key = params["textDocument"]["uri"].as_str()?;
        let document = self.documents.get(key)?;
        let position: lsp::Position = serde_json::from_value(params["position"].clone()).ok()?;
        Some((document, LineIndex::new(&document.text).offset(position)))
    }

    fn hover(&self, params: Value) -> Value {
        let Some((document, offset)) = self.at(&params) else { return Value::Null };
        let Some((text, range)) = navigate::hover(&document.analysis, offset) else { return Value::Null };
        json!({ "contents": { "kind": "markdown", "value": text }, "range": LineIndex::new(&document.text).range(range) })
    }

    fn completion(&self, params: Value) -> Value {
        let Some((document, offset)) = self.at(&params) else { return Value::Null };
        let analysis = document.parsed.as_ref().filter(|_| document.analysis.module.is_none()).unwrap_or(&document.analysis);
        json!(completion::complete(&document.text, offset, analysis))
    }

    fn definition(&mut self, params: Value) -> Value {
        let (target, here) = {
            let Some((document, offset)) = self.at(&params) else { return Value::Null };
            let target = navigate::definition(&document.analysis, offset);
            let here = match &target {
                Some(Target::Here(span)) => Some(LineIndex::new(&document.text).range(span.range())),
                _ => None,
            };
            (target, here)
        };
        let key = params["textDocument"]["uri"].as_str().unwrap_or_default().to_owned();
        match (target, here) {
            (Some(Target::Here(_)), Some(range)) => json!({ "uri": key, "range": range }),
            (Some(Target::Stdlib(module, span)), _) => {
                let Some(dir) = self.stdlib_dir() else { return Value::Null };
                let text = crate::stdlib::module(module).unwrap_or_default();
                json!({ "uri": uri::from_path(&dir.join(format!("{module}.lth"))), "range": LineIndex::new(text).range(span.range()) })
            }
            _ => Value::Null,
        }
    }

    fn symbols(&self, params: Value) -> Value {
        let Some(document) = params["textDocument"]["uri"].as_str().and_then(|k| self.documents.get(k)) else { return Value::Null };
        let index = LineIndex::new(&document.text);
        let symbols: Vec<Value> = navigate::symbols(&document.analysis)
            .into_iter()
            .map(|s| {
                // LSP symbol kinds: Module 2, Class 5, Function 12, Variable 13, Constant 14, Field 8, Object 19.
                let kind = match s.category {
                    None => 2,
                    Some(Category::Dataset) => 19,
                    Some(Category::Model) => 5,
                    Some(_) if s.detail.starts_with("preset") => 14,
                    Some(_) => 12,
                };
                let children: Vec<Value> = s
                    .fields
                    .iter()
                    .map(|(name, span)| json!({ "name": name, "kind": 8, "range": index.range(span.range()), "selectionRange": index.range(span.range()) }))
                    .collect();
                json!({
                    "name": s.name, "detail": s.detail, "kind": kind,
                    "range": index.range(s.span.range()), "selectionRange": index.range(s.name_span.range()),
                    "children": children,
                })
            })
            .collect();
        json!(symbols)
    }

    fn formatting(&self, params: Value) -> Value {
        let Some(document) = params["textDocument"]["uri"].as_str().and_then(|k| self.documents.get(k)) else { return Value::Null };
        match crate::fmt::format(document.analysis.root, &document.text) {
            Ok(formatted) if formatted != document.text => {
                let index = LineIndex::new(&document.text);
                json!([{ "range": index.range(0..document.text.len()), "newText": formatted }])
            }
            // Already formatted, or a syntax error the diagnostics already show.
            _ => json!([]),
        }
    }

    /// The path a document was opened under.
    pub fn path_of(&self, key: &str) -> Option<&Path> {
        self.documents.get(key).map(|d| d.path.as_path())
    }

    pub fn version_of(&self, key: &str) -> Option<i32> {
        self.documents.get(key).map(|d| d.version)
    }
}

fn publish(key: &str, diagnostics: Vec<Value>, version: Option<i32>) -> Notification {
    let uri = lsp::Uri::from_str(key).map(|u| u.as_str().to_owned()).unwrap_or_else(|_| key.to_owned());
    Notification::new("textDocument/publishDiagnostics".to_owned(), json!({ "uri": uri, "diagnostics": diagnostics, "version": version }))
}

/// The checker's diagnostics as LSP diagnostics: code, range, label and help, and the other
/// labels as related information. One in another source (a stdlib preset) is shown at the start.
pub fn diagnostics(analysis: &Analysis, key: &str) -> Vec<Value> {
    convert(analysis, key, None)
}

fn convert(analysis: &Analysis, key: &str, stdlib: Option<&Path>) -> Vec<Value> {
    let index = LineIndex::new(&analysis.text);
    let location = |span: crate::source::Span| -> Option<Value> {
        if span.source == analysis.root {
            return Some(json!({ "uri": key, "range": index.range(span.range()) }));
        }
        let source = analysis.sources.try_get(span.source)?;
        let crate::source::Origin::Stdlib(module) = source.origin else { return None };
        let dir = stdlib?;
        Some(
            json!({ "uri": uri::from_path(&dir.join(format!("{module}.lth"))), "range": LineIndex::new(&source.text).range(span.range()) }),
        )
    };
    analysis
        .diagnostics
        .iter()
        .map(|d| {
            let here = d.primary.span.source == analysis.root;
            let range = if here { index.range(d.primary.span.range()) } else { index.range(0..0) };
            let mut message = d.message.clone();
            if !here {
                let name = analysis.sources.try_get(d.primary.span.source).map_or("another file", |s| s.name.as_str());
                message.push_str(&format!(" (in {name})"));
            }
            if !d.primary.message.is_empty() {
                message.push_str(&format!("\n{}", d.primary.message));
            }
            if let Some(help) = &d.help {
                message.push_str(&format!("\nhelp: {help}"));
            }
            let related: Vec<Value> =
                d.secondary.iter().filter_map(|l| Some(json!({ "location": location(l.span)?, "message": l.message }))).collect();
            json!({
                "range": range,
                "severity": if d.level == Level::Error { 1 } else { 2 },
                "code": d.code,
                "source": "lthlang",
                "message": message,
                "relatedInformation": related,
            })
        })
        .collect()
}
