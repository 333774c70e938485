// Starts `lthlang lsp` for .lth files. Everything the editor shows beyond colours comes from it.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("lthlang").get("path") || "lthlang";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient("lthlang", "lthlang", { run: server, debug: server }, {
    documentSelector: [{ language: "lth" }],
  });
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
