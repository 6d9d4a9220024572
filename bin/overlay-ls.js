#!/usr/bin/env node
import '../dist/bin/overlay-ls.mjs';
