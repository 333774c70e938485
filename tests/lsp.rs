//! `lthlang lsp` driven over stdio with real JSON-RPC, as an editor drives it: initialize, open a
//! file with a typo, fix it, hover, complete, and jump into the stdlib.

use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lthlang"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_remove("CUB_ROOT")
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, messages) = channel();
        std::thread::spawn(move || loop {
            let mut length = 0;
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(n) = line.strip_prefix("Content-Length: ") {
                    length = n.parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            stdout.read_exact(&mut body).unwrap();
            if send.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        });
        Client { child, stdin, messages, next_id: 1 }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its result, skipping notifications in between.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self.receive();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
        }
    }

    fn receive(&mut self) -> Value {
        self.messages.recv_timeout(Duration::from_secs(20)).expect("the server answers within 20 s")
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            let message = self.receive();
            if message["method"] == "textDocument/publishDiagnostics" && message["params"]["uri"] == uri {
                return message["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TYPO: &str = "use std.models.resnet_tiny

dataset data = shapes { train = 200  val = 50  test = 50 }
model net = resnet_tiny { classes = data.classes  widht = 8 }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = 1 }
prune tickets = imp { from = dense  rounds = 3  rate = 50% }
";

fn position(text: &str, needle: &str, after: usize) -> Value {
    let offset = text.find(needle).unwrap_or_else(|| panic!("`{needle}` in the text")) + after;
    let line = text[..offset].matches('\n').count();
    let character = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1);
    json!({ "line": line, "character": character })
}

fn labels(completion: &Value) -> Vec<String> {
    let items = completion.as_array().or_else(|| completion["items"].as_array()).unwrap();
    items.iter().map(|i| i["label"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn an_editor_session_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}/study.lth", dir.path().display());
    let mut client = Client::start();

    let init = client.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    let capabilities = &init["capabilities"];
    for provider in ["hoverProvider", "definitionProvider", "documentSymbolProvider", "documentFormattingProvider"] {
        assert_eq!(capabilities[provider], true, "{provider} in {init}");
    }
    client.notify("initialized", json!({}));

    // A typo: the checker's diagnostic arrives with its code and the range of the word.
    client.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "lth", "version": 1, "text": TYPO } }));
    let diagnostics = client.diagnostics(&uri);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    assert_eq!(diagnostics[0]["code"], "lth::check::unknown_field");
    let start = position(TYPO, "widht", 0);
    assert_eq!(
        diagnostics[0]["range"],
        json!({ "start": start, "end": { "line": start["line"], "character": start["character"].as_u64().unwrap() + 5 } })
    );
    assert!(diagnostics[0]["message"].as_str().unwrap().contains("width"), "the help names the field: {}", diagnostics[0]);

    // Fixing it clears the diagnostics.
    let fixed = TYPO.replace("widht", "width");
    client.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": fixed }] }));
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());

    // Hover on a field: its type, range and default from the registry.
    let hover =
        client.request("textDocument/hover", json!({ "textDocument": { "uri": uri }, "position": position(&fixed, "rate = 50%", 1) }));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("**rate**") && text.contains("default `10%`") && text.contains("percentage"), "{text}");

    // Hover on a prune stage reference: its rounds and the weights left after each.
    let hover =
        client.request("textDocument/hover", json!({ "textDocument": { "uri": uri }, "position": position(&fixed, "prune tickets", 7) }));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("3 rounds at 50% per round") && text.contains("| 3 | 12.5% |"), "{text}");

    // Completion inside `resnet_tiny { }`: its fields, without those already written.
    let with_block = fixed.replace("resnet_tiny { classes = data.classes  width = 8 }", "resnet_tiny { classes = data.classes  }");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "text": with_block }] }),
    );
    client.diagnostics(&uri);
    let completion = client.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": position(&with_block, "data.classes  }", "data.classes ".len()) }),
    );
    let fields = labels(&completion);
    assert_eq!(fields, ["width", "weights", "normalize"], "resnet_tiny's fields but `classes`, already written");
    assert!(!fields.contains(&"classes".to_owned()), "`classes` is already written: {fields:?}");

    // Completion after `layer = "` (the file does not parse): the layers of the model the block reads.
    let open_string = format!("{with_block}explain cam = gradcam {{ of = tickets  layer = \"\n");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 4 }, "contentChanges": [{ "text": open_string }] }),
    );
    let diagnostics = client.diagnostics(&uri);
    assert_eq!(diagnostics[0]["code"], "lth::syntax::unexpected", "{diagnostics:#?}");
    let completion = client
        .request("textDocument/completion", json!({ "textDocument": { "uri": uri }, "position": position(&open_string, "layer = \"", 9) }));
    let layers = labels(&completion);
    for layer in ["layer1", "layer3", "layer3.0.conv2", "conv1"] {
        assert!(layers.contains(&layer.to_owned()), "{layer} in {layers:?}");
    }
    // Grad-CAM needs a spatial map: not the pooling or the linear head.
    assert!(!layers.contains(&"fc".to_owned()) && !layers.contains(&"avgpool".to_owned()), "{layers:?}");

    // Go to the definition of a preset: the stdlib module, served as a read-only file.
    client.notify("textDocument/didChange", json!({ "textDocument": { "uri": uri, "version": 5 }, "contentChanges": [{ "text": fixed }] }));
    client.diagnostics(&uri);
    let definition = client
        .request("textDocument/definition", json!({ "textDocument": { "uri": uri }, "position": position(&fixed, "= resnet_tiny", 3) }));
    let target = definition["uri"].as_str().unwrap();
    assert!(target.starts_with("file://") && target.ends_with("/models.lth"), "{definition}");
    let path = std::path::PathBuf::from(target.trim_start_matches("file://"));
    let stdlib = std::fs::read_to_string(&path).unwrap();
    assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
    let line = definition["range"]["start"]["line"].as_u64().unwrap() as usize;
    assert!(stdlib.lines().nth(line).unwrap().starts_with("preset model resnet_tiny"), "{definition}");

    // Go to the definition of a stage reference: its declaration.
    let definition = client
        .request("textDocument/definition", json!({ "textDocument": { "uri": uri }, "position": position(&fixed, "from = dense", 8) }));
    assert_eq!(definition["range"]["start"], position(&fixed, "dense = sgd", 0));

    // Symbols and formatting.
    let symbols = client.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": uri } }));
    let names: Vec<&str> = symbols.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["data", "net", "dense", "tickets"]);
    let edits = client
        .request("textDocument/formatting", json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 2, "insertSpaces": true } }));
    assert_eq!(edits.as_array().unwrap().len(), 0, "the text is already in the canonical layout: {edits}");

    assert_eq!(client.request("shutdown", Value::Null), Value::Null);
    client.notify("exit", Value::Null);
    let status = client.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
