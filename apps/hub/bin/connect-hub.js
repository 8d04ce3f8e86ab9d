#!/usr/bin/env node
// Checked-in launcher so npm links the bin on a fresh clone, before the TypeScript build has run.
import "../dist/src/main.js";
