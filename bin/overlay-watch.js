#!/usr/bin/env node
import '../dist/bin/overlay-watch.mjs';
