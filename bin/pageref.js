#!/usr/bin/env node
// Entry point: runs the compiled CLI, or says how to build it.
'use strict';
const path = require('node:path');
let cli;
try {
  cli = require(path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js'));
} catch (error) {
  if (error.code !== 'MODULE_NOT_FOUND') throw error;
  process.stderr.write('pageref: not built yet: run `npm run build` in ' + path.dirname(__dirname) + '\n');
  process.exit(1);
}
cli.main(process.argv).then((code) => {
  process.exitCode = code;
});
