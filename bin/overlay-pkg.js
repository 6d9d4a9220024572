#!/usr/bin/env node
import '../dist/bin/overlay-pkg.mjs';
