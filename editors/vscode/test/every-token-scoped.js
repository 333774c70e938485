// Fails when a snapshot shows a character of a shipped file that is not whitespace but got no
// scope beyond `source.lth`: a construct the grammar does not know.
const fs = require("fs");
let failures = 0;
for (const file of process.argv.slice(2)) {
  let source = "";
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith(">")) {
      source = line.slice(1);
      continue;
    }
    const m = /^#(\s*)(\^+)\s+(.*)$/.exec(line);
    if (!m || m[3].trim() !== "source.lth") continue;
    const start = m[1].length;
    const text = source.slice(start, start + m[2].length);
    if (text.trim() !== "") {
      console.error(`${file}: \`${text}\` in \`${source}\` has no scope`);
      failures += 1;
    }
  }
}
process.exit(failures ? 1 : 0);
